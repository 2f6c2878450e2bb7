package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// requireRunTools skips (or, with BERTH_TEST_REQUIRE_TOOLS=1, fails) a test
// that runs real machines without root, systemd-nspawn or busybox.
func requireRunTools(t *testing.T) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	var missing string
	switch {
	case os.Geteuid() != 0:
		missing = "root"
	case err != nil:
		missing = "busybox (apt-get install busybox-static)"
	default:
		if _, err := exec.LookPath("systemd-nspawn"); err != nil {
			missing = "systemd-nspawn (apt-get install systemd-container)"
		}
	}
	if missing != "" {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (BERTH_TEST_REQUIRE_TOOLS=1)", missing)
		}
		t.Skipf("needs %s", missing)
	}
	return bb
}

// pushBusybox pushes a one-layer image holding a static busybox, with the
// given config, to the registry at host.
func pushBusybox(t *testing.T, busybox, host, repoTag string, conf v1.Config) string {
	t.Helper()
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "etc/", "tmp/"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755})
	}
	file := func(name string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))})
		tw.Write(data)
	}
	file("bin/busybox", 0o755, bin)
	for _, l := range []string{"sh", "id", "echo", "cat", "printf", "sleep", "pwd", "touch", "stat"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + l, Linkname: "busybox"})
	}
	file("etc/os-release", 0o644, []byte("ID=busybox\n"))
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n"))
	file("etc/group", 0o644, []byte("root:x:0:\napp:x:1002:\n"))
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
	cfg.Config = conf
	img, _ = mutate.ConfigFile(img, cfg)
	ref := host + "/" + repoTag
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// buildInit compiles cmd/berth-init as the static binary machines run.
func buildInit(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "berth-init")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/berth-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-init: %v\n%s", err, b)
	}
	return out
}

