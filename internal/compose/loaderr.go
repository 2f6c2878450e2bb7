package compose

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LocatedError is a load error with the key path and file:line compose-go
// did not give.
type LocatedError struct {
	Loc     Location
	KeyPath string
	Msg     string
	Err     error
	// style says how Msg and KeyPath read together.
	style locStyle
}

type locStyle int

const (
	// styleKey prints "LOC: KEY: MSG" unless MSG names KEY already.
	styleKey locStyle = iota
	// styleSentence prints "LOC: KEY MSG": jsonschema's "is not …".
	styleSentence
	// styleMsg prints "LOC: MSG": compose-go's wording names the key.
	styleMsg
)

func (e *LocatedError) Error() string {
	// A message of several lines (an include cycle) is indented so it
	// reads as one among errors.Join's lines.
	msg := strings.ReplaceAll(e.Msg, "\n", "\n\t")
	loc := e.Loc.String()
	switch {
	case e.KeyPath == "" || e.style == styleMsg || strings.Contains(e.Msg, e.KeyPath):
		return loc + ": " + msg
	case e.style == styleSentence:
		return loc + ": " + e.KeyPath + " " + msg
	}
	return loc + ": " + e.KeyPath + ": " + msg
}

func (e *LocatedError) Unwrap() error { return e.Err }

// validationRE matches compose-go's schema errors:
// "validating FILE: services.web.healthcheck.test must be a string".
var validationRE = regexp.MustCompile(`^validating (.+?): ([A-Za-z0-9_.\-]+) (.*)$`)

// additionalRE finds the offending key of an "additional properties" error.
var additionalRE = regexp.MustCompile(`[Aa]dditional propert(?:y|ies) '?([^' ]+)'? `)

