package export

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

// fixture is a store with one pulled machine, "img".
type fixture struct {
	st          *store.Store
	rec         *store.Record
	root        string
	machinesDir string
}

// pulled builds a random image in an OCI layout (tagged v1) and pulls it
// with berth's own pull into fresh directories.
func pulled(t *testing.T) fixture {
	t.Helper()
	requireRoot(t) // pull applies owners
	d := t.TempDir()
	img, err := random.Image(2048, 3)
	must(t, err)
	lp, err := layout.Write(filepath.Join(d, "src"), empty.Index)
	must(t, err)
	must(t, lp.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})))
	return pullInto(t, d, "oci:"+filepath.Join(d, "src")+":v1", "img")
}

func pullInto(t *testing.T, d, ref, machine string) fixture {
	t.Helper()
	f := fixture{root: filepath.Join(d, "root"), machinesDir: filepath.Join(d, "machines")}
	res, err := pull.Pull(context.Background(), pull.Options{
		Ref: ref, Name: machine, Root: f.root, MachinesDir: f.machinesDir, Gunzip: "builtin",
		Running: func(string) bool { return false },
	})
	must(t, err)
	f.rec = res.Record
	f.st, err = store.Open(f.root)
	must(t, err)
	return f
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	must(t, err)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkLayout checks dir is an OCI layout holding exactly rec's image
// under refName, every blob hashing to its name.
func checkLayout(t *testing.T, dir string, rec *store.Record, refName string) {
	t.Helper()
	ii, err := layout.ImageIndexFromPath(dir)
	must(t, err)
	im, err := ii.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 {
		t.Fatalf("index has %d manifests", len(im.Manifests))
	}
	m := im.Manifests[0]
	if m.Digest != rec.Manifest || m.Annotations["org.opencontainers.image.ref.name"] != refName {
		t.Errorf("index entry %s %v, want %s named %q", m.Digest, m.Annotations, rec.Manifest, refName)
	}
	img, err := ii.Image(m.Digest)
	must(t, err)
	if cn, _ := img.ConfigName(); cn != rec.Config {
		t.Errorf("config %s, want %s", cn, rec.Config)
	}
	blobs, err := os.ReadDir(filepath.Join(dir, "blobs/sha256"))
	must(t, err)
	if len(blobs) != len(rec.Blobs()) {
		t.Errorf("%d blobs, want %d", len(blobs), len(rec.Blobs()))
	}
	for _, b := range blobs {
		if got := sha256File(t, filepath.Join(dir, "blobs/sha256", b.Name())); got != b.Name() {
			t.Errorf("blob %s hashes to %s", b.Name(), got)
		}
	}
}

func TestExportOCILayoutRepulls(t *testing.T) {
	f := pulled(t)
	out := filepath.Join(t.TempDir(), "layout")
	res, err := Export(context.Background(), Options{Format: OCI, Out: out, Store: f.st, Record: f.rec})
	must(t, err)
	if res.RefName != "v1" {
		t.Errorf("ref name %q, want the layout tag v1", res.RefName)
	}
	checkLayout(t, out, f.rec, "v1")

	again := pullInto(t, t.TempDir(), "oci:"+out+":v1", "again")
	if again.rec.Manifest != f.rec.Manifest || again.rec.Config != f.rec.Config {
		t.Errorf("re-pulled %s (config %s), want %s (config %s)", again.rec.Manifest, again.rec.Config, f.rec.Manifest, f.rec.Config)
	}
}

// untar unpacks an archive of regular files and directories into dir.
func untar(t *testing.T, file, dir string) {
	t.Helper()
	fh, err := os.Open(file)
	must(t, err)
	defer fh.Close()
	tr := tar.NewReader(fh)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		must(t, err)
		p := filepath.Join(dir, h.Name)
		if h.Typeflag == tar.TypeDir {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		b, err := io.ReadAll(tr)
		must(t, err)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, b, 0o644))
	}
}

