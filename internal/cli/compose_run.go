package cli

import (
	"fmt"
	"strings"

	shellwords "github.com/mattn/go-shellwords"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/project"
)

func newComposeRunCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var o project.RunOptions
	var env_ []string
	var entrypoint string
	var rm, noTTY, detach, servicePorts, useAliases, build, quietPull, removeOrphans bool
	var publish, labels, volumes []string
	var capAdd, capDrop []string
	var pull string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARG...]",
		Short: "Run a one-off command in a new machine of a service; exits with its status",
		Long: `Run a one-off machine of SERVICE in the foreground: the service's settings
(volumes, secrets, networks, environment, user) with COMMAND instead of the
service's command, after the service's dependencies are up (unless
--no-deps). berth exits with the command's exit status.

The one-off runs on a copy of the service's root filesystem with an
address of its own on the service's networks, and is removed when it
exits: berth never keeps a one-off machine, so --rm is the default.
Published ports are not published (docker's default).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case detach:
				return unsupported("run", "-d/--detach", "a one-off runs in the foreground; use berth compose up -d SERVICE for a background machine")
			case servicePorts, len(publish) > 0:
				return unsupported("run", "--service-ports/--publish", "a one-off would need socket units of its own for ports the service's machines already publish")
			case len(volumes) > 0:
				return unsupported("run", "--volume", "add the volume to the service in the compose file")
			case len(labels) > 0:
				return unsupported("run", "--label", "a one-off machine is not kept, so there is nothing to label")
			case useAliases:
				return unsupported("run", "--use-aliases", "the one-off's name does not resolve in the project's hosts files")
			case build:
				return unsupported("run", "--build", "berth cannot build images yet (issue #11)")
			case len(capAdd) > 0 || len(capDrop) > 0:
				return unsupported("run", "--cap-add/--cap-drop", "change cap_add/cap_drop of the service in the compose file")
			}
			_ = rm // always: see Long
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			if entrypoint != "" {
				words, err := shellwords.Parse(entrypoint)
				if err != nil {
					return fmt.Errorf("compose run: --entrypoint %q: %w", entrypoint, err)
				}
				o.Entrypoint = words
			}
			if len(args) > 1 {
				o.Argv = args[1:]
			}
			for _, kv := range env_ {
				if !strings.Contains(kv, "=") {
					// docker: -e KEY takes KEY's value from the
					// caller's environment, and drops it if unset.
					v := env.Getenv(kv)
					if v == "" {
						continue
					}
					kv += "=" + v
				}
				o.Env = append(o.Env, kv)
			}
			switch pull {
			case "", "missing", "never":
			case "always":
				return unsupported("run", "--pull always", "pull the image with berth compose pull SERVICE first")
			default:
				return fmt.Errorf("compose run: --pull %q: want missing or never", pull)
			}
			gq := *g
			gq.Quiet = g.Quiet || quietPull
			o.Images = composeImages(env, &gq)
			o.TTY = !noTTY && isTerminal(env.Stdin) && isTerminal(env.Stdout)
			o.Stdin, o.Stdout, o.Stderr = env.Stdin, env.Stdout, env.Stderr
			if !o.TTY {
				o.Stdout, o.Stderr = writerOnly{env.Stdout}, writerOnly{env.Stderr}
			}
			code, err := composeHost(env, g).Run(cmd.Context(), p, args[0], o)
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	// Flags end at SERVICE: the command's own flags are its own.
	f.SetInterspersed(false)
	f.BoolVar(&rm, "rm", false, "remove the machine when it exits (berth always does)")
	f.StringArrayVarP(&env_, "env", "e", nil, "set KEY=VALUE, or KEY from berth's environment (repeatable)")
	f.StringVarP(&o.User, "user", "u", "", "run as this user (default: the service's)")
	f.StringVarP(&o.WorkDir, "workdir", "w", "", "working directory (default: the service's)")
	f.StringVar(&entrypoint, "entrypoint", "", "replace the service's entrypoint (split as a shell would)")
	f.BoolVar(&o.NoDeps, "no-deps", false, "do not start the service's dependencies")
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "do not give the command a terminal")
	f.StringVar(&o.Name, "name", "", "name of the one-off machine (default PROJECT-SERVICE-run-RANDOM)")
	f.StringVar(&pull, "pull", "missing", "pull the image when missing (missing) or never")
	f.BoolVar(&quietPull, "quiet-pull", false, "pull without progress output")
	f.BoolVar(&removeOrphans, "remove-orphans", false, "accepted: up removes orphans; run starts only dependencies")
	acceptTerminalFlags(f)
	// Known and refused, with the reason (see RunE).
	f.BoolVarP(&detach, "detach", "d", false, "not supported")
	f.BoolVar(&servicePorts, "service-ports", false, "not supported")
	f.StringArrayVar(&publish, "publish", nil, "not supported")
	f.StringArrayVarP(&volumes, "volume", "v", nil, "not supported")
	f.StringArrayVarP(&labels, "label", "l", nil, "not supported")
	f.BoolVar(&useAliases, "use-aliases", false, "not supported")
	f.BoolVar(&build, "build", false, "not supported")
	f.StringArrayVar(&capAdd, "cap-add", nil, "not supported")
	f.StringArrayVar(&capDrop, "cap-drop", nil, "not supported")
	for _, n := range []string{"detach", "service-ports", "publish", "volume", "label", "use-aliases", "build", "cap-add", "cap-drop"} {
		f.MarkHidden(n)
	}
	return cmd
}

// acceptTerminalFlags takes docker's -i and -t, which berth's run always
// does as they ask (stdin kept open; a terminal when there is one).
func acceptTerminalFlags(f *pflag.FlagSet) {
	var ignored bool
	f.BoolVarP(&ignored, "interactive", "i", true, "keep stdin open (always)")
	f.BoolVarP(&ignored, "tty", "t", true, "give a terminal when there is one (default)")
	f.MarkHidden("interactive")
	f.MarkHidden("tty")
}
