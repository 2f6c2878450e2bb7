package testhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Suite is the Debian release every test host runs: the same as the
// machines berth targets.
const Suite = "bookworm"

// Options configure Boot. The zero value is a host with BasePackages.
type Options struct {
	// Packages are Debian packages installed on top of BasePackages. They
	// are part of the rootfs cache key: each distinct list is one cached
	// tree of about 300 MB.
	Packages []string
	// BootTimeout bounds each boot, from starting systemd-nspawn until
	// systemd inside reports a running (or degraded) system. Default 2m.
	BootTimeout time.Duration
	// CommandTimeout bounds each MustRun, MustSh and copy. Default 2m.
	CommandTimeout time.Duration
	// CacheDir holds cached rootfs trees. Default $BERTH_E2E_CACHE, else
	// .cache/testhost in the repository.
	CacheDir string
	// MachinesMount gives the host's /var/lib/machines a mount of its own: a
	// plain directory of the outer file system (ext4 here) bind-mounted
	// there, as on servers that keep machines on a separate disk. By
	// default /var/lib/machines is a directory of the host's root like on
	// a default Debian install, so renames and hard links between it and
	// /var/lib/berth work; the root is an overlayfs, though.
	MachinesMount bool
	// ArtifactDir receives the journal and console log of hosts whose test
	// failed. Default $BERTH_E2E_ARTIFACTS, else CacheDir/artifacts.
	ArtifactDir string
}

func (o *Options) fill() error {
	if o.BootTimeout <= 0 {
		o.BootTimeout = 2 * time.Minute
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 2 * time.Minute
	}
	if o.CacheDir == "" {
		o.CacheDir = os.Getenv("BERTH_E2E_CACHE")
	}
	if o.CacheDir == "" {
		root, err := RepoRoot()
		if err != nil {
			return err
		}
		o.CacheDir = filepath.Join(root, ".cache", "testhost")
	}
	if o.ArtifactDir == "" {
		o.ArtifactDir = os.Getenv("BERTH_E2E_ARTIFACTS")
	}
	if o.ArtifactDir == "" {
		o.ArtifactDir = filepath.Join(o.CacheDir, "artifacts")
	}
	return nil
}

// Host is a booted systemd test host, seen from one test: the helpers that
// fail the test (MustRun, CopyIn, ...) fail that one. Use For to hand the
// host to a subtest. Its methods are safe for concurrent use, except Reboot,
// which must not overlap other calls.
type Host struct {
	t testing.TB
	*state
}

// state is the host itself, shared by all views of it.
type state struct {
	opts Options
	name string
	// dir holds the host's overlay upper and work dirs, the mount point,
	// the console log, and with MachinesMount its /var/lib/machines.
	dir     string
	lower   string
	cg      *hostCgroup
	keep    bool
	console *os.File

	mu     sync.Mutex
	proc   *nspawnProc
	leader int
	boots  int
}

// For returns a view of the host whose failing helpers fail t, for use in
// subtests of the test that booted it.
func (h *Host) For(t testing.TB) *Host { return &Host{t: t, state: h.state} }

// nspawnProc is one run of systemd-nspawn: one boot of the host.
type nspawnProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
}

