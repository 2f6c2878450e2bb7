package pull

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestPullFromOCILayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "My_Image")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "v2"} {
		img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "tag", tag), "zstd"))
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	res := e.pull(t, "oci:"+dir+":v2")
	if res.Record.Name != "my-image" || res.Record.Reference != "oci:"+dir+":v2" {
		t.Errorf("record name %q reference %q", res.Record.Name, res.Record.Reference)
	}
	if got := readFile(t, filepath.Join(e.machines, "my-image", "tag")); got != "v2" {
		t.Errorf("tag file = %q, want v2", got)
	}
	if res := e.pull(t, "oci:"+dir+":v2"); !res.UpToDate {
		t.Error("re-pull from layout not up to date")
	}
	if _, err := Pull(context.Background(), e.opts("oci:"+dir)); err == nil || !strings.Contains(err.Error(), "2 images") {
		t.Errorf("untagged pull from a two-image layout: err = %v", err)
	}
	if _, err := Pull(context.Background(), e.opts("oci:"+dir+":v3")); err == nil || !strings.Contains(err.Error(), `"v3"`) {
		t.Errorf("missing tag: err = %v", err)
	}

	// A tampered layout blob is caught by the store's digest check.
	res = e.pull(t, "oci:"+dir+":v1", func(o *Options) { o.Name = "good" })
	blob := filepath.Join(dir, "blobs", "sha256", res.Record.Layers[0].Digest.Hex)
	b, _ := os.ReadFile(blob)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t)
	if _, err := Pull(context.Background(), e2.opts("oci:"+dir+":v1")); err == nil {
		t.Error("tampered layout blob was accepted")
	}
	e2.assertNothingInstalled(t, "my-image")
}

// dialTo sends every connection to addr, whatever host the URL names, so
// tests can use registry host names that do not resolve.
func dialTo(addr string) http.RoundTripper {
	tr := remote.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	return tr
}

func TestInsecurePolicy(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "a", "1"), "gzip"))
	reg.push(t, "app:1", img)
	_, port, _ := net.SplitHostPort(reg.host)

	for _, tc := range []struct {
		host     string
		insecure bool
		ok       bool
	}{
		{"10.1.2.3:" + port, false, false}, // ggcr would allow http to RFC 1918; berth does not
		{"10.1.2.3:" + port, true, true},
		{"192.168.7.7:" + port, false, false},
		{"registry.test:" + port, false, false},
		{"registry.test:" + port, true, true},
		{"localhost:" + port, false, true},
		{"127.0.0.1:" + port, false, true},
	} {
		t.Run(fmt.Sprintf("%s,insecure=%v", tc.host, tc.insecure), func(t *testing.T) {
			e := newEnv(t)
			o := e.opts(tc.host + "/app:1")
			o.Insecure = tc.insecure
			o.Transport = dialTo(reg.host)
			_, err := Pull(context.Background(), o)
			if tc.ok && err != nil {
				t.Fatalf("pull: %v", err)
			}
			if !tc.ok {
				if err == nil {
					t.Fatal("plain HTTP pull succeeded without --insecure")
				}
				if strings.HasPrefix(tc.host, "1") && !errors.Is(err, ErrInsecure) {
					t.Errorf("err = %v, want ErrInsecure", err)
				}
				e.assertNothingInstalled(t, "app")
			}
		})
	}
}

func TestPullWithBasicAuth(t *testing.T) {
	reg := newTestRegistry(t)
	img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "secret", "s3"), "gzip"))
	ref := reg.push(t, "private/app:1", img)
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "s3cret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})

	e := newEnv(t)
	_, err := Pull(context.Background(), e.opts(ref))
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("anonymous pull: err = %v, want 401", err)
	}

	cfgDir := t.TempDir()
	cfg := map[string]any{"auths": map[string]any{
		reg.host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))},
	}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfgDir)
	res := e.pull(t, ref, func(o *Options) { o.Keychain = authn.DefaultKeychain })
	if got := readFile(t, filepath.Join(e.machines, "app", "secret")); got != "s3" || res.UpToDate {
		t.Errorf("secret = %q", got)
	}
}

// TestDockerRegistryIntegration pulls from Debian's docker-registry
// (distribution) binary, started on a random loopback port.
func TestDockerRegistryIntegration(t *testing.T) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("docker-registry not installed (apt-get install docker-registry)")
		}
		t.Skip("docker-registry not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	config := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// Wait for the registry to accept connections: the test cannot know
	// when the process has bound its port other than by asking.
	ready := false
	for range 200 {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			ready = true
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !ready {
		log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
		t.Fatalf("docker-registry did not start on %s:\n%s", addr, log)
	}

	var idx v1.ImageIndex = empty.Index
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		img := imageOf(t, p,
			layerOf(t, tarOf(t, "etc/", "", "etc/platform", p), "gzip"),
			layerOf(t, tarOf(t, "z", "zstd layer"), "zstd"))
		pl, _ := ParsePlatform(p)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	ref, _ := name.ParseReference(addr + "/library/multi:1")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	res := e.pull(t, ref.String(), func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"} })
	if got := readFile(t, filepath.Join(e.machines, "multi", "etc/platform")); got != "linux/arm64" {
		t.Errorf("platform file = %q", got)
	}
	if got := readFile(t, filepath.Join(e.machines, "multi", "z")); got != "zstd layer" {
		t.Errorf("z = %q", got)
	}
	if res.Downloaded != 4 {
		t.Errorf("downloaded %d blobs, want 4", res.Downloaded)
	}
	if res := e.pull(t, ref.String(), func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"} }); !res.UpToDate {
		t.Error("re-pull not up to date")
	}
}

func TestPullFromUntaggedMultiPlatformLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "multi")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, plat := range []string{"linux/amd64", "linux/arm64"} {
		pl, _ := ParsePlatform(plat)
		if err := p.AppendImage(imageOf(t, plat, layerOf(t, tarOf(t, "p", plat), "gzip")), layout.WithPlatform(pl)); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	e.pull(t, "oci:"+dir, func(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "arm64"} })
	if got := readFile(t, filepath.Join(e.machines, "multi", "p")); got != "linux/arm64" {
		t.Errorf("p = %q, want linux/arm64", got)
	}
}

// TestPullLayoutTag: a ref name with ':' and '/' (reverse-DNS name and
// version), which oci:PATH:TAG cannot carry, is selected by LayoutTag.
func TestPullLayoutTag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "apps")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"org.example/app:1.0", "org.example/app:1.1"} {
		img := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "tag", tag), "zstd"))
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t)
	res := e.pull(t, "oci:"+dir, func(o *Options) { o.LayoutTag = "org.example/app:1.1"; o.Name = "app" })
	if got := readFile(t, filepath.Join(e.machines, "app", "tag")); got != "org.example/app:1.1" {
		t.Errorf("tag file = %q", got)
	}
	if res.Record.Reference != "oci:"+dir+":org.example/app:1.1" {
		t.Errorf("reference %q", res.Record.Reference)
	}
	o := e.opts("oci:" + dir + ":x")
	o.LayoutTag = "y"
	if _, err := Pull(context.Background(), o); err == nil {
		t.Error("a layout tag beside a tag in the reference was accepted")
	}
}
