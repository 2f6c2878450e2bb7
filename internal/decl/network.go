package decl

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-sh/berth/internal/compose/netspec"
)

const networkGroup = "Network"

// The default network is what podman's "podman" network is: the bridge
// every container without Network= joins. It is the declaration
// berth.network when there is one (to change its subnet, say), else
// implicit with these settings.
const (
	defaultNetworkFile   = "berth.network"
	defaultNetworkName   = "berth"
	defaultNetworkBridge = "berth0"
)

var (
	// defaultSubnet is the default network's: a /16, so that hashed
	// addresses rarely collide (see allocate). It is in none of podman's
	// (10.88.0.0/16, 10.89.0.0/16 and up), docker's (172.17.0.0/16 and
	// up) or berth compose's (172.16.0.0/12) pools.
	defaultSubnet = netip.MustParsePrefix("10.87.0.0/16")
	// autoPool holds the /24 subnets of networks declared without
	// Subnet=: the slot is chosen by hashing the network's name.
	autoPool = netip.MustParsePrefix("10.86.0.0/16")
)

// NetworkKeys is the support table of the [Network] group: every key of
// quadlet's.
var NetworkKeys = []Rule[*netDecl]{
	{"ContainersConfModule", Rejected, "containers.conf modules are podman configuration", nil},
	{"DNS", Rejected, "per-network name servers are not converted; set DNS= in the containers", nil},
	{"DisableDNS", Supported, "the network's machines are not named in each other's hosts files (default false; true for the default network, as podman's)", (*netDecl).planDisableDNS},
	{"Driver", Partial, "bridge (the default) only; other drivers are errors", (*netDecl).planDriver},
	{"Gateway", Supported, "the bridge's address (default: the subnet's first address)", (*netDecl).planGateway},
	{"GlobalArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"IPAMDriver", Partial, "host-local (the default): the generator gives every machine a fixed address; dhcp and none are errors", (*netDecl).planIPAMDriver},
	{"IPRange", Supported, "the part of the subnet machines' addresses come from (ADDR/LEN)", (*netDecl).planIPRange},
	{"IPv6", Partial, "false only: IPv6 networks are not supported", (*netDecl).planIPv6},
	{"InterfaceName", Supported, "the bridge's name (default: berth-NAME for names of up to 8 bytes, else berth- and a hash; berth0 for the default network)", (*netDecl).planInterfaceName},
	{"Internal", Supported, "no forwarding to or from outside the bridge (no default route in the machines)", (*netDecl).planInternal},
	{"Label", Ignored, "labels are podman metadata", nil},
	{"NetworkDeleteOnStop", Supported, "the bridge is removed when the network's unit stops either way: it holds no state", (*netDecl).planDeleteOnStop},
	{"NetworkName", Supported, "the name Network=NAME finds (default systemd-NAME as in quadlet; berth for the default network)", (*netDecl).planNetworkName},
	{"Options", Rejected, "bridge driver options (mtu, vlan, isolate, ...) are not converted", nil},
	{"PodmanArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"ServiceName", Supported, "the generated unit's name (default: NAME-network.service)", (*netDecl).planServiceName},
	{"Subnet", Partial, "one IPv4 subnet (default: a /24 of 10.86.0.0/16 chosen by hashing the name; 10.87.0.0/16 for the default network); a second one is an error", (*netDecl).planSubnet},
}

// netDecl is a network: a NAME.network declaration or the implicit
// default.
type netDecl struct {
	c *conv
	// name is what Network=NAME finds.
	name    string
	service string
	bridge  string
	subnet  netip.Prefix
	gateway netip.Addr
	// pool is where machines' addresses come from: IPRange= or the subnet.
	pool     netip.Prefix
	internal bool
	noDNS    bool
	// implicit: the default network, made only when a container joins it.
	implicit bool
	// failed: the declaration has errors; containers naming it fail too.
	failed bool
	// used: a container joins it.
	used bool

	subnetEntry, gatewayEntry, rangeEntry *Entry
	serviceEntry                          *Entry
	// taken are the addresses handed out so far.
	taken map[netip.Addr]bool
}

// network plans a NAME.network declaration. Its unit is made once every
// network is known (an automatic subnet avoids the others').
func (c *conv) network() ([]Unit, error) {
	n := c.newNetwork()
	if !c.noTemplate() {
		n.failed = true
		return nil, nil
	}
	if sec := c.in.File.Section(networkGroup); sec != nil {
		planGroup(c, networkGroup, sec, NetworkKeys, n)
	}
	n.service = serviceName(c.base, "-network", n.serviceEntry)
	switch {
	case n.subnetEntry == nil && (n.gatewayEntry != nil || n.rangeEntry != nil):
		e := n.gatewayEntry
		if e == nil {
			e = n.rangeEntry
		}
		c.err(networkGroup, *e, "needs Subnet=")
	case n.gateway.IsValid() && (!n.subnet.Contains(n.gateway) || n.gateway == n.subnet.Addr() || n.gateway == lastAddr(n.subnet)):
		c.err(networkGroup, *n.gatewayEntry, "%s is not a host address of %s", n.gateway, n.subnet)
	case n.rangeEntry != nil && (!n.subnet.Contains(n.pool.Addr()) || n.pool.Bits() < n.subnet.Bits()):
		c.err(networkGroup, *n.rangeEntry, "%s is not inside %s", n.pool, n.subnet)
	}
	n.failed = c.failed
	c.later(n.render)
	return nil, nil
}

// newNetwork is a network with the defaults of its file name, registered.
func (c *conv) newNetwork() *netDecl {
	n := &netDecl{c: c, name: "systemd-" + c.base, bridge: bridgeName(c.base), taken: map[netip.Addr]bool{}}
	if c.in.Name == defaultNetworkFile {
		n.name, n.bridge = defaultNetworkName, defaultNetworkBridge
		n.subnet, n.pool = defaultSubnet, defaultSubnet
		// As podman's default network: no names for the peers (every
		// hosts file would list every machine on the host); declare
		// a network, or DisableDNS=false in berth.network, for them.
		n.noDNS = true
	}
	if c.reg.networks == nil {
		c.reg.networks = map[string]*netDecl{}
	}
	c.reg.networks[c.in.Name] = n
	return n
}

// bridgeName is a network's default bridge: readable for short names,
// hashed for long ones. Readable names have at most 8 bytes after
// "berth-" and hashed ones 9, so the two never meet.
func bridgeName(base string) string {
	if len(base) <= 8 && netspec.CheckIfName("berth-"+base) == nil {
		return "berth-" + base
	}
	return "berth-" + hashHex(9, base)
}

func hashHex(n int, parts ...string) string {
	return hex.EncodeToString(hashBytes(parts...))[:n]
}

func hashBytes(parts ...string) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum(nil)
}

// hashUint is a number from the parts' hash, for picking slots.
func hashUint(parts ...string) uint64 { return binary.BigEndian.Uint64(hashBytes(parts...)) }

func (n *netDecl) planDisableDNS(e Entry) {
	if b, ok := n.c.boolean(networkGroup, e); ok {
		n.noDNS = b
	}
}

func (n *netDecl) planDriver(e Entry) {
	if e.Value != "bridge" {
		n.c.err(networkGroup, e, "driver %q is not supported; berth networks are bridges", e.Value)
	}
}

func (n *netDecl) planIPAMDriver(e Entry) {
	if e.Value != "host-local" {
		n.c.err(networkGroup, e, "IPAM driver %q is not supported; the generator allocates every address itself (host-local)", e.Value)
	}
}

func (n *netDecl) planIPv6(e Entry) {
	if b, ok := n.c.boolean(networkGroup, e); ok && b {
		n.c.err(networkGroup, e, "IPv6 networks are not supported")
	}
}

func (n *netDecl) planGateway(e Entry) {
	a, err := netip.ParseAddr(e.Value)
	if err != nil || !a.Is4() {
		n.c.err(networkGroup, e, "%q is not an IPv4 address", e.Value)
		return
	}
	n.gateway, n.gatewayEntry = a, &e
}

func (n *netDecl) planSubnet(e Entry) {
	if n.subnetEntry != nil {
		n.c.err(networkGroup, e, "a network has one subnet under berth (IPv4)")
		return
	}
	p, ok := n.c.prefix(e)
	if !ok {
		return
	}
	if p.Bits() > 30 {
		n.c.err(networkGroup, e, "%s leaves no room for a gateway and machines (want /30 or larger)", p)
		return
	}
	n.subnet, n.pool, n.subnetEntry = p, p, &e
}

func (n *netDecl) planIPRange(e Entry) {
	if p, ok := n.c.prefix(e); ok {
		n.pool, n.rangeEntry = p, &e
	}
}

// prefix reads an IPv4 ADDR/LEN, masked.
func (c *conv) prefix(e Entry) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(e.Value)
	if err != nil || !p.Addr().Is4() {
		c.err(networkGroup, e, "%q is not an IPv4 subnet (ADDR/LEN)", e.Value)
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

func (n *netDecl) planInterfaceName(e Entry) {
	if err := netspec.CheckIfName(e.Value); err != nil {
		n.c.err(networkGroup, e, "%q is not a valid interface name (1-15 bytes, no '/', ':', ',' or blanks)", e.Value)
		return
	}
	n.bridge = e.Value
}

func (n *netDecl) planInternal(e Entry) {
	if b, ok := n.c.boolean(networkGroup, e); ok {
		n.internal = b
	}
}

func (n *netDecl) planDeleteOnStop(e Entry) { n.c.boolean(networkGroup, e) }

func (n *netDecl) planNetworkName(e Entry) {
	if e.Value == "" || strings.ContainsAny(e.Value, ": \t,/") || strings.HasSuffix(e.Value, ".network") {
		n.c.err(networkGroup, e, "%q is not a network name", e.Value)
		return
	}
	n.name = e.Value
}

func (n *netDecl) planServiceName(e Entry) {
	n.serviceEntry, _ = n.c.planServiceName(networkGroup, e)
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// render makes the network's unit: a oneshot that creates the bridge with
// the gateway address (and its nftables table: masquerading, or fencing
// for an internal network) and removes it when stopped; berth compose's
// helpers do the work.
func (n *netDecl) render() ([]Unit, error) {
	if n.failed || n.c.failed {
		return nil, nil
	}
	up := []string{n.c.opts.Berth, "compose", "_bridge-up", "--bridge", n.bridge,
		"--address", netip.PrefixFrom(n.gateway, n.subnet.Bits()).String()}
	if n.internal {
		up = append(up, "--internal")
	}
	u, err := oneshot{
		c:           n.c,
		name:        n.service,
		description: "berth network " + n.name + " (bridge " + n.bridge + ", " + n.subnet.String() + ")",
		start:       up,
		stop:        []string{n.c.opts.Berth, "compose", "_bridge-down", "--bridge", n.bridge},
	}.render()
	return []Unit{u}, err
}

// planSubnets gives every network its subnet and gateway: declared
// subnets first, then automatic ones (a /24 of autoPool by the name's
// hash, probing past the taken ones), in name order. Overlapping declared
// subnets and bridges of the same name are errors of the later network.
func (g *gen) planSubnets() {
	if g.reg.networks[defaultNetworkFile] == nil {
		c := &conv{gen: g, in: Input{Name: defaultNetworkFile, File: &File{Path: defaultNetworkFile + " (the default network)"}}, base: "berth"}
		n := c.newNetwork()
		n.implicit, n.service = true, serviceName("berth", "-network", nil)
	}
	names := slices.Sorted(maps.Keys(g.reg.networks))
	var fixed []*netDecl
	bridges, netNames := map[string]*netDecl{}, map[string]*netDecl{}
	for _, f := range names {
		n := g.reg.networks[f]
		if n.failed {
			continue
		}
		for _, clash := range []struct {
			m    map[string]*netDecl
			v    string
			what string
		}{{bridges, n.bridge, "bridge " + n.bridge}, {netNames, n.name, "network name " + n.name}} {
			if o := clash.m[clash.v]; o != nil {
				n.fail("%s is also %s's", clash.what, o.c.in.File.Path)
			}
			clash.m[clash.v] = n
		}
		if n.subnet.IsValid() {
			for _, o := range fixed {
				if o.subnet.Overlaps(n.subnet) {
					n.fail("subnet %s overlaps %s of %s", n.subnet, o.subnet, o.c.in.File.Path)
				}
			}
			fixed = append(fixed, n)
		}
	}
	for _, f := range names {
		n := g.reg.networks[f]
		if n.failed || n.subnet.IsValid() {
			continue
		}
		slots := uint64(1) << (24 - autoPool.Bits())
		start := hashUint(n.name) % slots
		for i := uint64(0); i < slots; i++ {
			sub := netip.PrefixFrom(addrAdd(autoPool.Addr(), uint32((start+i)%slots)<<8), 24)
			if !overlapsAny(sub, fixed) {
				n.subnet, n.pool = sub, sub
				fixed = append(fixed, n)
				break
			}
		}
		if !n.subnet.IsValid() {
			n.fail("no free /24 left in %s for an automatic subnet; set Subnet=", autoPool)
		}
	}
	for _, n := range g.reg.networks {
		if n.subnet.IsValid() && !n.gateway.IsValid() {
			n.gateway = n.subnet.Addr().Next()
		}
		n.taken[n.gateway] = true
	}
}

// fail reports an error about the network as a whole.
func (n *netDecl) fail(format string, args ...any) {
	n.failed = true
	e := Entry{Key: "", Path: n.c.in.File.Path}
	if n.subnetEntry != nil {
		e = *n.subnetEntry
	}
	n.c.err(networkGroup, e, format, args...)
}

func overlapsAny(p netip.Prefix, nets []*netDecl) bool {
	for _, n := range nets {
		if n.subnet.Overlaps(p) {
			return true
		}
	}
	return false
}

// addrAdd is a + off (IPv4).
func addrAdd(a netip.Addr, off uint32) netip.Addr {
	b := a.As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])+off)
	return netip.AddrFrom4(b)
}

// defaultNetworkUnit makes the implicit default network's unit, when a
// container joined it.
func (g *gen) defaultNetworkUnit() {
	n := g.reg.networks[defaultNetworkFile]
	if n == nil || !n.implicit || !n.used {
		return
	}
	n.c.keep(n.render())
}
