package hostnet

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

const sandboxEnv = "BERTH_HOSTNET_SANDBOX"

// TestSandbox runs the real helpers (ip, nft, sysctl) and systemd-nspawn
// inside a private network and mount namespace, so this host's own network
// is never touched: a bridge, two machine namespaces on it, and a busybox
// machine joining one of them with --network-namespace-path that pings the
// other by address. It re-executes the test binary under unshare.
func TestSandbox(t *testing.T) {
	if os.Getenv(sandboxEnv) == "1" {
		sandbox(t)
		return
	}
	need := []string{"unshare", "ip", "nft", "sysctl", "systemd-nspawn", "busybox"}
	for _, tool := range need {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is required: %v", tool, err)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cmd := exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		os.Args[0], "-test.run=^TestSandbox$", "-test.v")
	cmd.Env = append(os.Environ(), sandboxEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: TestSandbox")) {
		t.Fatalf("sandbox run failed: %v\n%s", err, out)
	}
}

func sandbox(t *testing.T) {
	ctx := context.Background()
	if err := os.MkdirAll("/run/netns", 0o755); err != nil {
		t.Fatal(err)
	}
	// A private /run/netns: the namespaces made here vanish with the
	// sandbox instead of showing up on the host.
	if err := syscall.Mount("tmpfs", "/run/netns", "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	r := command.ExecRunner{}
	if err := command.Run(ctx, r, "ip", "link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	if err := BridgeUp(ctx, r, Bridge{Name: "br-sandbox", Address: netip.MustParsePrefix("172.31.9.1/24")}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []struct{ ns, host, addr string }{
		{"berth-a", "bv-a", "172.31.9.2/24"},
		{"berth-b", "bv-b", "172.31.9.3/24"},
	} {
		err := NamespaceUp(ctx, r, Namespace{
			Name:    n.ns,
			Links:   []Link{{Host: n.host, Bridge: "br-sandbox", Guest: "eth0", Address: netip.MustParsePrefix(n.addr), Gateway: netip.MustParseAddr("172.31.9.1")}},
			Sysctls: []Sysctl{{Key: "net.ipv4.ip_unprivileged_port_start", Value: "80"}}, // overrides the default 0
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "usr", "etc", "proc", "sys", "dev", "tmp", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `/bin/busybox ip -4 addr show eth0 | /bin/busybox grep -o 'inet [0-9./]*'
/bin/busybox cat /proc/sys/net/ipv4/ip_unprivileged_port_start
/bin/busybox ping -c1 -W5 172.31.9.3 >/dev/null && echo reached-b`
	out, err := exec.Command("systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "-D", root,
		"--network-namespace-path=/run/netns/berth-a", "/bin/busybox", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("nspawn: %v\n%s", err, out)
	}
	lines := strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n")
	if len(lines) < 3 || lines[0] != "inet 172.31.9.2/24" || lines[1] != "80" || lines[2] != "reached-b" {
		t.Errorf("machine output: want its address, the sysctl set in its namespace and a reply from b; got:\n%s", out)
	}
	for _, n := range []struct{ ns, host string }{{"berth-a", "bv-a"}, {"berth-b", "bv-b"}} {
		if err := NamespaceDown(ctx, r, Namespace{Name: n.ns, Links: []Link{{Host: n.host}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := BridgeDown(ctx, r, "br-sandbox"); err != nil {
		t.Fatal(err)
	}
	links, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(links), "br-sandbox") || strings.Contains(string(links), "bv-") {
		t.Errorf("links left behind:\n%s", links)
	}
}
