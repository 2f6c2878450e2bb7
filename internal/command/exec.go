package command

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// ExecRunner runs commands with os/exec. When ctx is cancelled the command
// gets SIGTERM (so nspawn can shut its machine down in order) and, if it is
// still there after StopTimeout, SIGKILL.
type ExecRunner struct {
	StopTimeout time.Duration // 0 = 15s
	// Kill sends SIGKILL at once when ctx is cancelled, for commands
	// whose deadline is final (a health check past its timeout).
	Kill bool
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, c Command) error {
	if len(c.Args) == 0 {
		return errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = c.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	var stderr *tail
	if c.Stderr == nil {
		stderr = &tail{limit: StderrLimit}
		cmd.Stderr = stderr
	}
	if c.OwnProcessGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if !r.Kill {
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	}
	cmd.WaitDelay = r.StopTimeout
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 15 * time.Second
	}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		e := &ExitError{Command: c.String(), Code: code}
		if stderr != nil {
			e.Stderr = stderr.String()
		}
		return e
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", c.Args[0], err)
	}
	return nil
}
