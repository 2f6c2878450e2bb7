package project

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies pins what the library may import: it does the work
// of the compose verbs, so it must stay usable without the CLI.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".",
		"github.com/berth-sh/berth/internal/cli",
		"github.com/spf13/cobra",
		"github.com/spf13/pflag",
	)
}
