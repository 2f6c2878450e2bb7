package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// DownOptions say what `berth compose down` removes besides units and
// machines.
type DownOptions struct {
	Images Images
	// Volumes also removes the project's named volumes (never external
	// ones, which live outside the project directory).
	Volumes bool
	// RemoveImages collects store blobs no machine uses any more.
	RemoveImages bool
	// Timeout, if set, is how long machines may take to stop before they
	// are killed (docker compose down -t).
	Timeout *time.Duration
}

// Down stops project name and removes its units, .nspawn files, machines
// (root filesystems and records) and state. The bridge and veths go with
// the units that made them (their ExecStop=/ExecStopPost=). Named volumes
// stay unless o.Volumes.
func (h *Host) Down(ctx context.Context, name string, o DownOptions) error {
	h.fill()
	if o.Images == nil {
		return errors.New("down: no image source")
	}
	unlock, err := h.lock(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	m, err := h.Manifest(name)
	if errors.Is(err, ErrNotInstalled) {
		fmt.Fprintf(h.Stderr, "berth: project %s is not installed; nothing to remove\n", name)
		return nil
	}
	if err != nil {
		return err
	}
	units := []string{m.Target}
	for _, u := range m.Units {
		if u != m.Target {
			units = append(units, u)
		}
	}
	// Stopping the target stops everything PartOf it; naming every unit
	// also catches units a failed earlier up left running outside it.
	if err := h.stopUnits(ctx, units, o.Timeout); err != nil {
		return fmt.Errorf("down %s: stop units: %w", name, err)
	}
	// disable fails without the unit file, which only a down killed after
	// this step (and so after disabling) has removed.
	if _, err := os.Stat(filepath.Join(h.UnitDir, m.Target)); err == nil {
		if err := h.systemctl(ctx, "disable", "--", m.Target); err != nil {
			return fmt.Errorf("down %s: disable %s: %w", name, m.Target, err)
		}
	}
	for _, u := range m.Units {
		if err := os.Remove(filepath.Join(h.UnitDir, u)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("down %s: remove unit: %w", name, err)
		}
	}
	for _, s := range m.Services {
		for _, in := range s.Instances {
			if err := os.Remove(filepath.Join(h.NspawnDir, in.Machine+".nspawn")); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("down %s: remove machine settings: %w", name, err)
			}
		}
	}
	if err := h.systemctl(ctx, "daemon-reload"); err != nil {
		return fmt.Errorf("down %s: reload systemd: %w", name, err)
	}
	// Failed units stay listed (and their names taken) until reset.
	// Units that never failed make reset-failed complain; that is fine.
	h.systemctl(ctx, append([]string{"reset-failed", "--"}, units...)...)
	for _, s := range m.Services {
		for _, in := range s.Instances {
			if err := o.Images.Remove(ctx, in.Machine); err != nil {
				return fmt.Errorf("down %s: %w", name, err)
			}
		}
	}
	if err := h.removeState(name, o.Volumes); err != nil {
		return fmt.Errorf("down %s: %w", name, err)
	}
	if o.RemoveImages {
		n, freed, err := o.Images.GC(ctx)
		if err != nil {
			return fmt.Errorf("down %s: remove images: %w", name, err)
		}
		fmt.Fprintf(h.Stderr, "berth: removed %d unused blobs (%d bytes)\n", n, freed)
	}
	return nil
}

// removeState deletes the project directory: manifest, per-machine
// state, secrets and configs; the named volumes too when volumes is set.
func (h *Host) removeState(name string, volumes bool) error {
	dir := h.Dir(name)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove project state: %w", err)
	}
	keep := false
	for _, e := range ents {
		if e.Name() == "volumes" && !volumes {
			keep = true
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove project state: %w", err)
		}
	}
	if keep {
		fmt.Fprintf(h.Stderr, "berth: kept the volumes in %s (down -v removes them)\n", filepath.Join(dir, "volumes"))
		return nil
	}
	if err := os.Remove(dir); err != nil {
		return fmt.Errorf("remove project state: %w", err)
	}
	return nil
}
