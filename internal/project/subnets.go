package project

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/fsutil"
)

// reserveSubnets takes the host-wide subnet lock and returns what project
// name's automatic subnets must avoid: the networks of every other
// installed project and the host's routes, except those through name's
// own bridges (from its last up, so its subnets stay where they are). Up
// holds the lock from its conversion until the manifest that records the
// subnets is installed, so two projects coming up at once never pick the
// same subnet: the second sees the first's manifest.
func (h *Host) reserveSubnets(ctx context.Context, name string) (unlock func(), taken []netip.Prefix, err error) {
	dir := filepath.Join(h.Root, "compose")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("reserve subnets: %w", err)
	}
	unlock, err = fsutil.Lock(ctx, filepath.Join(dir, ".subnets.lock"), fsutil.Exclusive)
	if err != nil {
		return nil, nil, fmt.Errorf("reserve subnets: %w", err)
	}
	own := map[string]bool{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		m, err := h.readManifest(e.Name())
		if err != nil {
			continue // not installed (down, or never up)
		}
		for _, n := range m.Networks {
			if e.Name() == name {
				own[n.Bridge] = true
				continue
			}
			if p, err := netip.ParsePrefix(n.Subnet); err == nil && n.Managed {
				taken = append(taken, p.Masked())
			}
		}
	}
	out, err := command.Output(ctx, h.Runner, "ip", "-o", "-4", "route", "show", "table", "all")
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("read host routes: %w", err)
	}
	for _, r := range parseRoutes(out) {
		if !own[r.dev] && r.dst.Bits() > 0 {
			taken = append(taken, r.dst)
		}
	}
	slices.SortFunc(taken, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return unlock, slices.Compact(taken), nil
}

// readManifest reads project name's installed manifest without the
// not-installed hint Manifest adds.
func (h *Host) readManifest(name string) (*compose.Manifest, error) {
	b, err := os.ReadFile(h.manifestPath(name))
	if err != nil {
		return nil, err
	}
	var m compose.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}
