// Package initproc is PID 1 of berth app machines: the whole of
// berth-init, and what berth itself runs when a machine starts it as its
// init (a `go install`ed berth has no berth-init beside it). systemd-nspawn
// starts it (bind-mounted read-only from the host at /.berth/init) as
//
//	berth-init [OPTIONS] -- COMMAND [ARG...]
//	berth-init [OPTIONS] --argv-json JSON
//	berth-init --image-config FILE [OPTIONS] [--cmd [ARG...] | --cmd-json JSON]
//
// OPTIONS are --user USER, --workdir DIR, --keep-home, --stop-signal SIG,
// --env KEY=VALUE (repeatable), --env-json JSON, and for machines made from
// declarations --env-file FILE, --group-add GROUP and --sysctl net.K=V
// (each repeatable; extra.go). --argv-json, --cmd-json
// and --env-json carry a command, a Cmd and environment assignments as JSON
// lists of strings, for values with characters (newlines) that the .nspawn
// file that starts berth-init cannot hold.
//
// With --image-config, the machine's command, environment, user, working
// directory and stop signal come from the image config berth keeps with the
// machine, read when the machine starts: the options are overrides applied
// with docker's rules (see resolve). "-- COMMAND" then replaces the image's
// Entrypoint and Cmd, "--cmd ARG..." only its Cmd; without either the
// image's own run. berth-init then re-executes itself with the resolved
// command line and environment, so /proc/1 shows what the command got.
//
// It switches to the image's user itself, reading the machine's /etc/passwd
// and /etc/group (nspawn's own User= asks NSS via getent, which images
// without a libc or with a uid not in /etc/passwd do not have), starts the
// command, forwards signals to it (SIGTERM, nspawn's request to stop, as
// the stop signal), reaps every orphan the kernel hands to PID 1, and exits
// with the command's status (128+N if signal N killed it).
//
// It must stay free of dependencies beyond golang.org/x/sys, so berth-init
// stays a small static binary (CGO_ENABLED=0): it runs in scratch images.
package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// exitInit is the status for berth-init's own failures, chosen to match
// docker's "container command could not be invoked" (126) / "not found"
// (127) where they apply.
const exitInit = 125

type options struct {
	user     string
	workdir  string
	keepHome bool
	argv     []string
	env      []string // KEY=VALUE from --env and --env-json, overriding berth-init's own
	// stopSignal is sent to the command when berth-init gets SIGTERM
	// ("" = SIGTERM itself).
	stopSignal string
	// imageConfig is the image config to resolve the command from; cmd
	// (when cmdSet) replaces its Cmd.
	imageConfig string
	cmd         []string
	cmdSet      bool
	// Options of machines made from declarations (extra.go): env files
	// read at start, supplementary groups, net.* sysctls.
	envFiles, groupAdd, sysctls []string
}

const usage = "usage: berth-init [--image-config FILE] [--user USER] [--workdir DIR] [--keep-home] [--stop-signal SIG] [--env KEY=VALUE]... [--env-json JSON] [--env-file FILE]... [--group-add GROUP]... [--sysctl net.KEY=VALUE]... {-- COMMAND [ARG...] | --argv-json JSON | --cmd [ARG...] | --cmd-json JSON}"

// jsonList decodes the value of option name, a JSON list of strings.
func jsonList(name, v string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(v), &l); err != nil {
		return nil, fmt.Errorf("%s: want a JSON list of strings: %w", name, err)
	}
	return l, nil
}

func parseArgs(args []string) (options, error) {
	var o options
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch a {
		case "--":
			o.argv = args[i+1:]
			if len(o.argv) == 0 {
				return o, errors.New("no command after --")
			}
			return o.check()
		case "--cmd":
			// The rest replaces the image's Cmd; nothing clears it.
			o.cmd, o.cmdSet = append([]string{}, args[i+1:]...), true
			return o.check()
		case "--keep-home":
			o.keepHome = true
		case "--user", "--workdir", "--env", "--env-json", "--argv-json", "--cmd-json", "--image-config", "--stop-signal", "--env-file", "--group-add", "--sysctl":
			if i+1 >= len(args) {
				return o, fmt.Errorf("%s needs a value", a)
			}
			i++
			v := args[i]
			switch a {
			case "--env-file", "--group-add", "--sysctl":
				if err := o.setExtra(a, v); err != nil {
					return o, err
				}
			case "--user":
				o.user = v
			case "--workdir":
				o.workdir = v
			case "--image-config":
				o.imageConfig = v
			case "--stop-signal":
				if _, err := parseSignal(v); err != nil {
					return o, fmt.Errorf("%s: %w", a, err)
				}
				o.stopSignal = v
			case "--env", "--env-json":
				env := []string{v}
				if a == "--env-json" {
					var err error
					if env, err = jsonList(a, v); err != nil {
						return o, err
					}
				}
				if err := checkAssignments(a, env); err != nil {
					return o, err
				}
				o.env = append(o.env, env...)
			case "--argv-json", "--cmd-json":
				l, err := jsonList(a, v)
				if err != nil {
					return o, err
				}
				if i+1 != len(args) {
					return o, fmt.Errorf("%s must be the last option", a)
				}
				if a == "--cmd-json" {
					o.cmd, o.cmdSet = append([]string{}, l...), true
					return o.check()
				}
				if len(l) == 0 {
					return o, errors.New("--argv-json: empty command")
				}
				o.argv = l
				return o.check()
			}
		default:
			return o, fmt.Errorf("unknown option %q", a)
		}
	}
	return o.check()
}