// pathErrors are compose-go's errors that name a service and what it
// refers to: each maps to the key paths that can hold the reference, the
// first written one wins. named: the message names the first key in its
// own words, so the key path is not printed before it.
var pathErrors = []struct {
	re    *regexp.Regexp
	named bool
	paths func(m []string) [][]string
}{
	{regexp.MustCompile(`^service "([^"]+)" depends on undefined service "?([^" :]+)"?`), true, func(m []string) [][]string {
		// compose-go adds network_mode: service:X, volumes_from and
		// links to depends_on.
		return [][]string{{"services", m[1], "depends_on", m[2]}, {"services", m[1], "network_mode"}, {"services", m[1], "volumes_from"}, {"services", m[1], "links"}}
	}},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined network "?([^" :]+)"?`), true, func(m []string) [][]string { return [][]string{{"services", m[1], "networks", m[2]}} }},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined (volume|secret|config) "?([^" :]+)"?`), true, func(m []string) [][]string { return [][]string{{"services", m[1], m[2] + "s"}} }},
	// An extends cycle: which service compose-go starts from varies with
	// map order, so probes could not reproduce the message.
	{regexp.MustCompile(`^Circular reference:\n\s*(\S+) in `), false, func(m []string) [][]string { return [][]string{{"services", m[1], "extends"}} }},
}

// keyPathRE finds a key path in compose-go's prose, in its three spellings:
// services.web.ports (tree paths, with .[] for "some element"),
// services[web].gpus[0].count (mapstructure) and volumes.[0].
var keyPathRE = regexp.MustCompile(`(?:^|[\s'"(])((?:services|networks|volumes|secrets|configs|models|include)(?:\.[^\s.:'"\[\]]+|\.?\[[^\]\s]*\])+)`)

// yamlLineRE finds a line in a YAML parser's message: "yaml: line 4: …",
// "line 4, column 12: …", "line 1: line 5: mapping key …".
var yamlLineRE = regexp.MustCompile(`line (\d+)(?:, column \d+)?: `)

// dotenvRE matches a parse error of an env file: "failed to read FILE: line
// N: MSG".
var dotenvRE = regexp.MustCompile(`^failed to read (.+?): line (\d+): (.*)$`)

// locateError rewrites a compose-go load error into one naming the key
// path and file:line. It uses, in order: the file compose-go names with
// the key path of a schema error; the service and reference a consistency
// error names; the key path in the message; and otherwise, when pr can
// reproduce the error, loads of reduced copies of the project that find
// which service, key and element cause it. What it cannot place keeps
// compose-go's words and names the files.
func (s *sources) locateError(err error, pr *prober) error {
	if parts := joined(err); parts != nil {
		out := make([]error, len(parts))
		for i, e := range parts {
			out[i] = s.locateError(e, pr)
		}
		return errors.Join(out...)
	}
	if le := s.yamlError(err); le != nil {
		return le
	}
	msg := err.Error()
	if m := validationRE.FindStringSubmatch(msg); m != nil {
		return s.schemaError(err, m[1], m[2], m[3])
	}
	for _, p := range pathErrors {
		if m := p.re.FindStringSubmatch(msg); m != nil {
			paths := p.paths(m)
			if i, loc := s.locateFirst(paths); loc.File != "" {
				le := &LocatedError{Loc: loc, KeyPath: strings.Join(paths[i], "."), Msg: msg, Err: err}
				if i == 0 && p.named {
					le.style = styleMsg
				}
				return le
			}
		}
	}
	if fields := decodeErrors(err); len(fields) > 0 {
		out := make([]error, len(fields))
		for i, f := range fields {
			out[i] = s.at(f, parseKeyPath(f.Name()), f.Unwrap().Error(), "", pr)
		}
		return errors.Join(out...)
	}
	if m := dotenvRE.FindStringSubmatch(msg); m != nil {
		msg = m[1] + ":" + m[2] + ": " + m[3]
	}
	tok := ""
	var path []string
	if m := keyPathRE.FindStringSubmatch(msg); m != nil {
		tok, path = m[1], parseKeyPath(m[1])
	}
	return s.at(err, path, msg, tok, pr)
}

// locateFirst locates the first of paths that is written, else the
// deepest written part of the first; i is the path's index.
func (s *sources) locateFirst(paths [][]string) (i int, loc Location) {
	for i, p := range paths {
		if loc, ok := s.locate(p...); ok {
			return i, loc
		}
	}
	loc, _ = s.locate(paths[0]...)
	return 0, loc
}

// at locates err from the key path compose-go named (nil: none), narrowed
// down by pr when it can reproduce the error.
func (s *sources) at(err error, path []string, msg, tok string, pr *prober) error {
	file := ""
	if path != nil {
		path = s.splitKeyPath(strings.Join(concrete(path), "."))
		if p, f, ok := pr.narrow(path); ok {
			path, file = p, f
		}
	} else if p, f, ok := pr.find(); ok {
		path, file = p, f
	}
	if len(path) == 0 {
		return s.namedFiles(err, msg)
	}
	src := s
	if file != "" {
		src = s.only(file)
	}
	loc, _ := src.locate(path...)
	if loc.File == "" {
		return s.namedFiles(err, msg)
	}
	key := strings.Join(withoutMerges(path), ".")
	if tok != "" && key != tok {
		// The message starts with the shallower path compose-go gave:
		// print the narrowed one instead.
		msg = strings.TrimPrefix(msg, tok+": ")
	}
	return &LocatedError{Loc: loc, KeyPath: key, Msg: msg, Err: err}
}

// withoutMerges drops YAML merge keys (<<, and the index into a list of
// merged mappings) from a key path: compose-go sees the merged keys.
func withoutMerges(path []string) []string {
	out := make([]string, 0, len(path))
	for i := 0; i < len(path); i++ {
		if path[i] != "<<" {
			out = append(out, path[i])
			continue
		}
		if i+1 < len(path) {
			if _, err := strconv.Atoi(path[i+1]); err == nil {
				i++
			}
		}
	}
	return out
}

// namedFiles says in which files an error compose-go did not place is.
func (s *sources) namedFiles(err error, msg string) error {
	var names []string
	for _, f := range s.files {
		names = append(names, f.path)
	}
	if len(names) == 0 {
		return err
	}
	return &LocatedError{Loc: Location{File: strings.Join(names, ", ")}, Msg: msg, Err: err}
}

// schemaError locates a jsonschema error in the file compose-go named.
func (s *sources) schemaError(err error, file, keyPath, msg string) error {
	one := s.only(file)
	path := one.splitKeyPath(keyPath)
	if a := additionalRE.FindStringSubmatch(msg); a != nil {
		path = append(path, a[1])
	}
	style := styleSentence
	if msg == "false schema" {
		// jsonschema's wording for a key matched by no property.
		msg = "is not a compose key"
	}
	loc, _ := one.locate(path...)
	if loc.File == "" {
		loc.File = file
	}
	return &LocatedError{Loc: loc, KeyPath: keyPath, Msg: msg, Err: err, style: style}
}

// yamlError names file and line of a file that is not YAML, has a key
// twice or whose top level is not a mapping; compose-go names the file at
// best. Nil for other errors.
func (s *sources) yamlError(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "yaml: ") && !strings.Contains(msg, ": yaml: ") && !strings.Contains(msg, "top-level object must be a mapping") {
		return nil
	}
	for _, f := range s.files {
		if f.err != nil {
			// A syntax error: compose-go's parser says more than
			// yaml.v3; either gives the line.
			line, _ := lastLine(msg)
			if line == 0 {
				line, _ = lastLine(f.err.Error())
			}
			return &LocatedError{Loc: Location{File: f.path, Line: line}, Msg: strings.TrimPrefix(msg, "failed to parse "+f.path+": "), Err: err}
		}
		if f.root != nil && f.root.Kind != yaml.MappingNode && f.root.Tag != "!!null" {
			return &LocatedError{Loc: Location{File: f.path, Line: f.root.Line}, Msg: "the top level is not a mapping", Err: err}
		}
	}
	// compose-go's parser refuses what yaml.v3 builds a tree of (a key
	// written twice) and names the line.
	rest, ok := strings.CutPrefix(msg, "failed to parse ")
	if !ok {
		return nil
	}
	file, rest, _ := strings.Cut(rest, ": ")
	line, text := lastLine(rest)
	var key []string
	if one := s.only(file); len(one.files) > 0 && strings.HasPrefix(text, "mapping key ") {
		key = pathAtLine(one.files[0].root, line)
	}
	return &LocatedError{Loc: Location{File: file, Line: line}, KeyPath: strings.Join(key, "."), Msg: text, Err: err}
}

// lastLine finds the last "line N: " in a YAML parser's message and returns
// N and what follows.
func lastLine(msg string) (int, string) {
	all := yamlLineRE.FindAllStringSubmatchIndex(msg, -1)
	if len(all) == 0 {
		return 0, msg
	}
	m := all[len(all)-1]
	n, _ := strconv.Atoi(msg[m[2]:m[3]])
	return n, msg[m[1]:]
}

// joined returns the parts of an errors.Join error, nil for others.
func joined(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	parts := j.Unwrap()
	msgs := make([]string, len(parts))
	for i, p := range parts {
		msgs[i] = p.Error()
	}
	if strings.Join(msgs, "\n") != err.Error() {
		// fmt.Errorf with several %w: one message.
		return nil
	}
	return parts
}

// fieldError is mapstructure's DecodeError, which names the field as
// services[web].mem_limit; an interface so berth needs not import it.
type fieldError interface {
	error
	Name() string
	Unwrap() error
}

// decodeErrors returns the innermost field errors in err.
func decodeErrors(err error) []fieldError {
	var out []fieldError
	var visit func(error)
	visit = func(e error) {
		if f, ok := e.(fieldError); ok {
			n := len(out)
			visit(f.Unwrap())
			if len(out) == n {
				out = append(out, f)
			}
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, c := range u.Unwrap() {
				visit(c)
			}
		case interface{ Unwrap() error }:
			if c := u.Unwrap(); c != nil {
				visit(c)
			}
		}
	}
	visit(err)
	return out
}

// parseKeyPath splits services[web].gpus[0].count, services.web.ports.[]
// or volumes.[0] into keys; "[]" stands for an unknown element.
func parseKeyPath(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part[i:], ']')
			if j < 0 {
				out = append(out, part[i:])
				break
			}
			el := part[i+1 : i+j]
			if el == "" {
				el = "[]"
			}
			out = append(out, el)
			part = part[i+j+1:]
		}
	}
	return out
}

// concrete returns path up to its first unknown element.
func concrete(path []string) []string {
	for i, p := range path {
		if p == "[]" {
			return path[:i]
		}
	}
	return path
}

// mentionedAt returns where word last occurs in msg as a whole word, -1 if
// it does not.
func mentionedAt(msg, word string) int {
	if word == "" {
		return -1
	}
	re := regexp.MustCompile(`(?:^|[^A-Za-z0-9_])` + regexp.QuoteMeta(word) + `(?:[^A-Za-z0-9_]|$)`)
	at := -1
	for _, loc := range re.FindAllStringIndex(msg, -1) {
		at = loc[0]
	}
	return at
}
