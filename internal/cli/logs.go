package cli

import (
	"github.com/spf13/cobra"
)

func newLogsCmd(env Env, g *Globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs [-f] NAME",
		Short: "Show a machine's output from the journal",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return machineHost(env, g).Logs(cmd.Context(), args[0], follow, env.Stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output")
	return cmd
}
