package machines

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/store"
)

// Remove deletes machine name: its unit and settings files, its cloned
// root filesystem with its image config, and berth's record. A running machine is stopped first
// only if force is set.
func (h Host) Remove(ctx context.Context, name string, force bool) error {
	if err := machine.ValidateName(name); err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	unlock, err := h.lock(name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	defer unlock()
	in, err := h.Instance(name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	if h.SystemdBooted {
		if err := h.unload(ctx, name, force); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	for _, p := range in.Files {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	if in.VolumesDir != "" {
		if err := os.RemoveAll(in.VolumesDir); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	if in.Cloned {
		if err := store.RemoveRootfs(h.MachinesDir, name); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
		// The copy's image config; a machine on the image's own tree
		// reads the image's, which stays with the image.
		if p := in.Spec.ImageConfig; p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove machine %s: %w", name, err)
			}
		}
	}
	if err := os.Remove(h.statePath(name)); err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	return h.daemonReload(ctx)
}

// unload stops machine name's service (if force allows it), disables it
// and makes systemd forget it failed.
func (h Host) unload(ctx context.Context, name string, force bool) error {
	unit := machine.ServiceName(name)
	if err := command.Run(ctx, h.Runner, "systemctl", "--quiet", "is-active", unit); err == nil {
		if !force {
			return errors.New("it is running; stop it first or use --force")
		}
		if err := command.Run(ctx, h.Runner, "systemctl", "stop", unit); err != nil {
			return err
		}
	}
	// Disabling a unit that was never enabled is harmless.
	if err := command.Run(ctx, h.Runner, "systemctl", "--quiet", "disable", unit); err != nil {
		return err
	}
	// A failed unit stays in systemd's memory (and in `systemctl
	// --failed`) after its file is gone. reset-failed of a unit that did
	// not fail exits non-zero on some versions; that is not a reason to
	// keep the machine.
	if err := command.Run(ctx, h.Runner, "systemctl", "--quiet", "reset-failed", unit); command.ExitCode(err) < 0 {
		return err
	}
	return nil
}
