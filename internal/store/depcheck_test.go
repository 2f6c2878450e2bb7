package store

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins what the store may import: it is the on-disk model
// that unit rendering and compose reuse, so it must not pull in the network
// (registry client, HTTP) or the layer applier.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"net/http",
			"github.com/google/go-containerregistry/pkg/v1/remote",
			"github.com/berth-sh/berth/internal/pull",
			"github.com/berth-sh/berth/internal/layer",
			"github.com/berth-sh/berth/internal/cli",
		} {
			if dep == banned {
				t.Errorf("internal/store depends on %s", banned)
			}
		}
	}
}