func (p *nspawnProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

var hostSeq atomic.Int64

// Enabled reports whether end-to-end tests were asked for (BERTH_E2E=1).
func Enabled() bool { return os.Getenv("BERTH_E2E") == "1" }

// RequireTools skips the test when a tool is missing, or fails it when
// BERTH_TEST_REQUIRE_TOOLS=1 (CI must not silently skip).
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found in PATH (apt-get install it, see scripts/deps.sh)", tool)
			if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// Boot starts a fresh test host for t and returns once systemd inside is
// up. It skips t unless BERTH_E2E=1. The host is powered off, and its
// processes, cgroups and files removed, when t ends.
func Boot(t testing.TB, opts Options) *Host {
	t.Helper()
	if !Enabled() {
		t.Skip("end-to-end test: set BERTH_E2E=1 or run scripts/e2e.sh")
	}
	if os.Geteuid() != 0 {
		t.Fatal("testhost: end-to-end tests need root (systemd-nspawn, mounts, cgroups)")
	}
	RequireTools(t, "debootstrap", "systemd-nspawn", "nsenter", "mount")
	if err := opts.fill(); err != nil {
		t.Fatal(err)
	}
	sweepStale(t)

	begin := time.Now()
	mirror := os.Getenv("BERTH_E2E_MIRROR")
	if mirror == "" {
		var ok bool
		if mirror, ok = mirrorFromSources(readAptSources("/etc/apt"), Suite); !ok {
			mirror = defaultMirror
		}
	}
	pkgs := append(append([]string{}, BasePackages...), opts.Packages...)
	lower, built, err := ensureRootfs(rootfsSpec{CacheDir: opts.CacheDir, Suite: Suite, Packages: pkgs, Mirror: mirror, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if built {
		t.Logf("testhost: cold rootfs (debootstrap + prepare) took %v", time.Since(begin).Round(time.Millisecond))
	}

	name := fmt.Sprintf("bt%d-%d", os.Getpid(), hostSeq.Add(1))
	dir, err := os.MkdirTemp("", "berth-testhost-"+name+"-")
	if err != nil {
		t.Fatalf("testhost: create host dir: %v", err)
	}
	h := &Host{t: t, state: &state{opts: opts, name: name, dir: dir, lower: lower, keep: os.Getenv("BERTH_E2E_KEEP") == "1"}}
	t.Cleanup(h.cleanup)
	if err := h.prepare(); err != nil {
		t.Fatal(err)
	}
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	return h
}

// Name is the host's machine name (also its hostname).
func (h *Host) Name() string { return h.name }

// Leader is the outer PID of the host's init (systemd), for nsenter.
func (h *Host) Leader() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leader
}

// overlay paths must not contain characters that the overlay option
// parser treats as separators.
var unsafeOverlayPath = regexp.MustCompile(`[,:\\\s]`)

func (h *Host) prepare() error {
	for _, p := range []string{h.lower, h.dir} {
		if unsafeOverlayPath.MatchString(p) {
			return fmt.Errorf("prepare test host: path %q contains a character overlayfs options cannot carry (, : \\ or space); set BERTH_E2E_CACHE or TMPDIR", p)
		}
	}
	for _, d := range []string{"upper/etc", "work", "mnt", "machines"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o755); err != nil {
			return fmt.Errorf("prepare test host: %w", err)
		}
	}
	// Its own machine ID, written into the overlay so the cache stays
	// shared; journald names the persistent journal after it.
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("prepare test host: machine id: %w", err)
	}
	if err := os.WriteFile(filepath.Join(h.dir, "upper/etc/machine-id"), []byte(hex.EncodeToString(id)+"\n"), 0o444); err != nil {
		return fmt.Errorf("prepare test host: %w", err)
	}
	cg, err := newHostCgroup(h.name)
	if err != nil {
		return err
	}
	h.cg = cg
	f, err := os.OpenFile(filepath.Join(h.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("prepare test host: console log: %w", err)
	}
	h.console = f
	return nil
}

// bootScript runs between fork and exec of systemd-nspawn, in a private
// mount namespace of its own: it moves itself into the host's cgroups and
// mounts the overlay there, so the mount can never leak to the outer
// machine and vanishes with the host's last process.
const bootScript = `set -eu
for cg in $BERTH_TESTHOST_CGROUPS; do echo $$ > "$cg/cgroup.procs"; done
unset BERTH_TESTHOST_CGROUPS
mount -t overlay berth-testhost -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"
shift 4
exec systemd-nspawn "$@"`

func (h *Host) nspawnArgs() []string {
	args := []string{
		"--boot",
		"--register=no", "--keep-unit",
		"--private-network",
		"--machine=" + h.name,
		"--directory=" + filepath.Join(h.dir, "mnt"),
		"--console=read-only",
		// The outer machine's journal must not learn about test hosts.
		"--link-journal=no",
		"--setenv=SYSTEMD_COLORS=0",
	}
	if h.opts.MachinesMount {
		args = append(args, "--bind="+filepath.Join(h.dir, "machines")+":/var/lib/machines")
	}
	return args
}

// start boots the host once and waits for systemd inside.
func (h *Host) start() error {
	begin := time.Now()
	deadline := begin.Add(h.opts.BootTimeout)
	h.mu.Lock()
	h.boots++
	boot := h.boots
	h.mu.Unlock()
	fmt.Fprintf(h.console, "=== berth testhost %s: boot %d at %s\n", h.name, boot, begin.UTC().Format(time.RFC3339))

	args := append([]string{"-c", bootScript, "sh",
		h.lower, filepath.Join(h.dir, "upper"), filepath.Join(h.dir, "work"), filepath.Join(h.dir, "mnt")},
		h.nspawnArgs()...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"BERTH_TESTHOST_CGROUPS=" + strings.Join(h.cg.Dirs, " "),
		// Give the host a pure cgroup2 tree, like a current Debian server,
		// even when the outer machine runs the hybrid layout.
		"SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1",
	}
	cmd.Stdout, cmd.Stderr = h.console, h.console
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes the new mount namespace recursively private before
		// exec, so the overlay mounted in it stays there.
		Unshareflags: syscall.CLONE_NEWNS,
		// Its own session: a Ctrl-C at the terminal reaches the test
		// binary, whose cleanup powers the host off in order.
		Setsid: true,
	}
	if !h.keep {
		// If the test binary dies without cleanup, nspawn gets SIGTERM
		// and powers the host off.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	}
	p := &nspawnProc{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal fires when the forking *thread* exits,
		// not the process: keep that thread alive (locked to this
		// goroutine) for as long as systemd-nspawn runs.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start test host %s: %w", h.name, err)
	}
	h.mu.Lock()
	h.proc, h.leader = p, 0
	h.mu.Unlock()
	_ = os.WriteFile(filepath.Join(h.dir, "nspawn.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)

	leader, err := h.waitLeader(p, deadline)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.leader = leader
	h.mu.Unlock()
	leaderAt := time.Now()
	if err := h.waitRunning(p, deadline); err != nil {
		return err
	}
	h.t.Logf("testhost %s: boot %d: init started after %v, system up after %v (enter: nsenter -t %d -a -r -w)",
		h.name, boot, leaderAt.Sub(begin).Round(time.Millisecond), time.Since(begin).Round(time.Millisecond), leader)
	return nil
}

// waitLeader waits for systemd-nspawn to start the host's init.
func (h *Host) waitLeader(p *nspawnProc, deadline time.Time) (int, error) {
	pid := p.cmd.Process.Pid
	for {
		leader, err := findContainerInit("/proc", pid)
		if err != nil {
			return 0, err
		}
		if leader != 0 {
			return leader, nil
		}
		select {
		case <-p.done:
			return 0, fmt.Errorf("boot test host %s: systemd-nspawn exited before starting init (%v); console:\n%s",
				h.name, p.err, tailFile(h.console.Name(), 40))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("boot test host %s: systemd-nspawn (pid %d) started no init within %v; console:\n%s",
				h.name, pid, h.opts.BootTimeout, tailFile(h.console.Name(), 40))
		}
	}
}

// waitRunning waits until systemd inside reports the boot finished.
func (h *Host) waitRunning(p *nspawnProc, deadline time.Time) error {
	var last Result
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		// --wait blocks until boot-up finished; before D-Bus and systemd's
		// private socket are up it fails at once, so retry.
		r, err := h.Run(ctx, "systemctl", "is-system-running", "--wait")
		cancel()
		state := strings.TrimSpace(r.Stdout)
		switch {
		case err == nil && state == "running":
			return nil
		case err == nil && state == "degraded":
			failed, _ := h.Run(context.Background(), "systemctl", "--failed", "--no-legend", "--plain")
			h.t.Logf("testhost %s: booted degraded; failed units:\n%s", h.name, failed.Stdout)
			return nil
		case err == nil:
			last = r
		default:
			last = Result{Stderr: err.Error()}
		}
		if p.exited() {
			return fmt.Errorf("boot test host %s: systemd-nspawn exited during boot (%v); console:\n%s",
				h.name, p.err, tailFile(h.console.Name(), 40))
		}
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			jobs, _ := h.Run(ctx, "systemctl", "list-jobs", "--no-legend")
			cancel()
			if msg := strings.TrimSpace(last.Stderr); msg != "" {
				state = strings.TrimPrefix(state+": "+msg, ": ")
			}
			return fmt.Errorf("boot test host %s: not up within %v (systemctl is-system-running: %s)\npending jobs:\n%s\nconsole:\n%s\nlast journal lines:\n%s",
				h.name, h.opts.BootTimeout, state, jobs.Stdout, tailFile(h.console.Name(), 30), h.JournalTail(40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// running returns the current nspawn process if the host is up.
func (h *Host) current() (*nspawnProc, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.proc, h.leader
}

// Result is the outcome of a command run inside the host.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

func (r Result) String() string {
	return fmt.Sprintf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
}

// guestEnv is the environment of commands run inside the host: a login
// shell's basics, never the test process's own variables (GOFLAGS, TMPDIR
// and friends have no meaning in there).
var guestEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root",
	"LANG=C.UTF-8",
	"TERM=dumb",
	"SYSTEMD_PAGER=",
	"SYSTEMD_COLORS=0",
}

// Command returns a command that runs name inside the host, in all of its
// namespaces, with root and working directory those of its init. Callers
// may set Stdin/Stdout/Stderr before running it.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	_, leader := h.current()
	nsArgs := append([]string{"--target", strconv.Itoa(leader), "--all", "--root", "--wd", "--", name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", nsArgs...)
	cmd.Env = guestEnv
	killGroupOnCancel(cmd)
	return cmd
}

// killGroupOnCancel makes ctx's end kill the command's whole process group:
// nsenter forks the program into the host's PID namespace and, killed
// alone, would leave it running there.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Children that left the group must not keep the pipe copiers waiting.
	cmd.WaitDelay = 5 * time.Second
}

// NetCommand returns a command that runs a program of the outer machine in
// the host's network namespace only: it sees the outer file system but the
// host's loopback, so it can reach services listening on 127.0.0.1 in the
// host (tools/mkimage pushing to the host's registry, for example).
func (h *Host) NetCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	_, leader := h.current()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--target", strconv.Itoa(leader), "--net", "--", name}, args...)...)
	killGroupOnCancel(cmd)
	return cmd
}

// Run runs name inside the host and returns its output and exit code. A
// non-zero exit is not an error; failing to run it, or ctx ending, is.
func (h *Host) Run(ctx context.Context, name string, args ...string) (Result, error) {
	return h.RunInput(ctx, nil, name, args...)
}

// RunInput is Run with stdin.
func (h *Host) RunInput(ctx context.Context, stdin []byte, name string, args ...string) (Result, error) {
	p, leader := h.current()
	if p == nil || leader == 0 || p.exited() {
		return Result{ExitCode: -1}, fmt.Errorf("run %s in test host %s: host is not running", name, h.name)
	}
	cmd := h.Command(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: cmd.ProcessState.ExitCode()}
	if ctx.Err() != nil {
		return r, fmt.Errorf("run %s in test host %s: %w", name, h.name, ctx.Err())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return r, fmt.Errorf("run %s in test host %s: %w", name, h.name, err)
	}
	return r, nil
}

// Sh runs a /bin/sh script inside the host.
func (h *Host) Sh(ctx context.Context, script string) (Result, error) {
	return h.Run(ctx, "/bin/sh", "-c", script)
}

// MustRun runs name inside the host and fails the test, with the command's
// output and the last journal lines, unless it exits 0. It returns stdout.
func (h *Host) MustRun(name string, args ...string) string {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CommandTimeout)
	defer cancel()
	r, err := h.Run(ctx, name, args...)
	if err == nil && r.ExitCode == 0 {
		return r.Stdout
	}
	h.t.Fatalf("testhost %s: %s %s: %v\n%s\nlast journal lines:\n%s", h.name, name, strings.Join(args, " "), errOr(err, "failed"), r, h.JournalTail(30))
	return ""
}

// MustSh is MustRun for a /bin/sh script.
func (h *Host) MustSh(script string) string {
	h.t.Helper()
	return h.MustRun("/bin/sh", "-c", script)
}

// Eventually polls script inside the host until it exits 0, and fails the
// test after timeout with the script's last output and the journal's last
// lines. what says what is awaited, for the failure message.
func (h *Host) Eventually(what string, timeout time.Duration, script string) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var last Result
	var lastErr error
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		last, lastErr = h.Sh(ctx, script)
		cancel()
		if lastErr == nil && last.ExitCode == 0 {
			return
		}
		if p, _ := h.current(); p == nil || p.exited() || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Fatalf("testhost %s: %s: not within %v (%v)\nscript: %s\nlast run: %s\nlast journal lines:\n%s",
		h.name, what, timeout, errOr(lastErr, "still failing"), script, last, h.JournalTail(30))
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}

// JournalTail returns the last n lines of the host's journal (all boots),
// or, when the host is down, of its persistent journal files.
func (h *Host) JournalTail(n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := h.Run(ctx, "journalctl", "--no-pager", "-q", "-n", strconv.Itoa(n)); err == nil && r.ExitCode == 0 {
		return r.Stdout
	}
	out, err := h.offlineJournal(ctx, "-n", strconv.Itoa(n))
	if err != nil {
		return fmt.Sprintf("(journal unavailable: %v)", err)
	}
	return out
}

// offlineJournal reads the persistent journal the host left in its overlay
// with the outer machine's journalctl.
func (h *Host) offlineJournal(ctx context.Context, args ...string) (string, error) {
	dir := filepath.Join(h.dir, "upper", "var", "log", "journal")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("no persistent journal in %s", dir)
	}
	cmd := exec.CommandContext(ctx, "journalctl", append([]string{"--no-pager", "-q", "--directory=" + dir}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("read journal in %s: %w", dir, err)
	}
	return string(out), nil
}

// Reboot reboots the host (systemctl reboot inside; nspawn exits with 133)
// and boots the same tree again, as a server comes back after a reboot.
func (h *Host) Reboot() {
	h.t.Helper()
	p, _ := h.current()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	r, err := h.Run(ctx, "systemctl", "reboot")
	cancel()
	if err != nil || r.ExitCode != 0 {
		h.t.Fatalf("testhost %s: systemctl reboot: %v\n%s", h.name, errOr(err, "failed"), r)
	}
	select {
	case <-p.done:
	case <-time.After(2 * time.Minute):
		h.t.Fatalf("testhost %s: still running 2m after systemctl reboot; last journal lines:\n%s", h.name, h.JournalTail(40))
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 133 {
		h.t.Fatalf("testhost %s: systemd-nspawn exited with %d after reboot, want 133 (reboot request); console:\n%s",
			h.name, code, tailFile(h.console.Name(), 40))
	}
	down := time.Since(begin)
	if err := h.start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Logf("testhost %s: reboot took %v (down after %v)", h.name, time.Since(begin).Round(time.Millisecond), down.Round(time.Millisecond))
}
