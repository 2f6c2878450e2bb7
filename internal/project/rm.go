package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// RmOptions say what `berth compose rm` does.
type RmOptions struct {
	Images Images
	// Stop stops running machines first; without it they are skipped.
	Stop bool
	// Volumes also empties the machines' anonymous volumes.
	Volumes bool
	// Confirm, if not nil, is asked before anything is removed, with the
	// machines that would be; false keeps them (docker's prompt without
	// -f).
	Confirm func(machines []string) bool
}

// Rm removes the stopped machines of the selected services: their root
// filesystems and image records (and, with o.Volumes, their anonymous
// volumes). The units stay installed, as the project still has the
// services: the next `berth compose up` pulls the image again and makes
// the machine anew, as docker compose up recreates removed containers.
// It returns the machines removed.
func (h *Host) Rm(ctx context.Context, name string, services []string, o RmOptions) ([]string, error) {
	if o.Images == nil {
		return nil, errors.New("rm: no image source")
	}
	m, svcs, err := h.selected(name, services)
	if err != nil {
		return nil, err
	}
	if o.Stop {
		if err := h.Stop(ctx, name, services); err != nil {
			return nil, err
		}
	}
	unlock, err := h.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var units, machines []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			units = append(units, in.Unit)
			machines = append(machines, in.Machine)
		}
	}
	states, err := h.show(ctx, units)
	if err != nil {
		return nil, fmt.Errorf("rm %s: %w", name, err)
	}
	var gone []string
	for i, st := range states {
		if st["ActiveState"] != "inactive" && st["ActiveState"] != "failed" {
			fmt.Fprintf(h.Stderr, "berth: %s is %s; not removed (stop it first, or rm -s)\n", machines[i], st["ActiveState"])
			continue
		}
		if _, ok := o.Images.Image(machines[i]); !ok {
			continue
		}
		gone = append(gone, machines[i])
	}
	if len(gone) == 0 {
		fmt.Fprintln(h.Stderr, "berth: no stopped machines to remove")
		return nil, nil
	}
	if o.Confirm != nil && !o.Confirm(gone) {
		return nil, nil
	}
	for _, mach := range gone {
		if err := o.Images.Remove(ctx, mach); err != nil {
			return nil, fmt.Errorf("rm %s: %w", name, err)
		}
		// Failed units keep their failure until reset; a removed
		// machine has none left to show.
		h.systemctl(ctx, "reset-failed", "--", "berth-"+mach+".service")
		if o.Volumes {
			// Removed, so the next up creates them anew, seeded
			// from the image as a new docker volume is.
			if err := os.RemoveAll(filepath.Join(h.Dir(m.Project), "machines", mach, "anon")); err != nil {
				return nil, fmt.Errorf("rm %s: anonymous volumes of %s: %w", name, mach, err)
			}
		}
	}
	return gone, nil
}
