package export

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies pins what export may import: it reads the store and
// machine trees and talks to registries, but knows nothing of systemd,
// units or the CLI (the CLI resolves a created machine's tree for it).
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".",
		"github.com/berth-sh/berth/internal/cli",
		"github.com/berth-sh/berth/internal/machines",
		"github.com/berth-sh/berth/internal/systemd",
		"github.com/coreos/go-systemd/v22/dbus",
	)
}
