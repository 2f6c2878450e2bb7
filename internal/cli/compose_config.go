package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
)

func newComposeConfigCmd(env Env, _ *Globals, cf *composeFlags) *cobra.Command {
	var format string
	var services, quiet bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the normalized compose project, as docker compose config does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			if services {
				for _, n := range p.ServiceNames() {
					fmt.Fprintln(env.Stdout, n)
				}
				return nil
			}
			b, err := compose.Marshal(p, format)
			if err != nil {
				return err
			}
			_, err = env.Stdout.Write(b)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "yaml", "output format: yaml or json")
	cmd.Flags().BoolVar(&services, "services", false, "print the service names, one per line")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only validate; print nothing")
	return cmd
}
