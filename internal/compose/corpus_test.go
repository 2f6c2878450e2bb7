package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/goldentest"
)

// corpusDir is docker/awesome-compose's examples, kept in the repository
// (testdata/corpus at its root: CC0 data files, see its README).
func corpusDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "corpus", "awesome-compose"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "LICENSE")); err != nil {
		t.Fatalf("the awesome-compose corpus belongs at %s: %v", dir, err)
	}
	return dir
}

// TestCorpus converts every awesome-compose example. Each one either
// converts to units that systemd-analyze verify accepts, or fails naming
// exactly the error keys recorded in testdata/corpus.txt. It logs the
// tally (go test -v -run TestCorpus).
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	converted, failed := 0, 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		var file string
		for _, f := range []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"} {
			if _, err := os.Stat(filepath.Join(dir, name, f)); err == nil {
				file = filepath.Join(dir, name, f)
				break
			}
		}
		if file == "" {
			t.Errorf("%s: no compose file", name)
			continue
		}
		p, err := Load(context.Background(), LoadOptions{Files: []string{file}})
		if err != nil {
			t.Errorf("%s: load: %v", name, err)
			continue
		}
		res, err := Convert(p, testOptions())
		if err != nil {
			if res == nil || len(res.Findings.Errors()) == 0 {
				t.Errorf("%s: convert failed without naming keys: %v", name, err)
				continue
			}
			var keys []string
			for _, f := range res.Findings.Errors() {
				if f.Loc.Line == 0 {
					t.Errorf("%s: finding %s has no line", name, f)
				}
				keys = append(keys, f.Key)
			}
			sort.Strings(keys)
			lines = append(lines, fmt.Sprintf("%s: unsupported %s", name, strings.Join(keys, " ")))
			failed++
			continue
		}
		t.Run(name, func(t *testing.T) { verifyUnits(t, verifiable(t, p)) })
		lines = append(lines, name+": converted")
		converted++
	}
	tally := fmt.Sprintf("tally: %d examples, %d converted and verified, %d rejected naming their unsupported keys",
		converted+failed, converted, failed)
	got := strings.Join(lines, "\n") + "\n" + tally + "\n"
	const expected = "testdata/corpus.txt"
	if *update {
		if err := os.WriteFile(expected, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("corpus results differ from %s (rerun with -update to accept):\n%s", expected, goldentest.LineDiff(string(want), got))
	}
	t.Logf("awesome-compose corpus:\n%s", got)
}

// verifiable converts p again with helper binaries that exist on this
// host, so systemd-analyze verify can check the units.
func verifiable(t *testing.T, p *Project) []File {
	t.Helper()
	opts := testOptions()
	opts.Berth, opts.Init = "/bin/true", "/bin/true"
	res, err := Convert(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res.Files
}
