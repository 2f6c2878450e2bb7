package compose

import (
	"bytes"
	"os"
	"sort"
	"testing"
)

// TestServiceKeysCoverSchema fails when compose-go knows a service key that
// the support table does not list (or the table lists one that no longer
// exists), so no key can be silently dropped.
func TestServiceKeysCoverSchema(t *testing.T) {
	inTable := map[string]bool{}
	for _, r := range ServiceKeys {
		if inTable[r.Key] {
			t.Errorf("key %q is listed twice", r.Key)
		}
		inTable[r.Key] = true
		if r.How == "" {
			t.Errorf("key %q has no description", r.Key)
		}
	}
	schema := map[string]bool{}
	for _, k := range allServiceKeys() {
		schema[k] = true
		if !inTable[k] {
			t.Errorf("service key %q is missing from ServiceKeys", k)
		}
	}
	for k := range inTable {
		if !schema[k] {
			t.Errorf("ServiceKeys lists %q, which compose-go does not know", k)
		}
	}
	if !sort.SliceIsSorted(ServiceKeys, func(i, j int) bool { return ServiceKeys[i].Key < ServiceKeys[j].Key }) {
		t.Errorf("ServiceKeys is not sorted by key")
	}
}

// TestKeysDoc keeps docs/compose-keys.md equal to the support table.
func TestKeysDoc(t *testing.T) {
	const doc = "../../docs/compose-keys.md"
	want := KeysMarkdown()
	if *update {
		if err := os.WriteFile(doc, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date; run go test ./internal/compose -run TestKeysDoc -update", doc)
	}
}

// TestPlannerForEveryKey: a key berth converts (fully or partly) has a
// planner function, and an ignored or rejected one has none — so adding a
// key to the table cannot leave its values unplanned.
func TestPlannerForEveryKey(t *testing.T) {
	for _, r := range ServiceKeys {
		converted := r.Support == Supported || r.Support == Partial
		if converted && r.plan == nil {
			t.Errorf("key %q is %s but has no planner function", r.Key, r.Support)
		}
		if !converted && r.plan != nil {
			t.Errorf("key %q is %s but has a planner function", r.Key, r.Support)
		}
	}
}

// TestTopKeysCoverSchema fails when compose-go knows a top-level key, or a
// key of a network, volume, secret or config, that TopKeys does not list.
func TestTopKeysCoverSchema(t *testing.T) {
	inTable := map[string]bool{}
	for _, r := range TopKeys {
		if inTable[r.Key] {
			t.Errorf("key %q is listed twice", r.Key)
		}
		inTable[r.Key] = true
		if r.How == "" {
			t.Errorf("key %q has no description", r.Key)
		}
		if r.check != nil && r.Support != Partial {
			t.Errorf("key %q is %s but has a check function (only partial keys have values to check)", r.Key, r.Support)
		}
	}
	for _, k := range allTopKeys() {
		if !inTable[k] {
			t.Errorf("top-level key %q is missing from TopKeys", k)
		}
	}
}
