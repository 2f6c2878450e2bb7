package pull

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/gunzip"
	"github.com/berth-sh/berth/internal/store"
)

func TestPullInstallsImage(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64",
		layerOf(t, tarOf(t, "etc/", "", "etc/os-release", "ID=test\n", "bin/hello", "v1"), "gzip"),
		layerOf(t, tarOf(t, "bin/hello", "v2", "srv/data", "x"), "gzip"),
	)
	ref := reg.push(t, "team/my_app:1.0", img)
	e := newEnv(t)
	res := e.pull(t, ref, func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"} })

	if res.UpToDate {
		t.Error("first pull reported up to date")
	}
	rec := res.Record
	if rec.Name != "my-app" {
		t.Errorf("default name = %q, want my-app", rec.Name)
	}
	rootfs := filepath.Join(e.machines, "my-app")
	if got := readFile(t, filepath.Join(rootfs, "bin/hello")); got != "v2" {
		t.Errorf("bin/hello = %q, want the upper layer's v2", got)
	}
	if got := readFile(t, filepath.Join(rootfs, "etc/os-release")); got != "ID=test\n" {
		t.Errorf("etc/os-release = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(rootfs, "usr")); err != nil || !fi.IsDir() {
		t.Errorf("image without /usr got no empty /usr: %v", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(e.machines, "my-app.oci-config")); got != string(rawCfg) {
		t.Errorf(".oci-config differs from the image config")
	}
	wantDigest, _ := img.Digest()
	if rec.Digest != wantDigest || rec.Manifest != wantDigest {
		t.Errorf("record digest %s manifest %s, want %s", rec.Digest, rec.Manifest, wantDigest)
	}
	if rec.Reference != ref || len(rec.Layers) != 2 || rec.Platform.Architecture != "amd64" {
		t.Errorf("record = %+v", rec)
	}
	if res.Downloaded != 4 { // manifest, config, two layers
		t.Errorf("downloaded %d blobs, want 4", res.Downloaded)
	}

	gotRec, cfg, err := store.LoadMachine(e.root, "my-app")
	if err != nil {
		t.Fatal(err)
	}
	if gotRec.Config != rec.Config || len(cfg.Config.Cmd) != 1 || cfg.Config.Cmd[0] != "/bin/sh" {
		t.Errorf("LoadMachine = %+v, cmd %v", gotRec, cfg.Config.Cmd)
	}

	// The store is an OCI layout naming the machine.
	var idx v1.IndexManifest
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(e.root, "index.json"))), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != wantDigest ||
		idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "my-app" {
		t.Errorf("index.json = %+v", idx)
	}
	if _, staging := e.listing(t); len(staging) != 0 {
		t.Errorf("staging dirs left: %v", staging)
	}
}

func TestRePullDownloadsNothing(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "a", "1"), "gzip"), layerOf(t, tarOf(t, "b", "2"), "gzip"))
	ref := reg.push(t, "app:latest", img)
	e := newEnv(t)
	e.pull(t, ref)
	reg.resetCounts()

	// Mark the installed tree: an unpack would replace it.
	marker := filepath.Join(e.machines, "app", "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := e.pull(t, ref)
	t.Logf("warm re-pull took %v", time.Since(start))
	if !res.UpToDate || res.Downloaded != 0 {
		t.Errorf("re-pull: up to date %v, downloaded %d; want true, 0", res.UpToDate, res.Downloaded)
	}
	if m, b := reg.counts(); m != 1 || b != 0 {
		t.Errorf("re-pull made %d manifest and %d blob requests, want 1 and 0", m, b)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("re-pull re-unpacked the machine: %v", err)
	}
}

