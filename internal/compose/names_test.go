package compose

import (
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/machine"
)

func TestMachineNames(t *testing.T) {
	for _, tc := range []struct {
		project, service string
		n                int
		want             string
	}{
		{"shop", "web", 1, "shop-web-1"},
		{"my-shop", "web", 2, "my-shop-web-2"},
		{"shop", "web-api", 1, "shop-web-api-1-h"},     // hashed: service has '-'
		{"shop_2", "web", 1, "shop-2-web-1-h"},         // hashed: '_' rewritten
		{"shop", "Web.Front", 1, "shop-web-front-1-h"}, // hashed: rewritten
	} {
		got := MachineName(tc.project, tc.service, tc.n)
		if strings.HasSuffix(tc.want, "-h") {
			if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+7 {
				t.Errorf("MachineName(%q, %q, %d) = %q, want %s + 7 hex", tc.project, tc.service, tc.n, got, tc.want)
			}
		} else if got != tc.want {
			t.Errorf("MachineName(%q, %q, %d) = %q, want %q", tc.project, tc.service, tc.n, got, tc.want)
		}
	}
}

// TestMachineNamesNeverCollide checks names are valid and distinct across
// projects and services that differ only in where the dashes fall, in
// case, or in characters a host name cannot hold.
func TestMachineNamesNeverCollide(t *testing.T) {
	parts := []string{"a", "b", "a-b", "b-c", "c", "a_b", "A", "x" + strings.Repeat("y", 70), "a.b", "1"}
	seen := map[string]string{}
	for _, p := range parts {
		if strings.ToLower(p) != p || strings.Contains(p, ".") {
			continue // not a valid project name
		}
		for _, s := range parts {
			for n := 1; n <= 12; n++ {
				name := MachineName(p, s, n)
				if err := machine.ValidateName(name); err != nil {
					t.Errorf("MachineName(%q, %q, %d) = %q: %v", p, s, n, name, err)
				}
				if len(name) > 63 || strings.ToLower(name) != name {
					t.Errorf("%q is not an RFC 1123 label", name)
				}
				key := p + "\x00" + s + "\x00" + string(rune('0'+n))
				if other, dup := seen[name]; dup && other != key {
					t.Errorf("%q names both %q and %q", name, other, key)
				}
				seen[name] = key
			}
		}
	}
	for _, n := range []string{BridgeName("p", "default"), VethName("p-web-1", "default"), PortUnit("p-web-1", "udp", "::1", 53)} {
		if strings.HasPrefix(n, "br-") || strings.HasPrefix(n, "bv-") {
			if len(n) > 15 {
				t.Errorf("interface name %q is longer than 15 bytes", n)
			}
		}
	}
}
