package systemd

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/command"
)

// ErrDependencyDown is wrapped by RequireActive's error when a dependency
// is down (as opposed to systemd not answering).
var ErrDependencyDown = errors.New("a required dependency is not running")

// RequireActive fails unless every unit is active or on its way there (an
// automatic restart, a reload): what a compose service's start checks of
// the dependencies it requires (ExecCondition=). Ordering (After=) has
// already waited for their start jobs; Wants= started them without tying
// the dependent to their restarts, which Requires= would (systemd 252
// restarts a Requires= dependent with every automatic restart of its
// dependency, and docker compose does not).
func RequireActive(ctx context.Context, r command.Runner, units ...string) error {
	states, err := Show(ctx, r, []string{"Id", "ActiveState", "SubState", "Result"}, units...)
	if err != nil {
		return err
	}
	var down []string
	first := ""
	for i, st := range states {
		switch st["ActiveState"] {
		case "active", "activating", "reloading":
			continue
		}
		why := st["ActiveState"]
		if sub := st["SubState"]; sub != "" && sub != why {
			why += " (" + sub + ")"
		}
		if res := st["Result"]; res != "" && res != "success" {
			why += ", result " + res
		}
		if first == "" {
			first = units[i]
		}
		down = append(down, fmt.Sprintf("%s is %s", units[i], why))
	}
	if len(down) > 0 {
		return fmt.Errorf("%w: %s; see journalctl -u %s (or mark the dependency required: false)", ErrDependencyDown, strings.Join(down, "; "), first)
	}
	return nil
}
