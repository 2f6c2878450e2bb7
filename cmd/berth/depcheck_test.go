package main

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the man page renderer (tools/mangen's) out of
// berth: every berth start, as the init of a machine or a unit's helper,
// pays for the initialisation of every package it links.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".", "github.com/spf13/cobra/doc", "github.com/cpuguy83/go-md2man/...", "github.com/russross/blackfriday/...")
}
