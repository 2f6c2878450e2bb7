package decl

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/berth-sh/berth/internal/paths"
	"github.com/berth-sh/berth/internal/unit"
)

// Input is one declaration, with its drop-ins merged.
type Input struct {
	// Name is the file name: web.container, db@.container, data.volume.
	Name string
	File *File
}

// Options are the host facts the units depend on, passed in so generation
// stays a function of its inputs.
type Options struct {
	// Root is berth's state directory; MachinesDir holds machine trees.
	Root, MachinesDir string
	// Berth is the berth binary units run for pulls and helpers; Init is
	// berth-init, bind-mounted into app machines. berth-generator derives
	// both from where it is installed (paths.ForGenerator); default
	// paths.DefaultBerth and paths.DefaultInit.
	Berth, Init string
	// SocketProxyd forwards published ports.
	SocketProxyd string
	// Machinectl signals machines (ReloadSignal=).
	Machinectl string
	// Layouts are the OCI image layouts found on the host (LoadLayouts):
	// one unit per image name in each.
	Layouts []Layout
}

func (o *Options) fill() {
	o.Root = cmpOr(o.Root, paths.Root)
	o.MachinesDir = cmpOr(o.MachinesDir, paths.Machines)
	o.Berth = cmpOr(o.Berth, paths.DefaultBerth)
	o.Init = cmpOr(o.Init, paths.DefaultInit)
	o.SocketProxyd = cmpOr(o.SocketProxyd, paths.SocketProxyd)
	o.Machinectl = cmpOr(o.Machinectl, "/usr/bin/machinectl")
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Unit is one generated unit file.
type Unit struct {
	Name string // web.service
	Data []byte
	// Links are symlinks to the unit the generator makes in its output
	// directory, relative to it: what [Install] WantedBy=/RequiredBy= ask
	// for ("multi-user.target.wants/web.service"), since generated units
	// cannot be enabled.
	Links []string
	// Source is the declaration it came from (for --dry-run headers).
	Source string
}

// Extensions are the declaration kinds, in the order they are converted
// (a container refers to networks, volumes and images declared beside it).
var Extensions = []string{".network", ".volume", ".image", ".container", ".compose"}

// gen is one generation run: the inputs, what each declares, findings.
type gen struct {
	opts     Options
	inputs   map[string]Input // by file name
	findings Findings
	units    []Unit
	// reg is what declarations declare for each other: networks,
	// volumes, images, machines (registry.go).
	reg registry
	// late are conversions that finish once every declaration is
	// planned (a container's address depends on the others').
	late []lateConv
	// renders make units from finished plans, on every core.
	renders []lateConv
}

// Generate converts every declaration into units. A declaration with an
// error finding gets no unit; the others are not affected. Units come out
// sorted by name; two declarations that would make the same unit name are
// both reported and skipped.
func Generate(inputs []Input, o Options) ([]Unit, Findings) {
	o.fill()
	g := &gen{opts: o, inputs: map[string]Input{}}
	for _, in := range inputs {
		g.inputs[in.Name] = in
	}
	for _, ext := range Extensions {
		for _, in := range inputs {
			if path.Ext(in.Name) != ext {
				continue
			}
			g.convert(in)
		}
	}
	for _, l := range o.Layouts {
		g.layout(l)
	}
	g.finishLate()
	g.units = dedupe(g.units, &g.findings)
	slices.SortFunc(g.units, func(a, b Unit) int { return strings.Compare(a.Name, b.Name) })
	g.findings.sort()
	return g.units, g.findings
}

// convert runs the converter of one declaration and keeps its units only
// when it produced no error.
func (g *gen) convert(in Input) {
	c := &conv{gen: g, in: in, base: strings.TrimSuffix(in.Name, path.Ext(in.Name))}
	var units []Unit
	var err error
	switch path.Ext(in.Name) {
	case ".container":
		units, err = c.container()
	case ".network":
		units, err = c.network()
	case ".volume":
		units, err = c.volume()
	case ".image":
		units, err = c.image()
	case ".compose":
		units, err = c.compose()
	default:
		c.fileErr("%s declarations are not supported yet", path.Ext(in.Name))
	}
	c.keep(units, err)
}

// keep adds a conversion's units unless it failed.
func (c *conv) keep(units []Unit, err error) {
	if err != nil {
		c.fileErr("%v", err)
	}
	if c.failed {
		return
	}
	for i := range units {
		units[i].Source = c.in.File.Path
	}
	c.units = append(c.units, units...)
}

// conv is the conversion of one declaration.
type conv struct {
	*gen
	in     Input
	base   string // file name without extension
	failed bool
}

// fileErr reports an error about the declaration as a whole.
func (c *conv) fileErr(format string, args ...any) {
	c.add(Error, c.in.File.Path, 0, "", "", fmt.Sprintf(format, args...))
}

func (c *conv) add(sev Severity, p string, line int, group, key, msg string) {
	if sev == Error {
		c.failed = true
	}
	c.findings = append(c.findings, Finding{Severity: sev, Path: p, Line: line, Group: group, Key: key, Msg: msg})
}

// err and warn report a finding at an entry.
func (c *conv) err(group string, e Entry, format string, args ...any) {
	c.add(Error, cmpOr(e.Path, c.in.File.Path), e.Line, group, e.Key, fmt.Sprintf(format, args...))
}

func (c *conv) warn(group string, e Entry, format string, args ...any) {
	c.add(Warning, cmpOr(e.Path, c.in.File.Path), e.Line, group, e.Key, fmt.Sprintf(format, args...))
}

// marshal renders a unit, naming it in the error.
func marshal(name string, f *unit.File) (Unit, error) {
	b, err := f.Marshal()
	if err != nil {
		return Unit{}, fmt.Errorf("render %s: %w", name, err)
	}
	return Unit{Name: name, Data: b}, nil
}

// dedupe drops every unit whose name two declarations produce.
func dedupe(units []Unit, fs *Findings) []Unit {
	by := map[string][]Unit{}
	for _, u := range units {
		by[u.Name] = append(by[u.Name], u)
	}
	var out []Unit
	for _, u := range units {
		if d := by[u.Name]; len(d) > 1 {
			if d[0].Source == u.Source {
				*fs = append(*fs, Finding{Severity: Error, Path: u.Source, Msg: fmt.Sprintf("unit %s is also made by %s; neither is generated", u.Name, d[len(d)-1].Source)})
			}
			continue
		}
		out = append(out, u)
	}
	return out
}
