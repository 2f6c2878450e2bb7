package cli

import (
	"github.com/spf13/cobra"
)

func newComposeStopCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	timeout := newSecondsFlag(0)
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] [SERVICE...]",
		Short: "Stop services, keeping them installed (start or up brings them back)",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			return composeHost(env, g).StopWithin(cmd.Context(), name, args, timeout.ptr())
		},
	}
	cmd.Flags().VarP(timeout, "timeout", "t", "seconds machines may take to stop before they are killed (default: their stop_grace_period)")
	return cmd
}