func TestExportArchives(t *testing.T) {
	f := pulled(t)
	d := t.TempDir()

	oa := filepath.Join(d, "img.oci.tar")
	_, err := Export(context.Background(), Options{Format: OCIArchive, Out: oa, Store: f.st, Record: f.rec})
	must(t, err)
	unpacked := filepath.Join(d, "oa")
	untar(t, oa, unpacked)
	checkLayout(t, unpacked, f.rec, "v1")
	if _, err := os.Stat(filepath.Join(unpacked, "manifest.json")); err == nil {
		t.Error("an oci-archive has docker's manifest.json")
	}

	da := filepath.Join(d, "img.docker.tar")
	_, err = Export(context.Background(), Options{Format: DockerArchive, Out: da, Store: f.st, Record: f.rec, RefName: "example.com/app:2"})
	must(t, err)
	tag, _ := name.NewTag("example.com/app:2")
	img, err := tarball.ImageFromPath(da, &tag)
	must(t, err)
	if cn, _ := img.ConfigName(); cn != f.rec.Config {
		t.Errorf("docker-archive config %s, want %s", cn, f.rec.Config)
	}
	ls, err := img.Layers()
	must(t, err)
	for i, l := range ls {
		if dg, _ := l.Digest(); dg != f.rec.Layers[i].Digest {
			t.Errorf("docker-archive layer %d: %s, want %s", i, dg, f.rec.Layers[i].Digest)
		}
	}
	dd := filepath.Join(d, "da")
	untar(t, da, dd)
	b, err := os.ReadFile(filepath.Join(dd, "manifest.json"))
	must(t, err)
	var dm []struct{ RepoTags []string }
	must(t, json.Unmarshal(b, &dm))
	if len(dm) != 1 || len(dm[0].RepoTags) != 1 || dm[0].RepoTags[0] != "example.com/app:2" {
		t.Errorf("manifest.json %s", b)
	}
	// Since Docker 25 a docker save is also an OCI layout; so is berth's.
	checkLayout(t, dd, f.rec, "example.com/app:2")

	// Reproducible: the same image gives the same archive.
	da2 := filepath.Join(d, "again.docker.tar")
	_, err = Export(context.Background(), Options{Format: DockerArchive, Out: da2, Store: f.st, Record: f.rec, RefName: "example.com/app:2"})
	must(t, err)
	if sha256File(t, da) != sha256File(t, da2) {
		t.Error("two exports of the same image differ")
	}
}

