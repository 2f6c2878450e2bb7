package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// MachineProber runs the test inside a machine by entering its leader's
// namespaces and root with nsenter, with the leader's environment. Nothing
// in the machine is needed beyond what the test itself names: no systemd,
// no shell unless the test is CMD-SHELL.
type MachineProber struct {
	Machine string
	// Argv is the test: CMD's words, or ["/bin/sh", "-c", CMD-SHELL].
	Argv []string
	// Leader returns the PID of the machine's PID 1 (looked up for every
	// probe: it changes when the machine restarts).
	Leader func(ctx context.Context, machine string) (int, error)
}

// Probe implements Prober.
func (m MachineProber) Probe(ctx context.Context) (int, string, error) {
	pid, err := m.Leader(ctx, m.Machine)
	if err != nil {
		return 0, "", err
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return 0, "", fmt.Errorf("read environment of machine %s: %w", m.Machine, err)
	}
	args := append([]string{"--target", strconv.Itoa(pid), "--all", "--root", "--wd", "--"}, m.Argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	for _, kv := range bytes.Split(env, []byte{0}) {
		if len(kv) > 0 {
			cmd.Env = append(cmd.Env, string(kv))
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String(), nil
	}
	if err != nil {
		return 0, out.String(), fmt.Errorf("run health check in %s: %w", m.Machine, err)
	}
	return 0, out.String(), nil
}

// MachinedLeader asks machined for a machine's leader PID.
func MachinedLeader(ctx context.Context, machine string) (int, error) {
	out, err := exec.CommandContext(ctx, "machinectl", "show", "--property=Leader", "--value", machine).Output()
	if err != nil {
		return 0, fmt.Errorf("find leader of machine %s: %w", machine, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("find leader of machine %s: machinectl said %q", machine, out)
	}
	return pid, nil
}