// TestRunForeground pulls a busybox image from an in-process registry and
// runs it with the real systemd-nspawn, here where PID 1 is not systemd.
func TestRunForeground(t *testing.T) {
	bb := requireRunTools(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushBusybox(t, bb, host, "test/bb:1", v1.Config{
		Env:        []string{"PATH=/bin", "IMG=from image"},
		Cmd:        []string{"sh", "-c", "echo default"},
		WorkingDir: "/work dir",
	})
	d := t.TempDir()
	dirs := map[string]string{
		"BERTH_ROOT":         filepath.Join(d, "root"),
		"BERTH_MACHINES_DIR": filepath.Join(d, "machines"),
		"BERTH_INIT":         buildInit(t),
	}
	if out, errOut, code := runBerth(t, dirs, "pull", "-q", "--platform", "linux/amd64", "--name", "bb", ref); code != 0 {
		t.Fatalf("pull: %d %s %s", code, out, errOut)
	}
	// A host directory with a name that needs escaping in Bind=.
	shared := filepath.Join(d, `sha red\ %i`)
	if err := os.MkdirAll(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "in"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirs["GREET"] = "hi from berth's env"

	for _, tt := range []struct {
		name   string
		args   []string
		stdout string
		code   int
	}{
		{"image cmd", []string{"-it", "bb"}, "default\n", 0},
		{"exit code and streams", []string{"bb", "sh", "-c", "echo out; echo err >&2; exit 3"}, "out\n", 3},
		{"numeric user not in passwd", []string{"--user", "1000:1000", "bb", "sh", "-c", `echo $(id -u) $(id -g) $HOME`}, "1000 1000 /\n", 0},
		{"named user", []string{"--user", "app", "bb", "sh", "-c", `echo $(id -u) $(id -g) $HOME $USER`}, "1001 1002 /home/app app\n", 0},
		{"env and workdir", []string{"-e", `A=x  y $z "q" \`, "-w", "/w %i", "bb", "sh", "-c", `printf '%s|%s|%s' "$A" "$IMG" "$(pwd)"`}, `x  y $z "q" \|from image|/w %i`, 0},
		{"image workdir", []string{"bb", "pwd"}, "/work dir\n", 0},
		{"killed by signal", []string{"bb", "sh", "-c", "kill -KILL $$"}, "", 137},
		{"env from berth", []string{"-e", "GREET", "-e", "UNSET_BERTH_TEST_VAR", "bb", "sh", "-c", `echo "$GREET|${UNSET_BERTH_TEST_VAR-unset}"`}, "hi from berth's env|unset\n", 0},
		{"bind read-only", []string{"-v", shared + ":/mnt/x:ro", "bb", "sh", "-c", "cat /mnt/x/in; echo; touch /mnt/x/new 2>/dev/null || echo read-only"}, "from host\nread-only\n", 0},
		{"bind not idmapped", []string{"-v", shared + ":/mnt/x:rw,noidmap", "bb", "sh", "-c", "stat -c %u /mnt/x/in"}, "65534\n", 0},
		// A .nspawn file cannot hold these newlines; berth-init gets
		// them as JSON.
		{"newlines", []string{"-e", "A=a\nb", "bb", "sh", "-c", "printf '%s|' \"$A\"\nprintf end"}, "a\nb|end", 0},
		{"bind idmapped", []string{"-v", shared + ":/mnt/y", "bb", "sh", "-c", "echo made > /mnt/y/out && stat -c %u /mnt/y/out"}, "0\n", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"run", "--rm", "--network=none"}, tt.args...)
			out, errOut, code := runBerth(t, dirs, args...)
			if out != tt.stdout || code != tt.code {
				t.Errorf("berth %q: stdout %q code %d, want %q %d\nstderr: %s", args, out, code, tt.stdout, tt.code, errOut)
			}
			if tt.name == "exit code and streams" && !strings.Contains(errOut, "err\n") {
				t.Errorf("stderr %q lacks the command's", errOut)
			}
		})
	}

	// Root in the machine wrote through an idmapped bind: on the host the
	// file belongs to root too, not to the machine's UID range.
	if fi, err := os.Stat(filepath.Join(shared, "out")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("file written through the idmapped bind: %v %+v", err, fi)
	}

	// Without --rm the image's tree keeps what the command wrote; with
	// --rm it does not.
	persist := filepath.Join(dirs["BERTH_MACHINES_DIR"], "bb", "persist")
	if _, errOut, code := runBerth(t, dirs, "run", "--rm", "--network=none", "bb", "sh", "-c", "echo x > /persist"); code != 0 {
		t.Fatalf("run --rm: %d %s", code, errOut)
	}
	if _, err := os.Stat(persist); err == nil {
		t.Error("run --rm changed the image's root filesystem")
	}
	if _, errOut, code := runBerth(t, dirs, "run", "--network=none", "bb", "sh", "-c", "echo x > /persist"); code != 0 {
		t.Fatalf("run: %d %s", code, errOut)
	}
	if b, err := os.ReadFile(persist); err != nil || string(b) != "x\n" {
		t.Errorf("run without --rm did not keep /persist: %q %v", b, err)
	}

	// Errors are berth's, on stderr, with a non-zero code.
	if out, errOut, code := runBerth(t, dirs, "run", "--rm", "nosuch"); code == 0 || out != "" || !strings.Contains(errOut, "nosuch") {
		t.Errorf("unknown image: code %d stdout %q stderr %q", code, out, errOut)
	}
}

// readyWriter collects output and closes ready when it first sees "ready".
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "ready\n") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

// TestRunStopSignal interrupts berth run (as ^C or SIGTERM to berth does):
// nspawn gets SIGTERM, sends the image's stop signal to berth-init, which
// forwards it to the command; the command's exit code comes back.
func TestRunStopSignal(t *testing.T) {
	dirs := pulledSigImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &readyWriter{ready: make(chan struct{})}
	var errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Main(ctx, Env{
			Args:   []string{"run", "--rm", "--network=none", "sig", "sh", "-c", sigScript},
			Stdin:  strings.NewReader(""),
			Stdout: out,
			Stderr: &errb,
			Getenv: func(k string) string { return dirs[k] },
		})
	}()
	select {
	case <-out.ready:
	case code := <-done:
		t.Fatalf("run ended early with %d: %s", code, errb.String())
	}
	cancel()
	code := <-done
	out.mu.Lock()
	got := out.buf.String()
	out.mu.Unlock()
	if code != 5 || got != "ready\ngot-usr1\n" {
		t.Errorf("code %d stdout %q, want 5 %q\nstderr: %s", code, got, "ready\ngot-usr1\n", errb.String())
	}
}

// sigScript announces itself and exits 5 on SIGUSR1, the image's stop signal.
const sigScript = `trap 'echo got-usr1; exit 5' USR1; echo ready; while :; do sleep 0.1; done`

// TestRunInterruptFromTerminal sends SIGINT to berth's whole process
// group, as ^C on a terminal does: the machine must still be stopped in
// order (one stop signal), not killed.
func TestRunInterruptFromTerminal(t *testing.T) {
	dirs := pulledSigImage(t)
	bin := filepath.Join(t.TempDir(), "berth")
	if b, err := exec.Command("go", "build", "-o", bin, "../../cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, b)
	}
	cmd := exec.Command(bin, "run", "--rm", "--network=none", "sig", "sh", "-c", sigScript)
	for k, v := range dirs {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &readyWriter{ready: make(chan struct{})}
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-out.ready:
	case err := <-waited:
		t.Fatalf("run ended early: %v: %s", err, errb.String())
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := <-waited
	out.mu.Lock()
	got := out.buf.String()
	out.mu.Unlock()
	if cmd.ProcessState.ExitCode() != 5 || got != "ready\ngot-usr1\n" {
		t.Errorf("%v, stdout %q, want exit 5 %q\nstderr: %s", err, got, "ready\ngot-usr1\n", errb.String())
	}
}

// pulledSigImage pulls an image whose stop signal is SIGUSR1.
func pulledSigImage(t *testing.T) map[string]string {
	t.Helper()
	bb := requireRunTools(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushBusybox(t, bb, host, "test/sig:1", v1.Config{Env: []string{"PATH=/bin"}, StopSignal: "SIGUSR1"})
	d := t.TempDir()
	dirs := map[string]string{
		"BERTH_ROOT":         filepath.Join(d, "root"),
		"BERTH_MACHINES_DIR": filepath.Join(d, "machines"),
		"BERTH_INIT":         buildInit(t),
	}
	if out, errOut, code := runBerth(t, dirs, "pull", "-q", "--platform", "linux/amd64", "--name", "sig", ref); code != 0 {
		t.Fatalf("pull: %d %s %s", code, out, errOut)
	}
	return dirs
}
