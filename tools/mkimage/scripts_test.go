package main

import (
	"archive/tar"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// These tests drive scripts/registry.sh and scripts/images.sh against the
// real docker-registry, so the scripts the demo and the benchmark rely on
// stay working.

// needTool skips when a system tool is missing, or fails when the CI says
// every tool must be there (BERTH_TEST_REQUIRE_TOOLS=1).
func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is required (BERTH_TEST_REQUIRE_TOOLS=1) but missing: %v", tool, err)
			}
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func script(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(t), "scripts", name)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

func startRealRegistry(t *testing.T) (dir, addr string) {
	t.Helper()
	needTool(t, "docker-registry", "curl", "ss")
	dir = t.TempDir()
	addr = script(t, nil, "registry.sh", "start", dir)
	t.Cleanup(func() { script(t, nil, "registry.sh", "stop", dir) })
	return dir, addr
}

func TestRegistryScript(t *testing.T) {
	dir, addr := startRealRegistry(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("registry address %q is not on loopback", addr)
	}
	// Starting again reuses the running registry instead of a second one.
	if again := script(t, nil, "registry.sh", "start", dir); again != addr {
		t.Errorf("second start gave %s, first %s", again, addr)
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "registry.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("registry.pid holds %q: %v", pidText, err)
	}

	digest := mustMkimage(t, "image", "--layer", "dir:"+sampleTree(t), "--push", addr+"/sample:1")
	img := pull(t, addr+"/sample:1")
	got, err := img.Digest()
	if err != nil || got.String() != digest {
		t.Errorf("registry serves %v (%v), pushed %s", got, err, digest)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if l := listing(t, layers[0]); !strings.Contains(l, "etc/hostname") {
		t.Errorf("layer from the registry lacks etc/hostname:\n%s", l)
	}
	// The benchmark counts blob downloads in the access log.
	logText, err := os.ReadFile(filepath.Join(dir, "registry.log"))
	if err != nil || !strings.Contains(string(logText), `"GET /v2/sample/blobs/`) {
		t.Errorf("access log lacks the blob GETs (%v):\n%s", err, logText)
	}

	script(t, nil, "registry.sh", "stop", dir)
	// Gone, or a zombie its new parent has not reaped yet: either way it
	// no longer serves.
	if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) > 0 && f[0] != "Z" {
			t.Errorf("registry PID %d still runs after stop (state %s)", pid, f[0])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "registry.pid")); !os.IsNotExist(err) {
		t.Errorf("registry.pid left behind: %v", err)
	}
}

func TestImagesScriptBusybox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("images.sh needs root")
	}
	needTool(t, "busybox", "go")
	_, addr := startRealRegistry(t)
	env := []string{"BERTH_CACHE=" + t.TempDir()}
	out := script(t, env, "images.sh", addr, "busybox")
	name, digest, ok := strings.Cut(out, " ")
	if !ok || name != "busybox" || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("images.sh printed %q, want \"busybox sha256:...\"", out)
	}
	img := pull(t, addr+"/busybox:latest")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cf.Config.Cmd, " ") != "sh" {
		t.Errorf("cmd %q, want [sh]", cf.Config.Cmd)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v: %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	seen := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen[h.Name] = h
		if h.Name == "etc/passwd" {
			body, _ := io.ReadAll(tr)
			if !strings.Contains(string(body), "user:x:1000:1000:") {
				t.Errorf("etc/passwd has no user 1000:\n%s", body)
			}
		}
	}
	if h := seen["bin/busybox"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
		t.Errorf("bin/busybox missing or not an executable file: %+v", h)
	}
	if h := seen["bin/sh"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/sh is not a symlink to busybox: %+v", h)
	}
	if h := seen["home/user/"]; h == nil || h.Uid != 1000 {
		t.Errorf("home/user/ missing or not owned by 1000: %+v", h)
	}

	// Rebuilding from the cached tree pushes the identical image.
	if again := script(t, env, "images.sh", addr, "busybox"); again != out {
		t.Errorf("rebuild printed %q, first build %q", again, out)
	}
}
