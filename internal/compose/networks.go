package compose

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/machine"
)

func (pl *planner) planNetworks() {
	p := pl.p
	used := map[netip.Prefix]string{}
	var auto []*NetworkPlan
	for _, k := range sortedKeys(p.Networks) {
		n := p.Networks[k]
		np := &NetworkPlan{Key: k, Internal: n.Internal, External: bool(n.External), Labels: n.Labels, taken: map[netip.Addr]bool{}}
		if np.External {
			np.Bridge = n.Name
			if n.Name == "" {
				np.Bridge = k
			}
			if !validIfName(np.Bridge) {
				pl.f.add(Error, "", []string{"networks", k, "name"}, "external network %q is not a valid host interface name (1-15 bytes, no '/', ':' or spaces)", np.Bridge)
			}
		} else {
			np.Bridge = BridgeName(p.Name, k)
			if n.Name != "" && n.Name != p.Name+"_"+k {
				// docker shares a network with a name of its own across
				// projects; two projects would then own one bridge unit.
				pl.f.add(Error, "", []string{"networks", k, "name"}, "network name %q would share the network across projects, which berth does not do yet; drop name: or declare the network external", n.Name)
			}
		}
		if n.EnableIPv4 != nil && !*n.EnableIPv4 {
			pl.f.add(Error, "", []string{"networks", k, "enable_ipv4"}, "networks without IPv4 are not supported")
		}
		np.Unit = NetworkUnit(np.Bridge)
		if len(n.Ipam.Config) > 0 && n.Ipam.Config[0].Subnet != "" {
			pool := n.Ipam.Config[0]
			sub, err := netip.ParsePrefix(pool.Subnet)
			if err != nil || !sub.Addr().Is4() || sub.Bits() > 30 {
				pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "subnet"}, "subnet %q is not an IPv4 prefix of /30 or larger", pool.Subnet)
				sub = netip.MustParsePrefix("192.0.2.0/24")
			}
			np.Subnet = sub.Masked()
			if other, dup := used[np.Subnet]; dup {
				pl.f.add(Error, "", []string{"networks", k, "ipam"}, "subnet %s is also used by network %q", np.Subnet, other)
			}
			used[np.Subnet] = k
			np.Gateway = np.Subnet.Addr().Next()
			if pool.Gateway != "" {
				gw, err := netip.ParseAddr(pool.Gateway)
				if err != nil || !np.Subnet.Contains(gw) {
					pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "gateway"}, "gateway %q is not an address in %s", pool.Gateway, np.Subnet)
				} else {
					np.Gateway = gw
				}
			}
			np.pool = np.Subnet
			if pool.IPRange != "" {
				r, err := netip.ParsePrefix(pool.IPRange)
				if err != nil || !np.Subnet.Contains(r.Addr()) || r.Bits() < np.Subnet.Bits() {
					pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "ip_range"}, "ip_range %q is not inside %s", pool.IPRange, np.Subnet)
				} else {
					np.pool = r.Masked()
				}
			}
			for _, aux := range sortedKeys(pool.AuxiliaryAddresses) {
				if a, err := netip.ParseAddr(pool.AuxiliaryAddresses[aux]); err == nil {
					np.taken[a] = true
				}
			}
		} else if !np.External {
			auto = append(auto, np)
		}
		pl.nets[k] = np
		pl.plan.Networks = append(pl.plan.Networks, np)
	}
	// Automatic subnets: a /24 of 172.16.0.0/12 chosen by hashing the
	// project and network names, probing on past those already taken in
	// this project and those the host has taken (TakenSubnets: other
	// projects' networks, the host's routes). Stable across runs while
	// the host does not change; `up` still checks it against the routes.
	for _, p := range pl.opts.TakenSubnets {
		if _, mine := used[p]; !mine {
			used[p] = "(taken on the host)"
		}
	}
	for _, np := range auto {
		start, _ := strconv.ParseUint(hashHex(6, pl.p.Name, np.Key), 16, 32)
		const slots = 1 << 12
		for i := uint64(0); i < slots; i++ {
			slot := (start + i) % slots
			base := defaultPool.Addr().As4()
			v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(slot)<<8
			sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
			if overlapsAny(sub, used) {
				continue
			}
			np.Subnet, np.pool = sub, sub
			np.Gateway = sub.Addr().Next()
			used[sub] = np.Key
			break
		}
	}
	for _, np := range pl.plan.Networks {
		if np.Gateway.IsValid() {
			np.taken[np.Gateway] = true
		}
	}
}

