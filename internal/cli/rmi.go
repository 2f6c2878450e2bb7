package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

func newRmiCmd(env Env, g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi NAME...",
		Short: "Remove machines installed by pull, and the image data only they used",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.Open(g.Root)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if pull.MachinedRunning(name) {
					errs = append(errs, fmt.Errorf("remove machine %s: it is running (stop it first)", name))
					continue
				}
				if err := st.RemoveMachine(cmd.Context(), g.MachinesDir, name); err != nil {
					errs = append(errs, err)
					continue
				}
				if !g.Quiet {
					fmt.Fprintf(env.Stderr, "removed %s\n", name)
				}
			}
			// Never wait for a running pull: it collects when it finishes.
			n, freed, _, err := st.TryCollectGarbage()
			if err != nil {
				errs = append(errs, err)
			} else if !g.Quiet && n > 0 {
				fmt.Fprintf(env.Stderr, "freed %s in %d blobs\n", pull.HumanSize(freed), n)
			}
			return errors.Join(errs...)
		},
	}
}
