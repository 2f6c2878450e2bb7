package project

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/command"
)

// portUnits lists the socket units publishing the machines' ports: a
// connection to one starts its proxy, which pulls the machine up, so a
// stopped service's sockets are stopped with it.
func portSockets(m *Manifest, svcs []ManifestService) []string {
	var out []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			prefix := strings.TrimSuffix(in.Unit, ".service") + "_port-"
			for _, u := range m.Units {
				if strings.HasPrefix(u, prefix) && strings.HasSuffix(u, ".socket") {
					out = append(out, u)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// Stop stops the selected services' machines (all: the project target).
func (h *Host) Stop(ctx context.Context, name string, services []string) error {
	return h.StopWithin(ctx, name, services, nil)
}

// Start starts the selected services' machines (all: the project target)
// and waits until they are running, completed or healthy.
func (h *Host) Start(ctx context.Context, name string, services []string, timeout time.Duration) error {
	return h.startOrRestart(ctx, name, services, false, timeout)
}

// Restart restarts the selected services' machines and waits as Start
// does. Dependents that Require= a restarted machine restart with it
// (systemd semantics).
func (h *Host) Restart(ctx context.Context, name string, services []string, timeout time.Duration) error {
	return h.startOrRestart(ctx, name, services, true, timeout)
}

func (h *Host) startOrRestart(ctx context.Context, name string, services []string, restart bool, timeout time.Duration) error {
	h.fill()
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	verb := "start"
	if restart {
		verb = "restart"
	}
	m, svcs, err := h.selected(name, services)
	if err != nil {
		return err
	}
	machines := serviceUnits(svcs, false)
	if restart {
		if err := h.systemctl(ctx, append([]string{"restart", "--no-block", "--"}, machines...)...); err != nil {
			return fmt.Errorf("restart %s: %w", name, err)
		}
	}
	// Health and proxy units are bound to their machine: a restart stops
	// them, so they are started again with it.
	units := append(serviceUnits(svcs, true), portSockets(m, svcs)...)
	if len(services) == 0 {
		units = append([]string{m.Target}, units...)
	}
	if err := h.systemctl(ctx, append([]string{"start", "--no-block", "--"}, units...)...); err != nil {
		return fmt.Errorf("%s %s: %w", verb, name, err)
	}
	return h.wait(ctx, name, manifestUnitNames(m), serviceUnits(svcs, true), timeout)
}

// PullImages installs the newest image of each selected service into its
// machines. A running machine whose image changed is not replaced (pull
// says so); `berth compose up --pull always` stops and restarts it.
func (h *Host) PullImages(ctx context.Context, name string, services []string, imgs Images) error {
	_, svcs, err := h.selected(name, services)
	if err != nil {
		return err
	}
	for _, s := range svcs {
		for _, in := range s.Instances {
			if _, err := imgs.Pull(ctx, s.Image, in.Machine, nil); err != nil {
				return fmt.Errorf("pull %s/%s: %w", name, s.Name, err)
			}
		}
	}
	return nil
}

// ImageRow is one line of `berth compose images`.
type ImageRow struct {
	Service string `json:"service"`
	Machine string `json:"machine"`
	ImageRecord
}

// Images lists the image each machine of the selected services has.
func (h *Host) Images(name string, services []string, imgs Images) ([]ImageRow, error) {
	_, svcs, err := h.selected(name, services)
	if err != nil {
		return nil, err
	}
	out := []ImageRow{}
	for _, s := range svcs {
		for _, in := range s.Instances {
			rec, ok := imgs.Image(in.Machine)
			if !ok {
				rec = ImageRecord{Reference: s.Image}
			}
			out = append(out, ImageRow{Service: s.Name, Machine: in.Machine, ImageRecord: rec})
		}
	}
	return out, nil
}

// Process is one line of `berth compose top`.
type Process struct {
	Service string `json:"service"`
	Machine string `json:"machine"`
	Fields  []string
}

// TopColumns are ps's columns, as docker compose top shows them.
var TopColumns = []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}

// Top lists the processes of the selected services' machines: every
// process in the cgroup of the machine's unit below its payload (nspawn
// itself is left out).
func (h *Host) Top(ctx context.Context, name string, services []string) ([]Process, error) {
	_, svcs, err := h.selected(name, services)
	if err != nil {
		return nil, err
	}
	out, err := command.Output(ctx, h.Runner, "ps", "-e", "--no-headers", "-o", "cgroup:512,user,pid,ppid,c,stime,tty,time,args")
	if err != nil {
		return nil, fmt.Errorf("top %s: %w", name, err)
	}
	var procs []Process
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		for _, s := range svcs {
			for _, in := range s.Instances {
				if cgroupOf(f[0], in.Unit) {
					procs = append(procs, Process{Service: s.Name, Machine: in.Machine, Fields: append(f[1:8:8], strings.Join(f[8:], " "))})
				}
			}
		}
	}
	return procs, nil
}

// cgroupOf: ps's cgroup column (e.g. "0::/machine.slice/U/payload/...")
// puts the process in unit U's payload.
func cgroupOf(col, unit string) bool {
	for _, part := range strings.Split(col, ",") {
		_, p, _ := strings.Cut(part, "::")
		if strings.Contains(p, "/"+unit+"/payload") {
			return true
		}
	}
	return false
}
