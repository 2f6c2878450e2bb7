package project

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/machine"
)

// output runs argv and returns its stdout; stderr is kept for the error.
func (h *Host) output(ctx context.Context, argv ...string) (string, error) {
	var out, errb bytes.Buffer
	err := h.Runner.Run(ctx, machine.Command{Args: argv, Stdout: &out, Stderr: &errb})
	if err != nil {
		if msg := strings.TrimSpace(errb.String()); msg != "" {
			return out.String(), fmt.Errorf("%w: %s", err, msg)
		}
		return out.String(), err
	}
	return out.String(), nil
}

func (h *Host) systemctl(ctx context.Context, args ...string) error {
	_, err := h.output(ctx, append([]string{"systemctl"}, args...)...)
	return err
}

// unitState is what `systemctl show` says about one unit.
type unitState map[string]string

// showProps are the properties berth reads to judge a unit.
var showProps = "Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainCode,MainPID,StatusText,ActiveEnterTimestamp,ControlGroup"

// show returns the state of each unit, in order. systemctl prints one
// block of KEY=VALUE lines per unit, blocks separated by an empty line.
func (h *Host) show(ctx context.Context, units []string) ([]unitState, error) {
	if len(units) == 0 {
		return nil, nil
	}
	out, err := h.output(ctx, append([]string{"systemctl", "show", "--property=" + showProps, "--"}, units...)...)
	if err != nil {
		return nil, fmt.Errorf("query units: %w", err)
	}
	var states []unitState
	cur := unitState{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			if len(cur) > 0 {
				states = append(states, cur)
				cur = unitState{}
			}
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		cur[k] = v
	}
	if len(cur) > 0 {
		states = append(states, cur)
	}
	if len(states) != len(units) {
		return nil, fmt.Errorf("query units: systemctl show answered for %d of %d units", len(states), len(units))
	}
	return states, nil
}

// pendingJobs returns the units with a queued or running job.
func (h *Host) pendingJobs(ctx context.Context) (map[string]bool, error) {
	out, err := h.output(ctx, "systemctl", "list-jobs", "--plain", "--no-legend")
	if err != nil {
		return nil, fmt.Errorf("list systemd jobs: %w", err)
	}
	jobs := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			jobs[f[1]] = true
		}
	}
	return jobs, nil
}

// lastLines returns the last n journal lines of unit (message text only).
func (h *Host) lastLines(ctx context.Context, unit string, n int) string {
	out, err := h.output(ctx, "journalctl", "--no-pager", "--quiet", "--output=cat", fmt.Sprintf("--lines=%d", n), "--unit="+unit)
	if err != nil {
		return ""
	}
	return strings.TrimRight(out, "\n")
}
