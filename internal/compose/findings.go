package compose

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/berth-sh/berth/internal/keytable"
)

// Severity of a finding (package keytable).
type Severity = keytable.Severity

// The severities.
const (
	Warning = keytable.Warning
	Error   = keytable.Error
)

// ErrUnsupported is returned (wrapped) when a project uses keys or values
// berth cannot convert without changing behaviour.
var ErrUnsupported = errors.New("compose project uses unsupported keys")

// Finding is one use of a key berth does not fully support.
type Finding struct {
	Severity Severity
	// Service is empty for top-level keys.
	Service string
	// Key is the key path, e.g. services.web.build.
	Key string
	Loc Location
	Msg string
}

func (f Finding) String() string {
	var b strings.Builder
	if l := f.Loc.String(); l != "" {
		b.WriteString(l + ": ")
	}
	fmt.Fprintf(&b, "%s: %s: %s", f.Severity, f.Key, f.Msg)
	return b.String()
}

// Findings is a list of findings in a stable order.
type Findings []Finding

// Errors returns only the error findings.
func (fs Findings) Errors() Findings {
	var out Findings
	for _, f := range fs {
		if f.Severity == Error {
			out = append(out, f)
		}
	}
	return out
}

// Err returns an error naming every error finding, or nil.
func (fs Findings) Err() error {
	errs := fs.Errors()
	if len(errs) == 0 {
		return nil
	}
	lines := make([]string, len(errs))
	for i, f := range errs {
		lines[i] = f.String()
	}
	return fmt.Errorf("%w:\n  %s", ErrUnsupported, strings.Join(lines, "\n  "))
}

func (fs Findings) sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Key != fs[j].Key {
			return fs[i].Key < fs[j].Key
		}
		return fs[i].Msg < fs[j].Msg
	})
}

// findings collects findings, locating each key in the project's sources.
type findings struct {
	src  *sources
	list Findings
}

// add records a finding for the key path (split on dots by the caller).
func (c *findings) add(sev Severity, service string, path []string, format string, args ...any) {
	loc, _ := c.src.locate(path...)
	c.list = append(c.list, Finding{
		Severity: sev,
		Service:  service,
		Key:      strings.Join(path, "."),
		Loc:      loc,
		Msg:      fmt.Sprintf(format, args...),
	})
}

func (c *findings) svc(sev Severity, service string, key string, format string, args ...any) {
	path := append([]string{"services", service}, strings.Split(key, ".")...)
	c.add(sev, service, path, format, args...)
}
