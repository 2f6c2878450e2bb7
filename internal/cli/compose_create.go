package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
)

func newComposeCreateCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var u upFlags
	cmd := &cobra.Command{
		Use:   "create [SERVICE...]",
		Short: "Pull and install the project's units without starting anything",
		Long: `Convert the project, pull the images machines do not have yet, install the
units and reload systemd, as up does, but start nothing: berth compose start
(or up) starts the machines later. The project target is enabled, so a
reboot starts the project.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			if err := u.apply("create", p); err != nil {
				return err
			}
			o := u.o
			o.Services, o.NoStart = args, true
			o.Images = composeImages(env, g)
			res, err := composeHost(env, g).Up(cmd.Context(), p, o)
			if res != nil {
				for _, f := range res.Findings {
					if f.Severity == compose.Warning {
						fmt.Fprintf(env.Stderr, "berth: %s\n", f)
					}
				}
			}
			return err
		},
	}
	u.register(cmd)
	return cmd
}
