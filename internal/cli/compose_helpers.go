package cli

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose/hostnet"
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
			return hostnet.BridgeUp(cmd.Context(), hostnet.ExecRunner{}, b)
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
			return hostnet.BridgeDown(cmd.Context(), hostnet.ExecRunner{}, name)
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
			for _, l := range links {
				link, err := hostnet.ParseLink(l)
				if err != nil {
					return err
				}
				ns.Links = append(ns.Links, link)
			}
			for _, s := range sysctls {
				sc, err := hostnet.ParseSysctl(s)
				if err != nil {
					return err
				}
				ns.Sysctls = append(ns.Sysctls, sc)
			}
			return hostnet.NamespaceUp(cmd.Context(), hostnet.ExecRunner{}, ns)
		},
	}
	cmd.Flags().StringVar(&ns.Name, "netns", "", "namespace name under /run/netns")
	cmd.Flags().StringArrayVar(&links, "link", nil, "interface to create (repeatable)")
	cmd.Flags().StringArrayVar(&sysctls, "sysctl", nil, "net.* sysctl to set in the namespace (repeatable)")
	return cmd
}

func newComposeNetnsDownCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:    "_netns-down --netns NAME",
		Short:  "Remove a machine's network namespace (run by ExecStopPost=)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return hostnet.NamespaceDown(cmd.Context(), hostnet.ExecRunner{}, name)
		},
	}
	cmd.Flags().StringVar(&name, "netns", "", "namespace name under /run/netns")
	return cmd
}
