package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeExecCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var o project.ExecOptions
	var noTTY, detach, privileged bool
	cmd := &cobra.Command{
		Use:   "exec [-T] SERVICE COMMAND [ARG...]",
		Short: "Run a command in a running service's machine; exits with its status",
		Long: `Run a command in a running service's machine, as the service's user, in its
working directory, with its environment. berth exits with the command's
exit status.

The command gets berth's terminal when stdin and stdout are terminals;
-T gives it pipes instead (for scripts, and to read its output exactly).`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach {
				return unsupported("exec", "-d/--detach", "a command entered into a machine runs as long as berth waits for it; use berth compose run, or a service")
			}
			if privileged {
				return unsupported("exec", "--privileged", "the command gets the machine's capabilities; add cap_add: to the service")
			}
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			o.Stdin, o.Stdout, o.Stderr = env.Stdin, env.Stdout, env.Stderr
			// A terminal only when there is one to relay to, as
			// docker compose exec decides; -T never.
			o.TTY = !noTTY && isTerminal(env.Stdin) && isTerminal(env.Stdout)
			if !o.TTY {
				// Hiding the *os.File makes the runner copy output
				// through pipes, so it is no terminal even when
				// berth's is. Stdin stays as it is: a copied stdin
				// would keep berth waiting for input after the
				// command exited.
				o.Stdout = writerOnly{env.Stdout}
				o.Stderr = writerOnly{env.Stderr}
			}
			code, err := composeHost(env, g).Exec(cmd.Context(), name, args[0], args[1:], o)
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
	f.BoolVarP(&noTTY, "no-TTY", "T", false, "do not give the command a terminal")
	f.IntVar(&o.Index, "index", 1, "which instance of the service")
	f.StringVarP(&o.User, "user", "u", "", "run as this user (default: the service's)")
	f.StringVarP(&o.WorkDir, "workdir", "w", "", "working directory (default: the service's)")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set KEY=VALUE (repeatable)")
	// docker compose accepts -i and -t for compatibility; a terminal is
	// given whenever there is one.
	var ignored bool
	f.BoolVarP(&ignored, "interactive", "i", true, "keep stdin open (always)")
	f.BoolVarP(&ignored, "tty", "t", true, "give a terminal when there is one (default)")
	f.BoolVarP(&detach, "detach", "d", false, "not supported")
	f.BoolVar(&privileged, "privileged", false, "not supported")
	f.MarkHidden("detach")
	f.MarkHidden("privileged")
	f.MarkHidden("interactive")
	f.MarkHidden("tty")
	return cmd
}

func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

type writerOnly struct{ io.Writer }
