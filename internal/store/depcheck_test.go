package store

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies pins what the store may import: it is the on-disk model
// that unit rendering and compose reuse, so it must not pull in the network
// (registry client, HTTP) or the layer applier.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".",
		"net/http",
		"github.com/google/go-containerregistry/pkg/v1/remote",
		"github.com/berth-sh/berth/internal/pull",
		"github.com/berth-sh/berth/internal/layer",
		"github.com/berth-sh/berth/internal/cli",
	)
}
