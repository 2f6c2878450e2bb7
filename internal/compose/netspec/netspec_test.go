package netspec

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		"a,b,c",
		"bv-x,br-1,eth0,not-an-ip",
		"bv-x,br/1,eth0,10.0.0.2/24",
		"bv-x,br-1,eth 0,10.0.0.2/24",
		"bv-x,br-1,eth0,10.0.0.2/24,::1",
		"bv-this-name-is-too-long,br-1,eth0,10.0.0.2/24",
	} {
		if _, err := ParseLink(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseLink(%q) = %v, want ErrInvalid", s, err)
		}
	}
	for _, s := range []string{"kernel.shmmax=1", "net..x=1", "net.ipv4/../../x=1", "net.a=1\n2", "net.x"} {
		if _, err := ParseSysctl(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSysctl(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

// TestLinkRoundTrip: what the converter writes is what the helper reads.
func TestLinkRoundTrip(t *testing.T) {
	for _, l := range []Link{
		{Host: "bv-aaaaaaaaaaaa", Bridge: "br-1", Guest: "eth0", Address: netip.MustParsePrefix("172.20.1.2/24"), Gateway: netip.MustParseAddr("172.20.1.1")},
		{Host: "bv-bbbbbbbbbbbb", Bridge: "br-2", Guest: "lan0", Address: netip.MustParsePrefix("10.0.0.10/8")},
	} {
		got, err := ParseLink(l.String())
		if err != nil || got != l {
			t.Errorf("ParseLink(%q) = %+v, %v; want %+v", l.String(), got, err, l)
		}
	}
}

func TestCheckIfName(t *testing.T) {
	for _, n := range []string{"eth0", "br-25de6f9c556c", "a.b_c-d", "123456789012345"} {
		if err := CheckIfName(n); err != nil {
			t.Errorf("CheckIfName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "1234567890123456", "a/b", "a:b", "a,b", "eth%d", "a b", "a\nb"} {
		if err := CheckIfName(n); !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckIfName(%q) = %v, want ErrInvalid", n, err)
		}
	}
}