func TestTagMovedReplacesMachine(t *testing.T) {
	reg := newTestRegistry(t)
	base := layerOf(t, tarOf(t, "base", "shared"), "gzip")
	v1img := imageOf(t, "linux/amd64", base, layerOf(t, tarOf(t, "version", "1"), "gzip"))
	ref := reg.push(t, "app:stable", v1img)
	e := newEnv(t)
	e.pull(t, ref)
	old, _ := store.Open(e.root)
	oldRec, err := old.Record("app")
	if err != nil {
		t.Fatal(err)
	}

	v2img := imageOf(t, "linux/amd64", base, layerOf(t, tarOf(t, "version", "2"), "gzip"))
	reg.push(t, "app:stable", v2img)
	reg.resetCounts()
	res := e.pull(t, ref)
	if res.UpToDate {
		t.Fatal("moved tag reported up to date")
	}
	// manifest, config and the new layer; the shared base layer is reused.
	if _, b := reg.counts(); b != 2 {
		t.Errorf("blob requests = %d, want 2 (config + new layer)", b)
	}
	if got := readFile(t, filepath.Join(e.machines, "app", "version")); got != "2" {
		t.Errorf("version = %q after the tag moved, want 2", got)
	}
	if _, staging := e.listing(t); len(staging) != 0 {
		t.Errorf("old tree left behind: %v", staging)
	}
	// The replaced image's own blobs were collected; the shared one kept.
	for _, l := range oldRec.Layers {
		_, has := old.Has(l.Digest)
		shared := l.Digest == res.Record.Layers[0].Digest
		if has != shared {
			t.Errorf("blob %s present=%v after tag moved (shared=%v)", l.Digest, has, shared)
		}
	}
}

// tamperBlob serves digest's blob with its last byte flipped.
func tamperBlob(t *testing.T, reg *testRegistry, l v1.Layer) {
	t.Helper()
	d, _ := l.Digest()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	var body []byte
	buf := make([]byte, 4096)
	for {
		n, err := rc.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	body[len(body)-1] ^= 0xff
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
		return true
	})
}

func TestDigestMismatchInstallsNothing(t *testing.T) {
	reg := newTestRegistry(t)
	good := layerOf(t, tarOf(t, "a", "1"), "gzip")
	bad := layerOf(t, tarOf(t, "b", strings.Repeat("data", 1000)), "gzip")
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", good, bad))
	tamperBlob(t, reg, bad)
	e := newEnv(t)

	for _, c := range gunzipModes(t) {
		for _, stream := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/stream=%v", c.name, stream), func(t *testing.T) {
				testDigestMismatch(t, e, ref, bad, c.gunzip, stream)
			})
		}
	}
}

// gunzipModes are the ways Pull can inflate gzip layers: in-process, and
// through igzip (required with BERTH_TEST_REQUIRE_TOOLS=1).
func gunzipModes(t *testing.T) []struct{ name, gunzip string } {
	modes := []struct{ name, gunzip string }{{"builtin", "builtin"}}
	if p := gunzip.Find(); p != "" {
		modes = append(modes, struct{ name, gunzip string }{"igzip", p})
	} else if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found (BERTH_TEST_REQUIRE_TOOLS=1)", gunzip.Auto)
	}
	return modes
}

func testDigestMismatch(t *testing.T, e env, ref string, bad v1.Layer, gunzip string, stream bool) {
	_, err := Pull(context.Background(), func() Options { o := e.opts(ref); o.NoStream = !stream; o.Gunzip = gunzip; return o }())
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	d, _ := bad.Digest()
	if !strings.Contains(err.Error(), "layer 2") || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("error %q does not name layer 2 and its digest", err)
	}
	e.assertNothingInstalled(t, "app")
	st, _ := store.Open(e.root)
	if _, ok := st.Has(d); ok {
		t.Error("tampered blob was committed to the store")
	}
}

