package project

import (
	"fmt"
	"strings"
)

// ErrNoPort: the service does not publish the private port asked for.
var ErrNoPort = fmt.Errorf("port not published")

// Port returns the host address (HOST_IP:PORT) service's instance index
// (1-based) publishes privatePort/proto on, as docker compose port prints
// it. It reads only the installed manifest.
func (h *Host) Port(name, service string, privatePort int, proto string, index int) (string, error) {
	_, svcs, err := h.selected(name, []string{service})
	if err != nil {
		return "", err
	}
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		return "", fmt.Errorf("port %s/%s: protocol %q: want tcp or udp", name, service, proto)
	}
	s := svcs[0]
	if index <= 0 {
		index = 1
	}
	if index > len(s.Instances) {
		return "", fmt.Errorf("port %s/%s: service has %d instances, not %d", name, service, len(s.Instances), index)
	}
	want := fmt.Sprintf("->%d/%s", privatePort, proto)
	for _, p := range s.Instances[index-1].Ports {
		// The manifest's form: HOSTIP:HOSTPORT->TARGET/PROTO, HOSTIP
		// empty for every address.
		if host, ok := strings.CutSuffix(p, want); ok {
			if strings.HasPrefix(host, ":") {
				host = "0.0.0.0" + host
			}
			return host, nil
		}
	}
	return "", fmt.Errorf("port %s/%s: %d/%s: %w (see the service's ports:)", name, service, privatePort, proto, ErrNoPort)
}
