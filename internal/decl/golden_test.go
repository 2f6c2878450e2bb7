package decl

import (
	"bytes"
	"flag"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/berth-sh/berth/internal/goldentest"
)

var update = flag.Bool("update", false, "rewrite the expected output of golden tests and docs/generator.md")

// TestGolden generates units from each testdata/*.txtar archive: its files
// are declarations (and drop-ins) extracted to a temporary directory, the
// search path; the "want" file is what `berth-generator --dry-run` would
// print, findings first ($WORK is the directory). The archive's comment
// may say "dirs: A B" (the search path, relative, earlier wins) and
// "symlink: NAME TARGET" (one per line) and "layouts: A B" (directories of
// OCI image layouts, none by default). Every unit made is then checked
// with systemd-analyze verify, which must print nothing.
func TestGolden(t *testing.T) {
	archives, _ := filepath.Glob("testdata/*.txtar")
	if len(archives) == 0 {
		t.Fatal("no golden archives")
	}
	for _, a := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(a), ".txtar"), func(t *testing.T) {
			runGolden(t, a)
		})
	}
}

// goldenOptions are the host facts of the golden output; verify points
// the helpers at binaries that exist here, as systemd-analyze wants.
func goldenOptions(verify bool) Options {
	if verify {
		return Options{Berth: "/bin/true", Init: "/bin/true", Machinectl: "/bin/true", SocketProxyd: "/bin/true"}
	}
	return Options{}
}

func runGolden(t *testing.T, archive string) {
	ar, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dirs := []string{dir}
	var layoutDirs []string
	goldentest.Extract(t, ar, dir)
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "dirs":
			dirs = nil
			for _, d := range strings.Fields(v) {
				dirs = append(dirs, filepath.Join(dir, d))
			}
		case "layouts":
			for _, d := range strings.Fields(v) {
				layoutDirs = append(layoutDirs, filepath.Join(dir, d))
			}
		case "symlink":
			f := strings.Fields(v)
			if len(f) != 2 {
				t.Fatalf("symlink: want NAME TARGET, have %q", v)
			}
			if err := os.Symlink(f[1], filepath.Join(dir, f[0])); err != nil {
				t.Fatal(err)
			}
		}
	}
	generate := func(verify bool) ([]Unit, Findings) {
		in, lf := Load(dirs, OSDir{})
		o := goldenOptions(verify)
		var layoutFindings Findings
		o.Layouts, layoutFindings = LoadLayouts(layoutDirs, OSDir{})
		units, gf := Generate(in, o)
		return units, append(append(lf, layoutFindings...), gf...)
	}
	units, findings := generate(false)
	var got bytes.Buffer
	for _, f := range findings {
		got.WriteString(f.String() + "\n")
	}
	if len(findings) > 0 && len(units) > 0 {
		got.WriteString("\n")
	}
	if err := WriteListing(&got, units); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(got.String(), dir, "$WORK")
	goldentest.Compare(t, archive, ar, text, *update)
	if units, _ := generate(true); len(units) > 0 {
		verifyUnits(t, units)
	}
}

// verifyUnits writes units into a directory and has systemd-analyze
// verify them all together.
func verifyUnits(t *testing.T, units []Unit) {
	t.Helper()
	dir := t.TempDir()
	if err := WriteUnits(dir, units); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, u := range units {
		p := filepath.Join(dir, u.Name)
		if strings.Contains(u.Name, ":") {
			// verify reads FILE:NAME as "FILE, verified as NAME", so
			// a name with ':' (an OCI layout's unit) is passed that way.
			alias := filepath.Join(t.TempDir(), "unit"+strconv.Itoa(i)+path.Ext(u.Name))
			if err := os.WriteFile(alias, u.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			p = alias + ":" + u.Name
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	goldentest.VerifyUnits(t, dir, paths)
}
