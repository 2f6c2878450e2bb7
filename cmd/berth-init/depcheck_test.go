package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies pins what berth-init may import: it is bind-mounted into
// scratch images, so it must stay a small static binary with no cgo.
func TestDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != "github.com/berth-sh/berth/cmd/berth-init" && !strings.HasPrefix(p, "golang.org/x/sys/") {
			t.Errorf("berth-init depends on %s; only the standard library and golang.org/x/sys are allowed", p)
		}
	}
}
