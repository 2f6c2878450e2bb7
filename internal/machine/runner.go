package machine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command is one external program berth runs (systemd-nspawn, systemctl,
// journalctl, ...).
type Command struct {
	Args   []string // Args[0] is the program
	Env    []string // nil: inherit berth's environment
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// OwnProcessGroup runs the command in a process group of its own, so
	// a ^C on berth's terminal reaches only berth, which stops the
	// command once (nspawn treats a second SIGTERM as "kill now").
	OwnProcessGroup bool
}

// String is the command as one shell-quoted line, for errors and fakes.
func (c Command) String() string {
	q := make([]string, len(c.Args))
	for i, a := range c.Args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Runner runs commands. It is the seam between berth and the host's tools.
type Runner interface {
	// Run runs c to completion. A non-zero exit is an *ExitError.
	Run(ctx context.Context, c Command) error
}

// ExitError is a command's non-zero exit status.
type ExitError struct {
	Command string
	Code    int
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s: exit status %d", e.Command, e.Code)
}

// ExecRunner runs commands with os/exec. When ctx is cancelled the command
// gets SIGTERM (so nspawn can shut its machine down in order) and, if it is
// still there after StopTimeout, SIGKILL.
type ExecRunner struct {
	StopTimeout time.Duration // 0 = 15s
}

// Run implements Runner.
func (r ExecRunner) Run(ctx context.Context, c Command) error {
	if len(c.Args) == 0 {
		return errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Env = c.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	if c.OwnProcessGroup {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
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
		return &ExitError{Command: c.String(), Code: code}
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", c.Args[0], err)
	}
	return nil
}

// RecordingRunner is a fake Runner that records each command as a line of
// text and answers from canned results, for tests of code that drives
// systemd.
type RecordingRunner struct {
	mu    sync.Mutex
	lines []string
	// Results maps a command line (as Command.String) to what the fake
	// prints on stdout and its exit code.
	Results map[string]Result
}

// Result is a canned answer of RecordingRunner.
type Result struct {
	Stdout string
	Code   int
}

// Run implements Runner.
func (f *RecordingRunner) Run(_ context.Context, c Command) error {
	line := c.String()
	f.mu.Lock()
	f.lines = append(f.lines, line)
	res := f.Results[line]
	f.mu.Unlock()
	if c.Stdout != nil && res.Stdout != "" {
		io.WriteString(c.Stdout, res.Stdout)
	}
	if res.Code != 0 {
		return &ExitError{Command: line, Code: res.Code}
	}
	return nil
}

// Commands returns the recorded commands, one per line.
func (f *RecordingRunner) Commands() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lines) == 0 {
		return ""
	}
	return strings.Join(f.lines, "\n") + "\n"
}

// exitCode extracts a command's exit status, or -1 for other errors.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}