// leftovers lists what is in dir besides keep.
func leftovers(t *testing.T, dir string, keep ...string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var out []string
	for _, e := range ents {
		if !strings.Contains(strings.Join(keep, "\x00"), e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestExportLeavesNothingOnError(t *testing.T) {
	f := pulled(t)
	// Corrupt the last layer in place (same size): found only while it is
	// copied, after the other blobs were written.
	last := f.rec.Layers[len(f.rec.Layers)-1]
	p := f.st.BlobPath(last.Digest)
	b, err := os.ReadFile(p)
	must(t, err)
	b[len(b)/2] ^= 0xff
	must(t, os.WriteFile(p, b, 0o644))

	for _, format := range []Format{OCI, OCIArchive, DockerArchive} {
		d := t.TempDir()
		out := filepath.Join(d, "out")
		_, err := Export(context.Background(), Options{Format: format, Out: out, Store: f.st, Record: f.rec})
		if !errors.Is(err, store.ErrDigestMismatch) || !strings.Contains(err.Error(), "berth pull --name img") {
			t.Errorf("%s: err %v, want a digest mismatch saying how to restore the blob", format, err)
		}
		if left := leftovers(t, d); len(left) != 0 {
			t.Errorf("%s: left %v behind", format, left)
		}
	}

	// Interrupted: a cancelled context stops the copy; nothing remains.
	good := pulled(t)
	d := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, format := range []Format{OCI, OCIArchive, Tar} {
		_, err := Export(ctx, Options{Format: format, Out: filepath.Join(d, "out-"+string(format)), Store: good.st, Record: good.rec, Tree: filepath.Join(good.machinesDir, "img")})
		if err == nil {
			t.Errorf("%s: export with a cancelled context succeeded", format)
		}
	}
	if left := leftovers(t, d); len(left) != 0 {
		t.Errorf("cancelled exports left %v behind", left)
	}
}

func TestExportMissingBlob(t *testing.T) {
	f := pulled(t)
	gone := f.rec.Layers[1].Digest
	must(t, os.Remove(f.st.BlobPath(gone)))
	d := t.TempDir()
	_, err := Export(context.Background(), Options{Format: OCI, Out: filepath.Join(d, "x"), Store: f.st, Record: f.rec})
	if !errors.Is(err, ErrBlobMissing) || !strings.Contains(err.Error(), "layer 2 "+gone.String()) ||
		!strings.Contains(err.Error(), "`berth pull --name img "+f.rec.Reference+"` restores it") {
		t.Errorf("err = %v", err)
	}
	if left := leftovers(t, d); len(left) != 0 {
		t.Errorf("left %v behind", left)
	}
}

func TestExportDestinations(t *testing.T) {
	f := pulled(t)
	d := t.TempDir()

	// An empty directory is replaced by the layout; a full one is refused
	// and left alone.
	empty := filepath.Join(d, "empty")
	must(t, os.Mkdir(empty, 0o755))
	_, err := Export(context.Background(), Options{Format: OCI, Out: empty + "/", Store: f.st, Record: f.rec})
	must(t, err)
	checkLayout(t, empty, f.rec, "v1")
	_, err = Export(context.Background(), Options{Format: OCI, Out: empty, Store: f.st, Record: f.rec})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("export into a full directory: %v", err)
	}
	checkLayout(t, empty, f.rec, "v1")

	// A file is replaced whole.
	file := filepath.Join(d, "img.tar")
	must(t, os.WriteFile(file, []byte("old"), 0o600))
	_, err = Export(context.Background(), Options{Format: OCIArchive, Out: file, Store: f.st, Record: f.rec})
	must(t, err)
	if fi, _ := os.Stat(file); fi.Size() < 1024 || fi.Mode().Perm() != 0o644 {
		t.Errorf("replaced file: %v", fi)
	}
	if left := leftovers(t, d, "empty", "img.tar"); len(left) != 0 {
		t.Errorf("left %v behind", left)
	}

	// A directory stream goes nowhere.
	var buf bytes.Buffer
	if _, err := Export(context.Background(), Options{Format: OCI, Out: "-", Stdout: &buf, Store: f.st, Record: f.rec}); !errors.Is(err, ErrFormat) {
		t.Errorf("oci to stdout: %v", err)
	}
	// A stream goes to Stdout.
	if _, err := Export(context.Background(), Options{Format: TarZstd, Stdout: &buf, Tree: filepath.Join(f.machinesDir, "img")}); err != nil || buf.Len() == 0 {
		t.Errorf("tar.zst to stdout: %v, %d bytes", err, buf.Len())
	}
}

func TestPushKeepsDigest(t *testing.T) {
	f := pulled(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/team/img:pushed"
	d, err := Push(context.Background(), f.st, f.rec, ref, PushOptions{})
	must(t, err)
	if d.DigestStr() != f.rec.Manifest.String() || !strings.HasSuffix(d.Context().Name(), "/team/img") {
		t.Errorf("pushed %s, want digest %s", d, f.rec.Manifest)
	}
	r, _ := name.ParseReference(ref)
	desc, err := remote.Get(r)
	must(t, err)
	stored, err := f.st.ReadBlob(f.rec.Manifest)
	must(t, err)
	if desc.Digest != f.rec.Manifest || !bytes.Equal(desc.Manifest, stored) {
		t.Errorf("registry serves %s, want the stored manifest %s byte for byte", desc.Digest, f.rec.Manifest)
	}

	if _, err := Push(context.Background(), f.st, f.rec, "oci:/tmp/x", PushOptions{}); err == nil || !strings.Contains(err.Error(), "not a registry reference") {
		t.Errorf("push to a layout: %v", err)
	}
	must(t, os.Remove(f.st.BlobPath(f.rec.Layers[0].Digest)))
	if _, err := Push(context.Background(), f.st, f.rec, ref, PushOptions{}); !errors.Is(err, ErrBlobMissing) {
		t.Errorf("push with a missing blob: %v", err)
	}
}

func TestRefName(t *testing.T) {
	for _, c := range []struct{ ref, want string }{
		{"docker.io/library/busybox:latest", "docker.io/library/busybox:latest"},
		{"127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64)},
		{"oci:/srv/img:v1", "v1"},
		{"oci:/srv/img", "img"},
	} {
		if got := RefName(&store.Record{Name: "img", Reference: c.ref}); got != c.want {
			t.Errorf("RefName(%s) = %q, want %q", c.ref, got, c.want)
		}
	}
	if _, ok := repoTag("127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64)); ok {
		t.Error("a digest reference became a RepoTag")
	}
	if got, ok := repoTag("docker.io/library/busybox:latest"); !ok || got != "docker.io/library/busybox:latest" {
		t.Errorf("repoTag = %q %v", got, ok)
	}
}

func TestDefaultFormat(t *testing.T) {
	for _, c := range []struct {
		out   string
		isDir bool
		want  Format
	}{
		{"", false, Tar}, {"-", false, Tar},
		{"root.tar", false, Tar}, {"ROOT.TAR", false, Tar},
		{"root.tar.zst", false, TarZstd}, {"root.tzst", false, TarZstd}, {"root.tar.zstd", false, TarZstd},
		{"img.oci.tar", false, OCIArchive}, {"img.docker.tar", false, DockerArchive},
		{"layout/", false, OCI}, {"existing", true, OCI}, {"existing.tar", true, OCI},
	} {
		if got, err := DefaultFormat(c.out, c.isDir); err != nil || got != c.want {
			t.Errorf("DefaultFormat(%q, %v) = %q, %v; want %q", c.out, c.isDir, got, err, c.want)
		}
	}
	for _, out := range []string{"image", "root.tgz", "x.zst"} {
		if _, err := DefaultFormat(out, false); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "--format") {
			t.Errorf("DefaultFormat(%q): %v, want an error asking for --format", out, err)
		}
	}
	if _, err := ParseFormat("zip"); !errors.Is(err, ErrFormat) {
		t.Errorf("ParseFormat(zip): %v", err)
	}
}
