// Package systemd asks the host's systemd about units and machines through
// its command-line tools, behind the command seam: `systemctl show`,
// machined's leader PID of a machine, and the nsenter command line that
// enters a running machine.
package systemd

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/command"
)

// Properties are what `systemctl show` says about one unit, by name.
type Properties map[string]string

// Show returns the properties props of each unit, in the order given.
func Show(ctx context.Context, r command.Runner, props []string, units ...string) ([]Properties, error) {
	if len(units) == 0 {
		return nil, nil
	}
	args := append([]string{"systemctl", "show", "--property=" + strings.Join(props, ","), "--"}, units...)
	out, err := command.Output(ctx, r, args...)
	if err != nil {
		return nil, fmt.Errorf("query units: %w", err)
	}
	states := ParseShow(out)
	if len(states) != len(units) {
		return nil, fmt.Errorf("query units: systemctl show answered for %d of %d units", len(states), len(units))
	}
	return states, nil
}

// ParseShow reads the output of `systemctl show`: one block of KEY=VALUE
// lines per unit, blocks separated by an empty line.
func ParseShow(out string) []Properties {
	var states []Properties
	cur := Properties{}
	for line := range strings.SplitSeq(out, "\n") {
		if line == "" {
			if len(cur) > 0 {
				states = append(states, cur)
				cur = Properties{}
			}
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		cur[k] = v
	}
	if len(cur) > 0 {
		states = append(states, cur)
	}
	return states
}
