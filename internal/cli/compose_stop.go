package cli

import (
	"github.com/spf13/cobra"
)

func newComposeStopCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "stop [SERVICE...]",
		Short: "Stop services, keeping them installed (start or up brings them back)",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).Stop(cmd.Context(), name, args)
		},
	}
}
