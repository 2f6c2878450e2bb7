package pull

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireTool finds a system tool: a missing one fails the test when
// BERTH_TEST_REQUIRE_TOOLS=1 (CI) and skips it otherwise.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not installed (apt-get install %s)", name, pkg)
	}
	t.Skipf("%s not installed", name)
	return ""
}

// TestPulledMachineRunsInNspawn pulls a busybox image that has no /usr and
// runs it with systemd-nspawn, which refuses trees without /usr.
func TestPulledMachineRunsInNspawn(t *testing.T) {
	nspawn := requireTool(t, "systemd-nspawn", "systemd-container")
	if os.Geteuid() != 0 {
		t.Skip("systemd-nspawn needs root")
	}
	// busybox-static's binary runs in an empty tree (no shared libraries).
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("busybox not installed (apt-get install busybox-static): %v", err)
		}
		t.Skipf("busybox not installed: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))})
	tw.Write(bb)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "busybox"})
	tw.Close()

	reg := newTestRegistry(t)
	ref := reg.push(t, "busybox:1", imageOf(t, "linux/amd64", layerOf(t, buf.Bytes(), "gzip")))
	e := newEnv(t)
	// A name of its own: nspawn keeps per-name state in /run even with --register=no.
	res := e.pull(t, ref, func(o *Options) { o.Name = fmt.Sprintf("berth-pull-test-%d", os.Getpid()) })
	root := filepath.Join(e.machines, res.Record.Name)

	cmd := exec.Command(nspawn, "--register=no", "--keep-unit", "--quiet", "-D", root, "/bin/sh", "-c", "echo pulled-ok; test -d /usr")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pulled-ok") {
		t.Fatalf("systemd-nspawn in the pulled tree: %v\n%s", err, out)
	}
}
