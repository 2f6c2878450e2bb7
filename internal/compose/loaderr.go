package compose

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
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

// pathErrors are compose-go's consistency errors that name a service and
// what it refers to: each maps to the key paths that can hold the
// reference, the first written one wins.
var pathErrors = []struct {
	re    *regexp.Regexp
	paths func(m []string) [][]string
}{
	{regexp.MustCompile(`^service "([^"]+)" depends on undefined service "?([^" :]+)"?`), func(m []string) [][]string {
		// compose-go adds network_mode: service:X, volumes_from and
		// links to depends_on.
		return [][]string{{"services", m[1], "depends_on", m[2]}, {"services", m[1], "network_mode"}, {"services", m[1], "volumes_from"}, {"services", m[1], "links"}}
	}},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined network "?([^" :]+)"?`), func(m []string) [][]string { return [][]string{{"services", m[1], "networks", m[2]}} }},
	{regexp.MustCompile(`^service "([^"]+)" refers to undefined (volume|secret|config) "?([^" :]+)"?`), func(m []string) [][]string { return [][]string{{"services", m[1], m[2] + "s"}} }},
}

// keyPathRE finds a key path in compose-go's prose, in its three spellings:
// services.web.ports (tree paths, with .[] for "some element"),
// services[web].gpus[0].count (mapstructure) and volumes.[0].
var keyPathRE = regexp.MustCompile(`(?:^|[\s'"(])((?:services|networks|volumes|secrets|configs|models|include)(?:\.[^\s.:'"\[\]]+|\.?\[[^\]\s]*\])+)`)

