package health

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/systemd"
)

// MachineProber runs the test inside a machine by entering its leader's
// namespaces and root with nsenter, with the leader's environment. Nothing
// in the machine is needed beyond what the test itself names: no systemd,
// no shell unless the test is CMD-SHELL.
type MachineProber struct {
	Machine string
	// Argv is the test: CMD's words, or ["/bin/sh", "-c", CMD-SHELL].
	Argv []string
	// Runner runs machinectl and nsenter. Default: command.ExecRunner
	// that kills a check at its timeout, as docker does.
	Runner command.Runner
	// Leader returns the PID of the machine's PID 1 (looked up for every
	// probe: it changes when the machine restarts). Default: machined's
	// (systemd.Leader).
	Leader func(ctx context.Context, machine string) (int, error)
}

// Probe implements Prober.
func (m MachineProber) Probe(ctx context.Context) (int, string, error) {
	r := m.Runner
	if r == nil {
		r = command.ExecRunner{Kill: true}
	}
	var pid int
	var err error
	if m.Leader != nil {
		pid, err = m.Leader(ctx, m.Machine)
	} else {
		pid, err = systemd.Leader(ctx, r, m.Machine)
	}
	if err != nil {
		return 0, "", err
	}
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return 0, "", fmt.Errorf("read environment of machine %s: %w", m.Machine, err)
	}
	c := command.Command{Args: systemd.Enter(pid, m.Argv...)}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if len(kv) > 0 {
			c.Env = append(c.Env, string(kv))
		}
	}
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	err = r.Run(ctx, c)
	if code := command.ExitCode(err); code > 0 {
		return code, out.String(), nil
	}
	if err != nil {
		return 0, out.String(), fmt.Errorf("run health check in %s: %w", m.Machine, err)
	}
	return 0, out.String(), nil
}
