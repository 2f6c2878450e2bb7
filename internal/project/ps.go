package project

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// Status is one machine as `berth compose ps` shows it. Its JSON form is
// stable, with docker compose ps's field names where docker has the
// field (docs/compose-cli.md).
type Status struct {
	// Machine is the machine name, docker's container Name.
	Machine string `json:"Name"`
	Project string `json:"Project"`
	Service string `json:"Service"`
	Image   string `json:"Image"`
	// State is docker's word: running, restarting, exited, created,
	// failed (unit failed), starting (activating).
	State string `json:"State"`
	// Status is systemd's ActiveState (SubState), with the exit status
	// when the command ended.
	Status string `json:"Status"`
	// Health is healthy, unhealthy, starting, or empty without a
	// healthcheck.
	Health   string `json:"Health"`
	ExitCode int    `json:"ExitCode"`
	// Publishers are the published ports, as docker lists them.
	Publishers []Publisher `json:"Publishers"`
	// Unit, MainPID and Ports are berth's: the machine's systemd unit,
	// its main process (systemd-nspawn), and the ports as
	// "HOST_IP:PORT->PORT/PROTO" strings (docker's Ports is one string).
	Unit    string   `json:"Unit"`
	MainPID int      `json:"MainPID,omitempty"`
	Ports   []string `json:"Ports"`
}

// Publisher is one published port (docker compose ps's Publishers).
type Publisher struct {
	URL           string `json:"URL"`
	TargetPort    int    `json:"TargetPort"`
	PublishedPort int    `json:"PublishedPort"`
	Protocol      string `json:"Protocol"`
}

// parsePublisher reads the manifest's HOST_IP:PORT->TARGET/PROTO.
func parsePublisher(p string) (Publisher, bool) {
	host, rest, ok := strings.Cut(p, "->")
	if !ok {
		return Publisher{}, false
	}
	target, proto, _ := strings.Cut(rest, "/")
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return Publisher{}, false
	}
	var pub Publisher
	pub.URL, pub.Protocol = host[:i], proto
	if _, err := fmt.Sscan(host[i+1:], &pub.PublishedPort); err != nil {
		return Publisher{}, false
	}
	if _, err := fmt.Sscan(target, &pub.TargetPort); err != nil {
		return Publisher{}, false
	}
	return pub, true
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
			ps := Status{Service: s.Name, Machine: in.Machine, Project: m.Project, Unit: in.Unit, Image: s.Image, Ports: []string{}, Publishers: []Publisher{}}
			for _, p := range in.Ports {
				// The manifest leaves the address out when the port
				// listens on every address; show it as docker does.
				if strings.HasPrefix(p, ":") {
					p = "0.0.0.0" + p
				}
				ps.Ports = append(ps.Ports, p)
				if pub, ok := parsePublisher(p); ok {
					ps.Publishers = append(ps.Publishers, pub)
				}
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
