package etcfiles

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"db:10.0.0.2":           "db:10.0.0.2",
		"db=10.0.0.2":           "db:10.0.0.2",
		"a;b:fd00::3":           "a;b:fd00::3",
		"v6=2001:db8::1":        "v6:2001:db8::1",
		"br:[2001:db8::7]":      "br:2001:db8::7",
		"x.example_1:127.0.0.1": "x.example_1:127.0.0.1",
	} {
		h, err := ParseHost(in)
		if err != nil || h.String() != want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", in, h.String(), err, want)
		}
	}
	for _, in := range []string{"db", ":1.2.3.4", "db:host-gateway", "bad name:1.2.3.4", "db:1.2.3.400", "-x:1.2.3.4", "a\nb:1.2.3.4", "db:"} {
		if _, err := ParseHost(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseHost(%q): %v, want ErrInvalid", in, err)
		}
	}
}

func TestHosts(t *testing.T) {
	got := string(Hosts("web", []Host{{Names: []string{"db", "pg"}, Addr: netip.MustParseAddr("10.0.0.2")}}))
	want := header + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tweb\n10.0.0.2\tdb pg\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestResolvConfFillsFromHost(t *testing.T) {
	host := []byte("# host\nnameserver 192.0.2.1\nnameserver bogus\nsearch a.example b.example\noptions edns0\n")
	for _, tc := range []struct {
		name string
		r    Resolv
		want string
	}{
		{"all host", Resolv{}, "nameserver 192.0.2.1\nsearch a.example b.example\noptions edns0\n"},
		{"own servers", Resolv{Nameservers: []netip.Addr{netip.MustParseAddr("1.1.1.1")}}, "nameserver 1.1.1.1\nsearch a.example b.example\noptions edns0\n"},
		{"no search", Resolv{Search: []string{}, Options: []string{"ndots:2"}}, "nameserver 192.0.2.1\noptions ndots:2\n"},
	} {
		if got := string(ResolvConf(tc.r, host)); got != header+tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, header+tc.want)
		}
	}
}
