package machines

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/fsutil"
	"github.com/berth-sh/berth/internal/machine"
)

// Instance is berth's record of a created machine, kept in the state
// directory so later verbs know its spec and what to clean up.
type Instance struct {
	Spec machine.Spec `json:"spec"`
	// Image is the pulled machine the root filesystem came from.
	Image string `json:"image"`
	// Cloned says the root filesystem is a copy owned by this machine
	// (removed with it), not the image's own directory.
	Cloned bool `json:"cloned,omitempty"`
	// VolumesDir holds the machine's anonymous volumes, removed with it.
	VolumesDir string    `json:"volumesDir,omitempty"`
	Files      []string  `json:"files"`
	Created    time.Time `json:"created"`
}

func (h Host) statePath(name string) string { return filepath.Join(h.StateDir, name+".json") }

// lock serializes Create and Remove of one machine across processes with
// an flock on StateDir/.NAME.lock (the file stays; the lock does not).
func (h Host) lock(name string) (func(), error) {
	if err := machine.ValidateName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.StateDir, 0o755); err != nil {
		return nil, err
	}
	unlock, err := fsutil.TryLock(filepath.Join(h.StateDir, "."+name+".lock"), fsutil.Exclusive)
	if errors.Is(err, fsutil.ErrLocked) {
		return nil, fmt.Errorf("%w: another berth is creating or removing %s; try again when it is done", ErrBusy, name)
	}
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return unlock, nil
}

// Instance reads the record of machine name.
func (h Host) Instance(name string) (*Instance, error) {
	if err := machine.ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(h.statePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read machine %s: %w (create it with `berth create`)", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read machine %s: %w", name, err)
	}
	var in Instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("read machine %s: %s: %w", name, h.statePath(name), err)
	}
	return &in, nil
}

// writeInstance saves in as the record of its machine.
func (h Host) writeInstance(in *Instance) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(h.statePath(in.Spec.Name), append(b, '\n'))
}

// Instances lists the machines berth created, by name.
func (h Host) Instances() ([]*Instance, error) {
	ents, err := os.ReadDir(h.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	var out []*Instance
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || machine.ValidateName(name) != nil {
			continue
		}
		in, err := h.Instance(name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	return out, nil
}
