package layer

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the layer applier pure of the host: it reads a
// stream and writes a tree, and runs no program (the external gunzip lives
// in package gunzip and is handed in as a function), talks no HTTP, no
// D-Bus.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".", append(depcheck.HostPackages, "github.com/berth-sh/berth/internal/command", "github.com/berth-sh/berth/internal/gunzip")...)
}
