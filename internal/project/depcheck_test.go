package project

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins what the library may import: it does the work
// of the compose verbs, so it must stay usable without the CLI.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/berth-sh/berth/internal/cli",
			"github.com/spf13/cobra",
			"github.com/spf13/pflag",
		} {
			if dep == banned {
				t.Errorf("internal/project depends on %s", banned)
			}
		}
	}
}
