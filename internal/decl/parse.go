// Package decl turns declarations — quadlet-style unit files under
// /etc/berth/systemd (NAME.container, NAME.volume, NAME.network,
// NAME.image), berth's NAME.compose, and OCI image layouts — into systemd
// units, for berth-generator. It is pure: the generator reads the files and
// writes the units; everything in between is a function of the inputs, and
// every machine goes through machine.Spec and machine.Render*, the one path
// compose and `berth create` take too.
package decl

import (
	"fmt"
	"strings"
)

// File is a parsed declaration or drop-in: systemd's unit file syntax
// (systemd.syntax(7)), with the line of every entry kept for findings.
type File struct {
	Path     string
	Sections []*Section
}

// Section is a "[Name]" group.
type Section struct {
	Name    string
	Line    int
	Entries []Entry
}

// Entry is one "Key=Value" assignment.
type Entry struct {
	Key, Value string
	// Path and Line locate it (a drop-in's entries keep their own file).
	Path string
	Line int
}

// Parse reads a declaration. It accepts what systemd's own parser does:
// comments (# and ;), sections, "Key = Value" with blanks around '=' and
// at the ends dropped, lines continued with a trailing backslash (joined
// with a space; comment lines inside a continuation are skipped). An empty
// value is kept: for list keys it resets what came before, as in systemd.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path}
	var cur *Section
	// One string for the whole file: lines are slices of it, so parsing
	// allocates little more than the entries (the generator parses every
	// declaration at every boot).
	text := string(data)
	n := 0
	next := func() (string, bool) {
		if text == "" {
			return "", false
		}
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		n++
		return strings.TrimSpace(line), true
	}
	for {
		line, ok := next()
		if !ok {
			break
		}
		start := n
		if strings.HasSuffix(line, `\`) {
			var b strings.Builder
			for strings.HasSuffix(line, `\`) {
				b.WriteString(strings.TrimSuffix(line, `\`))
				cont, ok := next()
				if !ok {
					line = ""
					break
				}
				for ok && (strings.HasPrefix(cont, "#") || strings.HasPrefix(cont, ";")) {
					cont, ok = next()
				}
				b.WriteByte(' ')
				line = cont
			}
			b.WriteString(line)
			line = strings.TrimSpace(b.String())
		}
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[':
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("%s:%d: %q is not a section header", path, start, line)
			}
			cur = &Section{Name: line[1 : len(line)-1], Line: start}
			f.Sections = append(f.Sections, cur)
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("%s:%d: %q is not Key=Value", path, start, line)
			}
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: %s= is outside any [Section]", path, start, k)
			}
			cur.Entries = append(cur.Entries, Entry{Key: k, Value: strings.TrimSpace(v), Path: path, Line: start})
		}
	}
	return f, nil
}

// Merge adds a drop-in's sections to f, after f's own entries, as systemd
// applies drop-ins in name order after the main file.
func (f *File) Merge(dropin *File) {
	for _, s := range dropin.Sections {
		dst := f.Section(s.Name)
		if dst == nil {
			dst = &Section{Name: s.Name, Line: s.Line}
			f.Sections = append(f.Sections, dst)
		}
		dst.Entries = append(dst.Entries, s.Entries...)
	}
}

// Section returns the named section, or nil.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}
