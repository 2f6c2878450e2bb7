package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/store"
)

func runCompose(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{
		Args:   args,
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(string) string { return "" },
	})
	return out.String(), errb.String(), code
}

const composeYAML = `name: clitest
services:
  app:
    image: example/app
    command: ["serve"]
    secrets: [token]
    ports: ["127.0.0.1:8080:80"]
secrets:
  token:
    file: ./token.txt
`

func writeProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(composeYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("TOP-SECRET-VALUE"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestComposeConfig(t *testing.T) {
	dir := writeProject(t)
	out, errOut, code := runCompose(t, "compose", "--project-directory", dir, "config", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var p struct {
		Name     string                     `json:"name"`
		Services map[string]json.RawMessage `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("config --format json is not JSON: %v\n%s", err, out)
	}
	if p.Name != "clitest" || p.Services["app"] == nil {
		t.Errorf("config: name %q services %v", p.Name, p.Services)
	}
	out, _, code = runCompose(t, "compose", "-f", filepath.Join(dir, "compose.yaml"), "-p", "other", "config", "--services")
	if code != 0 || out != "app\n" {
		t.Errorf("config --services: exit %d, %q", code, out)
	}
	yml, _, _ := runCompose(t, "compose", "-f", filepath.Join(dir, "compose.yaml"), "-p", "other", "config")
	if !strings.HasPrefix(yml, "name: other\n") {
		t.Errorf("-p does not set the project name:\n%s", yml)
	}
}

func TestComposeConvert(t *testing.T) {
	dir := writeProject(t)
	root := t.TempDir()
	listing, errOut, code := runCompose(t, "--root", "/srv/berth", "compose", "--project-directory", dir, "convert")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(listing, "TOP-SECRET-VALUE") {
		t.Errorf("the listing prints a secret")
	}
	for _, want := range []string{
		"==> /etc/systemd/system/berth-clitest-app-1.service (0644) <==",
		"==> /srv/berth/compose/clitest/secrets/ (directory 0700) <==",
		"ListenStream=127.0.0.1:8080",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
	js, _, code := runCompose(t, "--root", "/srv/berth", "compose", "--project-directory", dir, "convert", "--format", "json")
	var entries []struct{ Path, Kind, Content string }
	if err := json.Unmarshal([]byte(js), &entries); code != 0 || err != nil || len(entries) == 0 {
		t.Errorf("convert --format json: exit %d, %v", code, err)
	}
	if strings.Contains(js, "TOP-SECRET-VALUE") {
		t.Errorf("the JSON listing prints a secret")
	}
	again, _, _ := runCompose(t, "--root", "/srv/berth", "compose", "--project-directory", dir, "convert")
	if again != listing {
		t.Errorf("two conversions differ")
	}

	out := filepath.Join(root, "stage")
	stdout, errOut, code := runCompose(t, "--root", "/srv/berth", "compose", "--project-directory", dir, "convert", "-o", out)
	if code != 0 || stdout != "" {
		t.Fatalf("convert -o: exit %d, stdout %q, stderr %s", code, stdout, errOut)
	}
	unit, err := os.ReadFile(filepath.Join(out, "etc/systemd/system/berth-clitest-app-1.service"))
	if err != nil || !bytes.Contains(unit, []byte("--network-namespace-path=/run/netns/berth-clitest-app-1")) {
		t.Errorf("unit not written as listed: %v", err)
	}
	secretDir := filepath.Join(out, "srv/berth/compose/clitest/secrets")
	st, err := os.Stat(secretDir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("secret directory: %v %v, want mode 0700", err, st)
	}
	sec, err := os.ReadFile(filepath.Join(secretDir, "app.0.token"))
	if err != nil || string(sec) != "TOP-SECRET-VALUE" {
		t.Errorf("secret file: %q %v", sec, err)
	}
	for _, f := range []string{"etc/systemd/nspawn/clitest-app-1.nspawn", "etc/systemd/system/berth-clitest-app-1.service"} {
		b, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("TOP-SECRET-VALUE")) {
			t.Errorf("%s contains the secret", f)
		}
	}
}

func TestComposeConvertUnsupported(t *testing.T) {
	dir := t.TempDir()
	yml := "services:\n  web:\n    build: ./web\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCompose(t, "compose", "--project-directory", dir, "convert")
	if code == 0 || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	want := filepath.Join(dir, "compose.yaml") + ":3: error: services.web.build: build: is not supported yet (berth cannot build images); set image:"
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
}

// TestComposeConvertUsesPulledImages checks convert reads image configs
// from berth's store: the image's Cmd and HEALTHCHECK reach the units.
func TestComposeConvertUsesPulledImages(t *testing.T) {
	root := t.TempDir()
	s, err := store.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := v1.ConfigFile{Config: v1.Config{
		Cmd:         []string{"/usr/sbin/exampled", "--foreground"},
		Healthcheck: &v1.HealthConfig{Test: []string{"CMD", "/usr/bin/probe"}, Interval: 7 * time.Second},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutBlob(d, b); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRecord(&store.Record{Name: "pulled", Reference: "docker.io/example/daemon:1", Digest: d, Manifest: d, Config: d}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	yml := "name: img\nservices:\n  d:\n    image: example/daemon:1\n  user:\n    image: example/daemon:1\n    depends_on:\n      d:\n        condition: service_healthy\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCompose(t, "--root", root, "compose", "--project-directory", dir, "convert")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if strings.Contains(errOut, "not pulled") {
		t.Errorf("a pulled image was reported as not pulled: %s", errOut)
	}
	for _, want := range []string{
		// The command is the image's, read when the machine starts.
		`Parameters="/.berth/init" "--image-config" "/.berth/image.json"` + "\n",
		`"--interval" "7s"`,
		`"--" "/usr/bin/probe"`,
		"Wants=berth-img-d-1_health.service",
		`"_require-active" "--for" "user" "berth-img-d-1_health.service"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("listing lacks %s", want)
		}
	}
}

// TestComposeConvertWithoutPulledImages converts a project whose images
// berth has never pulled, as docker compose config does: the machines
// resolve their images at start; a warning names what is not known yet.
func TestComposeConvertWithoutPulledImages(t *testing.T) {
	dir := t.TempDir()
	yml := "name: fresh\nservices:\n  web:\n    image: example/web:1\n    command: [serve]\n"
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCompose(t, "--root", t.TempDir(), "compose", "--project-directory", dir, "convert")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := `image "example/web:1" is not pulled, so its VOLUMEs and HEALTHCHECK are not known`; !strings.Contains(errOut, want) {
		t.Errorf("stderr lacks %q:\n%s", want, errOut)
	}
	if want := `"--image-config" "/.berth/image.json" "--cmd" "serve"`; !strings.Contains(out, want) {
		t.Errorf("listing lacks %s", want)
	}
}
