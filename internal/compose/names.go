package compose

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-sh/berth/internal/portproxy"
)

// Names of machines, units and interfaces. The rules:
//   - A machine name is a valid RFC 1123 host label (≤ 63 of [a-z0-9-]).
//     It is PROJECT-SERVICE-N when that spelling is unambiguous: nothing
//     needed rewriting, it fits, and the service name has no '-' (so the
//     name splits back into project, service and N from the right);
//     otherwise the readable part is followed by "-h" and 7 hex digits of
//     a hash of (project, service, N), so two projects can never produce
//     the same name. Readable names end in a decimal number, hashed ones
//     in h+hex, so the two forms cannot meet either.
//   - Units derived from a machine add a suffix after '_' (which no machine
//     name contains): berth-M.service, berth-M_health.service,
//     berth-M_port-80-tcp.socket. Project-wide units start with "berth_":
//     berth_PROJECT.target and berth_br-HASH.service for a bridge.
//   - Interface names are ≤ 15 bytes: bridges br-<12 hex of (project,
//     network)>, host-side veths bv-<12 hex of (machine, network)>.

const maxHostLabel = 63

func hashHex(n int, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:n]
}

// label lowercases s and replaces every byte outside [a-z0-9] by '-',
// collapsing runs and trimming dashes at the ends.
func label(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}

// MachineName returns the machine name of instance n (1-based) of service
// in project.
func MachineName(project, service string, n int) string {
	num := strconv.Itoa(n)
	p, s := label(project), label(service)
	readable := p + "-" + s + "-" + num
	if p == project && s == service && !strings.Contains(service, "-") && p != "" && s != "" && len(readable) <= maxHostLabel {
		return readable
	}
	suffix := "-h" + hashHex(7, project, service, num)
	head := strings.Trim(p+"-"+s, "-")
	if head == "" {
		head = "m"
	}
	if max := maxHostLabel - len(suffix) - len(num) - 1; len(head) > max {
		head = strings.TrimRight(head[:max], "-")
	}
	return head + "-" + num + suffix
}

// BridgeName is the host bridge of a project network.
func BridgeName(project, network string) string {
	return "br-" + hashHex(12, project, network)
}

// VethName is the host side of machine's link into a network.
func VethName(machine, network string) string {
	return "bv-" + hashHex(12, machine, network)
}

// MachineUnit is the unit that runs a machine.
func MachineUnit(machine string) string { return "berth-" + machine + ".service" }

// HealthUnit watches a machine's healthcheck; it is started (ready) once the
// check first passes.
func HealthUnit(machine string) string { return "berth-" + machine + "_health.service" }

// PortUnit is the socket unit publishing one host port of a machine.
func PortUnit(machine, proto string, hostIP string, port uint16) string {
	ip, _ := netip.ParseAddr(hostIP) // "": invalid, every address
	return "berth-" + machine + portproxy.Suffix(proto, ip, port)
}

// ProjectTarget starts and stops a whole project.
func ProjectTarget(project string) string { return "berth_" + project + ".target" }

// NetworkUnit creates and removes a bridge.
func NetworkUnit(bridge string) string { return "berth_" + bridge + ".service" }
