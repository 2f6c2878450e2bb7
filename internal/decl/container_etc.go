package decl

import (
	"net/netip"
	"path"

	"github.com/berth-sh/berth/internal/etcfiles"
	"github.com/berth-sh/berth/internal/machine"
)

// etcPlan is the machine's own /etc/hosts and /etc/resolv.conf: nspawn
// has no options for extra hosts or name servers, and a generator may not
// write the files, so the unit writes them when it starts (`berth
// _etc-files` as ExecStartPre=, into etcDir) and nspawn binds them in.
type etcPlan struct {
	// hosts are AddHost= entries; network the machines on the machine's
	// networks, itself included (container_net.go).
	hosts, network []etcfiles.Host
	dns            []netip.Addr
	// dnsNone is DNS=none: the machine gets no resolv.conf at all.
	dnsNone  bool
	search   []string
	noSearch bool // DNSSearch=.
	options  []string
}

func (p *etcPlan) resolv() bool {
	return len(p.dns) > 0 || len(p.search) > 0 || p.noSearch || len(p.options) > 0
}

func (k *ctr) planAddHost(e Entry) {
	h, err := etcfiles.ParseHost(e.Value)
	if err != nil {
		k.err(containerGroup, e, "%s", etcMsg(err))
		return
	}
	k.more.etc.hosts = append(k.more.etc.hosts, h)
}

func (k *ctr) planDNS(e Entry) {
	p := &k.more.etc
	if e.Value == "none" {
		p.dnsNone = true
		return
	}
	a, err := netip.ParseAddr(e.Value)
	if err != nil {
		k.err(containerGroup, e, "%q is not an IP address (or none)", e.Value)
		return
	}
	p.dns = append(p.dns, a)
}

func (k *ctr) planDNSSearch(e Entry) {
	p := &k.more.etc
	if e.Value == "." {
		p.noSearch, p.search = true, nil
		return
	}
	if !etcfiles.ValidName(e.Value) {
		k.err(containerGroup, e, "%q is not a domain name (or . for none)", e.Value)
		return
	}
	p.search = append(p.search, e.Value)
}

func (k *ctr) planDNSOption(e Entry) {
	if !etcfiles.ValidOption(e.Value) {
		k.err(containerGroup, e, "%q is not a resolver option", e.Value)
		return
	}
	k.more.etc.options = append(k.more.etc.options, e.Value)
}

// finishEtc adds the helper that writes the files and the binds that put
// them in place.
func (k *ctr) finishEtc() {
	p := &k.more.etc
	s := &k.spec
	dir := path.Join(etcDir, s.Name)
	argv := []string{k.opts.Berth, "_etc-files"}
	if len(p.hosts) > 0 || len(p.network) > 0 {
		f := path.Join(dir, "hosts")
		argv = append(argv, "--hosts", f)
		if len(p.network) == 0 {
			// Without an address of its own the machine's name is
			// a loopback one, as docker writes it.
			argv = append(argv, "--hostname", cmpOr(s.Hostname, s.Name))
		}
		// AddHost= first, as podman writes them: the first entry of
		// a name wins.
		for _, h := range append(append([]etcfiles.Host(nil), p.hosts...), p.network...) {
			argv = append(argv, "--add-host", h.String())
		}
		s.Binds = append(s.Binds, machine.Bind{Source: f, Destination: "/etc/hosts", ReadOnly: true})
	}
	switch {
	case p.dnsNone && (p.resolv()):
		k.err(containerGroup, k.entry("DNS"), "DNS=none gives the machine no resolv.conf; it cannot go with name servers, search domains or options")
	case p.dnsNone:
		s.ResolvConf = "delete"
	case p.resolv():
		f := path.Join(dir, "resolv.conf")
		argv = append(argv, "--resolv-conf", f)
		for _, a := range p.dns {
			argv = append(argv, "--dns", a.String())
		}
		for _, d := range p.search {
			argv = append(argv, "--dns-search", d)
		}
		if p.noSearch {
			argv = append(argv, "--no-dns-search")
		}
		for _, o := range p.options {
			argv = append(argv, "--dns-option", o)
		}
		s.Binds = append(s.Binds, machine.Bind{Source: f, Destination: "/etc/resolv.conf", ReadOnly: true})
		s.ResolvConf = "off" // nspawn must not manage the file berth binds
	}
	if len(argv) > 2 {
		s.Hooks.StartPre = append(s.Hooks.StartPre, argv)
	}
}

// etcMsg is an etcfiles error without its sentinel prefix.
func etcMsg(err error) string {
	return trimSentinel(err, etcfiles.ErrInvalid)
}
