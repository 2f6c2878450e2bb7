package decl

import (
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/berth-sh/berth/internal/store"
)

// TestContainerKeysComplete: ContainerKeys lists every key of quadlet's
// [Container] group (testdata/quadlet-container-keys.txt) and nothing
// else, sorted, so a podman user's file either converts or is refused
// naming the key.
func TestContainerKeysComplete(t *testing.T) {
	quadlet := quadletKeys(t, containerGroup)
	var ours []string
	for _, r := range ContainerKeys {
		ours = append(ours, r.Key)
	}
	if !slices.IsSorted(ours) {
		t.Errorf("ContainerKeys is not sorted by key")
	}
	for _, k := range quadlet {
		if !slices.Contains(ours, k) {
			t.Errorf("quadlet key %s= is not in ContainerKeys", k)
		}
	}
	for _, k := range ours {
		if !slices.Contains(quadlet, k) {
			t.Errorf("ContainerKeys has %s=, which quadlet does not know", k)
		}
	}
	for i := 1; i < len(ours); i++ {
		if ours[i] == ours[i-1] {
			t.Errorf("ContainerKeys lists %s= twice", ours[i])
		}
	}
}

// TestPlannerForEveryKey: a key berth converts (fully or partly) has a
// planner, and an ignored or rejected one has none.
func TestPlannerForEveryKey(t *testing.T) {
	for _, r := range ContainerKeys {
		converted := r.Support == Supported || r.Support == Partial
		if converted && r.plan == nil {
			t.Errorf("key %s= is %s but has no planner", r.Key, r.Support)
		}
		if !converted && r.plan != nil {
			t.Errorf("key %s= is %s but has a planner", r.Key, r.Support)
		}
		if r.How == "" {
			t.Errorf("key %s= does not say what berth does", r.Key)
		}
	}
}

// TestKeysDoc keeps the [Container] table of docs/generator.md equal to
// ContainerKeys.
func TestKeysDoc(t *testing.T) {
	const doc = "../../docs/generator.md"
	got, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want, ok := ReplaceKeysDoc(got, containerGroup, KeysMarkdown(ContainerKeys))
	if !ok {
		t.Fatalf("%s has no <!-- BEGIN keys %s --> ... <!-- END keys %s --> markers", doc, containerGroup, containerGroup)
	}
	if *update {
		if err := os.WriteFile(doc, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the [%s] table of %s is out of date; run go test ./internal/decl -run TestKeysDoc -update", containerGroup, doc)
	}
}

// TestImageConfigPath: the generator's units bind the image config from
// where the store keeps it.
func TestImageConfigPath(t *testing.T) {
	if got, want := imageConfigPath("/var/lib/machines", "web"), store.ConfigPath("/var/lib/machines", "web"); got != want {
		t.Errorf("imageConfigPath = %s, store.ConfigPath = %s", got, want)
	}
}
