package machines

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/systemd"
)

// DaemonReload tells systemd unit files changed (nothing when PID 1 is
// not systemd: it reads them when it starts).
func (h Host) DaemonReload(ctx context.Context) error { return h.daemonReload(ctx) }

func (h Host) daemonReload(ctx context.Context) error {
	if !h.SystemdBooted {
		return nil // nothing to tell; the files are read when systemd starts
	}
	return command.Run(ctx, h.Runner, "systemctl", "daemon-reload")
}

func (h Host) systemctl(ctx context.Context, verb, name string) error {
	if !h.SystemdBooted {
		return fmt.Errorf("%s machine %s: %w; use `berth run` instead", verb, name, ErrNoSystemd)
	}
	if _, err := h.Instance(name); err != nil {
		return fmt.Errorf("%s machine %s: %w", verb, name, err)
	}
	if err := command.Run(ctx, h.Runner, "systemctl", verb, machine.ServiceName(name)); err != nil {
		return fmt.Errorf("%s machine %s: %w", verb, name, err)
	}
	return nil
}

// Start starts machine name's service.
func (h Host) Start(ctx context.Context, name string) error { return h.systemctl(ctx, "start", name) }

// Stop stops it: nspawn sends the stop signal to the container and waits.
func (h Host) Stop(ctx context.Context, name string) error { return h.systemctl(ctx, "stop", name) }

// Restart restarts it.
func (h Host) Restart(ctx context.Context, name string) error {
	return h.systemctl(ctx, "restart", name)
}

// Status is a machine's state as systemd reports it.
type Status struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	Unit        string `json:"unit"`
	ActiveState string `json:"activeState"`
	SubState    string `json:"subState"`
	MainPID     int    `json:"mainPID"`
	Boot        bool   `json:"boot"`
}

// statusProps are the properties List reads of each machine's service.
var statusProps = []string{"ActiveState", "SubState", "MainPID"}

// List reports every machine berth created with its service state
// ("unknown" without systemd).
func (h Host) List(ctx context.Context) ([]Status, error) {
	ins, err := h.Instances()
	if err != nil {
		return nil, err
	}
	out := []Status{}
	for _, in := range ins {
		st := Status{Name: in.Spec.Name, Image: in.Image, Unit: machine.ServiceName(in.Spec.Name), Boot: in.Spec.Boot, ActiveState: "unknown"}
		if h.SystemdBooted {
			props, err := systemd.Show(ctx, h.Runner, statusProps, st.Unit)
			if err != nil {
				return nil, fmt.Errorf("list machines: %w", err)
			}
			st.ActiveState, st.SubState = props[0]["ActiveState"], props[0]["SubState"]
			st.MainPID, _ = strconv.Atoi(props[0]["MainPID"])
		}
		out = append(out, st)
	}
	return out, nil
}

// Logs writes machine name's journal (its command's output) to w.
func (h Host) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	in, err := h.Instance(name)
	if err != nil {
		return fmt.Errorf("show logs of %s: %w", name, err)
	}
	args := []string{"journalctl", "--no-pager", "--output=cat"}
	if in.Spec.Boot {
		// The machine's console and systemd's messages about it; its
		// own journal is `journalctl -M NAME`.
		args = append(args, "--unit="+machine.ServiceName(name))
	} else {
		// Only the command's output, as docker logs: it reaches the
		// journal through the service's stdout stream, while nspawn
		// logs to the journal directly (SYSTEMD_LOG_TARGET in the unit)
		// and systemd's messages come from PID 1. Entries of an
		// earlier machine of the same name are not this one's.
		args = append(args, "_SYSTEMD_UNIT="+machine.ServiceName(name), "_TRANSPORT=stdout",
			"--since=@"+strconv.FormatInt(in.Created.Unix(), 10))
	}
	if follow {
		args = append(args, "--follow")
	}
	if err := h.Runner.Run(ctx, command.Command{Args: args, Stdout: w}); err != nil {
		return fmt.Errorf("show logs of %s: %w", name, err)
	}
	return nil
}
