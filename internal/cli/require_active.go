package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/systemd"
)

// newRequireActiveCmd is the check a compose service's unit runs before
// its machine starts (ExecStartPre=): every dependency it requires must be
// running. Wants= + After= start and order them without tying the service
// to their automatic restarts, as docker compose does not either.
func newRequireActiveCmd() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:    "_require-active --for SERVICE UNIT...",
		Short:  "Fail unless every unit is active (run by compose service units)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := systemd.RequireActive(cmd.Context(), command.ExecRunner{}, args...); err != nil {
				return fmt.Errorf("not starting %s: %w", service, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "for", "the service", "the service whose start this checks (for the message)")
	return cmd
}
