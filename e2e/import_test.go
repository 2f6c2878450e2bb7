package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// TestImportBootsDebian imports a full Debian root filesystem tarball (the
// test host's own tree, wrapped in one top-level directory) from a URL,
// verified by the SHA256SUMS beside it, and boots it as a machine with
// systemd as its PID 1 (berth create --boot); its systemd reports the
// system running. A tarball that does not match its SHA256SUMS installs
// nothing.
func TestImportBootsDebian(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	t.Logf("timing: boot test host: %v", since(begin))
	h.InstallBerth()

	begin = time.Now()
	// The host's own tree is a Debian system with systemd and dbus; berth
	// and what the test added stay out, and so does the machine id (a
	// root filesystem tarball has none: systemd makes one at first boot).
	h.MustSh("mkdir -p /srv/www && tar --one-file-system -C / --exclude=./srv --exclude=./var/lib/machines --exclude=./var/lib/berth" +
		" --exclude=./usr/local/bin --exclude=./var/log/journal --exclude=./etc/machine-id --transform 's,^\\.,debian-rootfs,' -cf - . | gzip -1 > /srv/www/debian-rootfs.tar.gz" +
		" && cd /srv/www && sha256sum debian-rootfs.tar.gz > SHA256SUMS && cp debian-rootfs.tar.gz tampered.tar.gz" +
		" && printf 'x' | dd of=tampered.tar.gz bs=1 seek=100000 conv=notrunc 2>/dev/null && sha256sum debian-rootfs.tar.gz | sed 's/debian-rootfs/tampered/' >> SHA256SUMS" +
		" && busybox httpd -p 127.0.0.1:8000 -h /srv/www")
	t.Logf("timing: tar and serve the root filesystem (%s): %v", strings.TrimSpace(h.MustSh("du -h /srv/www/debian-rootfs.tar.gz | cut -f1")), since(begin))

	begin = time.Now()
	r, err := h.Sh(t.Context(), "berth import http://127.0.0.1:8000/debian-rootfs.tar.gz")
	if err != nil || r.ExitCode != 0 {
		t.Fatalf("import: %v\n%s", err, r)
	}
	t.Logf("timing: import: %v\n%s", since(begin), r.Stderr)
	if !strings.Contains(r.Stderr, "debian-rootfs") {
		t.Errorf("import does not name the machine: %s", r.Stderr)
	}
	if got := h.MustSh("berth images --format json"); !strings.Contains(got, `"name": "debian-rootfs"`) {
		t.Errorf("images lacks the import:\n%s", got)
	}

	t.Run("tampered tarball installs nothing", func(t *testing.T) {
		h := h.For(t)
		r, err := h.Sh(t.Context(), "berth import --name tampered http://127.0.0.1:8000/tampered.tar.gz")
		if err != nil || r.ExitCode == 0 || !strings.Contains(strings.ToLower(r.Stderr), "sha256") {
			t.Errorf("import of a tampered tarball: %v\n%s", err, r)
		}
		if got := h.MustSh("ls -A /var/lib/machines; berth images -q 2>/dev/null || berth images"); strings.Contains(got, "tampered") {
			t.Errorf("the tampered import left something:\n%s", got)
		}
	})

	t.Run("boots with systemd as PID 1", func(t *testing.T) {
		h := h.For(t)
		begin := time.Now()
		h.MustSh("berth create --boot deb1 debian-rootfs && berth start deb1")
		h.Eventually("machine deb1 registered", 60*time.Second, "machinectl show deb1 -p State --value | grep -q running")
		// Until the machine's D-Bus is up, systemctl -M cannot reach it;
		// then is-system-running --wait returns once boot is done:
		// running, or degraded if a unit failed (the test names them).
		h.Eventually("deb1's systemd answers", 120*time.Second, "systemctl -M deb1 show -p Version >/dev/null 2>&1")
		r, err := h.Sh(t.Context(), "timeout 120 systemctl -M deb1 is-system-running --wait")
		state := strings.TrimSpace(r.Stdout)
		if err != nil || state != "running" {
			failed, _ := h.Sh(t.Context(), "systemctl -M deb1 --failed --no-legend --plain")
			t.Errorf("systemd in deb1 reports %q (%v), want running; failed units:\n%s", state, err, failed.Stdout)
		}
		t.Logf("timing: create, start and boot deb1 until %s: %v", state, since(begin))
		if got := h.MustSh("cat /proc/$(machinectl show deb1 -p Leader --value)/comm"); strings.TrimSpace(got) != "systemd" {
			t.Errorf("deb1's PID 1 is not systemd: %s", got)
		}
		h.MustSh("berth stop deb1 && berth rm deb1 && berth rmi debian-rootfs")
	})
}
