package cli

import (
	"github.com/spf13/cobra"
)

func newComposeKillCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var signal string
	var removeOrphans bool
	cmd := &cobra.Command{
		Use:   "kill [-s SIGNAL] [SERVICE...]",
		Short: "Send a signal (default SIGKILL) to the services' running machines",
		Long: `Send SIGNAL to the init of each running machine of the services (all when
none are named). berth-init passes it on to the service's command, as
docker delivers it to the container's main process. systemd then applies
the service's restart: policy, which docker skips after a kill.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).Kill(cmd.Context(), name, args, signal)
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "SIGKILL", "signal to send: a name (SIGTERM, TERM) or a number")
	cmd.Flags().BoolVar(&removeOrphans, "remove-orphans", false, "accepted: kill leaves nothing behind that is not in the project")
	return cmd
}
