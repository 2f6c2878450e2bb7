package machines

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const noiseLine = `Attempted to remove disk file system under "/run/systemd/nspawn/propagate/bb-run-1a2b", and we can't allow that.` + "\n"

// TestNoiseFilter feeds a fake nspawn stderr in every chunking: only the
// known noise lines go, everything else arrives unchanged.
func TestNoiseFilter(t *testing.T) {
	in := "hello from the command\n" +
		noiseLine +
		"Attempted to remove disk file system under \"/var/lib/other\", and we can't allow that.\n" + // not nspawn's propagate dir: kept
		"Attempted to remove disk file system under \"/run/systemd/nspawn/propagate/x\" but differently\n" +
		"Attempted\n" +
		"\n" +
		noiseLine +
		"error: something real\n" +
		"Using default interface naming scheme 'v252'.\n" +
		"Network interface name 've-plain-abc5a2be' has been changed to 've-plain-abuSFP' to fit length constraints.\n" +
		"Network interface name 'eth0' is fine\n" +
		"Attempted to remove" // a last line without newline, a prefix of noise
	want := "hello from the command\n" +
		"Attempted to remove disk file system under \"/var/lib/other\", and we can't allow that.\n" +
		"Attempted to remove disk file system under \"/run/systemd/nspawn/propagate/x\" but differently\n" +
		"Attempted\n" +
		"\n" +
		"error: something real\n" +
		"Network interface name 'eth0' is fine\n" +
		"Attempted to remove"
	for _, size := range []int{1, 2, 7, 64, len(in)} {
		var out bytes.Buffer
		f := newNoiseFilter(&out)
		for b := []byte(in); len(b) > 0; {
			k := min(size, len(b))
			if n, err := f.Write(b[:k]); n != k || err != nil {
				t.Fatalf("chunks of %d: Write = %d, %v", size, n, err)
			}
			b = b[k:]
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("chunks of %d:\ngot  %q\nwant %q", size, out.String(), want)
		}
	}
}

// writes records each Write call.
type writes []string

func (w *writes) Write(p []byte) (int, error) {
	*w = append(*w, string(p))
	return len(p), nil
}

// TestNoiseFilterDoesNotDelay: a line that cannot be noise is written at
// once, before its newline (a prompt); only a possible noise line waits.
func TestNoiseFilterDoesNotDelay(t *testing.T) {
	var w writes
	f := newNoiseFilter(&w)
	f.Write([]byte("Password: "))
	if len(w) != 1 || w[0] != "Password: " {
		t.Fatalf("a prompt was held back: %q", w)
	}
	f.Write([]byte("more of the same line"))
	if len(w) != 2 {
		t.Fatalf("the rest of a passing line was held back: %q", w)
	}
	f.Write([]byte("\nAttempted to remove disk"))
	if got := strings.Join(w, ""); got != "Password: more of the same line\n" {
		t.Fatalf("wrote %q; the start of a possible noise line must wait", got)
	}
	f.Write([]byte(" file system under \"/run/systemd/nspawn/propagate/m\", and we can't allow that.\nok\n"))
	if got := strings.Join(w, ""); got != "Password: more of the same line\nok\n" {
		t.Fatalf("wrote %q", got)
	}
	// A line longer than any noise line is passed on.
	w = nil
	long := `Attempted to remove disk file system under "/run/systemd/nspawn/propagate/` + strings.Repeat("x", maxNoiseLine)
	f.Write([]byte(long))
	if strings.Join(w, "") != long {
		t.Fatalf("a %d-byte line was held back", len(long))
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestNoiseFilterWriteError(t *testing.T) {
	f := newNoiseFilter(failWriter{})
	if _, err := f.Write([]byte("x\n")); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("Write error %v", err)
	}
}

// TestNoiseFilterOnAProcess runs a real process whose stderr goes through
// the filter as nspawn's does (exec copies it from a pipe).
func TestNoiseFilterOnAProcess(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	var out bytes.Buffer
	f := newNoiseFilter(&out)
	cmd := exec.Command("/bin/sh", "-c", `echo one >&2; printf '%s' "$NOISE" >&2; echo two >&2; printf tail >&2`)
	cmd.Env = []string{"NOISE=" + noiseLine}
	cmd.Stderr = f
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	f.Flush()
	if got := out.String(); got != "one\ntwo\ntail" {
		t.Errorf("got %q", got)
	}
}