func TestDiffIDMismatchInstallsNothing(t *testing.T) {
	reg := newTestRegistry(t)
	l1 := layerOf(t, tarOf(t, "a", "1"), "gzip")
	l2 := layerOf(t, tarOf(t, "b", "2"), "zstd")
	img := imageOf(t, "linux/amd64", l1, l2)
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	lie, _ := l1.DiffID() // claim layer 2 has layer 1's content
	realDiff := cfg.RootFS.DiffIDs[1]
	cfg.RootFS.DiffIDs[1] = lie
	bad, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)

	// An installed good version must survive the failed update untouched.
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", l1))
	e.pull(t, ref)
	reg.push(t, "app:1", bad)

	_, err = Pull(context.Background(), e.opts(ref))
	if !errors.Is(err, ErrDiffIDMismatch) {
		t.Fatalf("err = %v, want ErrDiffIDMismatch", err)
	}
	for _, want := range []string{"layer 2", lie.String(), realDiff.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	visible, staging := e.listing(t)
	if len(staging) != 0 || len(visible) != 1 {
		t.Errorf("after failed update: visible %v staging %v, want [app] []", visible, staging)
	}
	if _, err := os.Stat(filepath.Join(e.machines, "app", "b")); err == nil {
		t.Error("the failed image's layer leaked into the installed machine")
	}
	st, _ := store.Open(e.root)
	rec, err := st.Record("app")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Layers) != 1 {
		t.Errorf("record was replaced by the failed pull: %+v", rec)
	}
}

func TestMultiArchIndexSelectsPlatform(t *testing.T) {
	reg := newTestRegistry(t)
	var idx v1.ImageIndex = empty.Index
	for _, p := range []string{"linux/amd64", "linux/arm64", "linux/arm/v6", "linux/arm/v7"} {
		img := imageOf(t, p, layerOf(t, tarOf(t, "platform", p), "gzip"))
		pl, _ := ParsePlatform(p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	ref := reg.pushIndex(t, "multi:latest", idx)
	idxDigest, _ := idx.Digest()

	for _, tc := range []struct{ want, got string }{
		{"linux/arm/v7", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/amd64", "linux/amd64"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			e := newEnv(t)
			p, _ := ParsePlatform(tc.want)
			res := e.pull(t, ref, func(o *Options) { o.Platform = &p })
			if got := readFile(t, filepath.Join(e.machines, "multi", "platform")); got != tc.got {
				t.Errorf("installed %q, want %q", got, tc.got)
			}
			if res.Record.Digest != idxDigest || res.Record.Manifest == idxDigest {
				t.Errorf("record digest %s manifest %s; want index %s and a platform manifest", res.Record.Digest, res.Record.Manifest, idxDigest)
			}
		})
	}
	e := newEnv(t)
	_, err := Pull(context.Background(), func() Options {
		o := e.opts(ref)
		o.Platform = &v1.Platform{OS: "linux", Architecture: "s390x"}
		return o
	}())
	if err == nil || !strings.Contains(err.Error(), "linux/arm/v7") {
		t.Errorf("missing platform: err = %v, want one listing the available platforms", err)
	}
}

func TestLayerCompressions(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64",
		layerOf(t, tarOf(t, "gz", "gzip"), "gzip"),
		layerOf(t, tarOf(t, "zst", "zstd"), "zstd"),
		layerOf(t, tarOf(t, "raw", "none"), "none"),
	)
	ref := reg.push(t, "mixed:1", img)
	for _, c := range gunzipModes(t) {
		for _, stream := range []bool{true, false} {
			e := newEnv(t)
			e.pull(t, ref, func(o *Options) { o.NoStream = !stream; o.Gunzip = c.gunzip })
			for f, want := range map[string]string{"gz": "gzip", "zst": "zstd", "raw": "none"} {
				if got := readFile(t, filepath.Join(e.machines, "mixed", f)); got != want {
					t.Errorf("%s, stream=%v: %s = %q, want %q", c.name, stream, f, got, want)
				}
			}
		}
	}
}

