package decl

import (
	"net/netip"
	"strings"
	"testing"
)

// addresses generates the declarations and returns each machine's
// address per bridge, read from its _netns-up command line, and the
// findings.
func addresses(t *testing.T, files map[string]string) (map[string]string, string) {
	t.Helper()
	var in []Input
	for name, body := range files {
		f, err := Parse("/etc/berth/systemd/"+name, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		in = append(in, Input{Name: name, File: f})
	}
	units, fnd := Generate(in, Options{})
	out := map[string]string{}
	for _, u := range units {
		for _, line := range strings.Split(string(u.Data), "\n") {
			if !strings.Contains(line, `"_netns-up"`) {
				continue
			}
			for _, w := range strings.Fields(line) {
				if f := strings.Split(strings.Trim(w, `"`), ","); len(f) >= 4 {
					out[strings.TrimSuffix(u.Name, ".service")+"@"+f[1]] = f[3]
				}
			}
		}
	}
	var msgs []string
	for _, f := range fnd {
		msgs = append(msgs, f.String())
	}
	return out, strings.Join(msgs, "\n")
}

func ctrDecl(extra ...string) string {
	return "[Container]\nImage=busybox\nExec=true\n" + strings.Join(extra, "\n") + "\n"
}

// TestAllocateDeterministic: the same declarations give the same
// addresses whatever order they come in, and a new declaration moves no
// machine that did not collide with it.
func TestAllocateDeterministic(t *testing.T) {
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		files[n+".container"] = ctrDecl()
	}
	first, fnd := addresses(t, files)
	if fnd != "" || len(first) != 8 {
		t.Fatalf("addresses %v, findings %s", first, fnd)
	}
	for i := 0; i < 5; i++ {
		again, _ := addresses(t, files) // map order differs run to run
		for k, v := range first {
			if again[k] != v {
				t.Errorf("run %d: %s = %s, was %s", i, k, again[k], v)
			}
		}
	}
	files["new.container"] = ctrDecl()
	more, _ := addresses(t, files)
	for k, v := range first {
		if more[k] != v {
			t.Errorf("adding new.container moved %s from %s to %s", k, v, more[k])
		}
	}
	seen := map[string]string{}
	for k, v := range more {
		if o, dup := seen[v]; dup {
			t.Errorf("%s and %s share %s", k, o, v)
		}
		seen[v] = k
		if p := netip.MustParsePrefix(v); !defaultSubnet.Contains(p.Addr()) || p.Bits() != 16 || p.Addr() == netip.MustParseAddr("10.87.0.1") {
			t.Errorf("%s = %s, not a machine address of %s", k, v, defaultSubnet)
		}
	}
}

// TestAllocateFixedFirst: IP= is honoured even when it is the address a
// machine sorted earlier would have hashed to; that machine moves on.
func TestAllocateFixedFirst(t *testing.T) {
	alone, _ := addresses(t, map[string]string{"a.container": ctrDecl()})
	taken := strings.Split(alone["a@berth0"], "/")[0]
	got, fnd := addresses(t, map[string]string{
		"a.container": ctrDecl(),
		"z.container": ctrDecl("IP=" + taken),
	})
	if fnd != "" || got["z@berth0"] != taken+"/16" || got["a@berth0"] == alone["a@berth0"] {
		t.Errorf("a alone %s; with z fixed at %s: %v, findings %s", alone["a@berth0"], taken, got, fnd)
	}
}

// TestAllocatePools: IPRange= bounds automatic addresses, not fixed ones;
// a full network is an error of the machine that did not fit, in name
// order; the gateway is never handed out.
func TestAllocatePools(t *testing.T) {
	net := "[Network]\nSubnet=192.168.50.0/24\nIPRange=192.168.50.64/30\nInterfaceName=br-pool\n"
	files := map[string]string{"pool.network": net, "fixed.container": ctrDecl("Network=pool.network", "IP=192.168.50.5")}
	for _, n := range []string{"m1", "m2", "m3", "m4", "m5"} {
		files[n+".container"] = ctrDecl("Network=pool.network")
	}
	got, fnd := addresses(t, files)
	if got["fixed@br-pool"] != "192.168.50.5/24" {
		t.Errorf("fixed = %s", got["fixed@br-pool"])
	}
	inRange := 0
	for k, v := range got {
		if a := netip.MustParsePrefix(v).Addr(); k != "fixed@br-pool" && netip.MustParsePrefix("192.168.50.64/30").Contains(a) {
			inRange++
		}
	}
	if inRange != 4 || !strings.Contains(fnd, "m5.container") || !strings.Contains(fnd, "no free address left in 192.168.50.64/30") {
		t.Errorf("addresses %v (%d in range), findings:\n%s", got, inRange, fnd)
	}
	_, fnd = addresses(t, map[string]string{"pool.network": net, "gw.container": ctrDecl("Network=pool.network", "IP=192.168.50.1")})
	if !strings.Contains(fnd, "192.168.50.1 is taken") {
		t.Errorf("the gateway was handed out: %s", fnd)
	}
}

// TestAutomaticSubnets: networks without Subnet= get distinct /24s that
// avoid the declared ones, the same every run.
func TestAutomaticSubnets(t *testing.T) {
	files := map[string]string{"fixed.network": "[Network]\nSubnet=10.86.0.0/17\n"}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		files[n+".network"] = "[Network]\n"
		files["c"+n+".container"] = ctrDecl("Network=" + n + ".network")
	}
	got, fnd := addresses(t, files)
	if fnd != "" || len(got) != 4 {
		t.Fatalf("%v %s", got, fnd)
	}
	subnets := map[netip.Prefix]bool{}
	for k, v := range got {
		p := netip.MustParsePrefix(v).Masked()
		if p.Bits() != 24 || !autoPool.Contains(p.Addr()) || netip.MustParsePrefix("10.86.0.0/17").Overlaps(p) || subnets[p] {
			t.Errorf("%s: subnet %s", k, p)
		}
		subnets[p] = true
	}
	again, _ := addresses(t, files)
	for k, v := range got {
		if again[k] != v {
			t.Errorf("%s: %s then %s", k, v, again[k])
		}
	}
}
