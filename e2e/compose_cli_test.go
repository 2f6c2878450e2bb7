package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// cliProject is a two-service busybox project: db stands in for a
// dependency, job exits with the code it is given.
const cliProject = `name: cli
services:
  db:
    image: ${REGISTRY}/e2e/busybox:1
    entrypoint: ["/bin/sh", "-c"]
    command: ["echo db up; exec sleep 1000000"]
    volumes: [data:/data]
  job:
    image: ${REGISTRY}/e2e/busybox:1
    entrypoint: ["/bin/sh", "-c"]
    command: ["echo job ran; exit 3"]
    depends_on: [db]
volumes:
  data: {}
`

// TestComposeCLI checks the docker compose verbs and flags of issue #14
// that need a real systemd: run's exit code and dependencies, up --wait,
// wait, kill, cp into and out of a volume, logs --since.
func TestComposeCLI(t *testing.T) {
	t.Parallel()
	if !testhost.Enabled() {
		t.Skip("end-to-end test: set BERTH_E2E=1 or run scripts/e2e.sh")
	}
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	reg.PushImage("e2e/busybox:1", testhost.BusyboxImage(t))
	h.WriteFile("/srv/cli/compose.yaml", []byte(cliProject), 0o644)
	compose := "cd /srv/cli && REGISTRY=" + reg.Addr + " berth compose "
	bins := " --init-binary /usr/local/bin/berth-init --berth-binary /usr/local/bin/berth"

	// create installs without starting; up --wait starts db and returns.
	h.MustSh(compose + "create" + bins)
	if got := h.MustSh(compose + "ps -q"); strings.TrimSpace(got) != "" {
		t.Errorf("after create, running machines: %q", got)
	}
	h.MustSh(compose + "up --wait --wait-timeout 120" + bins + " db")
	if got := h.MustSh(compose + "ls --format json"); !strings.Contains(got, `"Name": "cli"`) || !strings.Contains(got, "running(1)") {
		t.Errorf("ls: %s", got)
	}

	// run: the one-off's exit code is berth's; -e, -w and --entrypoint
	// apply; the dependency is up.
	r, _ := h.Sh(t.Context(), compose+"run --rm -T job")
	if r.ExitCode != 3 || !strings.Contains(r.Stdout, "job ran") {
		t.Errorf("run job: exit %d (want 3)\n%s", r.ExitCode, r)
	}
	r, _ = h.Sh(t.Context(), compose+`run -T -e GREETING=hi -w /tmp --entrypoint "/bin/sh -c" job 'echo $GREETING $(pwd); exit 0'`)
	if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "hi /tmp" {
		t.Errorf("run with -e -w --entrypoint: exit %d\n%s", r.ExitCode, r)
	}
	r, _ = h.Sh(t.Context(), compose+"run --rm -T --entrypoint /no/such job")
	if r.ExitCode != 127 {
		t.Errorf("run of a missing program: exit %d, want 127\n%s", r.ExitCode, r)
	}
	if left := h.MustSh("machinectl list --no-legend | grep -c run- || true"); strings.TrimSpace(left) != "0" {
		t.Errorf("one-off machines left: %s", left)
	}

	// cp into the db's volume and back out.
	h.MustSh("echo payload > /tmp/in.txt")
	h.MustSh(compose + "cp /tmp/in.txt db:/data/in.txt")
	if got := h.MustSh(compose + "exec -T db cat /data/in.txt"); strings.TrimSpace(got) != "payload" {
		t.Errorf("cp into the volume: db sees %q", got)
	}
	h.MustSh(compose + "cp db:/data/in.txt /tmp/out.txt")
	if got := strings.TrimSpace(string(h.ReadFile("/tmp/out.txt"))); got != "payload" {
		t.Errorf("cp out: %q", got)
	}
	if r, _ := h.Sh(t.Context(), compose+"cp /tmp/in.txt db:/../../../../etc/escaped"); r.ExitCode != 0 {
		t.Logf("cp with .. : exit %d %s", r.ExitCode, r.Stderr)
	}
	if r, _ := h.Run(t.Context(), "test", "-e", "/etc/escaped"); r.ExitCode == 0 {
		t.Error("cp wrote outside the machine")
	}

	// logs --since: a time after db's start shows nothing, 10m shows it.
	if got := h.MustSh(compose + "logs --since 10m db"); !strings.Contains(got, "db up") {
		t.Errorf("logs --since 10m: %q", got)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := h.MustSh(compose + "logs --since " + future + " db"); strings.Contains(got, "db up") {
		t.Errorf("logs --since the future: %q", got)
	}

	// kill ends db; wait returns its exit code (SIGKILL: 137).
	h.MustSh(compose + "kill -s KILL db")
	r, _ = h.Sh(t.Context(), "timeout 60 sh -c '"+strings.ReplaceAll(compose, "'", "")+"wait db'")
	if r.ExitCode == 0 || r.ExitCode == 124 || r.ExitCode == 125 {
		t.Errorf("wait after kill: exit %d\n%s", r.ExitCode, r)
	}
	h.MustSh(compose + "down -v -t 5")
}
