package compose

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// sources are the parsed YAML trees of a project's files, in merge order,
// used only to say where a key was written.
type sources struct {
	files []sourceFile
}

type sourceFile struct {
	path string
	root *yaml.Node // the document's top mapping, nil if unparsable
}

// Location is where a key was written. Line is 0 when unknown.
type Location struct {
	File string
	Line int
}

func (l Location) String() string {
	switch {
	case l.File == "":
		return ""
	case l.Line == 0:
		return l.File
	}
	return l.File + ":" + strconv.Itoa(l.Line)
}

func readSources(paths []string) *sources {
	s := &sources{}
	seen := map[string]bool{}
	for _, p := range paths {
		if p == "" || p == "-" || seen[p] {
			continue
		}
		seen[p] = true
		sf := sourceFile{path: p}
		if b, err := os.ReadFile(p); err == nil {
			sf.root = parseTop(b)
		}
		s.files = append(s.files, sf)
	}
	return s
}

func parseTop(b []byte) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// locate returns where the key path (e.g. services, web, healthcheck, test)
// was last written: later files override earlier ones, as in the merge. When
// the full path is absent it falls back to the deepest prefix found, so a
// finding still points near its cause. ok reports an exact match.
func (s *sources) locate(path ...string) (loc Location, ok bool) {
	if s == nil {
		return Location{}, false
	}
	best := -1
	for i := len(s.files) - 1; i >= 0; i-- {
		f := s.files[i]
		n, depth := walk(f.root, path)
		if n != nil && depth == len(path) {
			return Location{File: f.path, Line: n.Line}, true
		}
		if n != nil && depth > best {
			best = depth
			loc = Location{File: f.path, Line: n.Line}
		}
	}
	return loc, false
}

// walk follows path through mappings (and sequences, by decimal index) and
// returns the node of the deepest key reached and how many elements matched.
// For a mapping key the key node is returned: its line is where the user
// wrote the key.
func walk(n *yaml.Node, path []string) (*yaml.Node, int) {
	var last *yaml.Node
	for depth, el := range path {
		if n == nil {
			return last, depth
		}
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		switch n.Kind {
		case yaml.MappingNode:
			var next, key *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == el {
					key, next = n.Content[i], n.Content[i+1]
				}
			}
			if key == nil {
				return last, depth
			}
			last, n = key, next
		case yaml.SequenceNode:
			idx, err := strconv.Atoi(el)
			if err != nil || idx < 0 || idx >= len(n.Content) {
				return last, depth
			}
			n = n.Content[idx]
			last = n
		default:
			return last, depth
		}
	}
	return last, len(path)
}

// validationRE matches compose-go's schema errors:
// "validating FILE: services.web.healthcheck.test must be a string".
var validationRE = regexp.MustCompile(`^validating (.+?): ([A-Za-z0-9_.\-]+) (.*)$`)

// additionalRE finds the offending key of an "additional properties" error.
var additionalRE = regexp.MustCompile(`[Aa]dditional propert(?:y|ies) '?([^' ]+)'? `)

// pathErrors are compose-go's semantic errors that name a key without a
// file: each maps to the key path to locate.
var pathErrors = []struct {
	re   *regexp.Regexp
	path func(m []string) []string
}{
	{regexp.MustCompile(`^service "([^"]+)" depends on undefined service "?([^" :]+)"?`), func(m []string) []string { return []string{"services", m[1], "depends_on", m[2]} }},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined network "?([^" :]+)"?`), func(m []string) []string { return []string{"services", m[1], "networks", m[2]} }},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined (volume|secret|config) "?([^" :]+)"?`), func(m []string) []string { return []string{"services", m[1], m[2] + "s"} }},
	{regexp.MustCompile(`^error while interpolating ([A-Za-z0-9_.\-]+):`), func(m []string) []string { return strings.Split(m[1], ".") }},
}

// LocatedError is a load error with the file:line compose-go did not give.
type LocatedError struct {
	Loc     Location
	KeyPath string
	Msg     string
	Err     error
}

func (e *LocatedError) Error() string {
	if strings.Contains(e.Msg, e.KeyPath) || strings.HasPrefix(e.Msg, "service ") {
		return fmt.Sprintf("%s: %s", e.Loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s %s", e.Loc, e.KeyPath, e.Msg)
}

func (e *LocatedError) Unwrap() error { return e.Err }

// locateError rewrites a compose-go schema error into one naming file:line.
// Errors it does not recognize are returned unchanged.
func (s *sources) locateError(err error) error {
	msg := err.Error()
	// A file that is not YAML: say which one (compose-go does not).
	for _, f := range s.files {
		b, rerr := os.ReadFile(f.path)
		if rerr != nil {
			continue
		}
		var n yaml.Node
		if yaml.Unmarshal(b, &n) != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	for _, p := range pathErrors {
		if m := p.re.FindStringSubmatch(msg); m != nil {
			path := p.path(m)
			if loc, _ := s.locate(path...); loc.File != "" {
				return &LocatedError{Loc: loc, KeyPath: strings.Join(path, "."), Msg: msg, Err: err}
			}
			return err
		}
	}
	m := validationRE.FindStringSubmatch(msg)
	if m == nil {
		return err
	}
	file, keyPath, msg := m[1], m[2], m[3]
	path := strings.Split(keyPath, ".")
	if a := additionalRE.FindStringSubmatch(msg); a != nil {
		path = append(path, a[1])
	}
	one := &sources{}
	for _, f := range s.files {
		if f.path == file {
			one.files = append(one.files, f)
		}
	}
	if len(one.files) == 0 {
		one = readSources([]string{file})
	}
	if msg == "false schema" {
		// jsonschema's wording for a key matched by no property.
		msg = "is not a compose key"
	}
	loc, _ := one.locate(path...)
	if loc.File == "" {
		loc.File = file
	}
	return &LocatedError{Loc: loc, KeyPath: keyPath, Msg: msg, Err: err}
}