// TestGunzipOption: a program named in Options.Gunzip inflates gzip layers
// (called as gzip -dc), and what it outputs is still held to the DiffID.
func TestGunzipOption(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "gz:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "f", "content"), "gzip")))
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // the program may run as nobody
	os.Chmod(filepath.Dir(dir), 0o755)
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gz, err := exec.LookPath("gzip")
	if err != nil {
		t.Skip("gzip not found")
	}
	marker := filepath.Join(dir, "called")
	os.WriteFile(marker, nil, 0o666)
	os.Chmod(marker, 0o666)
	e := newEnv(t)
	e.pull(t, ref, func(o *Options) { o.Gunzip = script("good", "echo yes >> "+marker+"; exec "+gz+" \"$@\"") })
	if got := readFile(t, filepath.Join(e.machines, "gz", "f")); got != "content" {
		t.Errorf("f = %q", got)
	}
	if b, _ := os.ReadFile(marker); string(b) != "yes\n" {
		t.Errorf("the program was called %q times, want once", b)
	}
	// A program that lies (exits 0 with other content) fails the DiffID.
	e = newEnv(t)
	_, err = Pull(context.Background(), func() Options {
		o := e.opts(ref)
		o.Gunzip = script("liar", "cat >/dev/null; "+gz+" -dc < /dev/null 2>/dev/null; tar -cf - -C "+dir+" called")
		return o
	}())
	if !errors.Is(err, ErrDiffIDMismatch) {
		t.Fatalf("err = %v, want ErrDiffIDMismatch", err)
	}
	e.assertNothingInstalled(t, "gz")
}

func TestInterruptedPullThenSuccess(t *testing.T) {
	reg := newTestRegistry(t)
	big := layerOf(t, tarOf(t, "big", strings.Repeat("0123456789abcdef", 1<<16)), "none")
	ref := reg.push(t, "slow:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "small", "s"), "gzip"), big))
	bigDigest, _ := big.Digest()
	e := newEnv(t)
	// A staging dir abandoned by a killed pull: the next pull removes it.
	stale := filepath.Join(e.machines, store.StagingPrefix+"old-123")
	if err := os.MkdirAll(filepath.Join(stale, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	halfSent := make(chan struct{})
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+bigDigest.String()) || r.Method != http.MethodGet {
			return false
		}
		sz, _ := big.Size()
		rc, _ := big.Compressed()
		defer rc.Close()
		w.Header().Set("Content-Length", fmt.Sprint(sz))
		buf := make([]byte, sz/2)
		n, _ := rc.Read(buf)
		w.Write(buf[:n])
		w.(http.Flusher).Flush()
		close(halfSent)
		<-r.Context().Done() // hang until the client goes away
		return true
	})
	errc := make(chan error, 1)
	go func() {
		_, err := Pull(ctx, e.opts(ref))
		errc <- err
	}()
	<-halfSent
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted pull: err = %v, want context.Canceled", err)
	}
	e.assertNothingInstalled(t, "slow")

	reg.setIntercept(nil)
	e.pull(t, ref)
	if got := readFile(t, filepath.Join(e.machines, "slow", "small")); got != "s" {
		t.Errorf("small = %q", got)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale staging dir survived: %v", err)
	}
}

func TestRefusesForeignMachineDir(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "a", "1"), "gzip")))
	e := newEnv(t)
	mine := filepath.Join(e.machines, "app", "precious")
	if err := os.MkdirAll(filepath.Dir(mine), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mine, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Pull(context.Background(), e.opts(ref))
	if !errors.Is(err, ErrNotBerthMachine) {
		t.Fatalf("err = %v, want ErrNotBerthMachine", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a directory berth does not own was touched: %v", err)
	}
}

func TestConcurrentPulls(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64",
		layerOf(t, tarOf(t, "a", "1"), "gzip"), layerOf(t, tarOf(t, "b", "2"), "zstd")))
	e := newEnv(t)
	names := []string{"one", "two", "three", "one"}
	errc := make(chan error, len(names))
	for _, n := range names {
		go func() {
			o := e.opts(ref)
			o.Name = n
			_, err := Pull(context.Background(), o)
			errc <- err
		}()
	}
	for range names {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	for _, n := range []string{"one", "two", "three"} {
		if got := readFile(t, filepath.Join(e.machines, n, "b")); got != "2" {
			t.Errorf("%s/b = %q", n, got)
		}
	}
}

