package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/machines"
)

func newExecCmd(env Env, g *Globals) *cobra.Command {
	var o machines.ExecOptions
	cmd := &cobra.Command{
		Use:   "exec [flags] NAME COMMAND [ARG...]",
		Short: "Run a command in a running machine; its exit code is berth's",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.TTY = isTTY(env.Stdin) && isTTY(env.Stdout)
			o.Stdin, o.Stdout, o.Stderr = env.Stdin, env.Stdout, env.Stderr
			code, err := machineHost(env, g).Exec(cmd.Context(), args[0], args[1:], o)
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&o.User, "user", "u", "", "user to run as (default: the machine's)")
	cmd.Flags().StringVarP(&o.WorkDir, "workdir", "w", "", "working directory (default: the machine's)")
	return cmd
}
