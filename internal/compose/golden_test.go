package compose

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"

	"github.com/berth-sh/berth/internal/goldentest"
)

var update = flag.Bool("update", false, "rewrite the expected output of golden tests")

// requireTools reports whether missing system tools must fail tests
// instead of skipping them (CI sets it).
func requireTools() bool { return goldentest.RequireTools() }

// TestGolden converts each testdata/golden/*.txtar project and compares
// the listing (or the error) with the archive's want file. The archive's
// comment may set "files:", "project:", "profiles:", "env-files:" and
// "env:" (space separated) for loading. $WORK in the expected text stands
// for the directory the archive was extracted to.
func TestGolden(t *testing.T) {
	archives, _ := filepath.Glob("testdata/golden/*.txtar")
	if len(archives) == 0 {
		t.Fatal("no golden archives")
	}
	for _, a := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(a), ".txtar"), func(t *testing.T) {
			runGolden(t, a)
		})
	}
}

func runGolden(t *testing.T, archive string) {
	ar, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goldentest.Extract(t, ar, dir)
	opts := LoadOptions{WorkDir: dir}
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		vs := strings.Fields(v)
		switch strings.TrimSpace(k) {
		case "files":
			for _, f := range vs {
				opts.Files = append(opts.Files, filepath.Join(dir, f))
			}
		case "project":
			opts.ProjectName = strings.TrimSpace(v)
		case "profiles":
			opts.Profiles = vs
		case "env-files":
			for _, f := range vs {
				opts.EnvFiles = append(opts.EnvFiles, filepath.Join(dir, f))
			}
		case "env":
			opts.Environ = vs
		}
	}
	var got bytes.Buffer
	var res *Result
	p, err := Load(context.Background(), opts)
	if err == nil {
		res, err = Convert(p, testOptions())
	}
	if res != nil {
		for _, f := range res.Findings {
			if f.Severity == Warning {
				got.WriteString(f.String() + "\n")
			}
		}
	}
	if err != nil {
		got.WriteString("ERROR: " + err.Error() + "\n")
	} else if err := WriteListing(&got, res.Files); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(got.String(), dir, "$WORK")
	if goldentest.Compare(t, archive, ar, text, *update) {
		return
	}
	if err == nil {
		// Same project again with helper binaries that exist here, so
		// systemd-analyze can check every unit.
		vopts := testOptions()
		vopts.Berth, vopts.Init = "/bin/true", "/bin/true"
		res, err := Convert(p, vopts)
		if err != nil {
			t.Fatal(err)
		}
		verifyUnits(t, res.Files)
	}
}

// verifyUnits writes the unit files among files to a directory and has
// systemd-analyze verify them all together.
func verifyUnits(t *testing.T, files []File) {
	t.Helper()
	dir := t.TempDir()
	var units []string
	for _, f := range files {
		if f.Dir || path.Dir(f.Path) != "/etc/systemd/system" {
			continue
		}
		p := filepath.Join(dir, path.Base(f.Path))
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	sort.Strings(units)
	goldentest.VerifyUnits(t, dir, units)
}
