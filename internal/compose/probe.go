package compose

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
	"gopkg.in/yaml.v3"
)

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
	// stubbed are the services every probe stubs before its own change:
	// those found not to matter, so the probes load one service.
	stubbed []cand
}

type probeFile struct {
	name string
	doc  *yaml.Node // the document with aliases expanded; nil if empty
}

// maxProbes bounds the loads spent on one error.
const maxProbes = 200

// stubImage stands in for what a probe removed so the service stays valid.
const stubImage = "berth-probe"

// newProber prepares probes for the load po failed with; opts are the
// loader options that load used. Nil when the files cannot be reproduced
// (standard input, several YAML documents in one file).
func newProber(ctx context.Context, po *cli.ProjectOptions, opts *loader.Options, failed error) *prober {
	if opts == nil || opts.Interpolate == nil || failed == nil {
		// The load failed before compose-go's loader set its options.
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
// expands its aliases so parts can be removed independently. A document
// that expands beyond maxNodes (an alias bomb) is not probed.
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
	budget := maxNodes
	n := expand(&doc, &budget)
	return n, n != nil
}

// maxNodes bounds the size of an expanded document.
const maxNodes = 100000

// expand deep-copies n with aliases replaced by copies of what they name,
// spending one of budget per node; nil when the budget runs out.
func expand(n *yaml.Node, budget *int) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if *budget--; *budget < 0 {
		return nil
	}
	c := *n
	c.Anchor, c.Alias = "", nil
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			if c.Content[i] = expand(k, budget); c.Content[i] == nil {
				return nil
			}
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
	defer func() {
		// A reduced copy is input no user wrote; if compose-go panics
		// on it, that copy just fails differently.
		if r := recover(); r != nil {
			msg, ok = fmt.Sprint("panic: ", r), true
		}
	}()
	docs := make([]*yaml.Node, len(p.files))
	for i, f := range p.files {
		if f.doc != nil {
			budget := maxNodes
			docs[i] = expand(f.doc, &budget)
		}
	}
	for _, c := range p.stubbed {
		p.remove(docs, c)
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

// search descends from start while one child is the cause: a service
// found by bisection, a key or element by trying each.
func (p *prober) search(start []string) (path []string, file string) {
	path, fi := start, -1
	focused := false
	defer func() { p.stubbed = nil }()
	for {
		if len(path) >= 2 && path[0] == "services" && !focused {
			p.focus(path[1])
			focused = true
		}
		var c cand
		var ok bool
		if len(path) == 1 && path[0] == "services" {
			c, ok = p.bisect(p.children(path, fi))
		} else {
			c, ok = p.pick(p.hits(p.children(path, fi)))
		}
		if !ok {
			return path, p.fileName(fi)
		}
		path, fi = c.path, c.file
	}
}

// hits are the candidates whose removal changes the error.
func (p *prober) hits(cands []cand) []cand {
	var hits []cand
	for _, c := range cands {
		msg, ok := p.run(func(docs []*yaml.Node) { p.remove(docs, c) })
		if !ok {
			return nil
		}
		if msg != p.want {
			c.gone = msg == ""
			hits = append(hits, c)
		}
	}
	return hits
}

// bisect finds the service whose stub changes the error by stubbing half
// of the candidates at a time: a project of many services costs a few
// loads, not one per service.
func (p *prober) bisect(cands []cand) (cand, bool) {
	for len(cands) > 1 {
		half := cands[:len(cands)/2]
		msg, ok := p.run(func(docs []*yaml.Node) {
			for _, c := range half {
				p.remove(docs, c)
			}
		})
		if !ok {
			return cand{}, false
		}
		if msg != p.want {
			cands = half
		} else {
			cands = cands[len(half):]
		}
	}
	if hits := p.hits(cands); len(hits) == 1 {
		return hits[0], true
	}
	return cand{}, false
}

// focus stubs every service but name in the probes that follow, when the
// error stays the same without them.
func (p *prober) focus(name string) {
	var others []cand
	for _, c := range p.children([]string{"services"}, -1) {
		if c.path[1] != name {
			others = append(others, c)
		}
	}
	if len(others) == 0 {
		return
	}
	msg, ok := p.run(func(docs []*yaml.Node) {
		for _, c := range others {
			p.remove(docs, c)
		}
	})
	if ok && msg == p.want {
		p.stubbed = others
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
