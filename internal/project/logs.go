package project

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/command"
)

// LogOptions say which logs `berth compose logs` shows.
type LogOptions struct {
	Services []string
	Follow   bool
	// Tail is the number of lines per machine to start with; < 0: all.
	Tail int
	// NoPrefix leaves out the "service | " prefix.
	NoPrefix bool
	// Timestamps prefixes each line with its journal time.
	Timestamps bool
	// Since and Until bound the entries shown (zero: no bound); see
	// ParseLogTime for docker's forms.
	Since, Until time.Time
}

// ParseLogTime reads a --since/--until value in docker's forms: an
// RFC 3339 time (2013-01-02T13:23:37Z, with or without fractional
// seconds or a zone: local time without one), a date (2013-01-02), a Unix
// timestamp (1136214245, 1136214245.5), or a duration before now (10m,
// 1h30m).
func ParseLogTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !strings.ContainsAny(s, "eE") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2006-01-02T15:04:05Z), a Unix timestamp, or a duration such as 10m", s)
}

// journalTime is t as journalctl's --since/--until read it: seconds
// since the epoch, with microseconds.
func journalTime(t time.Time) string {
	us := t.UnixMicro()
	return fmt.Sprintf("@%d.%06d", us/1e6, us%1e6)
}

// Logs writes the output of the selected services' machines from the
// journal to w, each line prefixed with its service (and instance when
// there are several), as docker compose logs does. Only the machines'
// own output is shown: journal entries logged by the machine unit's
// processes, not systemd's messages about the unit.
func (h *Host) Logs(ctx context.Context, name string, w io.Writer, o LogOptions) error {
	m, svcs, err := h.selected(name, o.Services)
	if err != nil {
		return err
	}
	labels := manifestUnitNames(m)
	width := 0
	args := []string{"journalctl", "--no-pager", "--quiet", "--output=json", "--output-fields=MESSAGE,_SYSTEMD_UNIT,__REALTIME_TIMESTAMP"}
	if o.Follow {
		args = append(args, "--follow")
	}
	if o.Tail >= 0 {
		args = append(args, "--lines="+strconv.Itoa(o.Tail))
	}
	if !o.Since.IsZero() {
		args = append(args, "--since="+journalTime(o.Since))
	}
	if !o.Until.IsZero() {
		args = append(args, "--until="+journalTime(o.Until))
	}
	first := true
	for _, s := range svcs {
		for _, in := range s.Instances {
			if !first {
				args = append(args, "+")
			}
			first = false
			args = append(args, "_SYSTEMD_UNIT="+in.Unit)
			width = max(width, len(labels[in.Unit]))
		}
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- formatJournal(pr, w, labels, width, o)
	}()
	runErr := h.Runner.Run(ctx, command.Command{Args: args, Stdout: pw, Stderr: h.Stderr})
	pw.Close()
	fmtErr := <-done
	if runErr != nil && ctx.Err() == nil {
		return fmt.Errorf("logs %s: %w", name, runErr)
	}
	if fmtErr != nil {
		return fmt.Errorf("logs %s: %w", name, fmtErr)
	}
	return nil
}

// formatJournal turns journalctl's JSON lines into prefixed text lines.
func formatJournal(r io.Reader, w io.Writer, labels map[string]string, width int, o LogOptions) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var e map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		msg := journalString(e["MESSAGE"])
		var b strings.Builder
		if !o.NoPrefix {
			label := labels[journalString(e["_SYSTEMD_UNIT"])]
			fmt.Fprintf(&b, "%-*s | ", width, label)
		}
		if o.Timestamps {
			if us, err := strconv.ParseInt(journalString(e["__REALTIME_TIMESTAMP"]), 10, 64); err == nil {
				fmt.Fprintf(&b, "%s ", usTime(us))
			}
		}
		b.WriteString(strings.TrimRight(msg, "\n"))
		b.WriteByte('\n')
		if _, err := io.WriteString(w, b.String()); err != nil {
			// The reader went away (a closed pipe): stop quietly.
			io.Copy(io.Discard, r)
			return nil
		}
	}
	return sc.Err()
}

// journalString decodes a journal JSON field: a string, or an array of
// bytes for binary (non-UTF-8) data.
func journalString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var bs []byte
	var ints []int
	if json.Unmarshal(raw, &ints) == nil {
		for _, i := range ints {
			bs = append(bs, byte(i))
		}
		return string(bs)
	}
	return string(raw)
}
