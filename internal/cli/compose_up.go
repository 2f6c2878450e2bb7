package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/project"
)

// upFlags are what up and create share.
type upFlags struct {
	o     project.UpOptions
	scale []string
	// removeOrphans is accepted: up always removes the machines of
	// services no longer in the project.
	removeOrphans, noBuild, yes bool
}

func (u *upFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&u.o.Pull, "pull", "missing", "pull images: missing (only those not installed), always, or never")
	f.BoolVar(&u.o.ForceRecreate, "force-recreate", false, "restart every selected machine, changed or not")
	f.BoolVar(&u.o.NoRecreate, "no-recreate", false, "leave running machines running even when they changed")
	f.BoolVar(&u.removeOrphans, "remove-orphans", false, "remove machines of services no longer in the project (berth always does)")
	f.StringArrayVar(&u.scale, "scale", nil, "run N instances of SERVICE (SERVICE=N, repeatable; overrides scale: and deploy.replicas)")
	f.BoolVar(&u.noBuild, "no-build", false, "do not build images (berth never builds)")
	f.BoolVarP(&u.yes, "yes", "y", false, "assume yes to prompts (berth has none here)")
	f.StringVar(&u.o.Convert.Berth, "berth-binary", "", "path of berth the units run for helper commands (default /usr/local/bin/berth)")
	f.StringVar(&u.o.Convert.Init, "init-binary", "", "host path of berth-init (default /usr/local/lib/berth/berth-init)")
	rejectFlags(cmd, "up", []rejected{
		{"build", false, "berth cannot build images yet (issue #11); build them elsewhere and push them to a registry"},
		{"always-recreate-deps", false, "not implemented; use --force-recreate, which restarts every selected machine"},
		{"renew-anon-volumes", false, "not implemented; berth compose rm -v SERVICE empties them before the next up"},
	})
}

// apply sets --scale on the loaded project: the service's scale: key,
// which the planner reads before deploy.replicas, as docker does.
func (u *upFlags) apply(verb string, p *compose.Project) error {
	for _, kv := range u.scale {
		name, n, ok := strings.Cut(kv, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 0 {
			return fmt.Errorf("compose %s: --scale %q: want SERVICE=N with N ≥ 0", verb, kv)
		}
		svc, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("compose %s: --scale %q: select service %q in project %s: %w", verb, kv, name, p.Name, project.ErrNoService)
		}
		svc.Scale = &count
		p.Services[name] = svc
	}
	return nil
}

func newComposeUpCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var u upFlags
	var detach, wait, abort, noLogPrefix, timestamps, quietPull, noColor bool
	var exitFrom string
	waitTimeout := newSecondsFlag(5 * time.Minute)
	stopTimeout := newSecondsFlag(0)
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
the project on the interrupt, as docker compose up does. With
--abort-on-container-exit (or --exit-code-from SERVICE) it stops the
project as soon as one machine stops, and exits with that machine's exit
code (or SERVICE's).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if exitFrom != "" {
				abort = true
			}
			if wait {
				// docker: --wait implies detached mode.
				detach = true
			}
			if abort && detach {
				return fmt.Errorf("compose up: --abort-on-container-exit and --exit-code-from need the logs attached; they exclude -d and --wait")
			}
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			if err := u.apply("up", p); err != nil {
				return err
			}
			if exitFrom != "" {
				if _, ok := p.Services[exitFrom]; !ok {
					return fmt.Errorf("compose up: --exit-code-from: select service %q in project %s: %w", exitFrom, p.Name, project.ErrNoService)
				}
			}
			o := u.o
			o.Services = args
			o.Timeout = waitTimeout.d
			gq := *g
			gq.Quiet = g.Quiet || quietPull
			o.Images = composeImages(env, &gq)
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
			lo := project.LogOptions{Services: args, Follow: true, Tail: -1, NoPrefix: noLogPrefix, Timestamps: timestamps}
			stop := func() error {
				fmt.Fprintf(env.Stderr, "berth: stopping project %s\n", p.Name)
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 5*time.Minute)
				defer cancel()
				return h.StopWithin(stopCtx, p.Name, args, stopTimeout.ptr())
			}
			if abort {
				return upUntilExit(cmd.Context(), h, p.Name, args, exitFrom, env, lo, stop)
			}
			// Attached: follow the logs until ^C, then stop what up
			// started.
			err = h.Logs(cmd.Context(), p.Name, env.Stdout, lo)
			if cmd.Context().Err() == nil {
				return err
			}
			return stop()
		},
	}
	u.register(cmd)
	f := cmd.Flags()
	f.BoolVarP(&detach, "detach", "d", false, "return once the services are up instead of showing their logs")
	f.BoolVar(&wait, "wait", false, "return once the services are running or healthy (implies -d; berth's up always waits)")
	f.Var(waitTimeout, "wait-timeout", "how long to wait for services to be running or healthy, in seconds (or a duration: 90s)")
	f.BoolVar(&u.o.NoStart, "no-start", false, "install and reload, but start nothing")
	f.BoolVar(&u.o.NoDeps, "no-deps", false, "start only the SERVICEs named, not their dependencies")
	f.BoolVar(&abort, "abort-on-container-exit", false, "stop the project when any machine stops, and exit with its code")
	f.StringVar(&exitFrom, "exit-code-from", "", "exit with SERVICE's exit code (implies --abort-on-container-exit)")
	f.VarP(stopTimeout, "timeout", "t", "seconds machines may take to stop when up stops them (default: their stop_grace_period)")
	f.BoolVar(&noLogPrefix, "no-log-prefix", false, "do not prefix log lines with the service name")
	f.BoolVar(&timestamps, "timestamps", false, "show timestamps in the logs")
	f.BoolVar(&quietPull, "quiet-pull", false, "pull without progress output")
	f.BoolVar(&noColor, "no-color", false, "monochrome output (berth's always is)")
	rejectFlags(cmd, "up", upRejected)
	return cmd
}

// upRejected are docker compose up's flags berth refuses, with why.
var upRejected = []rejected{
	{"attach", true, "berth shows the logs of every started service; name the services to see fewer (berth compose logs -f SERVICE)"},
	{"no-attach", true, "berth shows the logs of every started service; name the services to see fewer (berth compose logs -f SERVICE)"},
	{"attach-dependencies", false, "berth shows the logs of every started service, dependencies included"},
	{"watch", false, "watch syncs and rebuilds on file changes, which needs build (issue #11)"},
	{"menu", false, "berth has no interactive menu"},
}

// upUntilExit shows the logs until a machine stops, stops the project,
// and exits with the code of that machine, or of exitFrom's.
func upUntilExit(ctx context.Context, h *project.Host, name string, services []string, exitFrom string, env Env, lo project.LogOptions, stop func() error) error {
	logCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Logs(logCtx, name, env.Stdout, lo) }()
	stopped, err := h.WaitStopped(ctx, name, services, true)
	// Let the last lines of the machine that stopped reach the output.
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-done
	if serr := stop(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return err
	}
	code := stopped[0].ExitCode
	fmt.Fprintf(env.Stderr, "berth: %s exited with code %d; project stopped\n", stopped[0].Machine, code)
	if exitFrom != "" {
		st, err := h.Ps(context.WithoutCancel(ctx), name, []string{exitFrom}, true)
		if err != nil {
			return err
		}
		if len(st) == 0 {
			return fmt.Errorf("compose up: --exit-code-from %s: the service has no machine", exitFrom)
		}
		code = st[0].ExitCode
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}

// rejected is a docker compose flag berth knows and refuses, saying why.
type rejected struct {
	name      string
	withValue bool
	why       string
}

// rejectFlags registers docker's flags berth does not support, so that
// using one names it and the reason rather than "unknown flag".
func rejectFlags(cmd *cobra.Command, verb string, flags []rejected) {
	f := cmd.Flags()
	for _, r := range flags {
		if f.Lookup(r.name) != nil {
			continue
		}
		f.String(r.name, "", "not supported: "+r.why)
		if !r.withValue {
			f.Lookup(r.name).NoOptDefVal = "true"
		}
		f.MarkHidden(r.name)
	}
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		for _, r := range flags {
			if c.Flags().Changed(r.name) {
				return unsupported(verb, "--"+r.name, r.why)
			}
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}
