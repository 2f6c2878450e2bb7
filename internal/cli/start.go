package cli

import (
	"github.com/spf13/cobra"
)

func newStartCmd(env Env, g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME...",
		Short: "Start machines (systemctl start berth-NAME.service)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h := machineHost(env, g)
			for _, n := range args {
				if err := h.Start(cmd.Context(), n); err != nil {
					return err
				}
			}
			return nil
		},
	}
}
