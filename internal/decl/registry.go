package decl

import (
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// registry is what declarations declare for each other. Networks, volumes
// and images are converted before containers (Extensions), so a container
// finds every one of them here; the containers themselves are here for
// what depends on all of them: addresses and hosts files.
type registry struct {
	// networks, volumes and images by declaration file name (web.network);
	// a declaration with errors is here too (failed), so a container
	// that names it is told why it cannot have it.
	networks map[string]*netDecl
	volumes  map[string]*volDecl
	images   map[string]*imgDecl
	// containers in the order they were planned; sorted by declaration
	// name once every one is (sortedContainers).
	containers []*ctr
	sorted     []*ctr
	// layoutTags are the image names of the containers made for OCI
	// layouts (by input name): names with ':' and '/' that no Image=
	// value can carry.
	layoutTags map[string]string
}

// lateConv is a conversion that finishes after every declaration is
// planned.
type lateConv struct {
	c   *conv
	run func() ([]Unit, error)
}

// later defers the rest of c's conversion to finishLate.
func (c *conv) later(run func() ([]Unit, error)) {
	c.late = append(c.late, lateConv{c, run})
}

// renderLater defers the making of c's units to the last step of
// finishLate, where the units of all declarations are made at once, on
// every core. render must read only c's own plan and report nothing but
// its error: it runs beside the others.
func (c *conv) renderLater(render func() ([]Unit, error)) {
	c.renders = append(c.renders, lateConv{c, render})
}

// renderAll runs the deferred renders on every core and keeps their units
// in the order they were deferred. Rendering is about half of a
// generation run, and boot waits for it.
func (g *gen) renderAll() {
	type result struct {
		units []Unit
		err   error
	}
	out := make([]result, len(g.renders))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(g.renders)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(g.renders); i = int(next.Add(1)) - 1 {
				out[i].units, out[i].err = g.renders[i].run()
			}
		})
	}
	wg.Wait()
	for i, r := range g.renders {
		r.c.keep(out[i].units, out[i].err)
	}
}

// finishLate completes what waited for every declaration: subnets of the
// networks, the containers' addresses, then each deferred conversion, in
// the order they were planned, and last the default network's unit if a
// container uses it.
func (g *gen) finishLate() {
	g.checkMachines()
	g.planSubnets()
	g.allocate()
	for _, l := range g.late {
		l.c.keep(l.run())
	}
	g.renderAll()
	g.defaultNetworkUnit()
}

// sortedContainers are the planned containers by declaration name: the
// order every decision between them is made in, so the result does not
// depend on the order the files were read.
func (g *gen) sortedContainers() []*ctr {
	if len(g.reg.sorted) != len(g.reg.containers) {
		g.reg.sorted = slices.Clone(g.reg.containers)
		slices.SortFunc(g.reg.sorted, func(a, b *ctr) int { return strings.Compare(a.in.Name, b.in.Name) })
	}
	return g.reg.sorted
}

// checkMachines fails a container and an image whose machines share a
// name (a container called like an image's NAME-image machine): two units
// would replace one tree. Containers among themselves are checked where
// their names are planned.
func (g *gen) checkMachines() {
	images := map[string]*imgDecl{}
	for _, d := range g.reg.images {
		images[d.machine] = d
	}
	for _, k := range g.sortedContainers() {
		if d := images[k.spec.Name]; d != nil {
			k.fileErr("machine %s is also %s's; set ContainerName= to tell them apart", k.spec.Name, d.c.in.File.Path)
			d.c.fileErr("machine %s is also %s's; rename one of them", d.machine, k.in.File.Path)
			d.failed = true
		}
	}
}
