package hostnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose/netspec"
)

func TestBridgeUp(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    Bridge
		want string
	}{{
		name: "routed",
		b:    Bridge{Name: "br-0123456789ab", Address: netip.MustParsePrefix("172.20.1.1/24")},
		want: `ip link add br-0123456789ab type bridge
ip link set br-0123456789ab address 02:92:bd:4e:1a:d2
ip addr replace 172.20.1.1/24 dev br-0123456789ab
ip link set br-0123456789ab up
nft delete table inet berth_br_0123456789ab
nft add table inet berth_br_0123456789ab
nft add chain inet berth_br_0123456789ab postrouting '{ type nat hook postrouting priority srcnat; policy accept; }'
nft add rule inet berth_br_0123456789ab postrouting ip saddr 172.20.1.0/24 oifname '!=' '"br-0123456789ab"' masquerade
sysctl -q -w net.ipv4.ip_forward=1
`,
	}, {
		name: "internal",
		b:    Bridge{Name: "br-x", Address: netip.MustParsePrefix("10.0.0.254/24"), Internal: true},
		want: `ip link add br-x type bridge
ip link set br-x address 02:43:32:a1:51:ac
ip addr replace 10.0.0.254/24 dev br-x
ip link set br-x up
nft delete table inet berth_br_x
nft add table inet berth_br_x
nft add chain inet berth_br_x forward '{ type filter hook forward priority filter; policy accept; }'
nft add rule inet berth_br_x forward iifname '"br-x"' oifname '!=' '"br-x"' drop
nft add rule inet berth_br_x forward oifname '"br-x"' iifname '!=' '"br-x"' drop
`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// The bridge and table already exist: those commands fail
			// and must not stop the rest.
			r := &command.RecordingRunner{Results: map[string]command.Result{
				"ip link add " + tc.b.Name + " type bridge":    {Code: 2},
				"nft delete table inet " + nftTable(tc.b.Name): {Code: 1},
			}}
			if err := BridgeUp(context.Background(), r, tc.b); err != nil {
				t.Fatal(err)
			}
			if got := r.Commands(); got != tc.want {
				t.Errorf("commands:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestBridgeUpFails(t *testing.T) {
	r := &command.RecordingRunner{Results: map[string]command.Result{"ip link set br-x up": {Stderr: "RTNETLINK answers: Operation not permitted\n", Code: 2}}}
	err := BridgeUp(context.Background(), r, Bridge{Name: "br-x", Address: netip.MustParsePrefix("10.0.0.1/24")})
	if want := "bring up bridge br-x: ip link set br-x up: exit status 2: RTNETLINK answers: Operation not permitted"; err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	lines := strings.Split(strings.TrimSpace(r.Commands()), "\n")
	if last := lines[len(lines)-1]; last != "ip link set br-x up" {
		t.Errorf("ran on after the failure: last command %q", last)
	}
}

func TestNamespaceUp(t *testing.T) {
	l1, err := netspec.ParseLink("bv-aaaaaaaaaaaa,br-1,eth0,172.20.1.2/24,172.20.1.1")
	if err != nil {
		t.Fatal(err)
	}
	l2, err := netspec.ParseLink("bv-bbbbbbbbbbbb,br-2,lan0,10.0.0.10/24")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := netspec.ParseSysctl("net.core.somaxconn=1024")
	if err != nil {
		t.Fatal(err)
	}
	r := &command.RecordingRunner{}
	ns := Namespace{Name: "berth-p-web-1", Links: []Link{l1, l2}, Sysctls: []Sysctl{sc}}
	if err := NamespaceUp(context.Background(), r, ns); err != nil {
		t.Fatal(err)
	}
	want := `ip netns del berth-p-web-1
ip netns add berth-p-web-1
ip -n berth-p-web-1 link set lo up
ip link del bv-aaaaaaaaaaaa
ip link add bv-aaaaaaaaaaaa type veth peer name eth0 address 02:42:ac:14:01:02 netns berth-p-web-1
ip link set bv-aaaaaaaaaaaa master br-1
ip link set bv-aaaaaaaaaaaa up
ip -n berth-p-web-1 addr add 172.20.1.2/24 dev eth0
ip -n berth-p-web-1 link set eth0 up
ip -n berth-p-web-1 route add default via 172.20.1.1
ip link del bv-bbbbbbbbbbbb
ip link add bv-bbbbbbbbbbbb type veth peer name lan0 address 02:42:0a:00:00:0a netns berth-p-web-1
ip link set bv-bbbbbbbbbbbb master br-2
ip link set bv-bbbbbbbbbbbb up
ip -n berth-p-web-1 addr add 10.0.0.10/24 dev lan0
ip -n berth-p-web-1 link set lan0 up
ip netns exec berth-p-web-1 sysctl -q -w net.ipv4.ip_unprivileged_port_start=0
ip netns exec berth-p-web-1 sysctl -q -w 'net.ipv4.ping_group_range=0 2147483647'
ip netns exec berth-p-web-1 sysctl -q -w net.core.somaxconn=1024
`
	if got := r.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	r = &command.RecordingRunner{}
	if err := NamespaceDown(context.Background(), r, ns); err != nil {
		t.Fatal(err)
	}
	if got := r.Commands(); got != "ip link del bv-aaaaaaaaaaaa\nip link del bv-bbbbbbbbbbbb\nip netns del berth-p-web-1\n" {
		t.Errorf("down: %q", got)
	}
}
