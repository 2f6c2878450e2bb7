package machine

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the machine model pure: it turns a Spec into
// files and never runs a program, talks HTTP or D-Bus; the host side is
// package machines.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".", depcheck.HostPackages...)
	depcheck.Check(t, ".",
		"github.com/berth-sh/berth/internal/machines",
		"github.com/berth-sh/berth/internal/command",
		"github.com/berth-sh/berth/internal/fsutil",
		"github.com/berth-sh/berth/internal/store",
	)
}
