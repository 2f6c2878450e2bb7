package compose

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// planServicePorts is the planner of ports: each published port checked
// and recorded; checkPorts gives them to the instance once the network
// mode and the replica count are known.
func (c *svcPlanner) planServicePorts() {
	for i, p := range c.svc.Ports {
		at := "ports." + strconv.Itoa(i)
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			c.err(at, "protocol %q is not supported (tcp, udp)", proto)
			continue
		}
		if p.Mode == "host" {
			c.warn(at, "mode: host is swarm only; the port is published like mode: ingress")
		}
		if p.Published == "" {
			c.err(at, "port %d has no host port; berth publishes only fixed ports (write HOST:%d)", p.Target, p.Target)
			continue
		}
		hostIP := p.HostIP
		if hostIP == "0.0.0.0" {
			hostIP = ""
		}
		if hostIP != "" {
			a, err := netip.ParseAddr(hostIP)
			if err != nil {
				c.err(at, "host_ip %q is not an IP address", p.HostIP)
				continue
			}
			hostIP = a.String()
		}
		port, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil || port == 0 {
			c.err(at, "published port %q is not a port number", p.Published)
			continue
		}
		c.ports = append(c.ports, PortPlan{HostIP: hostIP, HostPort: uint16(port), Target: uint16(p.Target), Proto: proto})
	}
}

// checkPorts publishes the service's ports on its one instance: host
// networking needs no publishing, none cannot have any, and one host port
// cannot lead to several replicas.
func (c *svcPlanner) checkPorts() {
	if len(c.svc.Ports) == 0 {
		return
	}
	switch {
	case c.sp.NetworkMode == "host":
		c.warn("ports", "ports are ignored with network_mode: host; the service listens on the host directly")
		return
	case c.sp.NetworkMode == "none":
		c.err("ports", "ports cannot be published with network_mode: none")
		return
	case len(c.sp.Instances) > 1:
		c.err("ports", "a published port cannot be shared by %d replicas", len(c.sp.Instances))
		return
	case len(c.sp.Instances) == 0:
		return
	}
	in := c.sp.Instances[0]
	if len(in.Interfaces) == 0 {
		return // no network to reach; reported with networks
	}
	for _, pp := range c.ports {
		pp.Unit = PortUnit(in.Machine, pp.Proto, pp.HostIP, pp.HostPort)
		in.Ports = append(in.Ports, pp)
	}
	slices.SortStableFunc(in.Ports, func(a, b PortPlan) int { return strings.Compare(a.Unit, b.Unit) })
	for i := 1; i < len(in.Ports); i++ {
		if in.Ports[i].Unit == in.Ports[i-1].Unit {
			c.err("ports", "host port %d/%s is published twice", in.Ports[i].HostPort, in.Ports[i].Proto)
		}
	}
}
