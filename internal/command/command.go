// Package command is berth's one seam to the host's programs (systemctl,
// journalctl, machinectl, nsenter, systemd-nspawn, cp, ip, nft): a Command
// is plain data, a Runner runs it. ExecRunner runs commands for real;
// RecordingRunner records them as text for tests to compare.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Command is one external program berth runs.
type Command struct {
	Args   []string // Args[0] is the program
	Env    []string // nil: inherit berth's environment
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr receives the command's standard error. nil: the runner keeps
	// its end (see StderrLimit) for the ExitError, so a failure explains
	// itself (systemctl says why a unit did not start).
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

// StderrLimit bounds what a runner keeps of a command's standard error
// when the caller did not take it: the end, where programs say why they
// failed.
const StderrLimit = 4 << 10

// ExitError is a command's non-zero exit status.
type ExitError struct {
	Command string // as Command.String
	Code    int    // 128+N for a command killed by signal N
	// Stderr is the end of the command's standard error, trimmed, when
	// the caller left Command.Stderr nil.
	Stderr string
}

func (e *ExitError) Error() string {
	if e.Stderr != "" {
		return fmt.Sprintf("%s: exit status %d: %s", e.Command, e.Code, e.Stderr)
	}
	return fmt.Sprintf("%s: exit status %d", e.Command, e.Code)
}

// ExitCode is err's exit status: 0 for nil, the code of an *ExitError, and
// -1 for any other error (the command could not run).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// Run runs args through r with no input and the output discarded; a
// failure carries the command's standard error.
func Run(ctx context.Context, r Runner, args ...string) error {
	return r.Run(ctx, Command{Args: args})
}

// Output runs args through r and returns what it wrote to standard
// output; a failure carries the command's standard error.
func Output(ctx context.Context, r Runner, args ...string) (string, error) {
	var out bytes.Buffer
	err := r.Run(ctx, Command{Args: args, Stdout: &out})
	return out.String(), err
}

// tail keeps the last limit bytes written to it.
type tail struct {
	limit int
	buf   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string { return strings.TrimSpace(string(t.buf)) }
