package command

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestString(t *testing.T) {
	c := Command{Args: []string{"nsenter", "--target=42", "sh", "-c", "echo 'hi' $HOME", "", "a b"}}
	want := `nsenter --target=42 sh -c 'echo '\''hi'\'' $HOME' '' 'a b'`
	if got := c.String(); got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func requireSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
}

// TestExecRunnerKeepsStderr: a failing command's explanation reaches the
// error when the caller did not take its stderr, and only its end.
func TestExecRunnerKeepsStderr(t *testing.T) {
	requireSh(t)
	err := ExecRunner{}.Run(context.Background(), Command{Args: []string{"sh", "-c", "echo out; echo Job failed, see journalctl >&2; exit 3"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Stderr != "Job failed, see journalctl" {
		t.Fatalf("err = %#v", err)
	}
	if want := "sh -c 'echo out; echo Job failed, see journalctl >&2; exit 3': exit status 3: Job failed, see journalctl"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if ExitCode(err) != 3 || ExitCode(nil) != 0 || ExitCode(errors.New("x")) != -1 {
		t.Error("ExitCode")
	}

	// Long output: the end is kept, bounded.
	err = ExecRunner{}.Run(context.Background(), Command{Args: []string{"sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo line $i >&2; i=$((i+1)); done; echo the reason >&2; exit 1"}})
	if !errors.As(err, &ee) || len(ee.Stderr) > StderrLimit || !strings.HasSuffix(ee.Stderr, "line 1999\nthe reason") {
		t.Errorf("long stderr: %d bytes, ends %q", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-40):])
	}

	// A caller that takes stderr gets all of it; the error does not.
	var errb bytes.Buffer
	err = ExecRunner{}.Run(context.Background(), Command{Args: []string{"sh", "-c", "echo mine >&2; exit 1"}, Stderr: &errb})
	if !errors.As(err, &ee) || ee.Stderr != "" || errb.String() != "mine\n" {
		t.Errorf("err = %v, stderr %q", err, errb.String())
	}
}

func TestExecRunnerCancel(t *testing.T) {
	requireSh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	// SIGTERM ends the shell; 128+15.
	err := ExecRunner{}.Run(ctx, Command{Args: []string{"sleep", "10"}})
	if ExitCode(err) != 143 || time.Since(start) > 5*time.Second {
		t.Errorf("cancelled sleep: %v after %v", err, time.Since(start))
	}
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = ExecRunner{Kill: true}.Run(ctx, Command{Args: []string{"sh", "-c", "trap '' TERM; while :; do :; done"}})
	if ExitCode(err) != 137 {
		t.Errorf("killed: %v", err)
	}
}

func TestOutput(t *testing.T) {
	r := &RecordingRunner{Results: map[string]Result{
		"machinectl show --value x": {Stdout: "42\n"},
		"systemctl start a.service": {Stderr: "Job for a.service failed because the control process exited with error code.\n", Code: 1},
	}}
	out, err := Output(context.Background(), r, "machinectl", "show", "--value", "x")
	if out != "42\n" || err != nil {
		t.Errorf("Output = %q, %v", out, err)
	}
	err = Run(context.Background(), r, "systemctl", "start", "a.service")
	if want := "systemctl start a.service: exit status 1: Job for a.service failed because the control process exited with error code."; err == nil || err.Error() != want {
		t.Errorf("Run = %v, want %s", err, want)
	}
	if got, want := r.Commands(), "machinectl show --value x\nsystemctl start a.service\n"; got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
}

func TestTail(t *testing.T) {
	tl := &tail{limit: 4}
	for _, s := range []string{"ab", "cd", "e", "fghij", "k"} {
		tl.Write([]byte(s))
	}
	if string(tl.buf) != "hijk" {
		t.Errorf("tail = %q, want hijk", tl.buf)
	}
}
