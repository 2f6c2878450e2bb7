package project

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// Status is one machine as `berth compose ps` shows it. Its JSON form is
// stable.
type Status struct {
	Service string `json:"service"`
	Machine string `json:"machine"`
	Unit    string `json:"unit"`
	Image   string `json:"image"`
	// State is docker's word: running, restarting, exited, created,
	// failed (unit failed), starting (activating).
	State string `json:"state"`
	// Status is systemd's ActiveState (SubState), with the exit status
	// when the command ended.
	Status string `json:"status"`
	// Health is healthy, unhealthy, starting, or empty without a
	// healthcheck.
	Health   string   `json:"health,omitempty"`
	ExitCode int      `json:"exit_code"`
	MainPID  int      `json:"main_pid,omitempty"`
	Ports    []string `json:"ports,omitempty"`
}

// Ps reports the machines of the selected services (all when services is
// empty). Without all, machines that are not running are left out, as
// docker compose ps does.
func (h *Host) Ps(ctx context.Context, name string, services []string, all bool) ([]Status, error) {
	m, svcs, err := h.selected(name, services)
	if err != nil {
		return nil, err
	}
	var units []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			units = append(units, in.Unit)
			if in.Health != "" {
				units = append(units, in.Health)
			}
		}
	}
	states, err := h.show(ctx, units)
	if err != nil {
		return nil, fmt.Errorf("ps %s: %w", name, err)
	}
	byID := map[string]unitState{}
	for i, st := range states {
		byID[units[i]] = st
	}
	out := []Status{}
	for _, s := range svcs {
		for _, in := range s.Instances {
			st := byID[in.Unit]
			ps := Status{Service: s.Name, Machine: in.Machine, Unit: in.Unit, Image: s.Image}
			for _, p := range in.Ports {
				// The manifest leaves the address out when the port
				// listens on every address; show it as docker does.
				if strings.HasPrefix(p, ":") {
					p = "0.0.0.0" + p
				}
				ps.Ports = append(ps.Ports, p)
			}
			ps.Status = st["ActiveState"]
			if st["SubState"] != "" {
				ps.Status += " (" + st["SubState"] + ")"
			}
			fmt.Sscan(st["ExecMainStatus"], &ps.ExitCode)
			fmt.Sscan(st["MainPID"], &ps.MainPID)
			ps.State = dockerState(st, s.Oneshot)
			if in.Health != "" {
				ps.Health = h.health(in.Machine, m.Project, byID[in.Health], ps.State)
			}
			if !all && ps.State != "running" && ps.State != "starting" && ps.State != "restarting" {
				continue
			}
			out = append(out, ps)
		}
	}
	return out, nil
}

func dockerState(st unitState, oneshot bool) string {
	switch st["ActiveState"] {
	case "active":
		if oneshot || st["SubState"] == "exited" {
			return "exited"
		}
		return "running"
	case "activating":
		if st["SubState"] == "auto-restart" {
			return "restarting"
		}
		if oneshot {
			// A oneshot is "activating" for as long as its command runs.
			return "running"
		}
		return "starting"
	case "failed":
		return "failed"
	case "deactivating":
		return "stopping"
	}
	if st["ExecMainCode"] == "0" || st["ExecMainCode"] == "" {
		return "created"
	}
	return "exited"
}

// health reads the state the health helper saves for ps; before the first
// result, or if the unit is not running, it is derived from the unit.
func (h *Host) health(machine, project string, unit unitState, state string) string {
	if state != "running" {
		return ""
	}
	b, err := h.ReadFile(filepath.Join(h.Dir(project), "machines", machine, "health.json"))
	if err == nil {
		var hs struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(b, &hs) == nil && hs.Status != "" && unit["ActiveState"] == "active" {
			return hs.Status
		}
	}
	switch unit["ActiveState"] {
	case "activating":
		return "starting"
	case "active":
		if strings.Contains(unit["StatusText"], "unhealthy") {
			return "unhealthy"
		}
		return "healthy"
	}
	return "unhealthy"
}
