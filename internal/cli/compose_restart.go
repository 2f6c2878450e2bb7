package cli

import (
	"time"

	"github.com/spf13/cobra"
)

func newComposeRestartCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restart [SERVICE...]",
		Short: "Restart services (and their dependents with depends_on restart: true) and wait until they are up",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).Restart(cmd.Context(), name, args, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "wait-timeout", 5*time.Minute, "how long to wait for services to be running or healthy")
	return cmd
}
