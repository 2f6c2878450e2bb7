package e2e

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// crashProject is a two-service project on the default network with a
// published port: a bridge, two network namespaces and veths, two machine
// trees, units and a socket for the port — everything a killed up or down
// could leave half-made.
const crashProject = `name: crash
services:
  web:
    image: ${REGISTRY}/e2e/web:1
    ports:
      - "127.0.0.1:8090:80"
  worker:
    image: ${REGISTRY}/e2e/web:1
    entrypoint: ["/bin/sh", "-c", "exec sleep 100000"]
    depends_on: [web]
`

// TestKilledComposeUpDown kills `berth compose up -d` and `berth compose
// down` with SIGKILL at random points, 20 times each, on a real systemd
// host. After every kill the same command run again must succeed and the
// state must be consistent (berth system check); after every completed
// down nothing of the project may be left: units, unit files, machines,
// trees, bridges, veths, network namespaces, mounts.
func TestKilledComposeUpDown(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	t.Logf("timing: boot test host: %v", since(begin))
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	pushWebImage(t, reg)
	h.WriteFile("/srv/crash/compose.yaml", []byte(crashProject), 0o644)
	compose := "cd /srv/crash && REGISTRY=" + reg.Addr + " berth compose "
	up := compose + "up -d --init-binary /usr/local/bin/berth-init --berth-binary /usr/local/bin/berth"
	down := compose + "down"
	page := "curl -fsS --max-time 5 http://127.0.0.1:8090/"

	// How long each takes here, to spread the kills over it.
	start := time.Now()
	h.MustSh(up)
	upTime := time.Since(start)
	h.Eventually("page served", 30*time.Second, page)
	start = time.Now()
	h.MustSh(down)
	downTime := time.Since(start)
	assertProjectGone(t, h, "crash")
	t.Logf("timing: up %v, down %v", upTime, downTime)

	rnd := rand.New(rand.NewPCG(3, 4))
	killAt := func(cmd string, within time.Duration) time.Duration {
		d := time.Duration(rnd.Int64N(int64(within)))
		// berth is killed, not the shell: exec makes them one process.
		h.MustSh(fmt.Sprintf("(%s) >/dev/null 2>&1 & pid=$!; sleep %.3f; kill -KILL $pid 2>/dev/null; wait $pid || true",
			strings.Replace(cmd, "berth compose", "exec berth compose", 1), d.Seconds()))
		return d
	}
	consistent := func(round int, what string) {
		t.Helper()
		if r, err := h.Sh(t.Context(), "berth system check --quick"); err != nil || r.ExitCode != 0 {
			t.Errorf("round %d, %s: berth system check: %v\n%s", round, what, err, r)
		}
	}
	for i := 0; i < 20; i++ {
		d := killAt(up, upTime)
		if r, err := h.Sh(t.Context(), up); err != nil || r.ExitCode != 0 {
			t.Fatalf("round %d: up after up was killed at %v failed: %v\n%s\n%s", i, d, err, r, h.JournalTail(40))
		}
		h.Eventually(fmt.Sprintf("round %d: page served after a killed up", i), 30*time.Second, page)
		consistent(i, "after up")
	}
	for i := 0; i < 20; i++ {
		d := killAt(down, downTime)
		if r, err := h.Sh(t.Context(), down); err != nil || r.ExitCode != 0 {
			t.Fatalf("round %d: down after down was killed at %v failed: %v\n%s\n%s", i, d, err, r, h.JournalTail(40))
		}
		assertProjectGone(t, h, "crash")
		consistent(i, "after down")
		if i < 19 {
			h.MustSh(up)
		}
	}
}

// assertProjectGone checks that nothing of project is left on the host.
func assertProjectGone(t *testing.T, h *testhost.Host, project string) {
	t.Helper()
	checks := []struct{ what, script string }{
		{"units", "systemctl list-units --all --plain --no-legend 'berth*' | grep -F -- '" + project + "' || true"},
		{"unit files", "find /etc/systemd/system /run/systemd/system /etc/systemd/nspawn -name '*" + project + "*' || true"},
		{"machines", "machinectl list --no-legend | grep -F -- '" + project + "-' || true"},
		{"trees", "ls -A /var/lib/machines | grep -F -- '" + project + "-' || true"},
		{"bridges, veths", "ip -o link show | grep -E ' (br|bv)-' || true"},
		{"netns", "ls /run/netns 2>/dev/null || true"},
		{"mounts", "grep -F -- '" + project + "' /proc/self/mountinfo || true"},
		{"project state", "ls -A /var/lib/berth/compose/" + project + " 2>/dev/null | grep -v '^volumes$' || true"},
	}
	for _, c := range checks {
		if got := strings.TrimSpace(h.MustSh(c.script)); got != "" {
			t.Errorf("project %s: %s left:\n%s", project, c.what, got)
		}
	}
}
