package project

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/command"
)

// Kill sends signal (a name such as SIGKILL or KILL, or a number; default
// SIGKILL, as docker compose kill) to the init of every running machine of
// the selected services. berth-init passes it on to the service's command,
// as docker delivers it to the container's main process. Machines that are
// not running are skipped, as docker compose skips stopped containers.
func (h *Host) Kill(ctx context.Context, name string, services []string, signal string) error {
	sig, err := normalizeSignal(signal)
	if err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	_, svcs, err := h.selected(name, services)
	if err != nil {
		return err
	}
	var units, machines []string
	for _, s := range svcs {
		for _, in := range s.Instances {
			units = append(units, in.Unit)
			machines = append(machines, in.Machine)
		}
	}
	states, err := h.show(ctx, units)
	if err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	for i, st := range states {
		if st["ActiveState"] != "active" && st["ActiveState"] != "activating" && st["ActiveState"] != "reloading" {
			continue
		}
		if st["SubState"] == "auto-restart" || st["SubState"] == "exited" {
			continue
		}
		if err := command.Run(ctx, h.Runner, "machinectl", "kill", "--kill-whom=leader", "--signal="+sig, "--", machines[i]); err != nil {
			return fmt.Errorf("kill %s: %s: %w", name, machines[i], err)
		}
	}
	return nil
}

// signals are the names kill accepts (with or without SIG), as kill -l
// lists them; a number is passed on as it is.
var signals = []string{"HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"}

// ErrBadSignal: kill -s names no signal.
var ErrBadSignal = fmt.Errorf("unknown signal")

func normalizeSignal(s string) (string, error) {
	if s == "" {
		return "SIGKILL", nil
	}
	n := 0
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n < 1 || n > 64 {
			return "", fmt.Errorf("signal %q: %w (want 1-64)", s, ErrBadSignal)
		}
		return s, nil
	}
	u := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	for _, k := range signals {
		if k == u {
			return "SIG" + k, nil
		}
	}
	if strings.HasPrefix(u, "RTMIN") || strings.HasPrefix(u, "RTMAX") {
		return "SIG" + u, nil
	}
	return "", fmt.Errorf("signal %q: %w (want a name such as SIGTERM or a number)", s, ErrBadSignal)
}
