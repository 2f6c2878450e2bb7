package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/e2e/testhost"
)

// installProject is the small compose project the install tests bring up:
// a web server publishing a port and an app that writes a page into a
// named volume the web server serves.
func installProject(reg *testhost.Registry, port string) string {
	return `services:
  web:
    image: ` + reg.Ref("e2e/web:1") + `
    ports: ["127.0.0.1:` + port + `:80"]
    volumes: ["shared:/www/shared"]
  app:
    image: ` + reg.Ref("e2e/web:1") + `
    entrypoint: ["/bin/sh", "-c", "echo written by app > /out/note.txt && exec sleep 100000"]
    volumes: ["shared:/out"]
volumes:
  shared: {}
`
}

// composeUpCurlDown brings installProject up with the berth on the host's
// PATH, reads both pages through the published port, and takes it down.
func composeUpCurlDown(t *testing.T, h *testhost.Host, reg *testhost.Registry, port string) {
	t.Helper()
	h.WriteFile("/srv/site/compose.yaml", []byte(installProject(reg, port)), 0o644)
	begin := time.Now()
	h.MustSh("cd /srv/site && berth compose up -d")
	url := "http://127.0.0.1:" + port
	h.Eventually("the web page answers on "+url, 60*time.Second, "curl -fsS --max-time 5 "+url+"/ | grep -qx '"+strings.TrimSpace(webPage)+"'")
	h.Eventually("the app's page is served from the shared volume", 60*time.Second, "curl -fsS --max-time 5 "+url+"/shared/note.txt | grep -qx 'written by app'")
	t.Logf("timing: compose up until both pages answer: %v", since(begin))
	if ps := h.MustSh("cd /srv/site && berth compose ps"); !strings.Contains(ps, "web") || !strings.Contains(ps, "app") {
		t.Errorf("compose ps:\n%s", ps)
	}
	h.MustSh("cd /srv/site && berth compose down")
	if r, _ := h.Sh(t.Context(), "curl -fsS --max-time 2 "+url+"/"); r.ExitCode == 0 {
		t.Errorf("%s still answers after down", url)
	}
	if left := h.MustSh("machinectl list --no-legend | grep -c site || true"); strings.TrimSpace(left) != "0" {
		t.Errorf("machines left after down: %s", left)
	}
}

