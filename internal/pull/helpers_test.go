package pull

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/store"
)

// tarOf builds an uncompressed tar of regular files (path -> content).
// Parent directories are created implicitly by the applier.
func tarOf(t testing.TB, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		p, body := files[i], files[i+1]
		if strings.HasSuffix(p, "/") {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// layerOf makes a layer from an uncompressed tar with compression c
// ("gzip", "zstd" or "none").
func layerOf(t testing.TB, tarball_ []byte, c string) v1.Layer {
	t.Helper()
	if c == "none" {
		return static.NewLayer(tarball_, types.OCIUncompressedLayer)
	}
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarball_)), nil }
	opts := []tarball.LayerOption{}
	if c == "zstd" {
		opts = append(opts, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	}
	l, err := tarball.LayerFromOpener(opener, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf builds an image for platform (os/arch[/variant]) from layers.
func imageOf(t testing.TB, platform string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	p, err := ParsePlatform(platform)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.MediaType(img, types.OCIManifestSchema1)
}

// testRegistry is ggcr's in-memory registry behind a handler that counts
// requests and lets a test intercept them.
type testRegistry struct {
	srv   *httptest.Server
	host  string       // 127.0.0.1:PORT
	inner http.Handler // the registry itself, for intercepts that pass through

	mu        sync.Mutex
	manifests int // GET/HEAD /v2/.../manifests/...
	blobs     int // GET /v2/.../blobs/...
	// intercept, if set, may serve a request itself (returning true).
	intercept func(w http.ResponseWriter, r *http.Request) bool
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(discardLogger()))
	tr.inner = reg
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			tr.manifests++
		case strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet:
			tr.blobs++
		}
		ic := tr.intercept
		tr.mu.Unlock()
		if ic != nil && ic(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) counts() (manifests, blobs int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.manifests, tr.blobs
}

func (tr *testRegistry) resetCounts() {
	tr.mu.Lock()
	tr.manifests, tr.blobs = 0, 0
	tr.mu.Unlock()
}

func (tr *testRegistry) setIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.intercept = f
	tr.mu.Unlock()
}

// push writes img to repo:tag on the registry and returns the reference.
func (tr *testRegistry) push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref := tr.host + "/" + repoTag
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func (tr *testRegistry) pushIndex(t *testing.T, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref := tr.host + "/" + repoTag
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	return ref
}

// env is a pull environment: store and machines directory in a temp dir.
type env struct {
	root, machines string
}

func newEnv(t *testing.T) env {
	d := t.TempDir()
	return env{root: filepath.Join(d, "berth"), machines: filepath.Join(d, "machines")}
}

func (e env) opts(ref string) Options {
	return Options{
		Ref:         ref,
		Root:        e.root,
		MachinesDir: e.machines,
		Keychain:    authn.NewMultiKeychain(), // anonymous; never the real ~/.docker
		Running:     func(string) bool { return false },
	}
}

func (e env) pull(t *testing.T, ref string, mod ...func(*Options)) *Result {
	t.Helper()
	o := e.opts(ref)
	for _, m := range mod {
		m(&o)
	}
	res, err := Pull(context.Background(), o)
	if err != nil {
		t.Fatalf("Pull(%s): %v", ref, err)
	}
	return res
}

// visible lists the machines directory entries machinectl would see, and
// staging lists the hidden berth temporary ones.
func (e env) listing(t *testing.T) (visible, staging []string) {
	t.Helper()
	ents, err := os.ReadDir(e.machines)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range ents {
		switch {
		case strings.HasPrefix(de.Name(), store.StagingPrefix):
			staging = append(staging, de.Name())
		case !strings.HasPrefix(de.Name(), ".") && de.IsDir():
			visible = append(visible, de.Name())
		}
	}
	return visible, staging
}

// assertNothingInstalled checks a failed pull left no trace a user could see.
func (e env) assertNothingInstalled(t *testing.T, name string) {
	t.Helper()
	visible, staging := e.listing(t)
	if len(visible) != 0 || len(staging) != 0 {
		t.Errorf("machines dir after failed pull: visible %v, staging %v; want both empty", visible, staging)
	}
	st, err := store.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(name); err == nil {
		t.Errorf("record for %s exists after failed pull", name)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
