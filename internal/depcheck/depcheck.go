// Package depcheck lets a package's tests pin what it may import, as
// go-containerregistry's depcheck tests do. The import graph comes from
// `go list -deps -json` (test files are not part of it), and a failure
// names the chain of imports that pulls the unwanted package in, which is
// what one needs to fix it.
package depcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// HostPackages reach the host beyond files: they run programs, talk HTTP,
// or talk to systemd over D-Bus. Pure packages (models, conversions)
// forbid them.
var HostPackages = []string{
	"os/exec",
	"net/http",
	"github.com/coreos/go-systemd/v22/dbus",
	"github.com/godbus/dbus/...",
}

// Check fails t for each package in forbidden that pkg depends on,
// directly or not. pkg is a `go list` pattern naming one package, usually
// "." (the test's own package). A forbidden entry ending in "/..." forbids
// that package and every one below it.
func Check(t testing.TB, pkg string, forbidden ...string) {
	t.Helper()
	CheckExcept(t, pkg, nil, forbidden...)
}

// CheckExcept is Check, ignoring what the packages in except import:
// third-party code berth cannot change. Say at the call why each one is
// there.
func CheckExcept(t testing.TB, pkg string, except []string, forbidden ...string) {
	t.Helper()
	for _, msg := range load(t, pkg).check(except, forbidden) {
		t.Error(msg)
	}
}

// check returns a message for each forbidden package the root reaches
// through packages not in except.
func (g *graph) check(except, forbidden []string) []string {
	var out []string
	for _, chain := range g.paths(func(p string) bool { return !slices.Contains(except, p) }) {
		if dep := chain[len(chain)-1]; matchAny(dep, forbidden) {
			out = append(out, fmt.Sprintf("%s depends on %s: %s", g.root, dep, strings.Join(chain, " → ")))
		}
	}
	return out
}

// Only fails t for each dependency of pkg outside the standard library
// that allowed does not match (entries as in Check's forbidden).
func Only(t testing.TB, pkg string, allowed ...string) {
	t.Helper()
	g := load(t, pkg)
	allowed = append(allowed, g.root)
	for _, chain := range g.paths(func(string) bool { return true }) {
		if dep := chain[len(chain)-1]; !g.std[dep] && !matchAny(dep, allowed) {
			t.Errorf("%s depends on %s, which is not allowed: %s", g.root, dep, strings.Join(chain, " → "))
		}
	}
}

// graph is the import graph below root.
type graph struct {
	root    string
	imports map[string][]string
	std     map[string]bool
}

func load(t testing.TB, pkg string) *graph {
	t.Helper()
	out, err := goList(pkg, nil)
	if err != nil {
		// Tests that run under a read-only guard (package layer's)
		// cannot use the shared build cache; a fresh one works.
		out, err = goList(pkg, []string{"GOCACHE=" + t.TempDir()})
	}
	if err != nil {
		t.Fatal(err)
	}
	g := &graph{imports: map[string][]string{}, std: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Standard   bool
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		g.imports[p.ImportPath] = p.Imports
		g.std[p.ImportPath] = p.Standard
		// -deps lists a package after everything it imports.
		g.root = p.ImportPath
	}
	if g.root == "" {
		t.Fatalf("go list -deps %s: no packages", pkg)
	}
	return g
}

func goList(pkg string, env []string) ([]byte, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", pkg)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %w\n%s", pkg, err, stderr.Bytes())
	}
	return out, nil
}

// paths returns, for each package reachable from the root through the
// imports of packages follow accepts, the shortest chain of imports that
// reaches it, in breadth-first order.
func (g *graph) paths(follow func(string) bool) [][]string {
	chains := map[string][]string{g.root: {g.root}}
	queue := []string{g.root}
	var out [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p != g.root {
			out = append(out, chains[p])
		}
		if !follow(p) {
			continue
		}
		for _, q := range g.imports[p] {
			if _, seen := chains[q]; !seen {
				chains[q] = append(slices.Clip(chains[p]), q)
				queue = append(queue, q)
			}
		}
	}
	return out
}

func matchAny(p string, patterns []string) bool {
	for _, pat := range patterns {
		if tree, ok := strings.CutSuffix(pat, "/..."); ok {
			if p == tree || strings.HasPrefix(p, tree+"/") {
				return true
			}
		} else if p == pat {
			return true
		}
	}
	return false
}
