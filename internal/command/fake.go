package command

import (
	"context"
	"io"
	"strings"
	"sync"
)

// RecordingRunner is a fake Runner that records each command as a line of
// text and answers from canned results, for tests of code that drives the
// host's tools.
type RecordingRunner struct {
	mu    sync.Mutex
	lines []string
	// Results maps a command line (as Command.String) to what the fake
	// prints and its exit code; a command not listed succeeds silently.
	Results map[string]Result
}

// Result is a canned answer of RecordingRunner.
type Result struct {
	Stdout string
	// Stderr goes to Command.Stderr, or into the ExitError as a real
	// runner keeps it.
	Stderr string
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
	if c.Stderr != nil && res.Stderr != "" {
		io.WriteString(c.Stderr, res.Stderr)
	}
	if res.Code != 0 {
		e := &ExitError{Command: line, Code: res.Code}
		if c.Stderr == nil {
			t := &tail{limit: StderrLimit}
			io.WriteString(t, res.Stderr)
			e.Stderr = t.String()
		}
		return e
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
