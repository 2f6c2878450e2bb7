package machines

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/systemd"
)

// ExecOptions say how to run a command in a running machine.
type ExecOptions struct {
	User    string // "" = the machine's user
	WorkDir string // "" = the machine's working directory
	TTY     bool
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Exec runs argv in running machine name and returns its exit code. App
// machines are entered with nsenter through berth-init (which switches user
// and reaps, as for the main command); booted machines through systemd-run
// so the command is a proper unit inside.
func (h Host) Exec(ctx context.Context, name string, argv []string, o ExecOptions) (int, error) {
	if len(argv) == 0 {
		return 0, fmt.Errorf("exec in %s: no command given", name)
	}
	in, err := h.Instance(name)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	if !h.SystemdBooted {
		return 0, fmt.Errorf("exec in %s: %w", name, ErrNoSystemd)
	}
	var c command.Command
	if in.Spec.Boot {
		c = systemdRun(name, argv, o)
	} else if c, err = h.enter(ctx, in, argv, o); err != nil {
		return 0, err
	}
	c.Stdin, c.Stdout, c.Stderr = o.Stdin, o.Stdout, o.Stderr
	err = h.Runner.Run(ctx, c)
	if code := command.ExitCode(err); code > 0 {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	return 0, nil
}

// systemdRun runs argv as a unit inside booted machine name.
func systemdRun(name string, argv []string, o ExecOptions) command.Command {
	args := []string{"systemd-run", "--machine=" + name, "--quiet", "--wait", "--collect", "--service-type=exec"}
	if o.TTY {
		args = append(args, "--pty")
	} else {
		args = append(args, "--pipe")
	}
	if o.User != "" {
		args = append(args, "--uid="+o.User)
	}
	if o.WorkDir != "" {
		args = append(args, "--working-directory="+o.WorkDir)
	}
	return command.Command{Args: append(append(args, "--"), argv...)}
}

// enter runs argv in app machine in through its berth-init, with the
// machine's user, working directory and environment unless o says
// otherwise.
func (h Host) enter(ctx context.Context, in *Instance, argv []string, o ExecOptions) (command.Command, error) {
	name := in.Spec.Name
	leader, err := systemd.Leader(ctx, h.Runner, name)
	if errors.Is(err, systemd.ErrNoMachine) {
		// machined does not know it: the service is down.
		return command.Command{}, fmt.Errorf("exec in %s: %w; start it with `berth start %s`", name, ErrNotRunning, name)
	}
	if err != nil {
		return command.Command{}, fmt.Errorf("exec in %s: %w", name, err)
	}
	// berth-init resolves the rest as for the machine's own command: a
	// machine that reads its image config at start reads it here too.
	spec := in.Spec.WithCommand(argv, o.User, o.WorkDir)
	return command.Command{
		Args: systemd.Enter(leader, machine.InitArgv(&spec)...),
		// The machine's environment, not berth's.
		Env: append([]string{"container=systemd-nspawn", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, spec.Env...),
	}, nil
}
