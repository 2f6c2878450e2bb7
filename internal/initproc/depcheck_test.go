package initproc

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies pins what the init may import: berth-init is made of it
// alone and runs in scratch images, so it must stay small and free of cgo.
func TestDependencies(t *testing.T) {
	depcheck.Only(t, ".", "golang.org/x/sys/...")
}
