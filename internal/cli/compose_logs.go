package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeLogsCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	o := project.LogOptions{}
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [SERVICE...]",
		Short: "Show the services' output from the journal, prefixed by service",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			o.Services = args
			o.Tail = -1
			if tail != "all" {
				if _, err := fmt.Sscan(tail, &o.Tail); err != nil || o.Tail < 0 {
					return errorf("logs %s: --tail %q: want a number of lines or all", name, tail)
				}
			}
			err = composeHost(env, g).Logs(cmd.Context(), name, env.Stdout, o)
			if cmd.Context().Err() != nil {
				// ^C ends -f; that is how it is meant to stop.
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	// No -f: it is compose's --file, which every subcommand inherits.
	f.BoolVar(&o.Follow, "follow", false, "keep showing new lines")
	f.StringVarP(&tail, "tail", "n", "all", "lines to show from the end of each service's log, or all")
	f.BoolVar(&o.NoPrefix, "no-log-prefix", false, "do not prefix lines with the service name")
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}
