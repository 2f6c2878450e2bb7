// Package project drives an installed berth compose project on systemd:
// it installs the file set compose.Convert renders (atomically, under a
// project lock), reloads systemd, starts and stops the project target,
// waits until every service is running or healthy, and reports state,
// logs, processes and images. Every external program (systemctl,
// journalctl, machinectl, nsenter, ps) runs through a command.Runner, so
// tests drive the package with a recording fake.
package project

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/paths"
)

// ErrNotInstalled: the project has no manifest; `berth compose up` has not
// installed it (or `down` removed it).
var ErrNotInstalled = errors.New("project is not installed")

// ErrNoService: a service named on the command line is not in the project.
var ErrNoService = compose.ErrNoService

// Host is where projects are installed and the tools that drive them. The
// zero value of each field means the documented default.
type Host struct {
	// Root is berth's state directory. Default paths.Root.
	Root string
	// MachinesDir holds machine root filesystems. Default paths.Machines.
	MachinesDir string
	// UnitDir is where unit files are installed. Default paths.UnitDir.
	UnitDir string
	// NspawnDir is where .nspawn files are installed. Default
	// paths.NspawnDir.
	NspawnDir string
	// Runner runs systemctl, journalctl, machinectl, nsenter and ps.
	// Default command.ExecRunner.
	Runner command.Runner
	// Stderr receives progress and warnings. Default io.Discard.
	Stderr io.Writer
	// Now is the clock; Sleep waits between polls (both replaceable so
	// tests never wait). Defaults time.Now and a context-aware sleep.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// ReadFile reads host files the kernel provides (/proc/PID/environ,
	// cgroup.procs). Default os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

func (h *Host) fill() {
	h.Root = cmp.Or(h.Root, paths.Root)
	h.MachinesDir = cmp.Or(h.MachinesDir, paths.Machines)
	h.UnitDir = cmp.Or(h.UnitDir, paths.UnitDir)
	h.NspawnDir = cmp.Or(h.NspawnDir, paths.NspawnDir)
	if h.Runner == nil {
		h.Runner = command.ExecRunner{}
	}
	if h.Stderr == nil {
		h.Stderr = io.Discard
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.Sleep == nil {
		h.Sleep = sleepCtx
	}
	if h.ReadFile == nil {
		h.ReadFile = os.ReadFile
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// The manifest types are compose's: Convert writes project.json, and this
// package reads the same schema.
type (
	Manifest         = compose.Manifest
	ManifestNetwork  = compose.ManifestNetwork
	ManifestService  = compose.ManifestService
	ManifestInstance = compose.ManifestInstance
)

// Dir is the state directory of project name.
func (h *Host) Dir(name string) string {
	h.fill()
	return filepath.Join(h.Root, "compose", name)
}

func (h *Host) manifestPath(name string) string {
	return filepath.Join(h.Dir(name), "project.json")
}

// Manifest reads the installed manifest of project name; ErrNotInstalled
// if there is none.
func (h *Host) Manifest(name string) (*Manifest, error) {
	b, err := os.ReadFile(h.manifestPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read project %s: %w (run berth compose up first)", name, ErrNotInstalled)
	}
	if err != nil {
		return nil, fmt.Errorf("read project %s: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read project %s: %s: %w", name, h.manifestPath(name), err)
	}
	return &m, nil
}

// selected reads project name's manifest and picks the services named (all
// when none are), as every verb that acts on services needs.
func (h *Host) selected(name string, services []string) (*Manifest, []ManifestService, error) {
	h.fill()
	m, err := h.Manifest(name)
	if err != nil {
		return nil, nil, err
	}
	svcs, err := m.Select(services)
	if err != nil {
		return nil, nil, err
	}
	return m, svcs, nil
}

// serviceUnits lists the machine units of services, with their health
// units.
func serviceUnits(svcs []ManifestService, withHealth bool) []string {
	var out []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			out = append(out, in.Unit)
			if withHealth && in.Health != "" {
				out = append(out, in.Health)
			}
		}
	}
	return out
}
