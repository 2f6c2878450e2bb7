package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newPsCmd(env Env, g *Globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List the machines berth created and their state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := machineHost(env, g).List(cmd.Context())
			if err != nil {
				return err
			}
			switch format {
			case "json":
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			case "table":
				tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tIMAGE\tSTATE\tUNIT")
				for _, s := range list {
					state := s.ActiveState
					if s.SubState != "" {
						state += " (" + s.SubState + ")"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Image, state, s.Unit)
				}
				return tw.Flush()
			}
			return fmt.Errorf("ps: unknown --format %q (want table or json)", format)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}
