package system

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-sh/berth/internal/store"
)

// crashImage pushes an image of n files of size bytes each (random, so
// gzip cannot shrink them) in layers layers, every file naming the image
// in its first bytes; it returns the reference and the file list.
func crashImage(t *testing.T, host, repoTag, tag string, layers, n, size int) (string, []string) {
	t.Helper()
	img := empty.Image
	var files []string
	rnd := rand.New(rand.NewPCG(uint64(len(tag)), 7))
	for l := 0; l < layers; l++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := 0; i < n; i++ {
			p := fmt.Sprintf("usr/share/l%d/f%03d", l, i)
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			copy(data, tag)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(size)})
			tw.Write(data)
			files = append(files, p)
		}
		tw.Close()
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cfg)
	ref := host + "/" + repoTag
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return ref, files
}

// TestPullKilledAnywhere kills `berth pull` with SIGKILL at random points,
// 20 times, alternating two images on one machine name (so first installs
// and replacements are both cut), and checks after each kill that no half
// machine is visible (the tree, if any, is all of one image and a record
// names that image), that check finds nothing but the leftovers a kill may
// leave (a staging directory, a temporary blob), and that the next pull
// succeeds and leaves a consistent state.
func TestPullKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds berth and pulls 40 times")
	}
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/berth")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	refA, filesA := crashImage(t, host, "crash/app:a", "image-a", 3, 40, 64<<10)
	refB, filesB := crashImage(t, host, "crash/app:b", "image-b", 2, 60, 64<<10)
	d := t.TempDir()
	h := Host{Root: filepath.Join(d, "root"), MachinesDir: filepath.Join(d, "machines")}
	env := append(os.Environ(), "BERTH_ROOT="+h.Root, "BERTH_MACHINES_DIR="+h.MachinesDir, "BERTH_GUNZIP=builtin")
	pullCmd := func(ref string) *exec.Cmd {
		c := exec.Command(bin, "pull", "-q", "--name", "app", ref)
		c.Env = env
		return c
	}
	// How long a whole pull takes here, to spread the kills over it.
	begin := time.Now()
	if out, err := pullCmd(refA).CombinedOutput(); err != nil {
		t.Fatalf("first pull: %v\n%s", err, out)
	}
	full := time.Since(begin)
	rnd := rand.New(rand.NewPCG(1, 2))
	tree := filepath.Join(h.MachinesDir, "app")
	for i := 0; i < 20; i++ {
		ref := refB
		if i%2 == 1 {
			ref = refA
		}
		if i%5 == 4 {
			// Every fifth round cuts a first install.
			os.RemoveAll(tree)
			os.Remove(store.ConfigPath(h.MachinesDir, "app"))
			store.At(h.Root).RemoveRecord("app")
		}
		c := pullCmd(ref)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rnd.Int64N(int64(full)))
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()

		// Whatever is visible is whole.
		if _, err := os.Lstat(tree); err == nil {
			got := treeFiles(t, filepath.Join(tree, "usr/share"))
			rec, err := store.At(h.Root).Record("app")
			switch {
			case err != nil:
				t.Errorf("round %d (killed after %v): a tree without a record: %v", i, delay, err)
			case slices.Equal(got, filesA) && strings.HasSuffix(rec.Reference, ":a"), slices.Equal(got, filesB) && strings.HasSuffix(rec.Reference, ":b"):
			case slices.Equal(got, filesA) || slices.Equal(got, filesB):
				// A replacement killed after the swap: the record
				// still names the old image, so the next pull
				// redoes it; the tree is whole.
			default:
				t.Errorf("round %d (killed after %v): the tree holds %d files, neither image's", i, delay, len(got))
			}
		}
		checkKillLeftovers(t, h, i, delay)
		if out, err := pullCmd(ref).CombinedOutput(); err != nil {
			t.Fatalf("round %d: the pull after the kill failed: %v\n%s", i, err, out)
		}
		want := filesB
		if ref == refA {
			want = filesA
		}
		checkRedone(t, h, i, tree, want)
	}
}

func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(filepath.Dir(filepath.Dir(dir)), p)
			out = append(out, rel)
		}
		return nil
	})
	slices.Sort(out)
	return out
}

// TestImportKilledAnywhere kills `berth import URL` with SIGKILL at random
// points, 20 times, alternating two root filesystem tarballs (gzip, one
// top-level directory, SHA256SUMS beside them) on one machine name, and
// checks what TestPullKilledAnywhere checks: no half machine is visible,
// check finds only a kill's leftovers, the next import succeeds and leaves
// a consistent state.
func TestImportKilledAnywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds berth and imports 40 times")
	}
	bin := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	www := t.TempDir()
	files := map[string][]string{}
	var sums strings.Builder
	for _, tag := range []string{"a", "b"} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		rnd := rand.New(rand.NewPCG(uint64(tag[0]), 9))
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "rootfs/", Mode: 0o755})
		for i := 0; i < 60; i++ {
			p := fmt.Sprintf("usr/share/%s/f%03d", tag, i)
			data := make([]byte, 128<<10)
			for j := range data {
				data[j] = byte(rnd.Uint32())
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "rootfs/" + p, Mode: 0o644, Size: int64(len(data))})
			tw.Write(data)
			files[tag] = append(files[tag], p)
		}
		tw.Close()
		zw.Close()
		name := "root-" + tag + ".tar.gz"
		if err := os.WriteFile(filepath.Join(www, name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
	}
	os.WriteFile(filepath.Join(www, "SHA256SUMS"), []byte(sums.String()), 0o644)
	srv := httptest.NewServer(http.FileServer(http.Dir(www)))
	defer srv.Close()
	d := t.TempDir()
	h := Host{Root: filepath.Join(d, "root"), MachinesDir: filepath.Join(d, "machines")}
	env := append(os.Environ(), "BERTH_ROOT="+h.Root, "BERTH_MACHINES_DIR="+h.MachinesDir, "BERTH_GUNZIP=builtin")
	importCmd := func(tag string) *exec.Cmd {
		c := exec.Command(bin, "import", "-q", "--name", "app", srv.URL+"/root-"+tag+".tar.gz")
		c.Env = env
		return c
	}
	begin := time.Now()
	if out, err := importCmd("a").CombinedOutput(); err != nil {
		t.Fatalf("first import: %v\n%s", err, out)
	}
	full := time.Since(begin)
	rnd := rand.New(rand.NewPCG(5, 6))
	tree := filepath.Join(h.MachinesDir, "app")
	for i := 0; i < 20; i++ {
		tag := "b"
		if i%2 == 1 {
			tag = "a"
		}
		if i%5 == 4 {
			os.RemoveAll(tree)
			os.Remove(store.ConfigPath(h.MachinesDir, "app"))
			store.At(h.Root).RemoveRecord("app")
		}
		c := importCmd(tag)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rnd.Int64N(int64(full)))
		time.Sleep(delay)
		c.Process.Signal(syscall.SIGKILL)
		c.Wait()
		if _, err := os.Lstat(tree); err == nil {
			got := treeFiles(t, filepath.Join(tree, "usr/share"))
			if _, err := store.At(h.Root).Record("app"); err != nil {
				t.Errorf("round %d (killed after %v): a tree without a record: %v", i, delay, err)
			}
			if !slices.Equal(got, files["a"]) && !slices.Equal(got, files["b"]) {
				t.Errorf("round %d (killed after %v): the tree holds %d files, neither tarball's", i, delay, len(got))
			}
		}
		checkKillLeftovers(t, h, i, delay)
		if out, err := importCmd(tag).CombinedOutput(); err != nil {
			t.Fatalf("round %d: the import after the kill failed: %v\n%s", i, err, out)
		}
		checkRedone(t, h, i, tree, files[tag])
	}
}

// checkKillLeftovers fails on anything check finds after a kill but what a
// kill may leave: a staging directory, a blob download, a first install's
// record before its tree, a record saved before index.json was rebuilt
// from it. The next command clears each.
func checkKillLeftovers(t *testing.T, h Host, round int, delay time.Duration) {
	t.Helper()
	found, err := h.Check(context.Background(), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		switch f.Kind {
		case KindStaging, KindBlobTemp, KindTreeMissing, KindIndexStale:
		default:
			t.Errorf("round %d (killed after %v): check found %s %s: %s", round, delay, f.Kind, f.Path, f.Problem)
		}
	}
}

// checkRedone checks the state after the command that followed a kill: the
// tree holds exactly want, and check finds nothing.
func checkRedone(t *testing.T, h Host, round int, tree string, want []string) {
	t.Helper()
	if got := treeFiles(t, filepath.Join(tree, "usr/share")); !slices.Equal(got, want) {
		t.Errorf("round %d: after the command that followed the kill the tree has %d files, want %d", round, len(got), len(want))
	}
	if found, _ := h.Check(context.Background(), CheckOptions{}); len(found) != 0 {
		t.Errorf("round %d: check after the command that followed the kill: %+v", round, found)
	}
}
