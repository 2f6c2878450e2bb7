package testhost

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const modulePath = "github.com/berth-sh/berth"

// RepoRoot returns the berth repository's root: the nearest directory
// above the working directory whose go.mod declares berth's module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && declaresModule(data, modulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repository root: no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

func declaresModule(gomod []byte, module string) bool {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "module" && strings.Trim(f[1], `"`) == module {
			return true
		}
	}
	return false
}

// goTool finds the go command: PATH first, then the toolchain that built
// this test binary.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// BuildGo builds the main packages matched by pkgs (import paths relative
// to the repository root, such as "./cmd/..." or "./tools/mkimage") as
// static binaries (CGO_ENABLED=0, so they run in any rootfs) into a fresh
// temporary directory, and returns that directory.
func BuildGo(t testing.TB, pkgs ...string) string {
	t.Helper()
	out := t.TempDir()
	begin := time.Now()
	if err := buildGo(out, pkgs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("testhost: built %s in %v", strings.Join(pkgs, " "), time.Since(begin).Round(time.Millisecond))
	return out
}

func buildGo(out string, pkgs ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	args := append([]string{"build", "-o", out + "/"}, pkgs...)
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, output)
	}
	return nil
}

// InstallBerth builds every command under cmd/ (berth and its helpers) and
// copies the binaries into the host's /usr/local/bin.
func (h *Host) InstallBerth() {
	h.t.Helper()
	h.InstallGo("./cmd/...")
}

// InstallGo builds the main packages pkgs (see BuildGo) and copies the
// binaries into the host's /usr/local/bin.
func (h *Host) InstallGo(pkgs ...string) {
	h.t.Helper()
	dir := h.buildOnce(pkgs...)
	entries, err := os.ReadDir(dir)
	if err != nil {
		h.t.Fatalf("testhost: list built binaries: %v", err)
	}
	if len(entries) == 0 {
		h.t.Fatalf("testhost: go build %s produced no binaries", strings.Join(pkgs, " "))
	}
	for _, e := range entries {
		h.CopyIn(filepath.Join(dir, e.Name()), "/usr/local/bin/"+e.Name())
	}
}

// A test binary builds each set of packages once, for all its hosts:
// scenarios install or run the same binaries on many hosts, and each build
// costs at least a link of berth. The binaries live in a directory named
// after the test binary's PID, which sweepStale removes once it has exited.
var builds sync.Map // package patterns joined by " " -> *buildResult

type buildResult struct {
	once sync.Once
	dir  string
	err  error
}

func buildDirRoot() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-testhost-bin-%d", os.Getpid()))
}

// buildOnce returns the directory of the binaries of pkgs, building them
// on first use.
func (h *Host) buildOnce(pkgs ...string) string {
	h.t.Helper()
	key := strings.Join(pkgs, " ")
	v, _ := builds.LoadOrStore(key, &buildResult{})
	b := v.(*buildResult)
	b.once.Do(func() {
		begin := time.Now()
		if b.err = os.MkdirAll(buildDirRoot(), 0o755); b.err != nil {
			return
		}
		if b.dir, b.err = os.MkdirTemp(buildDirRoot(), "build-"); b.err != nil {
			return
		}
		b.err = buildGo(b.dir, pkgs...)
		h.t.Logf("testhost: built %s in %v", key, time.Since(begin).Round(time.Millisecond))
	})
	if b.err != nil {
		h.t.Fatalf("testhost: build %s: %v", key, b.err)
	}
	return b.dir
}
