package e2e

import (
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

func testGeneratedReboot(t *testing.T, h *testhost.Host) {
	// web.container says WantedBy=multi-user.target: it starts at boot.
	h.Reboot()
	h.Eventually("web answers after the reboot", 90*time.Second, "curl -fsS --max-time 5 http://127.0.0.1:8081/ >/dev/null")
	if got := strings.TrimSpace(h.MustRun("systemctl", "is-active", "web.service")); got != "active" {
		t.Errorf("web.service after reboot: %s", got)
	}
}