func TestDiffIDHashCoversWholeStream(t *testing.T) {
	// The DiffID is the sha256 of the whole uncompressed tar, including the
	// end-of-archive blocks; this pins that Pull hashes what Apply consumed.
	tb := tarOf(t, "x", "y")
	l := layerOf(t, tb, "gzip")
	d, _ := l.DiffID()
	if sum := sha256.Sum256(tb); fmt.Sprintf("%x", sum) != d.Hex {
		t.Fatalf("test layer DiffID %s is not the tar's sha256", d)
	}
	reg := newTestRegistry(t)
	newEnv(t).pull(t, reg.push(t, "x:1", imageOf(t, "linux/amd64", l)))
}

func TestRunningMachineIsNotReplaced(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "v", "1"), "gzip")))
	e := newEnv(t)
	e.pull(t, ref)
	reg.push(t, "app:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "v", "2"), "gzip")))
	o := e.opts(ref)
	o.Running = func(name string) bool { return name == "app" }
	if _, err := Pull(context.Background(), o); err == nil || !strings.Contains(err.Error(), "running") {
		t.Fatalf("pull over a running machine: err = %v", err)
	}
	if got := readFile(t, filepath.Join(e.machines, "app", "v")); got != "1" {
		t.Errorf("running machine's tree changed: v = %q", got)
	}
}

func TestSingleImagePlatformMismatch(t *testing.T) {
	reg := newTestRegistry(t)
	ref := reg.push(t, "arm:1", imageOf(t, "linux/arm64", layerOf(t, tarOf(t, "a", "1"), "gzip")))
	e := newEnv(t)
	amd := &v1.Platform{OS: "linux", Architecture: "amd64"}
	if _, err := Pull(context.Background(), func() Options { o := e.opts(ref); o.Platform = amd; return o }()); err == nil ||
		!strings.Contains(err.Error(), "linux/arm64") {
		t.Fatalf("arm64 image pulled for amd64: err = %v", err)
	}
	e.assertNothingInstalled(t, "arm")
	e.pull(t, ref, func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"} })
	// Warm path: same image, wrong platform asked: still an error.
	if _, err := Pull(context.Background(), func() Options { o := e.opts(ref); o.Platform = amd; return o }()); err == nil {
		t.Error("warm pull ignored the platform mismatch")
	}
}

func TestUpToDateRestoresConfig(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "a", "1"), "gzip"))
	ref := reg.push(t, "app:1", img)
	e := newEnv(t)
	e.pull(t, ref)
	cfgPath := filepath.Join(e.machines, "app.oci-config")
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if res := e.pull(t, ref); !res.UpToDate {
		t.Error("not up to date")
	}
	raw, _ := img.RawConfigFile()
	if got := readFile(t, cfgPath); got != string(raw) {
		t.Error(".oci-config not restored by the up-to-date pull")
	}
}

