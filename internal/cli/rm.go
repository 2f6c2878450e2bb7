package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRmCmd(env Env, g *Globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove machines: their units, settings and copied root filesystems",
		Long: `Remove machines made by ` + "`berth create`" + `: the service unit, the .nspawn
file, berth's record and, if create copied the image, the machine's root
filesystem. The pulled image itself stays (remove it with ` + "`berth rmi`" + `).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h := machineHost(env, g)
			for _, n := range args {
				if err := h.Remove(cmd.Context(), n, force); err != nil {
					return err
				}
				fmt.Fprintln(env.Stdout, n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running machine first")
	return cmd
}
