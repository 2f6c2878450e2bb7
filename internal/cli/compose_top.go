package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeTopCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICE...]",
		Short: "Show the processes running in each machine",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			procs, err := composeHost(env, g).Top(cmd.Context(), name, args)
			if err != nil {
				return err
			}
			last := ""
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			for _, p := range procs {
				if p.Machine != last {
					if last != "" {
						fmt.Fprintln(tw)
					}
					fmt.Fprintf(tw, "%s\n%s\n", p.Machine, strings.Join(project.TopColumns, "\t"))
					last = p.Machine
				}
				fmt.Fprintln(tw, strings.Join(p.Fields, "\t"))
			}
			return tw.Flush()
		},
	}
}
