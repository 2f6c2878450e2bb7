package main

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies pins what berth-init may import: it is bind-mounted into
// scratch images, so it must stay a small static binary with no cgo.
func TestDependencies(t *testing.T) {
	depcheck.Only(t, ".", "github.com/berth-sh/berth/internal/initproc", "golang.org/x/sys/...")
}
