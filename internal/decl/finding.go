package decl

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Severity of a finding.
type Severity int

const (
	// Warning: the key has no effect under berth; the unit is made.
	Warning Severity = iota
	// Error: the declaration is skipped (the others still get units).
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// ErrSkipped is wrapped when a declaration has errors and gets no unit.
var ErrSkipped = errors.New("declaration skipped")

// Finding is a problem with one key of one declaration.
type Finding struct {
	Severity Severity
	Path     string
	Line     int
	Group    string // the [Section]
	Key      string
	Msg      string
}

// String is "FILE:LINE: SEVERITY: [Group] Key: message", the form the
// generator logs (so the journal names file, line and key).
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Path)
	if f.Line > 0 {
		fmt.Fprintf(&b, ":%d", f.Line)
	}
	fmt.Fprintf(&b, ": %s: ", f.Severity)
	if f.Group != "" {
		fmt.Fprintf(&b, "[%s] ", f.Group)
	}
	if f.Key != "" {
		b.WriteString(f.Key + ": ")
	}
	b.WriteString(f.Msg)
	return b.String()
}

// Findings in file, line order.
type Findings []Finding

func (fs Findings) sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Path != fs[j].Path {
			return fs[i].Path < fs[j].Path
		}
		return fs[i].Line < fs[j].Line
	})
}

// HasErrors says whether any finding is an error.
func (fs Findings) HasErrors() bool {
	for _, f := range fs {
		if f.Severity == Error {
			return true
		}
	}
	return false
}
