package unit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps the unit model pure: standard library only, so
// every converter can use it without pulling in I/O or other packages.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/berth-sh/berth/internal/unit" {
			t.Errorf("internal/unit depends on %s", p)
		}
	}
}
