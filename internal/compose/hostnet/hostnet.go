// Package hostnet is the host side of compose networking: the helpers the
// generated units run (berth compose _bridge-up, _netns-up, ...). It creates
// project bridges and, for each machine, a named network namespace whose
// links are configured from the host before systemd-nspawn joins it, so an
// app image needs no networkd or DHCP client and its command never starts
// without an address.
//
// All changes go through iproute2 and nft behind the command.Runner seam,
// so tests compare the exact commands.
package hostnet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose/netspec"
)

// ErrInvalid is wrapped by errors about malformed arguments.
var ErrInvalid = netspec.ErrInvalid

// Link, Sysctl and their parsers are the helpers' argument format, shared
// with the converter that writes them (package netspec).
type (
	Link   = netspec.Link
	Sysctl = netspec.Sysctl
)

// Bridge describes a project bridge.
type Bridge struct {
	Name string
	// Address is the gateway address with the subnet's prefix length.
	Address netip.Prefix
	// Internal bridges get no forwarding to or from other interfaces.
	Internal bool
}

// nftTable is the per-bridge nftables table berth owns; deleting it undoes
// every rule berth added for the bridge.
func nftTable(bridge string) string { return "berth_" + strings.ReplaceAll(bridge, "-", "_") }

// BridgeUp creates the bridge (or adopts an existing one of that name),
// gives it the gateway address and brings it up. A non-internal bridge's
// subnet is masqueraded to the outside; an internal one is fenced off from
// forwarding in both directions.
func BridgeUp(ctx context.Context, r command.Runner, b Bridge) error {
	if err := netspec.CheckIfName(b.Name); err != nil {
		return err
	}
	if !b.Address.IsValid() || !b.Address.Addr().Is4() {
		return fmt.Errorf("bring up bridge %s: %w: address %s is not an IPv4 prefix", b.Name, ErrInvalid, b.Address)
	}
	subnet := b.Address.Masked()
	cmds := [][]string{
		// "ip link add" fails when the bridge exists (a restart after a
		// crash); "-" marks commands whose failure is expected then.
		{"-", "ip", "link", "add", b.Name, "type", "bridge"},
		// A bridge takes the lowest MAC of its ports unless it has one of
		// its own, so its MAC would change whenever a machine restarts and
		// guests would keep sending to a stale gateway MAC for minutes.
		{"ip", "link", "set", b.Name, "address", bridgeMAC(b.Name)},
		{"ip", "addr", "replace", b.Address.String(), "dev", b.Name},
		{"ip", "link", "set", b.Name, "up"},
		{"-", "nft", "delete", "table", "inet", nftTable(b.Name)},
	}
	t := nftTable(b.Name)
	cmds = append(cmds, []string{"nft", "add", "table", "inet", t})
	if b.Internal {
		cmds = append(cmds,
			[]string{"nft", "add", "chain", "inet", t, "forward", "{ type filter hook forward priority filter; policy accept; }"},
			[]string{"nft", "add", "rule", "inet", t, "forward", "iifname", quoteNft(b.Name), "oifname", "!=", quoteNft(b.Name), "drop"},
			[]string{"nft", "add", "rule", "inet", t, "forward", "oifname", quoteNft(b.Name), "iifname", "!=", quoteNft(b.Name), "drop"},
		)
	} else {
		cmds = append(cmds,
			[]string{"nft", "add", "chain", "inet", t, "postrouting", "{ type nat hook postrouting priority srcnat; policy accept; }"},
			[]string{"nft", "add", "rule", "inet", t, "postrouting", "ip", "saddr", subnet.String(), "oifname", "!=", quoteNft(b.Name), "masquerade"},
			[]string{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		)
	}
	return runAll(ctx, r, "bring up bridge "+b.Name, cmds)
}

// bridgeMAC is a stable, locally administered unicast MAC for a bridge,
// derived from its name.
func bridgeMAC(name string) string {
	h := sha256.Sum256([]byte("berth bridge " + name))
	return formatMAC([6]byte{0x02, h[0], h[1], h[2], h[3], h[4]})
}

// guestMAC is 02:42 followed by the IPv4 address, docker's scheme: locally
// administered, unicast, and unique within a subnet.
func guestMAC(a netip.Addr) string {
	b := a.As4()
	return formatMAC([6]byte{0x02, 0x42, b[0], b[1], b[2], b[3]})
}

func formatMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// BridgeDown removes the bridge and berth's rules for it.
func BridgeDown(ctx context.Context, r command.Runner, name string) error {
	if err := netspec.CheckIfName(name); err != nil {
		return err
	}
	return runAll(ctx, r, "remove bridge "+name, [][]string{
		{"-", "nft", "delete", "table", "inet", nftTable(name)},
		{"-", "ip", "link", "del", name},
	})
}

// Namespace is a machine's network namespace as the helper builds it.
type Namespace struct {
	// Name is the namespace's name under /run/netns.
	Name    string
	Links   []Link
	Sysctls []Sysctl
}

// NamespaceUp (re)creates the namespace and configures every link from
// the host: veth pair, host side into the bridge, address, default route,
// loopback, sysctls. A namespace left over from a crash is replaced.
func NamespaceUp(ctx context.Context, r command.Runner, ns Namespace) error {
	if err := checkNetnsName(ns.Name); err != nil {
		return err
	}
	cmds := [][]string{
		{"-", "ip", "netns", "del", ns.Name},
		{"ip", "netns", "add", ns.Name},
		{"ip", "-n", ns.Name, "link", "set", "lo", "up"},
	}
	for _, l := range ns.Links {
		cmds = append(cmds,
			// A host side left from a crash keeps its name busy.
			[]string{"-", "ip", "link", "del", l.Host},
			// The guest MAC follows from its address, as docker's does, so
			// a restarted machine is reachable at once: neighbours' caches
			// still hold the right MAC.
			[]string{"ip", "link", "add", l.Host, "type", "veth", "peer", "name", l.Guest, "address", guestMAC(l.Address.Addr()), "netns", ns.Name},
			[]string{"ip", "link", "set", l.Host, "master", l.Bridge},
			[]string{"ip", "link", "set", l.Host, "up"},
			[]string{"ip", "-n", ns.Name, "addr", "add", l.Address.String(), "dev", l.Guest},
			[]string{"ip", "-n", ns.Name, "link", "set", l.Guest, "up"},
		)
		if l.Gateway.IsValid() {
			cmds = append(cmds, []string{"ip", "-n", ns.Name, "route", "add", "default", "via", l.Gateway.String()})
		}
	}
	// Docker's defaults for container namespaces: any user may bind
	// ports below 1024 and send ICMP echo. The service's own sysctls
	// come after, so they win.
	defaults := []Sysctl{
		{Key: "net.ipv4.ip_unprivileged_port_start", Value: "0"},
		{Key: "net.ipv4.ping_group_range", Value: "0 2147483647"},
	}
	for _, s := range append(defaults, ns.Sysctls...) {
		cmds = append(cmds, []string{"ip", "netns", "exec", ns.Name, "sysctl", "-q", "-w", s.Key + "=" + s.Value})
	}
	return runAll(ctx, r, "set up network namespace "+ns.Name, cmds)
}

// NamespaceDown removes the machine's links and its namespace. The host
// sides are deleted explicitly: the kernel tears a namespace down
// asynchronously, and a veth lingering in it would keep its name busy.
func NamespaceDown(ctx context.Context, r command.Runner, ns Namespace) error {
	if err := checkNetnsName(ns.Name); err != nil {
		return err
	}
	var cmds [][]string
	for _, l := range ns.Links {
		cmds = append(cmds, []string{"-", "ip", "link", "del", l.Host})
	}
	cmds = append(cmds, []string{"-", "ip", "netns", "del", ns.Name})
	return runAll(ctx, r, "remove network namespace "+ns.Name, cmds)
}

// quoteNft quotes an interface name for nft's parser (checkIfName has
// already refused quotes and blanks).
func quoteNft(n string) string { return `"` + n + `"` }

// runAll runs cmds in order. A command starting with "-" may fail.
func runAll(ctx context.Context, r command.Runner, what string, cmds [][]string) error {
	for _, c := range cmds {
		optional := c[0] == "-"
		if optional {
			c = c[1:]
		}
		if err := command.Run(ctx, r, c...); err != nil && !optional {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func checkNetnsName(n string) error {
	if n == "" || len(n) > 200 || strings.ContainsAny(n, "/ \t\n") || n == "." || n == ".." {
		return fmt.Errorf("%w: %q is not a valid network namespace name", ErrInvalid, n)
	}
	return nil
}
