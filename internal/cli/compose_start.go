package cli

import (
	"time"

	"github.com/spf13/cobra"
)

func newComposeStartCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "start [SERVICE...]",
		Short: "Start installed services and wait until they are running or healthy",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).Start(cmd.Context(), name, args, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "wait-timeout", 5*time.Minute, "how long to wait for services to be running or healthy")
	return cmd
}
