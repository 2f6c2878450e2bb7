package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-sh/berth/e2e/testhost"
)

// webPage is what the generator scenarios' web image serves.
const webPage = "hello from a generated unit\n"

// TestGenerator runs berth-generator as systemd runs it, on a booted test
// host: declarations dropped into /etc/berth/systemd become units on
// daemon-reload, start (pulling their image then), serve a published port
// on the host's 127.0.0.1, survive a reboot, and a broken declaration
// costs only itself.
func TestGenerator(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	t.Logf("timing: boot test host: %v", since(begin))

	begin = time.Now()
	h.InstallBerth()
	// Where systemd looks for generators, and the init path units use.
	h.MustSh("mkdir -p /etc/systemd/system-generators /usr/local/lib/berth /etc/berth/systemd" +
		" && ln -sf /usr/local/bin/berth-generator /etc/systemd/system-generators/berth-generator" +
		" && ln -sf /usr/local/bin/berth-init /usr/local/lib/berth/berth-init")
	reg := h.StartRegistry(5000)
	pushWebImage(t, reg)
	t.Logf("timing: install berth and the generator, start registry, push: %v", since(begin))

	scenario(t, h, "container serves its published port", func(t *testing.T, h *testhost.Host) { testGeneratedContainer(t, h, reg) })
	scenario(t, h, "broken declaration beside good ones", func(t *testing.T, h *testhost.Host) { testBrokenDeclaration(t, h, reg) })
	scenario(t, h, "removed declaration", testRemovedDeclaration)
	scenario(t, h, "compose project", func(t *testing.T, h *testhost.Host) { testGeneratedCompose(t, h, reg) })
	scenario(t, h, "OCI layout with three names", func(t *testing.T, h *testhost.Host) { testGeneratedLayout(t, h, reg) })
	scenario(t, h, "back after reboot", testGeneratedReboot)
}

// pushWebImage pushes busybox with a page and httpd as its command.
func pushWebImage(t *testing.T, reg *testhost.Registry) {
	t.Helper()
	img, err := mutate.AppendLayers(testhost.BusyboxImage(t), tarLayer(t,
		tarFile{name: "www/", mode: 0o755}, tarFile{name: "www/index.html", mode: 0o644, data: []byte(webPage)}))
	if err != nil {
		t.Fatal(err)
	}
	reg.PushImage("e2e/web:1", withConfig(t, img, func(c *v1.Config) {
		c.Entrypoint = []string{"/bin/httpd", "-f", "-v", "-h", "/www"}
		c.Cmd = []string{"-p", "80"}
	}))
}

func webDeclaration(reg *testhost.Registry, port string) string {
	return `# The e2e web server.
[Unit]
Description=e2e web server

[Container]
Image=` + reg.Ref("e2e/web:1") + `
PublishPort=127.0.0.1:` + port + `:80
Environment=GREETING="hello world"

[Install]
WantedBy=multi-user.target
`
}

