// Package machines is the host side of berth's machines: the machines
// installed on this host. It installs a machine.Spec's files and berth's
// record of it, drives its service with systemctl, enters it, removes it,
// and runs machines in the foreground with systemd-nspawn. Every program
// runs through a command.Runner, so tests drive a Host with a recording
// fake and temporary directories.
package machines

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/paths"
	"github.com/berth-sh/berth/internal/systemd"
)

// ErrNotFound is returned for a machine berth did not create.
var ErrNotFound = errors.New("no such machine")

// ErrExists is returned when creating a machine whose name is taken.
var ErrExists = errors.New("machine exists")

// ErrNotRunning is returned by verbs that need a running machine.
var ErrNotRunning = systemd.ErrNoMachine

// ErrNoSystemd is returned by verbs that need systemd as PID 1.
var ErrNoSystemd = errors.New("systemd is not running as PID 1 (no /run/systemd/system)")

// ErrBusy is returned when another berth is creating or removing the same
// machine.
var ErrBusy = errors.New("machine is busy")

// Host is the system berth drives: where files go and how commands run.
// Everything is a field so tests can point it at temporary directories and
// a command.RecordingRunner.
type Host struct {
	Runner command.Runner
	// SystemdBooted says PID 1 is systemd, so units can be started and
	// machines registered with machined.
	SystemdBooted    bool
	NspawnDir        string // persistent settings, paths.NspawnDir
	RuntimeNspawnDir string // settings of `berth run` machines
	UnitDir          string
	StateDir         string // Instances, one NAME.json each
	MachinesDir      string
	Now              func() time.Time
	// IdmapSupported probes whether a directory's file system supports
	// idmapped mounts (see IdmapSupported); nil assumes it does.
	IdmapSupported func(dir string) (bool, error)
}

// NewHost returns the real host: berth's state under root, machines in
// machinesDir, commands run for real.
func NewHost(root, machinesDir string) Host {
	_, err := os.Stat("/run/systemd/system")
	return Host{
		Runner:           command.ExecRunner{},
		SystemdBooted:    err == nil,
		NspawnDir:        paths.NspawnDir,
		RuntimeNspawnDir: paths.RuntimeNspawnDir,
		UnitDir:          paths.UnitDir,
		StateDir:         filepath.Join(root, "units"),
		MachinesDir:      machinesDir,
		Now:              time.Now,
		IdmapSupported:   IdmapSupported,
	}
}
