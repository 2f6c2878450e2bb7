package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newComposePsCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var format string
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "ps [SERVICE...]",
		Short: "List the project's machines with state, health and ports",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			st, err := composeHost(env, g).Ps(cmd.Context(), name, args, all)
			if err != nil {
				return err
			}
			switch {
			case quiet:
				for _, s := range st {
					fmt.Fprintln(env.Stdout, s.Machine)
				}
				return nil
			case format == "json":
				b, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
				return err
			case format != "table":
				return errorf("ps %s: unknown format %q (want table or json)", name, format)
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
	return cmd
}

func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }
