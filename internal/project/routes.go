package project

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
)

// checkSubnets refuses project subnets that overlap a route of the host
// (a LAN, a VPN, another bridge): the bridge would capture that traffic.
// Routes through the project's own bridges (from an earlier up) are not
// conflicts. The conversion picks automatic subnets without looking at
// the host, so this is where a clash is caught, before anything changes.
func (h *Host) checkSubnets(ctx context.Context, plan *compose.Plan) error {
	out, err := command.Output(ctx, h.Runner, "ip", "-o", "-4", "route", "show", "table", "all")
	if err != nil {
		return fmt.Errorf("read host routes: %w", err)
	}
	return subnetConflicts(plan, out)
}

func subnetConflicts(plan *compose.Plan, routes string) error {
	own := map[string]bool{}
	for _, np := range plan.Networks {
		own[np.Bridge] = true
	}
	var problems []string
	for _, r := range parseRoutes(routes) {
		if own[r.dev] {
			continue
		}
		for _, np := range plan.Networks {
			if np.External || !np.Subnet.IsValid() {
				continue
			}
			if np.Subnet.Overlaps(r.dst) {
				problems = append(problems, fmt.Sprintf("network %s (%s) overlaps the host's route %s dev %s", np.Key, np.Subnet, r.dst, r.dev))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("check project subnets: %s; set networks.NAME.ipam.config[0].subnet to a free range", strings.Join(problems, "; "))
	}
	return nil
}

// route is one destination of the host's routing tables and its device.
type route struct {
	dst netip.Prefix
	dev string
}

// parseRoutes reads `ip -o -4 route show table all`: the destinations a
// bridge's subnet must not overlap (not the default route, nor the local
// table's local and broadcast entries).
func parseRoutes(out string) []route {
	var rs []route
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// "local"/"broadcast" entries of table local name the type
		// first.
		dst := f[0]
		if dst == "local" || dst == "broadcast" || dst == "unicast" || dst == "default" {
			continue
		}
		dev := ""
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" {
				dev = f[i+1]
			}
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil {
			continue
		}
		rs = append(rs, route{p.Masked(), dev})
	}
	return rs
}