// yamlLineRE finds a line in a YAML parser's message: "yaml: line 4: …",
// "line 1: line 5: mapping key …".
var yamlLineRE = regexp.MustCompile(`line (\d+): `)

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
				if i == 0 {
					// compose-go's words name this key.
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
	key := strings.Join(path, ".")
	if tok != "" && key != tok {
		// The message starts with the shallower path compose-go gave:
		// print the narrowed one instead.
		msg = strings.TrimPrefix(msg, tok+": ")
	}
	return &LocatedError{Loc: loc, KeyPath: key, Msg: msg, Err: err}
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
	if !strings.Contains(msg, "yaml: ") && !strings.Contains(msg, "top-level object must be a mapping") {
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
	// A key written twice: yaml.v3 builds the tree anyway, compose-go's
	// parser names the line.
	rest, ok := strings.CutPrefix(msg, "failed to parse ")
	if !ok {
		return nil
	}
	file, rest, _ := strings.Cut(rest, ": ")
	line, text := lastLine(rest)
	var key []string
	if one := s.only(file); len(one.files) > 0 {
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

// prober reproduces a failed load on reduced copies of the project's
// files to find which service, key and element an error comes from when
// compose-go's message does not say. Each probe is a load with the failed
// load's own options, so a copy that still holds the cause fails with the
// same message; a copy without it fails differently or not at all.
type prober struct {
	ctx   context.Context
	wd    string
	env   types.Mapping
	opts  loader.Options
	files []probeFile
	want  string
	runs  int
	// base caches whether the unreduced copy fails as the load did.
	base *bool
}

type probeFile struct {
	name string
	doc  *yaml.Node // the document with aliases expanded; nil if empty
}

// maxProbes bounds the loads spent on one error.
const maxProbes = 400

// stubImage stands in for what a probe removed so the service stays valid.
const stubImage = "berth-probe"

// newProber prepares probes for the load po failed with; opts are the
// loader options that load used. Nil when the files cannot be reproduced
// (standard input, several YAML documents in one file).
func newProber(ctx context.Context, po *cli.ProjectOptions, opts *loader.Options, failed error) *prober {
	if opts == nil || failed == nil {
		return nil
	}
	snap := *opts
	wd, err := po.GetWorkingDir()
	if err != nil {
		return nil
	}
	details, err := po.ReadConfigFiles(ctx, wd, po)
	if err != nil {
		return nil
	}
	p := &prober{ctx: ctx, wd: details.WorkingDir, env: po.Environment, opts: snap, want: failed.Error()}
	for _, cf := range details.ConfigFiles {
		if cf.IsStdin() {
			return nil
		}
		doc, ok := oneDocument(cf.Content)
		if !ok {
			return nil
		}
		p.files = append(p.files, probeFile{name: cf.Filename, doc: doc})
	}
	return p
}

// oneDocument parses b, which must hold at most one YAML document, and
// expands its aliases so parts can be removed independently.
func oneDocument(b []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, true
	} else if err != nil {
		return nil, false
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return expand(&doc), true
}

// expand deep-copies n with aliases replaced by copies of what they name.
func expand(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	c := *n
	c.Anchor, c.Alias = "", nil
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			c.Content[i] = expand(k)
		}
	}
	return &c
}

// run loads the files after mut changed a copy of them and returns the
// error message ("" for success); ok is false when probes are used up.
func (p *prober) run(mut func(docs []*yaml.Node)) (msg string, ok bool) {
	if p.runs >= maxProbes {
		return "", false
	}
	p.runs++
	docs := make([]*yaml.Node, len(p.files))
	for i, f := range p.files {
		if f.doc != nil {
			docs[i] = expand(f.doc)
		}
	}
	if mut != nil {
		mut(docs)
	}
	cfs := make([]types.ConfigFile, len(docs))
	for i, d := range docs {
		b := []byte{}
		if d != nil {
			var err error
			if b, err = yaml.Marshal(d); err != nil {
				return err.Error(), true
			}
		}
		cfs[i] = types.ConfigFile{Filename: p.files[i].name, Content: b}
	}
	opts := p.opts
	_, err := loader.LoadWithContext(p.ctx, types.ConfigDetails{WorkingDir: p.wd, ConfigFiles: cfs, Environment: p.env},
		func(o *loader.Options) {
			*o = opts
			o.Listeners = nil
			o.ResourceLoaders = opts.RemoteResourceLoaders()
		})
	if err != nil {
		return err.Error(), true
	}
	return "", true
}

// reproduces reports whether the unreduced files fail as the load did.
func (p *prober) reproduces() bool {
	if p.base == nil {
		msg, _ := p.run(nil)
		ok := msg == p.want
		p.base = &ok
	}
	return *p.base
}

// quiet silences compose-go's warnings (unset variables, deprecated keys)
// during probes: the load already printed them once. compose-go logs
// through logrus's global logger; berth's CLI shows its warnings.
func quiet() (restore func()) {
	lvl := logrus.GetLevel()
	logrus.SetLevel(logrus.ErrorLevel)
	return func() { logrus.SetLevel(lvl) }
}

// narrow descends from start, a key path compose-go named, to the
// deepest key or element that causes the error. file is the file the
// result is in when it is one file's sequence element, else "".
func (p *prober) narrow(start []string) (path []string, file string, ok bool) {
	if p == nil {
		return nil, "", false
	}
	defer quiet()()
	if !p.reproduces() {
		return nil, "", false
	}
	path, file = p.search(start)
	return path, file, true
}

// find looks for the cause of an error that names no key: first among the
// services, then the includes and the top-level resources.
func (p *prober) find() (path []string, file string, ok bool) {
	if p == nil {
		return nil, "", false
	}
	defer quiet()()
	if !p.reproduces() {
		return nil, "", false
	}
	for _, top := range []string{"services", "include", "secrets", "configs", "volumes", "networks", "models"} {
		if path, file := p.search([]string{top}); len(path) > 1 {
			return path, file, true
		}
	}
	return nil, "", false
}

// cand is a part of the project a probe removes.
type cand struct {
	path []string
	file int // the file of a sequence element, -1: the key in every file
	// gone: without it, the load succeeded; otherwise it failed
	// differently.
	gone bool
}

// search descends from start while exactly one child is the cause.
func (p *prober) search(start []string) (path []string, file string) {
	path, fi := start, -1
	for {
		var hits []cand
		for _, c := range p.children(path, fi) {
			msg, ok := p.run(func(docs []*yaml.Node) { p.remove(docs, c) })
			if !ok {
				return path, p.fileName(fi)
			}
			if msg != p.want {
				c.gone = msg == ""
				hits = append(hits, c)
			}
		}
		c, ok := p.pick(hits)
		if !ok {
			return path, p.fileName(fi)
		}
		path, fi = c.path, c.file
	}
}

func (p *prober) fileName(i int) string {
	if i < 0 {
		return ""
	}
	return p.files[i].name
}

// pick chooses the cause among the parts whose removal changed the error:
// the only one; else the only one whose removal let the load succeed;
// else, of those, the one the message names last (for two keys that
// conflict, compose-go names the one it complains about last).
func (p *prober) pick(hits []cand) (cand, bool) {
	if len(hits) > 1 {
		var gone []cand
		for _, h := range hits {
			if h.gone {
				gone = append(gone, h)
			}
		}
		if len(gone) > 0 {
			hits = gone
		}
	}
	switch len(hits) {
	case 0:
		return cand{}, false
	case 1:
		return hits[0], true
	}
	best, at := cand{}, -1
	for _, h := range hits {
		if i := mentionedAt(p.want, h.path[len(h.path)-1]); i > at {
			best, at = h, i
		}
	}
	return best, at >= 0
}

// children are the parts under path a probe can remove: each service of
// services, each key of a mapping, each element of a sequence (per file).
func (p *prober) children(path []string, file int) []cand {
	var out []cand
	seen := map[string]bool{}
	for i, f := range p.files {
		if file >= 0 && i != file {
			continue
		}
		n := nodeAt(f.doc, path)
		if n == nil {
			continue
		}
		switch n.Kind {
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				key := n.Content[k].Value
				if !seen[key] {
					seen[key] = true
					out = append(out, cand{path: appendPath(path, key), file: file})
				}
			}
		case yaml.SequenceNode:
			for k := range n.Content {
				out = append(out, cand{path: appendPath(path, strconv.Itoa(k)), file: i})
			}
		}
	}
	return out
}

