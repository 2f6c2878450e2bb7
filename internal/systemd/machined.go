package systemd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-sh/berth/internal/command"
)

// ErrNoMachine is returned by Leader when machined does not know the
// machine: it is not running.
var ErrNoMachine = errors.New("machine is not running")

// Leader asks machined for the PID of a running machine's init (it changes
// whenever the machine restarts).
func Leader(ctx context.Context, r command.Runner, machine string) (int, error) {
	out, err := command.Output(ctx, r, "machinectl", "show", "--property=Leader", "--value", "--", machine)
	if command.ExitCode(err) > 0 {
		return 0, fmt.Errorf("find leader of machine %s: %w: %w", machine, ErrNoMachine, err)
	}
	if err != nil {
		return 0, fmt.Errorf("find leader of machine %s: %w", machine, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("find leader of machine %s: machinectl reported leader %q", machine, strings.TrimSpace(out))
	}
	return pid, nil
}

// Enter is the command line that runs argv inside the machine whose init
// is pid: in all its namespaces, its root and working directory.
func Enter(pid int, argv ...string) []string {
	return append([]string{"nsenter", "--target=" + strconv.Itoa(pid), "--all", "--root", "--wd", "--"}, argv...)
}
