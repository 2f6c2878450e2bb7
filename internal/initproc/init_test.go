package initproc

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary act as berth-init, so the tests exercise
// the real signal and reaping loop in a separate process.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_INIT_TEST_AS_INIT") == "1" {
		os.Exit(Main(os.Args[1:], os.Stderr))
	}
	os.Exit(m.Run())
}

func initCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BERTH_INIT_TEST_AS_INIT=1")
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("run berth-init: %v", err)
	}
	return ee.ExitCode()
}

func TestExitStatusPassesThrough(t *testing.T) {
	for _, tt := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + 15},
		{"kill -KILL $$", 128 + 9},
	} {
		out, err := initCmd(t, "--", "/bin/sh", "-c", tt.script).CombinedOutput()
		if got := exitCode(t, err); got != tt.want {
			t.Errorf("%q: exit %d, want %d (output %q)", tt.script, got, tt.want, out)
		}
	}
}

func TestCommandNotFound(t *testing.T) {
	out, err := initCmd(t, "--", "no-such-command-berth").CombinedOutput()
	if got := exitCode(t, err); got != 127 {
		t.Errorf("exit %d, want 127", got)
	}
	if !strings.Contains(string(out), "no-such-command-berth") {
		t.Errorf("error %q does not name the command", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"sh"}, {"--"}, {"--user"}, {"--bogus", "--", "sh"},
		{"--argv-json"}, {"--argv-json", "[]"}, {"--argv-json", `"sh"`}, {"--argv-json", `["sh"]`, "--", "sh"},
		{"--env-json", `["NOEQ"]`, "--", "sh"}, {"--env-json", `{}`, "--", "sh"}, {"--env-json", `["=x"]`, "--", "sh"},
		{"--env", "NOEQ", "--", "sh"}, {"--cmd", "sh"}, {"--cmd-json", `["sh"]`}, {"--image-config"},
		{"--image-config", "/x", "--cmd-json", `["sh"]`, "--cmd"}, {"--stop-signal", "SIGBOGUS", "--", "sh"}} {
		out, err := initCmd(t, args...).CombinedOutput()
		if got := exitCode(t, err); got != exitInit {
			t.Errorf("%q: exit %d, want %d", args, got, exitInit)
		}
		if !strings.Contains(string(out), "usage:") {
			t.Errorf("%q: output %q has no usage", args, out)
		}
	}
}

// TestForwardsSignals sends SIGTERM to berth-init and expects the command's
// trap to see it.
func TestForwardsSignals(t *testing.T) {
	rest, code := signalWhenReady(t, syscall.SIGTERM, "--", "/bin/sh", "-c", `trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done`)
	if rest != "got-term\n" {
		t.Errorf("after SIGTERM the command printed %q", rest)
	}
	if code != 7 {
		t.Errorf("exit %d, want 7", code)
	}
}

// signalWhenReady runs berth-init with args, whose command prints "ready"
// once it can take signals, sends berth-init sig, and returns the next
// line the command printed and berth-init's exit code.
func signalWhenReady(t *testing.T, sig syscall.Signal, args ...string) (string, int) {
	t.Helper()
	cmd := initCmd(t, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, _ := r.ReadString('\n'); line != "ready\n" {
		t.Fatalf("%q: first line %q", args, line)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	rest, _ := r.ReadString('\n')
	return rest, exitCode(t, cmd.Wait())
}

// TestReapsOrphans makes the command orphan a process that exits at once;
// berth-init (its subreaper) must collect it while the command still runs.
func TestReapsOrphans(t *testing.T) {
	cmd := initCmd(t, "--", "/bin/sh", "-c", `sh -c 'sh -c "echo \$\$; exit 0" & exit 0'; read x; exit 0`)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("orphan pid %q", line)
	}
	// Wait for the orphan's /proc entry to go: a zombie keeps it until
	// reaped. Not a timing assertion: without reaping it never goes.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(orphan) + "/stat")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orphan %d still there: %s", orphan, b)
		}
	}
	stdin.Close()
	if got := exitCode(t, cmd.Wait()); got != 0 {
		t.Errorf("exit %d", got)
	}
}

func TestSwitchesUserAndDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	base := t.TempDir()
	// The command changes directory after dropping root.
	for _, d := range []string{base, base + "/.."} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := base + "/new/work"
	out, err := initCmd(t, "--user", "4242:4343", "--workdir", dir, "--", "/bin/sh", "-c", `echo "$(id -u):$(id -g):$(pwd):$HOME"`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := "4242:4343:" + dir + ":/\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestResolveUser(t *testing.T) {
	passwd := parsePasswd(strings.NewReader("root:x:0:0:root:/root:/bin/sh\n# comment\nbroken\napp:x:1000:1000::/home/app:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n"))
	group := parseGroup(strings.NewReader("root:x:0:\napp:x:1000:\nstaff:x:50:app,web\nwww:x:33:\n"))
	for _, tt := range []struct {
		spec string
		want execUser
		err  bool
	}{
		{"", execUser{Name: "root", UID: 0, GID: 0, Home: "/root"}, false},
		{"app", execUser{Name: "app", UID: 1000, GID: 1000, Groups: []uint32{50}, Home: "/home/app"}, false},
		{"1000", execUser{Name: "app", UID: 1000, GID: 1000, Groups: []uint32{50}, Home: "/home/app"}, false},
		{"1000:1000", execUser{Name: "app", UID: 1000, GID: 1000, Groups: []uint32{50}, Home: "/home/app"}, false},
		{"5000", execUser{UID: 5000, GID: 0, Home: "/"}, false},
		{"5000:6000", execUser{UID: 5000, GID: 6000, Home: "/"}, false},
		{"web:staff", execUser{Name: "web", UID: 33, GID: 50, Home: "/var/www"}, false},
		{"app:www", execUser{Name: "app", UID: 1000, GID: 33, Groups: []uint32{50}, Home: "/home/app"}, false},
		{"nobody", execUser{}, true},
		{"app:nogroup", execUser{}, true},
	} {
		got, err := resolveUser(tt.spec, passwd, group)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	in := []string{"PATH=/bin", "HOME=/root", "USER=root", "NOTIFY_SOCKET=/run/host/notify", "A=1"}
	got := childEnv(in, execUser{Name: "app", Home: "/home/app"}, false)
	want := []string{"PATH=/bin", "A=1", "HOME=/home/app", "USER=app", "LOGNAME=app"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got = childEnv([]string{"HOME=/data"}, execUser{Home: "/"}, true)
	if !bytes.Equal([]byte(strings.Join(got, ",")), []byte("HOME=/data")) {
		t.Errorf("keep-home: got %q", got)
	}
}

// openPTY returns a new pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestTerminalGoesToTheCommand starts berth-init as nspawn does with an
// interactive console (session leader, terminal as controlling tty) and
// requires a non-root command to get that terminal as its own.
func TestTerminalGoesToTheCommand(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change user")
	}
	master, slave := openPTY(t)
	defer master.Close()
	cmd := initCmd(t, "--user", "4242", "--", "/bin/sh", "-c", `echo "$(id -u) $(tty) $(ps -o sid= -p $$ 2>/dev/null || echo $$)"; echo done`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	var out bytes.Buffer
	r := bufio.NewReader(master)
	for !strings.Contains(out.String(), "done") {
		line, err := r.ReadString('\n')
		out.WriteString(line)
		if err != nil {
			break
		}
	}
	err := cmd.Wait()
	if exitCode(t, err) != 0 {
		t.Fatalf("exit %v: %q", err, out.String())
	}
	first := strings.Fields(strings.SplitN(out.String(), "\n", 2)[0])
	if len(first) < 2 || first[0] != "4242" || !strings.HasPrefix(first[1], "/dev/pts/") {
		t.Errorf("the command did not get the terminal as uid 4242: %q", out.String())
	}
}

// TestJSONCommandAndEnv runs a command and environment that a .nspawn file
// cannot carry (newlines, a DEL), passed as JSON: they arrive exactly, and
// an --env-json assignment replaces berth-init's own of the same key.
func TestJSONCommandAndEnv(t *testing.T) {
	cmd := initCmd(t, "--env-json", `["A=line1\nline2\u007f","B=replaced"]`,
		"--argv-json", `["/bin/sh","-c","printf '%s|%s|%s' \"$A\" \"$B\" \"$1\"\necho","sh","arg\nwith newline"]`)
	cmd.Env = append(cmd.Env, "B=original")
	out, err := cmd.Output()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d, output %q", code, out)
	}
	if want := "line1\nline2\x7f|replaced|arg\nwith newline\n"; string(out) != want {
		t.Errorf("output %q, want %q", out, want)
	}
}

// writeImageConfig writes an image config blob with config c.
func writeImageConfig(t *testing.T, c string) string {
	t.Helper()
	p := t.TempDir() + "/image.json"
	if err := os.WriteFile(p, []byte(`{"architecture":"amd64","os":"linux","config":`+c+`,"rootfs":{"type":"layers","diff_ids":[]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestResolve applies docker's rules for an image's defaults and the
// machine's overrides.
func TestResolve(t *testing.T) {
	var img imageConfig
	img.Config.Entrypoint = []string{"/entry", "-e"}
	img.Config.Cmd = []string{"serve", "--port", "80"}
	img.Config.Env = []string{"PATH=/bin", "A=image", "B=image"}
	img.Config.User = "app"
	img.Config.WorkingDir = "srv/./app"
	img.Config.StopSignal = "SIGQUIT"
	for _, tt := range []struct {
		name string
		o    options
		want options
	}{
		{"image defaults", options{},
			options{argv: []string{"/entry", "-e", "serve", "--port", "80"}, env: []string{"PATH=/bin", "A=image", "B=image"}, user: "app", workdir: "/srv/app", stopSignal: "SIGQUIT"}},
		{"cmd replaced", options{cmd: []string{"migrate"}, cmdSet: true},
			options{argv: []string{"/entry", "-e", "migrate"}, env: img.Config.Env, user: "app", workdir: "/srv/app", stopSignal: "SIGQUIT"}},
		{"cmd cleared", options{cmd: []string{}, cmdSet: true},
			options{argv: []string{"/entry", "-e"}, env: img.Config.Env, user: "app", workdir: "/srv/app", stopSignal: "SIGQUIT"}},
		{"whole command, overrides win", options{argv: []string{"sh"}, user: "0:0", workdir: "/tmp", stopSignal: "SIGINT", env: []string{"B=mine", "C=mine", "HOME=/data", "C=last"}},
			options{argv: []string{"sh"}, env: []string{"PATH=/bin", "A=image", "B=mine", "C=last", "HOME=/data"}, user: "0:0", workdir: "/tmp", stopSignal: "SIGINT", keepHome: true}},
	} {
		got, err := resolve(tt.o, img)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
	var empty imageConfig
	if _, err := resolve(options{}, empty); !errors.Is(err, errNoCommand) {
		t.Errorf("no command: %v", err)
	}
	if _, err := resolve(options{cmd: []string{}, cmdSet: true}, empty); !errors.Is(err, errNoCommand) {
		t.Errorf("cleared Cmd without Entrypoint: %v", err)
	}
	empty.Config.Cmd = []string{"x"}
	empty.Config.StopSignal = "SIGNOPE"
	if _, err := resolve(options{}, empty); err == nil {
		t.Error("an unknown image STOPSIGNAL was accepted")
	}
	if _, err := resolve(options{stopSignal: "SIGTERM"}, empty); err != nil {
		t.Errorf("an explicit stop signal must win over the image's bad one: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "quit": syscall.SIGQUIT, "9": syscall.SIGKILL,
		"SIGUSR2": syscall.SIGUSR2, "RTMIN": 34, "SIGRTMIN+3": 37, "sigrtmin+30": 64, "64": 64,
	} {
		if got, err := parseSignal(in); err != nil || got != want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"SIGNOPE", "0", "65", "RTMIN+31", "RTMIN-1", "RTMIN+-1", "RTMIN3"} {
		if _, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) accepted", in)
		}
	}
}

// TestImageConfig starts a command from an image config: the image's
// Entrypoint with a replaced Cmd, its environment under the overrides,
// its relative WORKDIR from /. berth-init must have re-executed itself
// with the resolved settings, which the command reads from its parent.
func TestImageConfig(t *testing.T) {
	cfg := writeImageConfig(t, `{"Entrypoint":["/bin/sh","-c","echo \"$0|$A|$B|$HOME|$(pwd)\"; tr '\\0' ' ' < /proc/$PPID/cmdline; echo; tr '\\0' '\\n' < /proc/$PPID/environ | grep '^A='"],"Cmd":["image-cmd"],"Env":["A=image","B=image\nline"],"WorkingDir":"."}`)
	cmd := initCmd(t, "--image-config", cfg, "--env", "A=mine", "--cmd", "my-cmd")
	out, err := cmd.CombinedOutput()
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	lines := strings.Split(string(out), "\n")
	root, err := resolveUser("", readPasswd("/etc/passwd"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 4 || lines[0] != "my-cmd|mine|image" || lines[1] != "line|"+root.Home+"|/" {
		t.Errorf("command output %q", out)
	}
	if want := " -- /bin/sh -c "; !strings.Contains(lines[2], want) || strings.Contains(lines[2], "--image-config") {
		t.Errorf("berth-init did not re-execute itself resolved: its command line is %q", lines[2])
	}
	if lines[3] != "A=mine" {
		t.Errorf("berth-init's own environment has %q, want A=mine", lines[3])
	}
}

// TestImageConfigErrors: a missing or broken config, or one that gives no
// command, is berth-init's own failure (125), with a message naming it.
func TestImageConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		config string
		want   string
	}{
		{"", "no such file"},
		{`{}`, "no command"},
		{`{"Cmd":[]}`, "no command"},
		{`{"Cmd":"sh"}`, "parse image config"},
		{`{"Cmd":["sh"],"Env":["NOEQ"]}`, "not KEY=VALUE"},
		{`{"Cmd":["sh"],"StopSignal":"SIGNOPE"}`, "stop signal"},
	} {
		p := t.TempDir() + "/missing.json"
		if tt.config != "" {
			p = writeImageConfig(t, tt.config)
		}
		out, err := initCmd(t, "--image-config", p).CombinedOutput()
		if code := exitCode(t, err); code != exitInit || !strings.Contains(string(out), tt.want) {
			t.Errorf("config %s: exit %d, output %q; want %d and %q", tt.config, code, out, exitInit, tt.want)
		}
	}
}

// TestStopSignal sends SIGTERM (nspawn's KillSignal= for machines that
// resolve their image at start) to berth-init: the command gets the
// image's STOPSIGNAL, or the explicit --stop-signal over it.
func TestStopSignal(t *testing.T) {
	script := `trap 'echo got-usr1; exit 1' USR1; trap 'echo got-usr2; exit 2' USR2; trap 'echo got-term; exit 15' TERM; echo ready; while :; do sleep 0.1; done`
	cfg := writeImageConfig(t, `{"Cmd":["/bin/sh","-c",`+strconv.Quote(script)+`],"StopSignal":"SIGUSR1"}`)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--image-config", cfg}, "got-usr1\n"},
		{[]string{"--image-config", cfg, "--stop-signal", "SIGUSR2"}, "got-usr2\n"},
		{[]string{"--stop-signal", "12", "--", "/bin/sh", "-c", script}, "got-usr2\n"},
		{[]string{"--", "/bin/sh", "-c", script}, "got-term\n"},
	} {
		if rest, _ := signalWhenReady(t, syscall.SIGTERM, tt.args...); rest != tt.want {
			t.Errorf("%q: after SIGTERM the command printed %q, want %q", tt.args, rest, tt.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"A=1", "B=2", "A=3"}, []string{"C=4", "B=5", "C=6"})
	if want := []string{"A=3", "B=5", "C=6"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
