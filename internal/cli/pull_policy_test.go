package cli

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-sh/berth/internal/pull"
)

// TestPullPolicies runs berth pull as the generator's units do, against an
// in-memory registry that moves a tag and then goes away.
func TestPullPolicies(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushTestImage(t, host, "apps/web:1", "app", "v1")
	d := t.TempDir()
	dirs := map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines")}
	app := func(machine string) string {
		b, _ := os.ReadFile(filepath.Join(dirs["BERTH_MACHINES_DIR"], machine, "app"))
		return string(b)
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		_, errOut, code := runBerth(t, dirs, append([]string{"pull", "--platform", "linux/amd64"}, args...)...)
		return errOut, code
	}

	if errOut, code := run("--policy", "never", "--name", "web", ref); code == 0 || !strings.Contains(errOut, "pull policy is never") {
		t.Errorf("never, not installed: code %d %q", code, errOut)
	}
	if errOut, code := run("--policy", "missing", "--name", "web", ref); code != 0 || app("web") != "v1" {
		t.Fatalf("missing, not installed: code %d %q", code, errOut)
	}
	if errOut, code := run("--policy", "bogus", "--name", "web", ref); code == 0 || !strings.Contains(errOut, `"bogus"`) {
		t.Errorf("bad policy: code %d %q", code, errOut)
	}
	// A .image unit's machine: pulled once, copied by the containers.
	if errOut, code := run("--name", "web-image", ref); code != 0 {
		t.Fatalf("pull web-image: %d %q", code, errOut)
	}

	pushTestImage(t, host, "apps/web:1", "app", "v2") // the tag moves
	if errOut, code := run("--policy", "missing", "--name", "web", ref); code != 0 || app("web") != "v1" || !strings.Contains(errOut, "pull policy missing") {
		t.Errorf("missing, installed: code %d %q, app %q", code, errOut, app("web"))
	}
	if errOut, code := run("--policy", "never", "--name", "web", ref); code != 0 || app("web") != "v1" {
		t.Errorf("never, installed: code %d %q", code, errOut)
	}
	if errOut, code := run("--policy", "newer", "--name", "web", ref); code != 0 || app("web") != "v2" {
		t.Errorf("newer: code %d %q, app %q", code, errOut, app("web"))
	}

	// Copies from the image machine need no registry.
	srv.Close()
	if errOut, code := run("--policy", "missing", "--from", "web-image", "--name", "c1", ref); code != 0 || app("c1") != "v1" {
		t.Errorf("--from, missing: code %d %q, app %q", code, errOut, app("c1"))
	}
	if errOut, code := run("--policy", "missing", "--from", "nothing", "--name", "c2", ref); code == 0 || !strings.Contains(errOut, "machine nothing") {
		t.Errorf("--from a machine without the image: code %d %q", code, errOut)
	}
	if errOut, code := run("--policy", "newer", "--name", "web", ref); code != 0 || !strings.Contains(errOut, "keeping the installed image") {
		t.Errorf("newer, registry gone: code %d %q", code, errOut)
	}
	if _, code := run("--policy", "always", "--name", "web", ref); code == 0 {
		t.Error("always, registry gone: succeeded")
	}
	errOut, code := run("--policy", "always", "--retry", "2", "--retry-delay", "1ms", "--name", "web", ref)
	if code == 0 || strings.Count(errOut, "trying again") != 2 {
		t.Errorf("retries: code %d\n%s", code, errOut)
	}
}

// TestPullRetryBackoff: without --retry-delay the pause starts at 2 s and
// doubles; a pull that cannot succeed by trying again is not retried.
func TestPullRetryBackoff(t *testing.T) {
	var slept []time.Duration
	tries := 0
	s := imageSource{
		policy: policyAlways, retry: 3,
		pull: func(context.Context, pull.Options) (*pull.Result, error) {
			tries++
			return nil, errors.New("connection refused")
		},
		sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil },
	}
	s.imgs.Root, s.imgs.MachinesDir = t.TempDir(), t.TempDir()
	if err := s.ensure(context.Background(), pull.Options{Ref: "example.org/a:1", Name: "a"}); err == nil {
		t.Fatal("no error")
	}
	if tries != 4 || len(slept) != 3 || slept[0] != 2*time.Second || slept[2] != 8*time.Second {
		t.Errorf("tries %d, pauses %v", tries, slept)
	}
	tries = 0
	s.pull = func(context.Context, pull.Options) (*pull.Result, error) {
		tries++
		return nil, pull.ErrNotBerthMachine
	}
	if err := s.ensure(context.Background(), pull.Options{Ref: "example.org/a:1", Name: "a"}); !errors.Is(err, pull.ErrNotBerthMachine) || tries != 1 {
		t.Errorf("not retryable: %v after %d tries", err, tries)
	}
}
