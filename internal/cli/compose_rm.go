package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeRmCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var o project.RmOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] [-s] [-v] [SERVICE...]",
		Short: "Remove the services' stopped machines (their root filesystems)",
		Long: `Remove the stopped machines of the services (all when none are named): their
root filesystems and image records, and with -v their anonymous volumes.
Running machines are left alone unless -s stops them first. The units stay
installed: the next berth compose up pulls the image again and makes the
machine anew, as docker compose up recreates removed containers.

Without -f berth asks before removing; answer y to go on.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			o.Images = composeImages(env, g)
			if !force {
				o.Confirm = func(machines []string) bool {
					fmt.Fprintf(env.Stderr, "Going to remove %s\nAre you sure? [yN] ", strings.Join(machines, ", "))
					line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
					return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
				}
			}
			gone, err := composeHost(env, g).Rm(cmd.Context(), name, args, o)
			for _, m := range gone {
				fmt.Fprintln(env.Stdout, m)
			}
			return err
		},
	}
	f := cmd.Flags()
	// -f after rm is rewritten to --force (composeShortF).
	f.BoolVar(&force, "force", false, "do not ask before removing (-f after rm)")
	f.BoolVarP(&o.Stop, "stop", "s", false, "stop the machines first")
	f.BoolVarP(&o.Volumes, "volumes", "v", false, "also remove the machines' anonymous volumes")
	return cmd
}