func testGeneratedContainer(t *testing.T, h *testhost.Host, reg *testhost.Registry) {
	h.WriteFile("/etc/berth/systemd/web.container", []byte(webDeclaration(reg, "8081")), 0o644)
	h.MustRun("systemctl", "daemon-reload")
	if got := h.MustSh("systemctl show -p LoadState --value web.service"); strings.TrimSpace(got) != "loaded" {
		t.Fatalf("web.service LoadState = %q after daemon-reload, want loaded\n%s", got, h.JournalTail(40))
	}
	// The generator wrote only into its output directory.
	if src := h.MustSh("systemctl show -p FragmentPath --value web.service"); !strings.HasPrefix(strings.TrimSpace(src), "/run/systemd/generator") {
		t.Errorf("web.service comes from %q, want the generator's directory", src)
	}
	begin := time.Now()
	h.MustRun("systemctl", "start", "web.service")
	h.Eventually("the page answers on 127.0.0.1:8081", 60*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8081/ | grep -qx '"+strings.TrimSpace(webPage)+"'")
	t.Logf("timing: start web.service (pull at start) until the page answers: %v", since(begin))
	h.MustRun("systemctl", "stop", "web.service")
}

func testBrokenDeclaration(t *testing.T, h *testhost.Host, reg *testhost.Registry) {
	h.WriteFile("/etc/berth/systemd/bad.container", []byte("[Container]\nImage="+reg.Ref("e2e/web:1")+"\nBogusKey=1\n"), 0o644)
	h.WriteFile("/etc/berth/systemd/good.container", []byte(webDeclaration(reg, "8082")), 0o644)
	cursor := strings.TrimSpace(h.MustSh("journalctl -q -n 0 --show-cursor | sed -n 's/^-- cursor: //p'"))
	h.MustRun("systemctl", "daemon-reload")
	h.MustRun("systemctl", "start", "good.service")
	h.Eventually("the good one answers", 60*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8082/ >/dev/null")
	if got := h.MustSh("systemctl show -p LoadState --value bad.service"); strings.TrimSpace(got) != "not-found" {
		t.Errorf("bad.service LoadState = %q, want not-found", got)
	}
	h.Eventually("the journal names file, line and key", 10*time.Second,
		"journalctl -q --after-cursor='"+cursor+"' | grep -F '/etc/berth/systemd/bad.container:3: error: [Container] BogusKey'")
	h.MustRun("systemctl", "stop", "good.service")
}

func testRemovedDeclaration(t *testing.T, h *testhost.Host) {
	h.MustSh("rm /etc/berth/systemd/good.container /etc/berth/systemd/bad.container")
	h.MustRun("systemctl", "daemon-reload")
	if got := h.MustSh("systemctl show -p LoadState --value good.service"); strings.TrimSpace(got) != "not-found" {
		t.Errorf("good.service LoadState = %q after removing its declaration, want not-found", got)
	}
	if left := h.MustSh("ls /run/systemd/generator | grep -c '^good' || true"); strings.TrimSpace(left) != "0" {
		t.Errorf("the generator still wrote files for good: %s", left)
	}
}

// testGeneratedCompose: a NAME.compose declaration brings its project up
// through the wrapper unit.
func testGeneratedCompose(t *testing.T, h *testhost.Host, reg *testhost.Registry) {
	h.WriteFile("/srv/app/compose.yaml", []byte(`services:
  web:
    image: `+reg.Ref("e2e/web:1")+`
    ports: ["127.0.0.1:8083:80"]
`), 0o644)
	h.WriteFile("/etc/berth/systemd/app.compose", []byte("[Compose]\nFile=/srv/app/compose.yaml\nProjectName=app\n"), 0o644)
	h.MustRun("systemctl", "daemon-reload")
	begin := time.Now()
	h.MustRun("systemctl", "start", "berth-compose-app.service")
	h.Eventually("the project's page answers on 127.0.0.1:8083", 90*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8083/ >/dev/null")
	t.Logf("timing: berth-compose-app.service up until the page answers: %v", since(begin))
}

// testGeneratedLayout: one unit per image name of an OCI layout, named so
// that systemd-escape gives layout and name back; one of them runs.
func testGeneratedLayout(t *testing.T, h *testhost.Host, reg *testhost.Registry) {
	dir := t.TempDir() + "/apps"
	names := []string{"org.example.app:1.0", "app", "registry.example/ns/app:2"}
	for _, n := range names {
		reg.For(t).Mkimage("image", "--layer", "dir:"+testhost.BusyboxTree(t),
			"--entrypoint", `["/bin/sh","-c","echo layout image running; sleep 600"]`, "--layout", dir, "--tag", n)
	}
	h.CopyIn(dir, "/var/lib/berth/layouts/apps")
	h.MustRun("systemctl", "daemon-reload")
	units := strings.Fields(h.MustSh("systemctl list-unit-files --no-legend --plain 'berth-oci@*' | cut -d' ' -f1"))
	var got []string
	for _, u := range units {
		got = append(got, strings.TrimSpace(h.MustRun("systemd-escape", "-u", "--instance", u)))
	}
	want := []string{"apps/app", "apps/org.example.app:1.0", "apps/registry.example/ns/app:2"}
	if strings.Join(sorted(got), " ") != strings.Join(want, " ") {
		t.Fatalf("layout units %v unescape to %v, want %v", units, got, want)
	}
	for _, u := range units {
		if strings.HasSuffix(strings.TrimSpace(h.MustRun("systemd-escape", "-u", "--instance", u)), "/org.example.app:1.0") {
			h.MustRun("systemctl", "start", u)
			h.Eventually(u+" runs its image", 60*time.Second, "journalctl -q -o cat -u '"+u+"' | grep -qx 'layout image running'")
			h.MustRun("systemctl", "stop", u)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}

// testGeneratedReboot: what says WantedBy=multi-user.target (web.container,
// and app.compose by default) comes back by itself after a reboot.
func testGeneratedReboot(t *testing.T, h *testhost.Host) {
	h.Reboot()
	h.Eventually("web answers after the reboot", 120*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8081/ >/dev/null")
	h.Eventually("the compose project answers after the reboot", 120*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8083/ >/dev/null")
	for _, u := range []string{"web.service", "berth-compose-app.service"} {
		if got := strings.TrimSpace(h.MustSh("systemctl is-active " + u + " || true")); got != "active" {
			t.Errorf("%s after reboot: %s", u, got)
		}
	}
}
