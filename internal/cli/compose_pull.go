package cli

import (
	"github.com/spf13/cobra"
)

func newComposePullCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "pull [SERVICE...]",
		Short: "Pull the newest image of each service into its machines",
		Long: `Pull the newest image of each service into its (stopped) machines. A
running machine whose image changed is not replaced under it; use
berth compose up --pull always, which stops, replaces and restarts it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).PullImages(cmd.Context(), name, args, composeImages(env, g))
		},
	}
}
