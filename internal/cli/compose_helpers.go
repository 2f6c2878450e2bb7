package cli

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose/health"
	"github.com/berth-sh/berth/internal/compose/hostnet"
	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/compose/udpproxy"
)

// The hidden compose helpers are what the generated units run on the host;
// users do not call them. Each maps its flags to one hostnet call.

func newComposeBridgeUpCmd() *cobra.Command {
	var b hostnet.Bridge
	var addr string
	cmd := &cobra.Command{
		Use:    "_bridge-up --bridge NAME --address GATEWAY/LEN [--internal]",
		Short:  "Create a project bridge (run by berth_br-*.service)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := netip.ParsePrefix(addr)
			if err != nil {
				return fmt.Errorf("bring up bridge %s: --address: %w", b.Name, err)
			}
			b.Address = a
			return hostnet.BridgeUp(cmd.Context(), command.ExecRunner{}, b)
		},
	}
	cmd.Flags().StringVar(&b.Name, "bridge", "", "bridge interface name")
	cmd.Flags().StringVar(&addr, "address", "", "gateway address with prefix length")
	cmd.Flags().BoolVar(&b.Internal, "internal", false, "no forwarding to or from other interfaces")
	return cmd
}

func newComposeBridgeDownCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:    "_bridge-down --bridge NAME",
		Short:  "Remove a project bridge",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return hostnet.BridgeDown(cmd.Context(), command.ExecRunner{}, name)
		},
	}
	cmd.Flags().StringVar(&name, "bridge", "", "bridge interface name")
	return cmd
}

func newComposeNetnsUpCmd() *cobra.Command {
	var ns hostnet.Namespace
	var links, sysctls []string
	cmd := &cobra.Command{
		Use:    "_netns-up --netns NAME --link HOST,BRIDGE,GUEST,ADDR/LEN[,GATEWAY]... [--sysctl net.K=V]...",
		Short:  "Prepare a machine's network namespace (run by the machine unit's ExecStartPre=)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if ns.Links, err = parseLinks(links); err != nil {
				return err
			}
			for _, s := range sysctls {
				sc, err := netspec.ParseSysctl(s)
				if err != nil {
					return err
				}
				ns.Sysctls = append(ns.Sysctls, sc)
			}
			return hostnet.NamespaceUp(cmd.Context(), command.ExecRunner{}, ns)
		},
	}
	cmd.Flags().StringVar(&ns.Name, "netns", "", "namespace name under /run/netns")
	cmd.Flags().StringArrayVar(&links, "link", nil, "interface to create (repeatable)")
	cmd.Flags().StringArrayVar(&sysctls, "sysctl", nil, "net.* sysctl to set in the namespace (repeatable)")
	return cmd
}

func newComposeNetnsDownCmd() *cobra.Command {
	var ns hostnet.Namespace
	var links []string
	cmd := &cobra.Command{
		Use:    "_netns-down --netns NAME [--link HOST,BRIDGE,GUEST,ADDR/LEN[,GATEWAY]]...",
		Short:  "Remove a machine's network namespace (run by ExecStopPost=)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if ns.Links, err = parseLinks(links); err != nil {
				return err
			}
			return hostnet.NamespaceDown(cmd.Context(), command.ExecRunner{}, ns)
		},
	}
	cmd.Flags().StringVar(&ns.Name, "netns", "", "namespace name under /run/netns")
	cmd.Flags().StringArrayVar(&links, "link", nil, "interface whose host side to remove (repeatable)")
	return cmd
}

func newComposeHealthCmd() *cobra.Command {
	var c health.Check
	var machine, state string
	var shell bool
	cmd := &cobra.Command{
		Use:    "_health --machine NAME [timing flags] [--shell] -- TEST...",
		Short:  "Watch a machine's healthcheck (run by berth-NAME_health.service)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv := args
			if shell {
				if len(args) != 1 {
					return fmt.Errorf("watch health of %s: --shell takes one command string", machine)
				}
				argv = []string{"/bin/sh", "-c", args[0]}
			}
			p := health.MachineProber{Machine: machine, Argv: argv}
			notify := func(msg string) error {
				_, err := daemon.SdNotify(false, msg)
				return err
			}
			if c.UntilHealthy {
				// Run as ExecStartPost=: the unit's main process
				// (nspawn) is the one that notifies.
				notify = func(string) error { return nil }
			}
			save := func(health.State) error { return nil }
			if state != "" {
				save = health.SaveFile(state)
			}
			return health.Watch(cmd.Context(), c, p, health.RealClock{}, notify, save)
		},
	}
	f := cmd.Flags()
	f.StringVar(&machine, "machine", "", "machine to check")
	f.DurationVar(&c.Interval, "interval", 30*time.Second, "time between checks")
	f.DurationVar(&c.Timeout, "timeout", 30*time.Second, "time one check may take")
	f.Uint64Var(&c.Retries, "retries", 3, "consecutive failures that make the machine unhealthy")
	f.DurationVar(&c.StartPeriod, "start-period", 0, "time after start in which failures do not count")
	f.DurationVar(&c.StartInterval, "start-interval", 5*time.Second, "time between checks in the start period")
	f.StringVar(&state, "state", "", "file the health state is saved to (read by berth compose ps; none if empty)")
	f.BoolVar(&shell, "shell", false, "run TEST with /bin/sh -c (CMD-SHELL)")
	f.BoolVar(&c.ExitUnhealthy, "exit-unhealthy", false, "fail whenever the machine turns unhealthy (units bound to this one stop)")
	f.BoolVar(&c.UntilHealthy, "until-healthy", false, "exit once the check passed (a wait, as ExecStartPost=)")
	return cmd
}

func newComposeUDPProxyCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "_udp-proxy ADDRESS:PORT",
		Short:  "Relay a socket-activated UDP port to a machine (run by berth-*_port-*-udp.service)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := net.ResolveUDPAddr("udp", args[0])
			if err != nil {
				return fmt.Errorf("proxy udp: %w", err)
			}
			pcs, err := activation.PacketConns()
			if err != nil {
				return fmt.Errorf("proxy udp to %s: %w", target, err)
			}
			if len(pcs) != 1 {
				return fmt.Errorf("proxy udp to %s: want one socket from systemd, got %d", target, len(pcs))
			}
			return udpproxy.Serve(cmd.Context(), pcs[0], target, udpproxy.DefaultIdle)
		},
	}
}

// parseLinks parses the repeated --link flags of _netns-up and _netns-down.
func parseLinks(flags []string) ([]hostnet.Link, error) {
	var out []hostnet.Link
	for _, f := range flags {
		l, err := netspec.ParseLink(f)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
