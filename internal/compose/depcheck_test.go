package compose

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the conversion pure: it plans and renders files
// and never runs a program, talks HTTP or D-Bus; project and the hidden
// helpers (hostnet, health) do that.
func TestDependencies(t *testing.T) {
	depcheck.CheckExcept(t, ".", []string{
		// compose-go's types import it for shell-style splitting; its
		// backtick expansion (the os/exec part) is never enabled.
		"github.com/mattn/go-shellwords",
	}, append(depcheck.HostPackages, "github.com/berth-sh/berth/internal/compose/hostnet", "github.com/berth-sh/berth/internal/command")...)
}
