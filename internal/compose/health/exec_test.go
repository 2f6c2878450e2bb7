package health

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMachineProber runs checks inside a real busybox machine (nspawn,
// no systemd inside): the check sees the machine's files and environment
// and its exit code comes back.
func TestMachineProber(t *testing.T) {
	for _, tool := range []string{"systemd-nspawn", "nsenter", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is required: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "marker-only-in-machine"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ready := filepath.Join(root, "ready")
	// /tmp in the machine is a tmpfs, so the ready file goes to /.
	nspawn := exec.Command("systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--private-network",
		"-D", root, "--setenv=HC_VAR=in machine", "/bin/busybox", "sh", "-c",
		"/bin/busybox touch /ready; exec /bin/busybox sleep 600")
	if err := nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		nspawn.Process.Kill()
		nspawn.Wait()
	}()
	// Wait for the machine by watching for the file it creates, not by
	// timing; nspawn exiting early is a failure.
	done := make(chan error, 1)
	go func() { done <- nspawn.Wait() }()
	for {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("machine exited early: %v", err)
		default:
		}
		exec.Command("sleep", "0.05").Run()
	}
	leader := func(context.Context, string) (int, error) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(nspawn.Process.Pid) + "/task/" + strconv.Itoa(nspawn.Process.Pid) + "/children")
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.Fields(string(b))[0])
	}
	for _, tc := range []struct {
		argv []string
		code int
	}{
		{[]string{"/bin/busybox", "test", "-e", "/marker-only-in-machine"}, 0},
		{[]string{"/bin/busybox", "sh", "-c", `test "$HC_VAR" = "in machine"`}, 0},
		{[]string{"/bin/busybox", "sh", "-c", "exit 3"}, 3},
	} {
		p := MachineProber{Machine: "test", Argv: tc.argv, Leader: leader}
		code, out, err := p.Probe(context.Background())
		if err != nil {
			t.Fatalf("%v: %v (%s)", tc.argv, err, out)
		}
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (output %q)", tc.argv, code, tc.code, out)
		}
	}
}
