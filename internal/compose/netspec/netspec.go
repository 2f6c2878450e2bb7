// Package netspec is the argument format of the compose network helpers
// (berth compose _netns-up --link …, --sysctl …): what the converter writes
// into units and the helpers parse, with the validation both need. It does
// no I/O, so the converter can use it and stay pure.
package netspec

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrInvalid is wrapped by errors about malformed arguments.
var ErrInvalid = errors.New("invalid network argument")

// Link is one machine interface: a veth pair whose host side joins Bridge
// and whose other side, Guest, lives in the machine's namespace.
type Link struct {
	Host, Bridge, Guest string
	Address             netip.Prefix
	// Gateway, if valid, becomes the namespace's default route.
	Gateway netip.Addr
}

// String is the link as --link takes it: HOST,BRIDGE,GUEST,ADDR/LEN[,GATEWAY].
func (l Link) String() string {
	s := l.Host + "," + l.Bridge + "," + l.Guest + "," + l.Address.String()
	if l.Gateway.IsValid() {
		s += "," + l.Gateway.String()
	}
	return s
}

// ParseLink reads the --link form HOST,BRIDGE,GUEST,ADDR/LEN[,GATEWAY].
func ParseLink(s string) (Link, error) {
	f := strings.Split(s, ",")
	if len(f) != 4 && len(f) != 5 {
		return Link{}, fmt.Errorf("parse link %q: %w: want HOST,BRIDGE,GUEST,ADDR/LEN[,GATEWAY]", s, ErrInvalid)
	}
	l := Link{Host: f[0], Bridge: f[1], Guest: f[2]}
	for _, n := range []string{l.Host, l.Bridge, l.Guest} {
		if err := CheckIfName(n); err != nil {
			return Link{}, fmt.Errorf("parse link %q: %w", s, err)
		}
	}
	a, err := netip.ParsePrefix(f[3])
	if err != nil || !a.Addr().Is4() {
		return Link{}, fmt.Errorf("parse link %q: %w: %q is not an IPv4 address/length", s, ErrInvalid, f[3])
	}
	l.Address = a
	if len(f) == 5 {
		gw, err := netip.ParseAddr(f[4])
		if err != nil || !gw.Is4() {
			return Link{}, fmt.Errorf("parse link %q: %w: gateway %q is not an IPv4 address", s, ErrInvalid, f[4])
		}
		l.Gateway = gw
	}
	return l, nil
}

// Sysctl is one net.* setting applied inside the namespace.
type Sysctl struct{ Key, Value string }

// ParseSysctl reads KEY=VALUE and allows only net.* keys made of
// [a-z0-9_.-] without empty elements, so the key maps to a path under
// /proc/sys/net and nowhere else.
func ParseSysctl(s string) (Sysctl, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || !strings.HasPrefix(k, "net.") {
		return Sysctl{}, fmt.Errorf("parse sysctl %q: %w: want net.KEY=VALUE", s, ErrInvalid)
	}
	for _, el := range strings.Split(k, ".") {
		if el == "" || el == ".." {
			return Sysctl{}, fmt.Errorf("parse sysctl %q: %w: empty key element", s, ErrInvalid)
		}
		for _, c := range el {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				return Sysctl{}, fmt.Errorf("parse sysctl %q: %w: key character %q", s, ErrInvalid, c)
			}
		}
	}
	if strings.ContainsAny(v, "\n\x00") {
		return Sysctl{}, fmt.Errorf("parse sysctl %q: %w: value has a newline", s, ErrInvalid)
	}
	return Sysctl{Key: k, Value: v}, nil
}

// checkIfName applies the kernel's interface name rules (dev_valid_name).
// CheckIfName accepts a network interface name the kernel takes and the
// helpers' arguments can carry: 1-15 bytes, not "." or "..", no '/', ':',
// ',', '%' or blanks.
func CheckIfName(n string) error {
	if n == "" || len(n) > 15 || n == "." || n == ".." || strings.ContainsAny(n, "/:,% \t\n") {
		return fmt.Errorf("%w: %q is not a valid interface name", ErrInvalid, n)
	}
	return nil
}
