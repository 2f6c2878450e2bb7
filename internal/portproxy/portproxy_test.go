package portproxy

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSuffixDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, ip := range []string{"", "0.0.0.0", "127.0.0.1", "::1", "1::2:3", "1:2::3", "fd00::1", "10.0.0.1"} {
		a, _ := netip.ParseAddr(ip)
		for _, proto := range []string{"tcp", "udp"} {
			s := Suffix(proto, a, 8080)
			if ip == "0.0.0.0" {
				if s != "_port-8080-"+proto {
					t.Errorf("0.0.0.0: %s", s)
				}
				continue
			}
			if o, dup := seen[s]; dup {
				t.Errorf("%s and %s share %s", ip, o, s)
			}
			seen[s] = ip
		}
	}
}

func TestUnits(t *testing.T) {
	o := Options{Berth: "/b", SocketProxyd: "/p", Description: "berth web", Machine: "web.service", Comment: "c"}
	for _, tc := range []struct {
		p          Port
		listen, ex string
	}{
		{Port{Proto: "tcp", HostPort: 80, Target: netip.MustParseAddrPort("10.0.0.2:8080")}, "ListenStream=0.0.0.0:80", `ExecStart="/p" "10.0.0.2:8080"`},
		{Port{Proto: "udp", HostIP: netip.MustParseAddr("::1"), HostPort: 53, Target: netip.MustParseAddrPort("10.0.0.2:53")}, "ListenDatagram=[::1]:53", `ExecStart="/b" "compose" "_udp-proxy" "10.0.0.2:53"`},
	} {
		sock, svc := Units(tc.p, o)
		sb, err := sock.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		vb, err := svc.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(sb), tc.listen) || strings.Contains(string(sb), "PartOf") {
			t.Errorf("socket:\n%s", sb)
		}
		if !strings.Contains(string(vb), tc.ex) || !strings.Contains(string(vb), "BindsTo=web.service") || !strings.Contains(string(vb), "DynamicUser=yes") {
			t.Errorf("service:\n%s", vb)
		}
	}
}
