// Package portproxy renders the units that publish a machine's port on the
// host: a socket unit listening there and the proxy service it activates,
// which connects to the machine's address (systemd-socket-proxyd for tcp,
// berth compose _udp-proxy for udp). A proxy on the host, rather than
// nspawn's Port= (DNAT, which cannot serve the host's own 127.0.0.1:
// systemd#6106), works for every host address, loopback included. berth
// compose and the generator publish ports this one way.
package portproxy

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-sh/berth/internal/unit"
)

// Port is one published port.
type Port struct {
	Proto string // tcp or udp
	// HostIP is the host address listened on; invalid (or 0.0.0.0) means
	// every address.
	HostIP   netip.Addr
	HostPort uint16
	// Target is the machine's address and port.
	Target netip.AddrPort
}

// Listen is the socket's address as ListenStream= takes it.
func (p Port) Listen() string {
	if !p.HostIP.IsValid() || p.HostIP == netip.IPv4Unspecified() {
		return "0.0.0.0:" + strconv.Itoa(int(p.HostPort))
	}
	return netip.AddrPortFrom(p.HostIP, p.HostPort).String()
}

// Suffix names a port's units after the machine's: "_port-[IP-]PORT-PROTO",
// the address's dots and colons as dashes one for one, so distinct
// addresses stay distinct ("::1" is "--1").
func Suffix(proto string, hostIP netip.Addr, port uint16) string {
	ip := ""
	if hostIP.IsValid() && hostIP != netip.IPv4Unspecified() {
		ip = strings.NewReplacer(".", "-", ":", "-").Replace(hostIP.String()) + "-"
	}
	return "_port-" + ip + strconv.Itoa(int(port)) + "-" + proto
}

// Options are what the units say about the machine they serve.
type Options struct {
	// Berth runs the udp proxy; SocketProxyd is the tcp proxy.
	Berth, SocketProxyd string
	// Description starts both units' descriptions ("berth compose P/S").
	Description string
	// Machine is the machine's unit: the proxy binds to it.
	Machine string
	// PartOf, if set, stops and restarts both units with it.
	PartOf string
	// Comment heads both files.
	Comment string
}

// Units are the socket unit and its proxy service (named alike, .socket
// and .service).
func Units(p Port, o Options) (socket, service *unit.File) {
	listen, target := p.Listen(), p.Target.String()
	socket = unit.New(unit.Systemd)
	socket.Comments = []string{o.Comment}
	u := socket.Section("Unit")
	u.Add("Description", o.Description+": host "+listen+"/"+p.Proto+" to "+target)
	if o.PartOf != "" {
		u.Add("PartOf", o.PartOf)
	}
	ss := socket.Section("Socket")
	if p.Proto == "udp" {
		ss.Add("ListenDatagram", listen)
	} else {
		ss.Add("ListenStream", listen)
	}
	service = unit.New(unit.Systemd)
	service.Comments = socket.Comments
	u = service.Section("Unit")
	u.Add("Description", o.Description+": proxy for "+listen+"/"+p.Proto)
	u.Add("BindsTo", o.Machine)
	u.Add("After", o.Machine)
	if o.PartOf != "" {
		u.Add("PartOf", o.PartOf)
	}
	s := service.Section("Service")
	if p.Proto == "udp" {
		s.AddCommand("ExecStart", "", o.Berth, "compose", "_udp-proxy", target)
	} else {
		s.AddCommand("ExecStart", "", o.SocketProxyd, target)
	}
	// The proxy needs no privileges: it only accepts on the passed socket
	// and connects to the machine's address.
	s.Add("DynamicUser", "yes")
	s.Add("PrivateTmp", "yes")
	s.Add("NoNewPrivileges", "yes")
	return socket, service
}
