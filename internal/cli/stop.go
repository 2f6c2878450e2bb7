package cli

import (
	"github.com/spf13/cobra"
)

func newStopCmd(env Env, g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "stop NAME...",
		Short: "Stop machines: the command gets its stop signal, then SIGKILL after the unit's timeout",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h := machineHost(env, g)
			for _, n := range args {
				if err := h.Stop(cmd.Context(), n); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
