package compose

import (
	"os"
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
	root *yaml.Node // the document's top node, nil if unparsable
	// err is why the file does not parse as YAML.
	err error
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
			sf.root, sf.err = parseTop(b)
		}
		s.files = append(s.files, sf)
	}
	return s
}

// parseTop returns the top node of the first YAML document in b (nil for
// an empty file) or why b is not YAML.
func parseTop(b []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

// only returns the sources restricted to one file, reading it when it is
// not among them (a file compose-go names that berth did not list).
func (s *sources) only(file string) *sources {
	one := &sources{}
	for _, f := range s.files {
		if f.path == file {
			one.files = append(one.files, f)
		}
	}
	if len(one.files) == 0 {
		one = readSources([]string{file})
	}
	return one
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

// splitKeyPath splits a dotted key path as compose-go prints it into the
// keys of the YAML tree: a key that itself contains dots (a label such as
// com.example.role) is found by joining elements while walking.
func (s *sources) splitKeyPath(dotted string) []string {
	parts := strings.Split(dotted, ".")
	var best []string
	for i := len(s.files) - 1; i >= 0; i-- {
		if keys := joinDotted(s.files[i].root, parts); len(keys) > len(best) {
			best = keys
		}
	}
	if len(best) == 0 {
		return parts
	}
	// What the files do not have keeps compose-go's splitting.
	consumed := len(strings.Split(strings.Join(best, "."), "."))
	return append(best, parts[consumed:]...)
}

// joinDotted walks parts through n, joining consecutive parts with dots
// where a mapping has such a key, and returns the keys it matched.
func joinDotted(n *yaml.Node, parts []string) []string {
	var keys []string
	for i := 0; i < len(parts) && n != nil; {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		key, used := "", 0
		switch n.Kind {
		case yaml.MappingNode:
			for j := i + 1; j <= len(parts); j++ {
				k := strings.Join(parts[i:j], ".")
				for c := 0; c+1 < len(n.Content); c += 2 {
					if n.Content[c].Value == k {
						key, used, next = k, j-i, n.Content[c+1]
					}
				}
				if next != nil {
					break
				}
			}
		case yaml.SequenceNode:
			if idx, err := strconv.Atoi(parts[i]); err == nil && idx >= 0 && idx < len(n.Content) {
				key, used, next = parts[i], 1, n.Content[idx]
			}
		}
		if next == nil {
			break
		}
		keys = append(keys, key)
		i += used
		n = next
	}
	return keys
}

// pathAtLine returns the key path of the deepest mapping key written on
// line, or nil.
func pathAtLine(n *yaml.Node, line int) []string {
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if sub := pathAtLine(v, line); sub != nil {
				return append([]string{k.Value}, sub...)
			}
			if k.Line == line {
				return []string{k.Value}
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if sub := pathAtLine(c, line); sub != nil {
				return append([]string{strconv.Itoa(i)}, sub...)
			}
		}
	}
	return nil
}
