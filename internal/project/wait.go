package project

import (
	"context"
	"fmt"
	"strconv"
)

// Stopped is a machine that stopped, and how.
type Stopped struct {
	Service  string
	Machine  string
	ExitCode int
}

// stoppedState: the machine's command has ended and systemd will not
// start it again by itself (a pending restart is not a stop). A oneshot
// service stays "active (exited)" after its command ended.
func stoppedState(st unitState, oneshot bool, jobs map[string]bool) bool {
	if jobs[st["Id"]] {
		return false
	}
	switch st["ActiveState"] {
	case "inactive", "failed":
		return true
	case "active":
		return oneshot && st["SubState"] == "exited"
	}
	return false
}

// WaitStopped blocks until every machine of the selected services has
// stopped (docker compose wait) and returns them in the order they were
// seen stopping; the first is the one whose exit code wait reports. With
// any set, it returns as soon as one machine stopped (up
// --abort-on-container-exit).
func (h *Host) WaitStopped(ctx context.Context, name string, services []string, any bool) ([]Stopped, error) {
	_, svcs, err := h.selected(name, services)
	if err != nil {
		return nil, err
	}
	type inst struct {
		service, machine, unit string
		oneshot                bool
	}
	var all []inst
	var units []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			all = append(all, inst{s.Name, in.Machine, in.Unit, s.Oneshot})
			units = append(units, in.Unit)
		}
	}
	seen := map[string]bool{}
	var out []Stopped
	for {
		jobs, err := h.pendingJobs(ctx)
		if err != nil {
			return out, fmt.Errorf("wait for %s: %w", name, err)
		}
		states, err := h.show(ctx, units)
		if err != nil {
			return out, fmt.Errorf("wait for %s: %w", name, err)
		}
		for i, st := range states {
			in := all[i]
			if seen[in.unit] || !stoppedState(st, in.oneshot, jobs) {
				continue
			}
			seen[in.unit] = true
			code, _ := strconv.Atoi(st["ExecMainStatus"])
			out = append(out, Stopped{Service: in.service, Machine: in.machine, ExitCode: code})
		}
		if len(out) == len(all) || (any && len(out) > 0) {
			return out, nil
		}
		if err := h.Sleep(ctx, pollInterval); err != nil {
			return out, fmt.Errorf("wait for %s: %w", name, err)
		}
	}
}
