package project

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/systemd"
)

func usTime(us int64) string {
	return time.UnixMicro(us).UTC().Format(time.RFC3339Nano)
}

// ExecOptions say how `berth compose exec` runs a command.
type ExecOptions struct {
	// Index is the instance (1-based). Default 1.
	Index int
	// User and WorkDir override the service's; Env adds KEY=VALUE.
	User    string
	WorkDir string
	Env     []string
	// TTY gives the command a new pseudo-terminal relayed to Stdin (which
	// must then be a terminal *os.File) and Stdout.
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Exec runs argv in the running machine of service and returns its exit
// status. It enters the machine's namespaces and root with nsenter and
// starts the command through berth-init with the options the machine's
// own berth-init has (user, working directory, environment), so the
// command sees what the service's command sees. Whether it gets a
// terminal is up to the caller: the command inherits Stdin/Stdout as
// they are given.
func (h *Host) Exec(ctx context.Context, name, service string, argv []string, o ExecOptions) (int, error) {
	h.fill()
	if len(argv) == 0 {
		return 0, fmt.Errorf("exec in %s/%s: no command given", name, service)
	}
	_, svcs, err := h.selected(name, []string{service})
	if err != nil {
		return 0, err
	}
	if o.Index <= 0 {
		o.Index = 1
	}
	if o.Index > len(svcs[0].Instances) {
		return 0, fmt.Errorf("exec in %s/%s: service has %d instances, not %d", name, service, len(svcs[0].Instances), o.Index)
	}
	mach := svcs[0].Instances[o.Index-1].Machine
	leader, err := systemd.Leader(ctx, h.Runner, mach)
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %w", name, service, err)
	}
	cmdline, err := h.ReadFile("/proc/" + strconv.Itoa(leader) + "/cmdline")
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: read the machine's init command: %w", name, service, err)
	}
	environ, err := h.ReadFile("/proc/" + strconv.Itoa(leader) + "/environ")
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: read the machine's environment: %w", name, service, err)
	}
	initArgv, err := execInitArgv(split0(cmdline), argv, o)
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %w", name, service, err)
	}
	c := command.Command{
		Args:   systemd.Enter(leader, initArgv...),
		Env:    split0(environ),
		Stdin:  o.Stdin,
		Stdout: o.Stdout,
		Stderr: o.Stderr,
	}
	if o.TTY {
		in, ok := o.Stdin.(*os.File)
		if !ok {
			return 0, fmt.Errorf("exec in %s/%s: %w", name, service, errNotTerminal)
		}
		err = withPTY(in, o.Stdout, func(slave *os.File) error {
			c.Stdin, c.Stdout, c.Stderr = slave, slave, slave
			return h.Runner.Run(ctx, c)
		})
	} else {
		if f, ok := o.Stdin.(*os.File); ok && isTerminal(f) {
			// Without a terminal of its own the command must not get
			// the caller's either: berth-init would try to make it
			// the controlling tty of the command's new session,
			// which the caller's session owns. Its input is relayed
			// through a pipe instead, which is not waited for: a
			// terminal read may block until berth exits.
			pr, pw, perr := os.Pipe()
			if perr != nil {
				return 0, fmt.Errorf("exec in %s/%s: %w", name, service, perr)
			}
			go func() {
				io.Copy(pw, f)
				pw.Close()
			}()
			defer pr.Close()
			c.Stdin = pr
		}
		err = h.Runner.Run(ctx, c)
	}
	if code := command.ExitCode(err); code > 0 {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s/%s: %w", name, service, err)
	}
	return 0, nil
}

func split0(b []byte) []string {
	var out []string
	for _, f := range bytes.Split(b, []byte{0}) {
		if len(f) > 0 {
			out = append(out, string(f))
		}
	}
	return out
}

// execInitArgv builds the berth-init command line for an exec from the
// machine's own: the same options (user, working directory, --keep-home,
// the image config and the environment it was given as options), those of
// o overriding, and argv instead of the service's command. A machine that
// resolves its image at start has re-executed its berth-init with the
// resolved options, but its original ones are understood too.
func execInitArgv(leader, argv []string, o ExecOptions) ([]string, error) {
	if len(leader) == 0 || leader[0] != machine.InitPath {
		return nil, fmt.Errorf("the machine's init is %q, not berth-init", strings.Join(leader, " "))
	}
	out := []string{machine.InitPath}
	user, workdir := o.User, o.WorkDir
	for i := 1; i < len(leader); i++ {
		a := leader[i]
		switch a {
		case "--", "--argv-json", "--cmd", "--cmd-json":
			// The command: the exec replaces it.
			i = len(leader)
		case "--keep-home":
			out = append(out, a)
		case "--user", "--workdir", "--env", "--env-json", "--image-config", "--stop-signal":
			if i+1 >= len(leader) {
				return nil, fmt.Errorf("the machine's init command ends after %s", a)
			}
			i++
			switch {
			case a == "--user" && user == "":
				user = leader[i]
			case a == "--workdir" && workdir == "":
				workdir = leader[i]
			case a == "--env", a == "--env-json", a == "--image-config":
				out = append(out, a, leader[i])
			}
		default:
			return nil, fmt.Errorf("the machine's init has option %q, which this berth does not know", a)
		}
	}
	if user != "" {
		out = append(out, "--user", user)
	}
	if workdir != "" {
		out = append(out, "--workdir", workdir)
	}
	if len(o.Env) > 0 {
		env, err := jsonList(o.Env)
		if err != nil {
			return nil, err
		}
		out = append(out, "--env-json", env)
	}
	out = append(out, "--")
	return append(out, argv...), nil
}

// jsonList encodes KEY=VALUE assignments for berth-init's --env-json,
// which carries any character (a newline in a value) exactly.
func jsonList(env []string) (string, error) {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return "", fmt.Errorf("environment %q is not KEY=VALUE", kv)
		}
	}
	b, err := json.Marshal(env)
	return string(b), err
}
