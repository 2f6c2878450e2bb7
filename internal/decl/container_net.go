package decl

import (
	"net/netip"
	"path"
	"strconv"
	"strings"

	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/etcfiles"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/paths"
	"github.com/berth-sh/berth/internal/portproxy"
	"github.com/berth-sh/berth/internal/unit"
)

// Networking of a .container works as berth compose's: the machine joins
// bridges (its networks' units) through a network namespace that its unit
// prepares before nspawn starts (berth compose _netns-up), with an address
// the generator chose, a hosts file naming every machine it shares a
// network with, and published ports as socket units with a proxy.

// linkPlan is what a container takes from the other declarations and the
// host: networks and addresses, published ports, named volumes, the image
// source. The planners record it; link resolves it once every declaration
// is planned.
type linkPlan struct {
	// networks are the Network= requests in effect (an empty Network=
	// resets the list); none: the default network.
	networks []netRequest
	// mode is "host", "none" or "" (bridges).
	mode      string
	modeEntry Entry
	aliases   []string
	ip        netip.Addr
	ipEntry   *Entry
	ports     []portSpec
	// attach are the bridges joined, resolved by allocate.
	attach []*attachment
	pull   pullPlan
	vols   []volUse
	// units go beside the machine's (published ports).
	units []namedFile
}

// netRequest is one Network= value: a network and its options
// (NAME.network:ip=ADDR,alias=NAME,interface_name=IF).
type netRequest struct {
	ref     string
	ip      netip.Addr
	aliases []string
	ifname  string
	e       Entry
	// ipE is where ip came from: e, or the IP= entry.
	ipE Entry
}

// attachment is the machine's interface on one bridge.
type attachment struct {
	req   netRequest
	net   *netDecl
	addr  netip.Addr
	guest string
}

// portSpec is one PublishPort=.
type portSpec struct {
	hostIP       netip.Addr // invalid: every address
	host, target uint16
	proto        string
}

func (k *ctr) planNetwork(e Entry) {
	l := &k.links
	name, opts, _ := strings.Cut(e.Value, ":")
	switch {
	case e.Value == "":
		l.networks, l.mode = nil, ""
		return
	case e.Value == "host" || e.Value == "none":
		l.mode, l.modeEntry = e.Value, e
		return
	case name == "container" || strings.HasSuffix(name, ".container"):
		k.err(containerGroup, e, "joining another container's network namespace is not supported")
		return
	case name == "ns" || name == "slirp4netns" || name == "pasta":
		k.err(containerGroup, e, "network mode %q is not supported; use a .network, host or none", name)
		return
	case name == "bridge" || name == "private":
		name = "" // podman's words for the default network
	}
	r := netRequest{ref: name, e: e}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			key, v, _ := strings.Cut(o, "=")
			switch key {
			case "ip":
				a, err := netip.ParseAddr(v)
				if err != nil || !a.Is4() {
					k.err(containerGroup, e, "ip=%q is not an IPv4 address", v)
				}
				r.ip, r.ipE = a, e
			case "alias":
				if !etcfiles.ValidName(v) {
					k.err(containerGroup, e, "alias=%q is not a host name", v)
				}
				r.aliases = append(r.aliases, v)
			case "interface_name":
				if netspec.CheckIfName(v) != nil {
					k.err(containerGroup, e, "interface_name=%q is not a valid interface name", v)
				}
				r.ifname = v
			default:
				k.err(containerGroup, e, "network option %q is not supported (ip, alias, interface_name)", key)
			}
		}
	}
	l.networks = append(l.networks, r)
}

func (k *ctr) planNetworkAlias(e Entry) {
	if !etcfiles.ValidName(e.Value) {
		k.err(containerGroup, e, "%q is not a host name", e.Value)
		return
	}
	k.links.aliases = append(k.links.aliases, e.Value)
}

func (k *ctr) planIP(e Entry) {
	a, err := netip.ParseAddr(e.Value)
	if err != nil || !a.Is4() {
		k.err(containerGroup, e, "%q is not an IPv4 address", e.Value)
		return
	}
	k.links.ip, k.links.ipEntry = a, &e
}