func TestDockerManifestList(t *testing.T) {
	reg := newTestRegistry(t)
	var idx v1.ImageIndex = mutate.IndexMediaType(empty.Index, types.DockerManifestList)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img := mutate.MediaType(imageOf(t, p, layerOf(t, tarOf(t, "p", p), "gzip")), types.DockerManifestSchema2)
		img = mutate.ConfigMediaType(img, types.DockerConfigJSON)
		pl, _ := ParsePlatform(p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	ref := reg.pushIndex(t, "docker:1", idx)
	e := newEnv(t)
	res := e.pull(t, ref, func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"} })
	if got := readFile(t, filepath.Join(e.machines, "docker", "p")); got != "linux/arm64" {
		t.Errorf("p = %q", got)
	}
	if res.Record.ManifestMediaType != types.DockerManifestSchema2 {
		t.Errorf("manifest media type %s", res.Record.ManifestMediaType)
	}
}

func TestLinesProgress(t *testing.T) {
	reg := newTestRegistry(t)
	l1, l2 := layerOf(t, tarOf(t, "a", "1"), "gzip"), layerOf(t, tarOf(t, "b", "2"), "gzip")
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", l1))
	e := newEnv(t)
	e.pull(t, ref)
	ref2 := reg.push(t, "app:2", imageOf(t, "linux/amd64", l1, l2))

	var buf strings.Builder
	rep := NewReporter(&buf) // not a terminal: plain lines
	if _, ok := rep.(*Lines); !ok {
		t.Fatalf("NewReporter(buffer) = %T, want *Lines", rep)
	}
	e.pull(t, ref2, func(o *Options) { o.Progress = rep })
	rep.Close()
	d1, _ := l1.Digest()
	d2, _ := l2.Digest()
	for _, want := range []string{
		ref2 + ": sha256:",
		"layer " + ShortDigest(d1) + ": already present",
		"layer " + ShortDigest(d2) + ": downloaded",
		"installed app from " + ref2 + ": 2 layers",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestCorruptStoreBlobIsDroppedAndRefetched(t *testing.T) {
	reg := newTestRegistry(t)
	l := layerOf(t, tarOf(t, "a", strings.Repeat("abc", 1000)), "gzip")
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", l))
	e := newEnv(t)
	e.pull(t, ref)
	d, _ := l.Digest()
	st, _ := store.Open(e.root)
	b, err := os.ReadFile(st.BlobPath(d))
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff // same size, different bytes
	if err := os.WriteFile(st.BlobPath(d), b, 0o644); err != nil {
		t.Fatal(err)
	}

	// A second machine from the same image uses the store copy.
	_, err = Pull(context.Background(), func() Options { o := e.opts(ref); o.Name = "second"; return o }())
	if !errors.Is(err, store.ErrDigestMismatch) || !strings.Contains(err.Error(), "stored copy") {
		t.Fatalf("pull from a corrupt store: err = %v, want a stored-copy digest mismatch", err)
	}
	if _, ok := st.Has(d); ok {
		t.Error("corrupt blob still in the store")
	}
	reg.resetCounts()
	e.pull(t, ref, func(o *Options) { o.Name = "second" })
	if _, blobs := reg.counts(); blobs != 1 {
		t.Errorf("refetch made %d blob requests, want 1 (the dropped layer)", blobs)
	}
}

func TestGarbageCollectionWaitsForPulls(t *testing.T) {
	reg := newTestRegistry(t)
	slow := layerOf(t, tarOf(t, "slow", "s"), "gzip")
	ref := reg.push(t, "app:1", imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "fast", "f"), "gzip"), slow))
	slowDigest, _ := slow.Digest()
	e := newEnv(t)

	inFlight, release := make(chan struct{}), make(chan struct{})
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/blobs/"+slowDigest.String()) && r.Method == http.MethodGet {
			close(inFlight)
			<-release
		}
		return false
	})
	errc := make(chan error, 1)
	go func() {
		_, err := Pull(context.Background(), e.opts(ref))
		errc <- err
	}()
	<-inFlight
	// The first layer is in the store but no record names it yet: a
	// collection now would delete it under the running pull.
	st, err := store.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ran, err := st.TryCollectGarbage(); ran || err != nil {
		t.Errorf("garbage collection ran during a pull (err %v)", err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n, _, ran, err := st.TryCollectGarbage(); !ran || n != 0 || err != nil {
		t.Errorf("after the pull: ran %v, removed %d, err %v; want true, 0, nil", ran, n, err)
	}
}
