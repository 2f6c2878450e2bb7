package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newComposePsCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var format string
	var all, quiet, services bool
	var status, filters []string
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List the project's machines with state, health and ports",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			for _, f := range filters {
				k, v, _ := parseFilter(f)
				if k != "status" {
					return unsupported("ps", "--filter "+f, "only status=STATE is supported")
				}
				status = append(status, v)
			}
			if format != "table" && format != "json" {
				return errorf("ps %s: unknown format %q (want table or json)", name, format)
			}
			if services {
				// docker lists the services of the project as
				// installed, whatever their machines' states.
				m, err := composeHost(env, g).Manifest(name)
				if err != nil {
					return err
				}
				svcs, err := m.Select(args)
				if err != nil {
					return err
				}
				for _, s := range svcs {
					fmt.Fprintln(env.Stdout, s.Name)
				}
				return nil
			}
			st, err := composeHost(env, g).Ps(cmd.Context(), name, args, all || len(status) > 0)
			if err != nil {
				return err
			}
			if len(status) > 0 {
				kept := st[:0]
				for _, s := range st {
					for _, want := range status {
						if s.State == want {
							kept = append(kept, s)
							break
						}
					}
				}
				st = kept
			}
			switch {
			case quiet:
				for _, s := range st {
					fmt.Fprintln(env.Stdout, s.Machine)
				}
				return nil
			case format == "json":
				return writeJSON(env.Stdout, st)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSERVICE\tSTATE\tHEALTH\tSTATUS\tPORTS")
			for _, s := range st {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Machine, s.Service, s.State, s.Health, s.Status, strings.Join(s.Ports, ", "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also show stopped and exited machines")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print machine names only")
	cmd.Flags().BoolVar(&services, "services", false, "print the project's service names only")
	cmd.Flags().StringArrayVar(&status, "status", nil, "only machines in this state: running, starting, restarting, exited, created, failed, stopping (repeatable)")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter: status=STATE")
	cmd.Flags().Bool("no-trunc", false, "accepted: berth never truncates")
	cmd.Flags().Bool("orphans", true, "accepted: berth removes orphans on up, so there are none to show")
	return cmd
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
