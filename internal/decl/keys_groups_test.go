package decl

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
)

// groupTable is a support table as the tests below see it.
type groupTable struct {
	group string
	rows  []KeyRule // plan is only compared with nil
	doc   []byte
}

func asRows[T any](table []Rule[T]) []KeyRule {
	var out []KeyRule
	for _, r := range table {
		row := KeyRule{Key: r.Key, Support: r.Support, How: r.How}
		if r.plan != nil {
			row.plan = func(*ctr, Entry) {}
		}
		out = append(out, row)
	}
	return out
}

// groupTables are the groups beside [Container].
func groupTables() []groupTable {
	return []groupTable{
		{networkGroup, asRows(NetworkKeys), KeysMarkdown(NetworkKeys)},
		{volumeGroup, asRows(VolumeKeys), KeysMarkdown(VolumeKeys)},
		{imageGroup, asRows(ImageKeys), KeysMarkdown(ImageKeys)},
		{composeGroup, asRows(ComposeKeys), KeysMarkdown(ComposeKeys)},
	}
}

// TestGroupKeysComplete: the [Network], [Volume] and [Image] tables list
// every key of quadlet's group (testdata/quadlet-GROUP-keys.txt) and
// nothing else, sorted; every table's converted keys have a planner and
// the others none.
func TestGroupKeysComplete(t *testing.T) {
	for _, g := range groupTables() {
		var ours []string
		for _, r := range g.rows {
			ours = append(ours, r.Key)
			converted := r.Support == Supported || r.Support == Partial
			if converted != (r.plan != nil) || r.How == "" {
				t.Errorf("[%s] %s=: %s, planner %v, how %q", g.group, r.Key, r.Support, r.plan != nil, r.How)
			}
		}
		if !slices.IsSorted(ours) || len(slices.Compact(slices.Clone(ours))) != len(ours) {
			t.Errorf("[%s] keys are not sorted and distinct: %v", g.group, ours)
		}
		if g.group == composeGroup {
			continue // berth's own group
		}
		if quadlet := quadletKeys(t, g.group); !slices.Equal(ours, quadlet) {
			t.Errorf("[%s] keys %v, quadlet's %v", g.group, ours, quadlet)
		}
	}
}

// quadletKeys are the keys of quadlet's group, one a line in
// testdata/quadlet-GROUP-keys.txt ('#' starts a comment line).
func quadletKeys(t *testing.T, group string) []string {
	t.Helper()
	b, err := os.ReadFile("testdata/quadlet-" + strings.ToLower(group) + "-keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			keys = append(keys, l)
		}
	}
	return keys
}

// TestGroupKeysDoc keeps the tables of docs/generator-resources.md equal
// to the key tables.
func TestGroupKeysDoc(t *testing.T) {
	const doc = "../../docs/generator-resources.md"
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := got
	for _, g := range groupTables() {
		var ok bool
		if want, ok = ReplaceKeysDoc(want, g.group, g.doc); !ok {
			t.Fatalf("%s has no markers for [%s]", doc, g.group)
		}
	}
	if *update {
		if err := os.WriteFile(doc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the key tables of %s are out of date; run go test ./internal/decl -run TestGroupKeysDoc -update", doc)
	}
}