// planPublishPort reads [[IP:][HOSTPORT]:]CONTAINERPORT[/PROTO], ports
// and ranges (8080-8081:80-81) as podman does. A port without a host port
// would be published on a random one, which a unit cannot name: an error.
func (k *ctr) planPublishPort(e Entry) {
	v, proto, _ := strings.Cut(e.Value, "/")
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		k.err(containerGroup, e, "protocol %q is not supported (tcp, udp)", proto)
		return
	}
	var ip, host, target string
	if strings.HasPrefix(v, "[") { // [IPv6]:HOST:CONTAINER
		end := strings.Index(v, "]")
		if end < 0 || end+1 >= len(v) || v[end+1] != ':' {
			k.err(containerGroup, e, "%q is not [[IP:][HOSTPORT]:]CONTAINERPORT[/PROTO]", e.Value)
			return
		}
		ip, v = v[1:end], v[end+2:]
		host, target, _ = strings.Cut(v, ":")
	} else {
		parts := strings.Split(v, ":")
		switch len(parts) {
		case 1:
			target = parts[0]
		case 2:
			host, target = parts[0], parts[1]
		case 3:
			ip, host, target = parts[0], parts[1], parts[2]
		default:
			k.err(containerGroup, e, "%q is not [[IP:][HOSTPORT]:]CONTAINERPORT[/PROTO]", e.Value)
			return
		}
	}
	var hostIP netip.Addr
	if ip != "" && ip != "0.0.0.0" {
		a, err := netip.ParseAddr(ip)
		if err != nil || a.Zone() != "" {
			k.err(containerGroup, e, "%q is not an IP address", ip)
			return
		}
		hostIP = a
	}
	if host == "" {
		k.err(containerGroup, e, "%q has no host port; berth publishes only fixed ports (write HOSTPORT:%s)", e.Value, target)
		return
	}
	hosts, ok1 := portRange(host)
	targets, ok2 := portRange(target)
	if !ok1 || !ok2 || len(hosts) != len(targets) {
		k.err(containerGroup, e, "%q: ports are 1-65535, ranges FIRST-LAST of the same length on both sides", e.Value)
		return
	}
	for i := range hosts {
		k.links.ports = append(k.links.ports, portSpec{hostIP: hostIP, host: hosts[i], target: targets[i], proto: proto})
	}
}

// portRange reads PORT or FIRST-LAST.
func portRange(s string) ([]uint16, bool) {
	first, last, isRange := strings.Cut(s, "-")
	a, err1 := strconv.ParseUint(first, 10, 16)
	b, err2 := a, error(nil)
	if isRange {
		b, err2 = strconv.ParseUint(last, 10, 16)
	}
	if err1 != nil || err2 != nil || a == 0 || b < a {
		return nil, false
	}
	var out []uint16
	for p := a; p <= b; p++ {
		out = append(out, uint16(p))
	}
	return out, true
}

// allocate resolves every container's networks and gives each interface
// its address: fixed ones (IP=, ip=) first, then one per remaining
// interface in declaration-name order, starting at a slot chosen by
// hashing the machine's name and probing past taken addresses. Hashing
// rather than counting keeps addresses stable: adding a declaration
// moves no other machine unless they hash to the same slot.
func (g *gen) allocate() {
	ctrs := g.sortedContainers()
	for _, k := range ctrs {
		k.resolveNetworks()
	}
	for _, k := range ctrs {
		for _, a := range k.links.attach {
			if a.req.ip.IsValid() {
				k.claim(a, a.req.ip)
			}
		}
	}
	for _, k := range ctrs {
		for _, a := range k.links.attach {
			if !a.addr.IsValid() && !a.net.failed {
				k.assign(a)
			}
		}
	}
}

