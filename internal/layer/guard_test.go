package layer

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The evil-layer tests and the fuzzer aim at real host paths (/etc via
// symlinks, "/" via ../.., /proc/self/cwd). If Apply ever regresses, running
// them as root would damage the machine running the tests. So, as root, the
// test binary re-executes itself in a private mount namespace where every
// mount is read-only except a tmpfs for TMPDIR (all sandboxes live there) and
// the few directories the test runner itself writes (package dir for fuzz
// crashers, fuzz cache, coverage output). A regression then fails a test with
// EROFS or a snapshot diff instead of overwriting /etc/shadow.
//
// guardEnv is "" in the first process, "setup" in the re-executed child until
// its mounts are in place, "ready" after (fuzz workers inherit it and skip setup).
const guardEnv = "BERTH_LAYER_TEST_GUARD"

var guarded bool

func TestMain(m *testing.M) {
	switch os.Getenv(guardEnv) {
	case "":
		if os.Geteuid() == 0 {
			os.Exit(reexecGuarded())
		}
	case "setup":
		if err := setupGuard(); err != nil {
			fmt.Fprintf(os.Stderr, "layer tests: set up read-only host guard: %v\n", err)
			os.Exit(2)
		}
		os.Setenv(guardEnv, "ready")
		guarded = true
	case "ready":
		guarded = true
	}
	os.Exit(m.Run())
}

func reexecGuarded() int {
	dir, err := os.MkdirTemp("", "berth-layer-guard-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "layer tests: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "layer tests: %v\n", err)
		return 2
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), guardEnv+"=setup", "TMPDIR="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "layer tests: re-exec in a private mount namespace: %v\n", err)
		return 2
	}
	return 0
}

// setupGuard runs in the re-executed child, alone in its mount namespace.
func setupGuard() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	tmp := os.Getenv("TMPDIR")
	keep := map[string]bool{tmp: true}
	var writable []string
	if d := os.Getenv("BERTH_LAYER_BENCH_DIR"); d != "" {
		writable = append(writable, d) // benchmarks on a real disk
	}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzz=") {
			if wd, err := os.Getwd(); err == nil {
				writable = append(writable, wd) // the fuzzer saves crashers to testdata/fuzz
			}
		}
		for _, flag := range []string{"-test.fuzzcachedir=", "-test.outputdir=", "-test.gocoverdir="} {
			if v, ok := strings.CutPrefix(a, flag); ok {
				writable = append(writable, v)
			}
		}
		// -test.testlogfile: go test's cache record, passed unless -count=1.
		for _, flag := range []string{"-test.coverprofile=", "-test.cpuprofile=", "-test.memprofile=", "-test.testlogfile="} {
			if v, ok := strings.CutPrefix(a, flag); ok && filepath.IsAbs(v) {
				writable = append(writable, filepath.Dir(v))
			}
		}
	}
	for _, w := range writable {
		if err := os.MkdirAll(w, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(w, w, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", w, err)
		}
		keep[w] = true
	}
	// After the binds: a bind of a parent of TMPDIR (say /tmp for a profile)
	// would otherwise hide this mount.
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", tmp, err)
	}
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	for _, mp := range mounts {
		if keep[mp] || mp == "/proc" || strings.HasPrefix(mp, "/proc/") || mp == "/sys" || strings.HasPrefix(mp, "/sys/") {
			continue
		}
		if err := unix.Mount("", mp, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			if mp == "/" {
				return fmt.Errorf("remount / read-only: %w", err)
			}
			fmt.Fprintf(os.Stderr, "layer tests: note: cannot remount %s read-only: %v\n", mp, err)
		}
	}
	return nil
}

func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, s.Err()
}

// unescapeMount decodes the \ooo escapes of /proc/self/mountinfo.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func TestHostGuard(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the guard is only needed (and possible) as root")
	}
	if !guarded {
		t.Fatal("running as root without the read-only host guard")
	}
	if err := unix.Access("/etc", unix.W_OK); err != unix.EROFS {
		t.Errorf("access(/etc, W_OK) = %v, want EROFS", err)
	}
	f, err := os.CreateTemp("", "guard")
	if err != nil {
		t.Fatalf("TMPDIR not writable: %v", err)
	}
	f.Close()
	os.Remove(f.Name())
}
