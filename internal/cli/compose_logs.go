package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeLogsCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	o := project.LogOptions{}
	var tail, since, until string
	var noColor bool
	var index int
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--since T] [--until T] [-t] [SERVICE...]",
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
			now := time.Now()
			if since != "" {
				if o.Since, err = project.ParseLogTime(since, now); err != nil {
					return fmt.Errorf("logs %s: --since: %w", name, err)
				}
			}
			if until != "" {
				if o.Until, err = project.ParseLogTime(until, now); err != nil {
					return fmt.Errorf("logs %s: --until: %w", name, err)
				}
			}
			if index != 0 {
				return unsupported("logs", "--index", "the logs of one instance: journalctl -u berth-PROJECT-SERVICE-N.service")
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
	// -f after logs is rewritten to --follow (composeLogsFollow): as a
	// flag it is compose's --file, which every subcommand inherits.
	f.BoolVar(&o.Follow, "follow", false, "keep showing new lines (-f after logs)")
	f.StringVar(&since, "since", "", "show entries since a time: RFC 3339, a Unix timestamp, or a duration before now (10m)")
	f.StringVar(&until, "until", "", "show entries until a time, in the forms of --since")
	f.BoolVar(&noColor, "no-color", false, "monochrome output (berth's always is)")
	f.IntVar(&index, "index", 0, "not supported")
	f.MarkHidden("index")
	f.StringVarP(&tail, "tail", "n", "all", "lines to show from the end of each service's log, or all")
	f.BoolVar(&o.NoPrefix, "no-log-prefix", false, "do not prefix lines with the service name")
	f.BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}