// TestInstallDeb installs the .deb scripts/deb.sh builds with dpkg -i on a
// fresh systemd host: berth, berth-init and the generator land under /usr,
// postinst reloads systemd, a compose project runs with what the package
// installed (units run /usr/bin/berth, machines bind /usr/lib/berth/berth-init),
// and dpkg -r takes it all away.
func TestInstallDeb(t *testing.T) {
	t.Parallel()
	testhost.RequireTools(t, "dpkg-deb")
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})

	begin := time.Now()
	root, err := testhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "deb.sh"), "--out", out)
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("deb.sh: %v\n%s", err, errOutput(err))
	}
	deb := strings.TrimSpace(string(b))
	t.Logf("timing: build %s: %v", filepath.Base(deb), since(begin))

	h.CopyIn(deb, "/tmp/berth.deb")
	reloads := func() string {
		return strings.TrimSpace(h.MustSh("journalctl -q -b -o cat -u init.scope | grep -c '^Reloading' || true"))
	}
	before := reloads()
	h.MustRun("dpkg", "-i", "/tmp/berth.deb")
	if after := reloads(); after == before {
		t.Errorf("postinst did not reload systemd (Reloading lines %s before, %s after)", before, after)
	}
	for _, p := range []string{"/usr/bin/berth", "/usr/lib/berth/berth-init", "/usr/lib/systemd/system-generators/berth-generator",
		"/usr/share/bash-completion/completions/berth", "/usr/share/man/man1/berth.1.gz"} {
		h.MustRun("test", "-f", p)
	}
	h.MustSh("! test -e /usr/local/bin/berth && ! test -e /usr/local/lib/berth")
	if got := h.MustRun("berth", "version"); !strings.HasPrefix(got, "berth ") {
		t.Errorf("berth version: %q", got)
	}

	reg := h.StartRegistry(5000)
	pushWebImage(t, reg)
	composeUpCurlDown(t, h, reg, "8091")
	// What the compose units ran was the package's.
	if j := h.MustSh("journalctl -q -b -o cat | grep -c 'usr/local/lib/berth' || true"); strings.TrimSpace(j) != "0" {
		t.Errorf("the journal names /usr/local/lib/berth %s times", j)
	}

	// The generator the package installed runs on daemon-reload.
	h.WriteFile("/etc/berth/systemd/gen.container", []byte(webDeclaration(reg, "8092")), 0o644)
	h.MustRun("systemctl", "daemon-reload")
	unit := h.MustRun("systemctl", "cat", "gen.service")
	if !strings.Contains(unit, `"--bind-ro=/usr/lib/berth/berth-init:/.berth/init"`) || !strings.Contains(unit, `"/usr/bin/berth" "pull"`) {
		t.Errorf("the generated unit does not run the package's berth and berth-init:\n%s", unit)
	}
	h.MustRun("systemctl", "start", "gen.service")
	h.Eventually("the generated machine answers on 8092", 60*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8092/ >/dev/null")
	h.MustRun("systemctl", "stop", "gen.service")
	h.MustRun("rm", "/etc/berth/systemd/gen.container")

	h.MustRun("dpkg", "-r", "berth")
	h.MustSh("! test -e /usr/bin/berth && ! test -e /usr/lib/berth && ! test -e /usr/lib/systemd/system-generators/berth-generator")
}

// TestGoInstalledBerthAlone: only the berth binary, as `go install` gives
// it, copied to /usr/local/bin; no berth-init anywhere. berth is then its
// own machines' init: `berth run` and a compose project work.
func TestGoInstalledBerthAlone(t *testing.T) {
	t.Parallel()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	begin := time.Now()
	h.InstallGo("./cmd/berth")
	h.MustSh("! test -e /usr/local/bin/berth-init && ! test -e /usr/local/lib/berth && ! test -e /usr/lib/berth")
	reg := h.StartRegistry(5000)
	pushWebImage(t, reg)
	// busybox with no entrypoint: `berth run IMAGE COMMAND` runs COMMAND.
	reg.PushImage("e2e/plain:1", withConfig(t, testhost.BusyboxImage(t), func(c *v1.Config) {
		c.Entrypoint, c.Cmd = nil, []string{"sh"}
	}))
	t.Logf("timing: install berth alone, start registry, push: %v", since(begin))

	h.MustRun("berth", "pull", "-q", "--name", "plain", reg.Ref("e2e/plain:1"))
	r, err := h.Run(t.Context(), "berth", "run", "--rm", "plain", "echo", "ok")
	if err != nil || r.ExitCode != 0 || r.Stdout != "ok\n" {
		t.Fatalf("berth run --rm web echo ok: exit %d, err %v, stdout %q, stderr %q", r.ExitCode, err, r.Stdout, r.Stderr)
	}
	if r.Stderr != "" {
		t.Errorf("berth run wrote to stderr: %q", r.Stderr)
	}
	// The exit status of the command passes through berth as init.
	if r, _ := h.Run(t.Context(), "berth", "run", "--rm", "plain", "sh", "-c", "exit 3"); r.ExitCode != 3 {
		t.Errorf("exit 3 in the machine: berth run exited %d (stderr %q)", r.ExitCode, r.Stderr)
	}

	composeUpCurlDown(t, h, reg, "8093")
	if j := h.MustSh("journalctl -q -b -o cat | grep -c 'Failed to stat' || true"); strings.TrimSpace(j) != "0" {
		t.Errorf("the journal has %s 'Failed to stat' lines:\n%s", j, h.JournalTail(40))
	}
}

func errOutput(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
