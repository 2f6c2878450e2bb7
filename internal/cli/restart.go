package cli

import (
	"github.com/spf13/cobra"
)

func newRestartCmd(env Env, g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restart NAME...",
		Short: "Restart machines",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h := machineHost(env, g)
			for _, n := range args {
				if err := h.Restart(cmd.Context(), n); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
