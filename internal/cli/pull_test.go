package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// runBerth runs the CLI in-process with a fresh store and machines dir.
func runBerth(t *testing.T, dirs map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{
		Args:   args,
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return dirs[k] },
	})
	return out.String(), errb.String(), code
}

func pushTestImage(t *testing.T, host, repoTag string, files ...string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: files[i], Mode: 0o644, Size: int64(len(files[i+1]))})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/app"}
	img, _ = mutate.ConfigFile(img, cfg)
	ref := host + "/" + repoTag
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestPullImagesInspectRmi(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushTestImage(t, host, "apps/web:1", "app", "v1")
	other := pushTestImage(t, host, "apps/db:1", "db", "x")
	d := t.TempDir()
	dirs := map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines")}

	out, errOut, code := runBerth(t, dirs, "pull", "--platform", "linux/amd64", ref)
	if code != 0 || out != "" {
		t.Fatalf("pull: code %d stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "installed web from "+ref) {
		t.Errorf("pull stderr lacks the summary: %q", errOut)
	}
	if _, errOut, code = runBerth(t, dirs, "pull", "-q", "--name", "db-1", other); code != 0 || errOut != "" {
		t.Fatalf("pull -q: code %d stderr %q", code, errOut)
	}
	if _, errOut, code = runBerth(t, dirs, "pull", "--name", "Bad_Name", ref); code == 0 || !strings.Contains(errOut, "invalid machine name") {
		t.Errorf("bad name: code %d stderr %q", code, errOut)
	}

	out, _, code = runBerth(t, dirs, "images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "db-1 ") || !strings.HasPrefix(lines[2], "web ") || !strings.Contains(lines[2], ref) {
		t.Errorf("images: code %d\n%s", code, out)
	}
	out, _, _ = runBerth(t, dirs, "images", "--format", "json")
	var recs []struct {
		Name, Reference string
		Digest          v1.Hash
	}
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs) != 2 || recs[1].Reference != ref {
		t.Errorf("images --format json: %v\n%s", err, out)
	}

	out, _, code = runBerth(t, dirs, "inspect", "web")
	var insp struct {
		Record struct{ Name string }
		Config v1.ConfigFile
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil || code != 0 || insp.Record.Name != "web" ||
		len(insp.Config.Config.Entrypoint) != 1 || insp.Config.Config.Entrypoint[0] != "/app" {
		t.Errorf("inspect: code %d err %v\n%s", code, err, out)
	}
	if _, errOut, code = runBerth(t, dirs, "inspect", "nope"); code == 0 || !strings.Contains(errOut, "no such machine") {
		t.Errorf("inspect missing: code %d %q", code, errOut)
	}

	if _, errOut, code = runBerth(t, dirs, "rmi", "web", "nope"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Errorf("rmi web nope: code %d %q, want an error naming nope", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dirs["BERTH_MACHINES_DIR"], "web")); !os.IsNotExist(err) {
		t.Errorf("web rootfs still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dirs["BERTH_MACHINES_DIR"], "web.oci-config")); !os.IsNotExist(err) {
		t.Errorf("web.oci-config still there: %v", err)
	}
	out, _, _ = runBerth(t, dirs, "images", "--format", "json")
	if strings.Contains(out, `"web"`) || !strings.Contains(out, `"db-1"`) {
		t.Errorf("images after rmi web:\n%s", out)
	}
	if _, _, code = runBerth(t, dirs, "rmi", "db-1"); code != 0 {
		t.Errorf("rmi db-1: code %d", code)
	}
	blobs, _ := os.ReadDir(filepath.Join(dirs["BERTH_ROOT"], "blobs", "sha256"))
	if len(blobs) != 0 {
		t.Errorf("blobs left after removing every machine: %d", len(blobs))
	}
	if out, _, _ = runBerth(t, dirs, "images", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("images --format json with none = %q, want []", out)
	}
}
