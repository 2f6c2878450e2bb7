package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/systemd"
)

// newRequireActiveCmd is the check a compose service's unit runs before
// its machine starts (ExecCondition=): every dependency it requires must be
// running. Wants= + After= start and order them without tying the service
// to their automatic restarts, as docker compose does not either. A
// dependency that is down exits 1, which skips the start without failing
// the unit (no restart loop: it did not start, as in docker); anything
// else that goes wrong exits 255, which fails it.
func newRequireActiveCmd() *cobra.Command {
	var service string
	cmd := &cobra.Command{
		Use:    "_require-active --for SERVICE UNIT...",
		Short:  "Fail unless every unit is active (run by compose service units)",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := systemd.RequireActive(cmd.Context(), command.ExecRunner{}, args...)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, systemd.ErrDependencyDown):
				return &ExitError{Code: 1, Err: fmt.Errorf("not starting %s: %w", service, err)}
			default:
				return &ExitError{Code: 255, Err: fmt.Errorf("check the dependencies of %s: %w", service, err)}
			}
		},
	}
	cmd.Flags().StringVar(&service, "for", "the service", "the service whose start this checks (for the message)")
	return cmd
}