func overlapsAny(p netip.Prefix, used map[netip.Prefix]string) bool {
	for u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

// attachment is one entry of a service's networks:, validated.
type attachment struct {
	key     string
	network *NetworkPlan
	cfg     *types.ServiceNetworkConfig
	guestIf string
	addr    netip.Addr // ipv4_address, when given
}

// planServiceNetworks is the planner of networks: the service's
// attachments in docker's order (priority, highest first, then name; the
// first one carries the default route), each option checked.
func (c *svcPlanner) planServiceNetworks() {
	keys := sortedKeys(c.svc.Networks)
	prio := func(k string) int {
		if nc := c.svc.Networks[k]; nc != nil {
			return nc.Priority
		}
		return 0
	}
	slices.SortStableFunc(keys, func(a, b string) int { return cmp.Compare(prio(b), prio(a)) })
	for i, k := range keys {
		nc := c.svc.Networks[k]
		at := "networks." + k
		np, ok := c.nets[k]
		if !ok {
			c.err(at, "network %q is not declared", k)
			continue
		}
		a := attachment{key: k, network: np, cfg: nc, guestIf: "eth" + strconv.Itoa(i)}
		if nc != nil {
			if nc.Ipv6Address != "" {
				c.err(at+".ipv6_address", "IPv6 addresses are not supported yet")
			}
			if len(nc.LinkLocalIPs) > 0 {
				c.err(at+".link_local_ips", "link-local addresses are not supported")
			}
			if nc.MacAddress != "" {
				c.err(at+".mac_address", "fixed MAC addresses are not supported")
			}
			if len(nc.DriverOpts) > 0 {
				c.err(at+".driver_opts", "network driver options are not supported")
			}
			for _, alias := range nc.Aliases {
				if !machine.ValidHostName(alias) {
					c.err(at+".aliases", "alias %q is not a valid host name", alias)
				}
			}
			if nc.InterfaceName != "" {
				if !validIfName(nc.InterfaceName) {
					c.err(at+".interface_name", "%q is not a valid interface name", nc.InterfaceName)
				} else {
					a.guestIf = nc.InterfaceName
				}
			}
			if nc.Ipv4Address != "" {
				addr, err := netip.ParseAddr(nc.Ipv4Address)
				switch {
				case err != nil || !addr.Is4():
					c.err(at+".ipv4_address", "%q is not an IPv4 address", nc.Ipv4Address)
				case np.Subnet.IsValid() && !np.Subnet.Contains(addr):
					c.err(at+".ipv4_address", "%s is not in the network's subnet %s", addr, np.Subnet)
				case np.taken[addr]:
					c.err(at+".ipv4_address", "%s is already taken (gateway or another service)", addr)
				default:
					a.addr = addr
					np.taken[addr] = true
				}
			}
		}
		c.attach = append(c.attach, a)
	}
}

// interfaces gives an instance one link per attachment.
func (c *svcPlanner) interfaces(in *InstancePlan) {
	for _, a := range c.attach {
		ifc := Interface{
			Network: a.network,
			HostIf:  VethName(in.Machine, a.key),
			GuestIf: a.guestIf,
			Addr:    a.addr,
		}
		if a.cfg != nil {
			ifc.Aliases = append(ifc.Aliases, a.cfg.Aliases...)
			ifc.GwPriority = a.cfg.GatewayPriority
			ifc.NoServiceAlias = a.cfg.UseServiceNameAlias != nil && !*a.cfg.UseServiceNameAlias
			if c.n > 1 {
				ifc.Addr = netip.Addr{} // reported by assemble
			}
		}
		in.Interfaces = append(in.Interfaces, ifc)
	}
}

// allocateAddresses gives every interface without a fixed address the next
// free one of its network, walking services and instances in sorted order
// so the result is deterministic.
func (pl *planner) allocateAddresses() {
	for _, sp := range pl.plan.Services {
		for _, in := range sp.Instances {
			for i := range in.Interfaces {
				ifc := &in.Interfaces[i]
				if ifc.Addr.IsValid() || ifc.Network.External && !ifc.Network.Subnet.IsValid() {
					if !ifc.Addr.IsValid() {
						pl.f.svc(Error, sp.Name, "networks."+ifc.Network.Key, "external network %q needs ipam.config[].subnet so berth can give addresses", ifc.Network.Key)
					}
					continue
				}
				a, ok := ifc.Network.nextFree()
				if !ok {
					pl.f.svc(Error, sp.Name, "networks."+ifc.Network.Key, "network %q (%s) has no free address left", ifc.Network.Key, ifc.Network.pool)
					continue
				}
				ifc.Addr = a
			}
		}
	}
}

func (np *NetworkPlan) nextFree() (netip.Addr, bool) {
	if !np.pool.IsValid() {
		return netip.Addr{}, false
	}
	a := np.next
	if !a.IsValid() {
		a = np.pool.Addr().Next() // skip the network address
	}
	last := lastAddr(np.pool)
	for ; np.pool.Contains(a) && a != last; a = a.Next() {
		if !np.taken[a] && np.Subnet.Contains(a) {
			np.taken[a] = true
			np.next = a.Next()
			return a, true
		}
	}
	return netip.Addr{}, false
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= math.MaxUint32 >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// validIfName accepts an interface name the network helpers can take.
func validIfName(s string) bool { return netspec.CheckIfName(s) == nil }
