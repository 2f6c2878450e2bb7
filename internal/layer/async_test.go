package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// asyncCases are layer stacks whose entries meet names that workers own
// (async.go): duplicates, replacements in both directions, children of a
// file, aliases through symlinks, links to fresh files, whiteouts, and
// enough files and directories to fill batches and overflow the fd cache.
func asyncCases() map[string][][]ent {
	many := func(dirs, files int) []ent {
		var out []ent
		for d := range dirs {
			dir := fmt.Sprintf("m/d%03d", d)
			out = append(out, dirE(dir))
			for f := range files {
				out = append(out, fileE(fmt.Sprintf("%s/f%d", dir, f), strings.Repeat(dir, f+1)))
			}
		}
		return out
	}
	big := strings.Repeat("b", asyncFileMax+1)
	mode := func(m int64) func(h *tar.Header) { return func(h *tar.Header) { h.Mode = m } }
	return map[string][][]ent{
		"duplicate file": {{fileE("a", "one"), fileE("b", "x"), fileE("a", "two")}},
		"file then dir":  {{fileE("a", "one"), dirE("a"), fileE("a/b", "x")}},
		"dir then file":  {{dirE("d"), fileE("d/x", "x"), fileE("d/y", "y"), fileE("d", "file now")}},
		"child of file":  {{fileE("a", "one"), fileE("a/b", "x")}},
		"alias duplicate": {{dirE("usr"), dirE("usr/lib"), fileE("usr/lib/x", "one"), symE("lib", "usr/lib"),
			fileE("lib/x", "two"), fileE("lib/y", "y")}},
		"alias child":             {{dirE("usr"), dirE("usr/lib"), fileE("usr/lib/x", "one"), symE("lib", "usr/lib"), fileE("lib/x/y", "y")}},
		"link to fresh":           {{fileE("f", "content"), linkE("h", "f"), fileE("f", "new"), linkE("h2", "f")}},
		"symlink over fresh file": {{fileE("s", "x"), symE("s", "target")}},
		"big and small":           {{fileE("s", "small"), fileE("s", big), fileE("t", big), fileE("t", "small")}},
		"modes": {{fileE("setuid", "x").with(mode(0o4755)), fileE("ro", "x").with(mode(0o400)),
			fileE("odd", "x").with(mode(0o1707))}},
		"replace lower": {
			{dirE("d"), fileE("d/f", "lower"), linkE("d/h", "d/f"), dirE("e"), fileE("e/x", "x"), fileE("g", "g")},
			{fileE("d/f", "upper"), fileE("e", "file over dir"), fileE("g/x", "under file")},
		},
		"whiteouts": {
			{dirE("d"), fileE("d/a", "a"), fileE("d/b", "b"), dirE("o"), fileE("o/x", "x")},
			{fileE("d/a2", "new"), whE("d", "a"), fileE("d/a", "again"), fileE("o/y", "y"), opqE("o"), fileE("o/z", "z")},
		},
		// A worker's error must fail Apply: the kernel refuses the name.
		"worker error": {{fileE("a", "x"), fileE(strings.Repeat("n", 256), "too long"), fileE("b", "y")}},
		"many":         {many(40, 80)},
		"many dirs":    {many(maxCachedDirs+50, 2)},
	}
}

// TestAsyncMatchesSequential applies every case with workers and without and
// requires the same outcome: both fail, or both succeed with equal trees.
func TestAsyncMatchesSequential(t *testing.T) {
	cases := asyncCases()
	for i, l := range diffLayers() {
		cases[fmt.Sprintf("differential %d", i)] = [][]ent{l}
	}
	cases["differential stack"] = diffLayers()
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			compareAsync(t, tarsOf(t, cases[name])...)
		})
	}
}

func compareAsync(t *testing.T, layers ...[]byte) {
	t.Helper()
	seqOpts, asyncOpts := testOpts(), testOpts()
	seqOpts.noAsync = true
	asyncOpts.forceAsync = true
	seq, par := filepath.Join(t.TempDir(), "root"), filepath.Join(t.TempDir(), "root")
	serr := applyDirs(t, seq, seqOpts, layers)
	perr := applyDirs(t, par, asyncOpts, layers)
	if (serr == nil) != (perr == nil) {
		t.Fatalf("sequential: %v\nasync: %v", serr, perr)
	}
	if serr != nil {
		return // a half-applied tree is thrown away; only the verdict matters
	}
	if d := differing(tree(t, seq), tree(t, par)); len(d) > 0 {
		var lines []string
		for p, s := range d {
			lines = append(lines, p+": "+strings.NewReplacer("umoci", "sequential", "berth", "async").Replace(s))
		}
		sort.Strings(lines)
		t.Fatalf("trees differ:\n%s", strings.Join(lines, "\n"))
	}
}

func applyDirs(t *testing.T, root string, opts Options, layers [][]byte) error {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if _, err := Apply(context.Background(), root, bytes.NewReader(l), opts); err != nil {
			return err
		}
	}
	return nil
}

// FuzzAsyncMatchesSequential: for any upper layer over a lower one with
// symlinks inside the rootfs, workers change nothing about the outcome.
func FuzzAsyncMatchesSequential(f *testing.F) {
	for _, c := range asyncCases() {
		// Small single layers only: large seeds slow coverage-guided
		// fuzzing to a crawl.
		if b := mkTar(f, c[0]...); len(c) == 1 && len(b) < 16<<10 {
			f.Add(b)
		}
	}
	lower := mkTar(f, dirE("usr"), dirE("usr/lib"), fileE("usr/lib/x", "x"), symE("lib", "usr/lib"),
		symE("up", "../../.."), dirE("e"), symE("e/self", "."), dirE("d"), fileE("d/f", "f"), linkE("d/h", "d/f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		compareAsync(t, lower, data)
	})
}

func TestAsyncWorkerErrorFailsApply(t *testing.T) {
	opts := testOpts()
	opts.forceAsync = true
	long := strings.Repeat("n", 256) // over NAME_MAX: openat in the worker fails
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(mkTar(t, fileE("a", "x"), fileE(long, "y"))), opts)
	if err == nil || !strings.Contains(err.Error(), long) {
		t.Fatalf("err = %v, want the worker's error naming the entry", err)
	}
}