// resolveNetworks finds the networks of the container's Network= entries
// (the default network when there are none).
func (k *ctr) resolveNetworks() {
	l := &k.links
	if l.mode != "" {
		if len(l.networks) > 0 {
			k.err(containerGroup, l.modeEntry, "Network=%s cannot go with other networks", l.mode)
		}
		if l.ipEntry != nil {
			k.err(containerGroup, *l.ipEntry, "a fixed address needs a network (not Network=%s)", l.mode)
		}
		return
	}
	reqs := l.networks
	if k.isTemplate() {
		// Addresses are given when units are made, but a template's
		// machines are named only when they start: they keep
		// nspawn's own link (a veth), as `berth create` machines do.
		if len(reqs) > 0 {
			k.err(containerGroup, reqs[0].e, "a template's machines cannot join a bridge (addresses are given when units are made, instance names only when they start); use Network=host or none, or instance files")
		}
		return
	}
	if len(reqs) == 0 {
		reqs = []netRequest{{e: k.entry("Network")}}
	}
	if l.ipEntry != nil {
		if len(reqs) > 1 {
			k.err(containerGroup, *l.ipEntry, "with several networks, give each address as Network=NAME:ip=ADDR")
		} else if !reqs[0].ip.IsValid() {
			reqs[0].ip, reqs[0].ipE = l.ip, *l.ipEntry
		}
	}
	seen := map[*netDecl]bool{}
	for i, r := range reqs {
		n, ok := k.findNetwork(r)
		if !ok {
			continue
		}
		if seen[n] {
			k.err(containerGroup, r.e, "network %s is joined twice", n.name)
			continue
		}
		seen[n] = true
		guest := cmpOr(r.ifname, "eth"+strconv.Itoa(i))
		l.attach = append(l.attach, &attachment{req: r, net: n, guest: guest})
	}
}

// findNetwork resolves NAME.network, a network name, or "" (the default).
func (k *ctr) findNetwork(r netRequest) (*netDecl, bool) {
	nets := k.reg.networks
	var n *netDecl
	switch {
	case r.ref == "":
		n = nets[defaultNetworkFile]
	case strings.HasSuffix(r.ref, ".network"):
		n = nets[r.ref]
		if n == nil {
			k.err(containerGroup, r.e, "%s is not declared", r.ref)
			return nil, false
		}
	default:
		for _, c := range nets {
			if c.name == r.ref && !c.failed {
				n = c
			}
		}
		if n == nil {
			k.err(containerGroup, r.e, "no network is named %q; declare NAME.network and write Network=NAME.network (a declared network is named systemd-NAME unless NetworkName= says otherwise; the default network is %s)", r.ref, defaultNetworkName)
			return nil, false
		}
	}
	if n.failed {
		k.err(containerGroup, r.e, "network %s has errors (see its findings)", n.c.in.File.Path)
		return nil, false
	}
	return n, true
}

// claim gives a an address the declaration fixed.
func (k *ctr) claim(a *attachment, ip netip.Addr) {
	n := a.net
	switch {
	case n.failed:
	case !n.subnet.Contains(ip) || ip == n.subnet.Addr() || ip == lastAddr(n.subnet):
		k.err(containerGroup, a.req.ipE, "%s is not a host address of network %s (%s)", ip, n.name, n.subnet)
	case n.taken[ip]:
		k.err(containerGroup, a.req.ipE, "%s is taken on network %s (its gateway or another machine)", ip, n.name)
	default:
		n.taken[ip] = true
		a.addr = ip
	}
}

// assign gives a the first free address of its network's pool from the
// machine's hashed slot on.
func (k *ctr) assign(a *attachment) {
	n := a.net
	size := uint64(1) << (32 - n.pool.Bits())
	start := hashUint(k.spec.Name, n.name) % size
	for i := uint64(0); i < size; i++ {
		ip := addrAdd(n.pool.Addr(), uint32((start+i)%size))
		if n.subnet.Contains(ip) && ip != n.subnet.Addr() && ip != lastAddr(n.subnet) && !n.taken[ip] {
			n.taken[ip] = true
			a.addr = ip
			return
		}
	}
	k.err(containerGroup, a.req.e, "network %s has no free address left in %s", n.name, n.pool)
}

