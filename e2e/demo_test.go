package e2e

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// TestDemo is the README's main job, scripts/demo.sh, run inside a booted
// systemd test host: demo.sh runs it so where PID 1 is not systemd
// (BERTH_DEMO=1 streams the demo's output to the terminal). In the suite
// it proves the demo works: the compose project comes up, its page is
// served through the published port, and down takes it away.
func TestDemo(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	reg.PushImage("busybox:latest", testhost.BusyboxImage(t))
	root, err := testhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	h.CopyIn(filepath.Join(root, "scripts", "demo.sh"), "/usr/local/bin/berth-demo")
	t.Logf("test host %s booted, berth installed, busybox pushed to its registry %s: %v", h.Name(), reg.Addr, since(begin))

	var out bytes.Buffer
	var w io.Writer = &out
	if os.Getenv("BERTH_DEMO") == "1" {
		w = io.MultiWriter(&out, os.Stdout)
	}
	cmd := h.Command(t.Context(), "bash", "/usr/local/bin/berth-demo", "--here", "--registry", reg.Addr)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo.sh --here: %v\n%s\n%s", err, out.String(), h.JournalTail(40))
	}
	for _, want := range []string{"$ berth compose up -d", "hello from app, page written at", "$ berth compose down", "==> done"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out.String())
		}
	}
	if left := h.MustSh("machinectl list --no-legend | wc -l"); strings.TrimSpace(left) != "0" {
		t.Errorf("machines left after the demo: %s", left)
	}
	t.Logf("demo done in %v; powering the test host off", since(begin))
}
