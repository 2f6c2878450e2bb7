package unit

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the unit model pure: standard library only, so
// every converter can use it without pulling in I/O or other packages,
// and of that nothing that runs programs, talks HTTP or D-Bus.
func TestDependencies(t *testing.T) {
	depcheck.Only(t, ".")
	depcheck.Check(t, ".", depcheck.HostPackages...)
}