// linkNetwork puts the machine on its networks: host and none as nspawn
// does them; bridges through the namespace its unit prepares, with the
// hosts file and published ports.
func (k *ctr) linkNetwork() {
	l, s := &k.links, &k.spec
	switch l.mode {
	case "host":
		s.Network = machine.Network{Mode: machine.NetworkHost}
		if len(l.ports) > 0 {
			k.warn(containerGroup, k.entry("PublishPort"), "ports are not published with Network=host; the machine listens on the host's addresses")
		}
		return
	case "none":
		s.Network = machine.Network{Mode: machine.NetworkNone}
		if len(l.ports) > 0 {
			k.err(containerGroup, k.entry("PublishPort"), "ports cannot be published with Network=none")
		}
		return
	}
	if len(l.attach) == 0 {
		if len(l.ports) > 0 && k.isTemplate() {
			k.err(containerGroup, k.entry("PublishPort"), "a template's machines are on no bridge, so their ports cannot be published; use instance files")
		}
		return
	}
	if k.failed {
		return
	}
	netns := "berth-" + s.Name
	s.Network = machine.Network{Mode: machine.NetworkNamespace, Name: path.Join(paths.Netns, netns)}
	// systemd 252's nspawn cannot join a namespace the host made from a
	// private user namespace (docs/compose.md): machines on bridges share
	// the host's users, as compose's and docker's do (finishUserNS drops
	// the binds' idmap).
	s.PrivateUsers = "no"
	up := []string{k.opts.Berth, "compose", "_netns-up", "--netns", netns}
	down := []string{k.opts.Berth, "compose", "_netns-down", "--netns", netns}
	gw := -1
	for i, a := range l.attach {
		if gw < 0 && !a.net.internal {
			gw = i // the default route: the first network that reaches out
		}
		link := netspec.Link{Host: "bv-" + hashHex(12, "generator", s.Name, a.net.bridge), Bridge: a.net.bridge, Guest: a.guest,
			Address: netip.PrefixFrom(a.addr, a.net.subnet.Bits())}
		if i == gw {
			link.Gateway = a.net.gateway
		}
		up = append(up, "--link", link.String())
		down = append(down, "--link", link.String())
		a.net.used = true
		requireUnit(&s.Unit, a.net.service)
	}
	s.Hooks.StartPre = append(s.Hooks.StartPre, up)
	s.Hooks.StopPost = append(s.Hooks.StopPost, down)
	k.more.etc.network = k.peers()
	k.linkPorts()
}

// peers are the hosts entries of the machine's networks: itself and every
// machine it shares a network with (not on networks with DisableDNS=),
// each under its machine name, host name and aliases.
func (k *ctr) peers() []etcfiles.Host {
	var out []etcfiles.Host
	for _, mine := range k.links.attach {
		for _, o := range k.sortedContainers() {
			for _, theirs := range o.links.attach {
				if theirs.net != mine.net || !theirs.addr.IsValid() || mine.net.noDNS && o != k {
					continue
				}
				names := []string{o.spec.Name}
				if o.spec.Hostname != "" {
					names = append(names, o.spec.Hostname)
				}
				names = append(append(names, o.links.aliases...), theirs.req.aliases...)
				out = append(out, etcfiles.Host{Names: dedupeNames(names), Addr: theirs.addr})
			}
		}
	}
	return out
}

func dedupeNames(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// linkPorts makes a socket unit and a proxy service per published port,
// as compose does: a proxy on the host (not nspawn's Port=, DNAT that
// cannot serve the host's own 127.0.0.1) to the machine's first address.
// The machine's unit wants the sockets; they stop with it.
func (k *ctr) linkPorts() {
	l := &k.links
	base := strings.TrimSuffix(k.service, ".service")
	seen := map[string]bool{}
	for _, p := range l.ports {
		name := base + portproxy.Suffix(p.proto, p.hostIP, p.host)
		if seen[name] {
			k.err(containerGroup, k.entry("PublishPort"), "host port %d/%s is published twice", p.host, p.proto)
			continue
		}
		seen[name] = true
		pp := portproxy.Port{Proto: p.proto, HostIP: p.hostIP, HostPort: p.host, Target: netip.AddrPortFrom(l.attach[0].addr, p.target)}
		sock, svc := portproxy.Units(pp, portproxy.Options{
			Berth: k.opts.Berth, SocketProxyd: k.opts.SocketProxyd,
			Description: "berth " + k.spec.Name, Machine: k.service, PartOf: k.service,
			Comment: "Generated by berth-generator from " + k.in.File.Path + "; do not edit.",
		})
		l.units = append(l.units, namedFile{name + ".socket", sock}, namedFile{name + ".service", svc})
		k.spec.Unit.Wants = append(k.spec.Unit.Wants, name+".socket")
	}
}

// decorateLinks adds to the machine's unit what its links need beyond the
// machine model (the pull's start timeout) and returns the units beside
// it (published ports).
func (k *ctr) decorateLinks(f *unit.File) []namedFile {
	if k.links.pull.hook {
		f.Section("Service").Add("TimeoutStartSec", unit.TimeSpan(pullTimeout))
	}
	return k.links.units
}

// link resolves what the container takes from the others, in the order
// its unit needs it at start: the image, then volumes (seeded from it),
// then the network.
func (k *ctr) link() {
	k.linkImage()
	k.linkVolumes()
	k.linkNetwork()
}
