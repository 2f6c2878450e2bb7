package project

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/systemd"
)

func (h *Host) systemctl(ctx context.Context, args ...string) error {
	return command.Run(ctx, h.Runner, append([]string{"systemctl"}, args...)...)
}

// unitState is what `systemctl show` says about one unit.
type unitState = systemd.Properties

// showProps are the properties berth reads to judge a unit.
var showProps = []string{"Id", "LoadState", "ActiveState", "SubState", "Result", "ExecMainStatus", "ExecMainCode", "MainPID", "StatusText", "ActiveEnterTimestamp", "ControlGroup"}

// show returns the state of each unit, in order.
func (h *Host) show(ctx context.Context, units []string) ([]unitState, error) {
	return systemd.Show(ctx, h.Runner, showProps, units...)
}

// pendingJobs returns the units with a queued or running job.
func (h *Host) pendingJobs(ctx context.Context) (map[string]bool, error) {
	out, err := command.Output(ctx, h.Runner, "systemctl", "list-jobs", "--plain", "--no-legend")
	if err != nil {
		return nil, fmt.Errorf("list systemd jobs: %w", err)
	}
	jobs := map[string]bool{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			jobs[f[1]] = true
		}
	}
	return jobs, nil
}

// lastLines returns the last n journal lines of unit (message text only).
func (h *Host) lastLines(ctx context.Context, unit string, n int) string {
	out, err := command.Output(ctx, h.Runner, "journalctl", "--no-pager", "--quiet", "--output=cat", fmt.Sprintf("--lines=%d", n), "--unit="+unit)
	if err != nil {
		return ""
	}
	return strings.TrimRight(out, "\n")
}
