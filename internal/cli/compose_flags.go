package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"
)

// secondsFlag is a timeout as docker compose takes it, a number of
// seconds ("30"), or as a Go duration ("90s", "2m"), which berth's
// earlier versions took. set says whether it was given.
type secondsFlag struct {
	d   time.Duration
	set bool
}

func newSecondsFlag(def time.Duration) *secondsFlag { return &secondsFlag{d: def} }

func (f *secondsFlag) String() string {
	if f.d%time.Second == 0 {
		return strconv.Itoa(int(f.d / time.Second))
	}
	return f.d.String()
}

func (f *secondsFlag) Set(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return fmt.Errorf("%q: want a number of seconds ≥ 0", s)
		}
		f.d, f.set = time.Duration(n)*time.Second, true
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q: want a number of seconds (docker's form) or a duration such as 90s", s)
	}
	f.d, f.set = d, true
	return nil
}

func (f *secondsFlag) Type() string { return "seconds" }

// ptr is the timeout when given, nil otherwise.
func (f *secondsFlag) ptr() *time.Duration {
	if !f.set {
		return nil
	}
	d := f.d
	return &d
}

// unsupported is the error of a docker compose flag berth accepts only to
// refuse it with the reason, rather than failing on an unknown flag.
func unsupported(verb, flag, why string) error {
	return fmt.Errorf("compose %s: %s is not supported: %s (see docs/compose-cli.md)", verb, flag, why)
}

// writeJSON prints v as indented JSON without HTML escaping ("->" stays
// "->"), the form of every --format json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