// check rejects what parseArgs cannot tell option by option: a command is
// needed unless the image config gives one, and a Cmd needs an image
// whose Cmd it replaces.
func (o options) check() (options, error) {
	switch {
	case o.cmdSet && o.imageConfig == "":
		return o, errors.New("--cmd and --cmd-json replace the image's Cmd: they need --image-config")
	case o.argv == nil && !o.cmdSet && o.imageConfig == "":
		return o, errors.New("missing -- before the command")
	}
	return o, nil
}

// Path is where the init appears inside app machines (machine.InitPath):
// berth checks its argv[0] against it to run as the init.
const Path = "/.berth/init"

// Invoked reports whether a program started as argv0 is to run as the
// init: started at Path inside a machine (nspawn runs it so, and the init
// re-executes itself keeping that name), or through a link named
// berth-init.
func Invoked(argv0 string) bool {
	return argv0 == Path || path.Base(argv0) == "berth-init"
}

// Main runs the init with the arguments after argv[0] and returns its
// exit status: the command's, or 125 for the init's own failures.
func Main(args []string, stderr io.Writer) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "berth-init: %v\n%s\n", err, usage)
		return exitInit
	}
	if err := o.readEnvFiles(); err != nil {
		fmt.Fprintf(stderr, "berth-init: %v\n", err)
		return exitInit
	}
	environ := os.Environ()
	if o.imageConfig != "" {
		img, err := readImageConfig(o.imageConfig)
		if err == nil {
			o, err = resolve(o, img)
		}
		if err != nil {
			fmt.Fprintf(stderr, "berth-init: %v\n", err)
			return exitInit
		}
		environ, o.env = mergeEnv(environ, o.env), nil
		// Go on as the resolved command line and environment: what
		// enters the machine later (berth compose exec, health checks)
		// takes its options from /proc/1/cmdline and its environment
		// from /proc/1/environ. Should the exec fail, berth-init goes
		// on as it is, with the same settings.
		_ = syscall.Exec("/proc/self/exe", o.args(os.Args[0]), environ)
	}
	stop, err := parseSignal(o.stopSignal)
	if err != nil { // checked by parseArgs and resolve
		fmt.Fprintf(stderr, "berth-init: %v\n", err)
		return exitInit
	}
	u, err := resolveUser(o.user, readPasswd("/etc/passwd"), readGroup("/etc/group"))
	if err == nil {
		err = o.applyExtras(&u)
	}
	if err != nil {
		fmt.Fprintf(stderr, "berth-init: %v\n", err)
		return exitInit
	}
	env := childEnv(mergeEnv(environ, o.env), u, o.keepHome)

	dir := o.workdir
	if dir == "" {
		dir = "/"
	}
	// Docker creates a missing WORKDIR, owned by root.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "berth-init: create working directory: %v\n", err)
		return exitInit
	}

	prog, err := lookPath(o.argv[0], env)
	if err != nil {
		fmt.Fprintf(stderr, "berth-init: %v\n", err)
		return 127
	}

	// When berth-init is not PID 1 (nspawn --as-pid2, tests), orphans
	// still come to it rather than to the real init.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	tty := isTerminal(0)
	if tty {
		// The terminal is our controlling tty (nspawn made it so), and
		// a command that is no longer root could not take it over.
		// Let go of it; TIOCNOTTY hangs up our own process group,
		// which must not kill us.
		signal.Ignore(syscall.SIGHUP, syscall.SIGCONT)
		_ = unix.IoctlSetInt(0, unix.TIOCNOTTY, 0)
	}

	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)

	attr := &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups},
	}
	if tty {
		// Give an interactive command the terminal as its controlling
		// tty so ^C and job control reach it.
		attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
	}
	child, err := os.StartProcess(prog, o.argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   attr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "berth-init: start %s: %v\n", o.argv[0], err)
		if errors.Is(err, syscall.ENOENT) {
			return 127
		}
		return 126
	}
	pid := child.Pid

	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			if code, done := reap(pid); done {
				return code
			}
		case syscall.SIGURG:
			// The Go runtime preempts goroutines with SIGURG; those
			// are not meant for the command.
		case syscall.SIGTERM:
			// nspawn's request to stop (KillSignal=): the command
			// gets its stop signal.
			_ = syscall.Kill(pid, stop)
		default:
			_ = syscall.Kill(pid, s)
		}
	}
	return exitInit
}

// reap collects every exited child. It reports the main child's exit code
// once that one is gone.
func reap(main int) (int, bool) {
	code, done := 0, false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == main {
			done = true
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// childEnv is berth-init's environment for the command: HOME, USER and
// LOGNAME describe the target user (nspawn set them for root), and
// NOTIFY_SOCKET, nspawn's readiness channel, is not the command's.
func childEnv(env []string, u execUser, keepHome bool) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "USER", "LOGNAME":
			continue
		case "HOME":
			if keepHome {
				out = append(out, kv)
			}
			continue
		}
		out = append(out, kv)
	}
	if !keepHome {
		out = append(out, "HOME="+u.Home)
	}
	if u.Name != "" {
		out = append(out, "USER="+u.Name, "LOGNAME="+u.Name)
	}
	return out
}

// lookPath finds name on the command's PATH (not berth-init's), as docker
// resolves the entrypoint with the image's environment.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, d := range strings.Split(pathVar, ":") {
		if d == "" {
			d = "."
		}
		p := d + "/" + name
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: %w in PATH %s", name, exec.ErrNotFound, strconv.Quote(pathVar))
}

func readPasswd(p string) []passwdEntry {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parsePasswd(f)
}

func readGroup(p string) []groupEntry {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseGroup(f)
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