func appendPath(path []string, el string) []string {
	return append(append([]string(nil), path...), el)
}

// remove takes c out of docs. A service is replaced by a stub rather than
// removed, so what depends on it still loads; a service that loses its
// image: or build: gets a stub image so it stays loadable.
func (p *prober) remove(docs []*yaml.Node, c cand) {
	parent, last := c.path[:len(c.path)-1], c.path[len(c.path)-1]
	isService := len(parent) == 1 && parent[0] == "services"
	for i, d := range docs {
		if c.file >= 0 && i != c.file {
			continue
		}
		n := nodeAt(d, parent)
		switch {
		case n == nil:
		case isService:
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == last {
					n.Content[k+1] = stubService()
				}
			}
		case n.Kind == yaml.MappingNode:
			kept := n.Content[:0]
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value != last {
					kept = append(kept, n.Content[k], n.Content[k+1])
				}
			}
			n.Content = kept
		case n.Kind == yaml.SequenceNode:
			if idx, err := strconv.Atoi(last); err == nil && idx < len(n.Content) {
				n.Content = append(n.Content[:idx], n.Content[idx+1:]...)
			}
		}
	}
	if len(parent) == 2 && parent[0] == "services" && hasImage(p.originals(), parent) && !hasImage(docs, parent) {
		for _, d := range docs {
			if n := nodeAt(d, parent); n != nil && n.Kind == yaml.MappingNode {
				n.Content = append(n.Content, scalar("image"), scalar(stubImage))
				break
			}
		}
	}
}

func (p *prober) originals() []*yaml.Node {
	docs := make([]*yaml.Node, len(p.files))
	for i, f := range p.files {
		docs[i] = f.doc
	}
	return docs
}

// hasImage reports whether the service at path has image: or build: in
// any of docs.
func hasImage(docs []*yaml.Node, path []string) bool {
	for _, d := range docs {
		n := nodeAt(d, path)
		if n == nil || n.Kind != yaml.MappingNode {
			continue
		}
		for k := 0; k+1 < len(n.Content); k += 2 {
			if v := n.Content[k].Value; v == "image" || v == "build" {
				return true
			}
		}
	}
	return false
}

func stubService() *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalar("image"), scalar(stubImage)}}
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }

// nodeAt returns the value at path in a document (aliases expanded), or
// nil.
func nodeAt(doc *yaml.Node, path []string) *yaml.Node {
	if doc == nil || len(doc.Content) == 0 {
		return nil
	}
	n := doc.Content[0]
	for _, el := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Content[k].Value == el {
					next = n.Content[k+1]
				}
			}
		case yaml.SequenceNode:
			if idx, err := strconv.Atoi(el); err == nil && idx >= 0 && idx < len(n.Content) {
				next = n.Content[idx]
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return n
}
