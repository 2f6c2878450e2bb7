package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newComposeWaitCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var downProject bool
	cmd := &cobra.Command{
		Use:   "wait SERVICE...",
		Short: "Wait until the services' machines stop; exit with the first one's code",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			h := composeHost(env, g)
			stopped, err := h.WaitStopped(cmd.Context(), name, args, downProject)
			if err != nil {
				return err
			}
			for _, s := range stopped {
				fmt.Fprintf(env.Stderr, "berth: %s exited with code %d\n", s.Machine, s.ExitCode)
			}
			if downProject {
				if err := h.Stop(cmd.Context(), name, nil); err != nil {
					return err
				}
			}
			if code := stopped[0].ExitCode; code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&downProject, "down-project", false, "stop the project once the first machine stopped")
	return cmd
}
