package project

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-sh/berth/internal/command"
)

// stopUnits stops units and waits for them. With a timeout (docker's
// -t/--timeout), machines still running when it ends get SIGKILL, which
// overrides their stop_grace_period (TimeoutStopSec=) either way.
func (h *Host) stopUnits(ctx context.Context, units []string, timeout *time.Duration) error {
	if timeout == nil {
		return notLoadedIsStopped(h.systemctl(ctx, append([]string{"stop", "--"}, units...)...))
	}
	if err := notLoadedIsStopped(h.systemctl(ctx, append([]string{"stop", "--no-block", "--"}, units...)...)); err != nil {
		return err
	}
	deadline := h.Now().Add(*timeout)
	for {
		states, err := h.show(ctx, units)
		if err != nil {
			return err
		}
		var left []string
		for _, st := range states {
			if a := st["ActiveState"]; a != "inactive" && a != "failed" && st["LoadState"] != "not-found" {
				left = append(left, st["Id"])
			}
		}
		if len(left) == 0 {
			return nil
		}
		if !h.Now().Before(deadline) {
			fmt.Fprintf(h.Stderr, "berth: killing %d units still stopping after %v\n", len(left), *timeout)
			h.systemctl(ctx, append([]string{"kill", "--signal=SIGKILL", "--"}, left...)...)
			return notLoadedIsStopped(h.systemctl(ctx, append([]string{"stop", "--"}, units...)...))
		}
		if err := h.Sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// StopWithin stops the selected services as Stop does, killing machines
// that have not stopped after timeout (nil: each machine's own
// stop_grace_period).
func (h *Host) StopWithin(ctx context.Context, name string, services []string, timeout *time.Duration) error {
	m, svcs, err := h.selected(name, services)
	if err != nil {
		return err
	}
	units := append(portSockets(m, svcs), serviceUnits(svcs, true)...)
	if len(services) == 0 {
		units = append([]string{m.Target}, units...)
	}
	if err := h.stopUnits(ctx, units, timeout); err != nil {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	return nil
}

// notLoadedIsStopped forgives systemctl stop's exit status 5: some unit is
// not loaded (its file is gone: a down killed after removing files), so
// there is nothing of it to stop; the loaded ones were stopped.
func notLoadedIsStopped(err error) error {
	if command.ExitCode(err) == 5 {
		return nil
	}
	return err
}
