package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/project"
)

func newComposeUpCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var detach bool
	o := project.UpOptions{}
	cmd := &cobra.Command{
		Use:   "up [-d] [SERVICE...]",
		Short: "Pull, install and start the project (or SERVICEs and their dependencies)",
		Long: `Convert the project, pull the images machines do not have yet, install the
units atomically, reload systemd, enable and start the project target, and
wait until every service is running, healthy, or (one-shot services)
completed. A service that fails is reported with its last log lines.

Running up again after a change restarts only the services whose units,
files, secrets or image changed; services no longer in the project are
stopped and removed. The target is enabled: the project comes back after
a reboot, and systemd restarts services per restart:.

Without -d, up then shows the services' logs until interrupted, and stops
the project on the interrupt, as docker compose up does.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			o.Services = args
			o.Images = composeImages(env, g)
			h := composeHost(env, g)
			res, err := h.Up(cmd.Context(), p, o)
			if res != nil {
				for _, f := range res.Findings {
					if f.Severity == compose.Warning {
						fmt.Fprintf(env.Stderr, "berth: %s\n", f)
					}
				}
				for _, m := range res.Restarted {
					fmt.Fprintf(env.Stderr, "berth: restarted %s (changed)\n", m)
				}
			}
			if err != nil {
				return err
			}
			if !g.Quiet && !o.NoStart {
				// What docker compose up shows per container: each
				// machine and the state it reached.
				if st, err := h.Ps(cmd.Context(), p.Name, args, true); err == nil {
					for _, s := range st {
						state := s.State
						if s.Health != "" {
							state += ", " + s.Health
						}
						fmt.Fprintf(env.Stderr, "berth: %s (%s): %s\n", s.Machine, s.Service, state)
					}
				}
			}
			if detach || o.NoStart {
				return nil
			}
			// Attached: follow the logs until ^C, then stop what up
			// started.
			err = h.Logs(cmd.Context(), p.Name, env.Stdout, project.LogOptions{Services: args, Follow: true, Tail: -1})
			if cmd.Context().Err() == nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "berth: stopping project %s\n", p.Name)
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Minute)
			defer cancel()
			return h.Stop(stopCtx, p.Name, args)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&detach, "detach", "d", false, "return once the services are up instead of showing their logs")
	f.StringVar(&o.Pull, "pull", "missing", "pull images: missing (only those not installed) or always")
	f.BoolVar(&o.NoStart, "no-start", false, "install and reload, but start nothing")
	f.DurationVar(&o.Timeout, "wait-timeout", 5*time.Minute, "how long to wait for services to be running or healthy")
	f.StringVar(&o.Convert.Berth, "berth-binary", "", "path of berth the units run for helper commands (default /usr/local/bin/berth)")
	f.StringVar(&o.Convert.Init, "init-binary", "", "host path of berth-init (default /usr/local/lib/berth/berth-init)")
	return cmd
}
