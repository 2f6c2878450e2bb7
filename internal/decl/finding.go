package decl

import (
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
