// Package e2e holds berth's end-to-end tests: scenarios run on a real
// systemd test host booted by package testhost. They skip unless
// BERTH_E2E=1; run them with scripts/e2e.sh.
package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// timed logs how long a step took, so CI logs show where e2e time goes.
func timed(t *testing.T, what string) func() {
	t.Helper()
	begin := time.Now()
	return func() {
		t.Helper()
		t.Logf("step %s: %v", what, time.Since(begin).Round(time.Millisecond))
	}
}

// bbNspawn runs the busybox machine as a plain service, not a booted OS:
// its shell is PID 1, so it traps the poweroff signal machinectl sends
// (SIGRTMIN+4, 38 on Linux) itself; a PID 1 ignores unhandled signals.
const bbNspawn = `[Exec]
Boot=no
Parameters=/bin/sh -c "trap 'echo berth-e2e-bye; exit 0' 38 TERM; echo berth-e2e-hello; while :; do sleep 1; done"
PrivateUsers=no

[Network]
Private=yes
VirtualEthernet=no
`

// TestHostRunsNestedMachineAndRegistry proves the harness: a booted
// systemd host with only loopback networking, a nested machine started and
// stopped through machinectl, and a registry inside the host that the test
// process pushes to.
func TestHostRunsNestedMachineAndRegistry(t *testing.T) {
	t.Parallel()
	done := timed(t, "boot")
	h := testhost.Boot(t, testhost.Options{})
	done()

	if got := strings.TrimSpace(h.MustRun("systemctl", "is-system-running")); got != "running" {
		t.Errorf("systemctl is-system-running = %q, want running", got)
	}
	// --private-network: the host must see no interface but its own lo.
	links := strings.Fields(h.MustSh("ip -o link show | cut -d: -f2"))
	if len(links) != 1 || links[0] != "lo" {
		t.Errorf("host network interfaces = %v, want only lo", links)
	}
	if got := strings.TrimSpace(h.MustRun("hostname")); got != h.Name() {
		t.Errorf("hostname = %q, want the machine name %q", got, h.Name())
	}

	t.Run("nested machine", func(t *testing.T) {
		h := h.For(t)
		done := timed(t, "copy busybox rootfs in")
		h.CopyIn(testhost.BusyboxTree(t), "/var/lib/machines/bb")
		h.WriteFile("/etc/systemd/nspawn/bb.nspawn", []byte(bbNspawn), 0o644)
		done()

		done = timed(t, "machinectl start bb")
		h.MustRun("machinectl", "start", "bb")
		h.Eventually("bb greets in its journal", 30*time.Second,
			"journalctl -q -o cat -u systemd-nspawn@bb.service | grep -qx berth-e2e-hello")
		done()
		if list := h.MustRun("machinectl", "list", "--no-legend"); !hasField(list, "bb") {
			t.Errorf("machinectl list does not show bb:\n%s", list)
		}
		if got := strings.TrimSpace(h.MustRun("systemctl", "is-active", "systemd-nspawn@bb.service")); got != "active" {
			t.Errorf("systemd-nspawn@bb.service is %q, want active", got)
		}
		// The nested machine runs in its own PID namespace below the
		// host's machine.slice, where machined put it.
		if cg := h.MustSh("cat /sys/fs/cgroup/machine.slice/systemd-nspawn@bb.service/payload/cgroup.procs | wc -l"); strings.TrimSpace(cg) == "0" {
			t.Errorf("no processes in the bb machine's payload cgroup")
		}

		done = timed(t, "machinectl stop bb")
		h.MustRun("machinectl", "stop", "bb")
		h.Eventually("systemd-nspawn@bb.service stops", 30*time.Second,
			"! systemctl is-active -q systemd-nspawn@bb.service")
		done()
		h.MustSh("journalctl -q -o cat -u systemd-nspawn@bb.service | grep -qx berth-e2e-bye")
		if list := h.MustRun("machinectl", "list", "--no-legend"); hasField(list, "bb") {
			t.Errorf("machinectl list still shows bb after stop:\n%s", list)
		}
	})

	t.Run("registry", func(t *testing.T) {
		h := h.For(t)
		done := timed(t, "start registry")
		reg := h.StartRegistry(5000)
		done()
		done = timed(t, "push busybox image from the test process")
		reg.PushImage("e2e/busybox:latest", testhost.BusyboxImage(t))
		done()
		// Seen from inside the host, with the host's own curl.
		catalog := h.MustRun("curl", "-fsS", "http://127.0.0.1:5000/v2/_catalog")
		if !strings.Contains(catalog, `"e2e/busybox"`) {
			t.Errorf("registry catalog = %s, want e2e/busybox in it", catalog)
		}
		h.MustRun("curl", "-fsS", "-o", "/dev/null",
			"-H", "Accept: application/vnd.oci.image.manifest.v1+json",
			"http://127.0.0.1:5000/v2/e2e/busybox/manifests/latest")

		// tools/mkimage, run on the outer machine in the host's network
		// namespace, pushes from an outer directory.
		done = timed(t, "mkimage push")
		digest := reg.Mkimage("image", "--layer", "dir:"+testhost.BusyboxTree(t),
			"--entrypoint", `["/bin/sh"]`, "--push", reg.Ref("e2e/mkimage:v1"))
		done()
		if !strings.HasPrefix(digest, "sha256:") {
			t.Errorf("mkimage printed %q, want a digest", digest)
		}
		h.MustRun("curl", "-fsS", "-o", "/dev/null",
			"-H", "Accept: application/vnd.oci.image.manifest.v1+json",
			"http://127.0.0.1:5000/v2/e2e/mkimage/manifests/"+digest)
	})

	t.Run("berth installed", func(t *testing.T) {
		h := h.For(t)
		done := timed(t, "build and install berth")
		h.InstallBerth()
		done()
		r, err := h.Run(t.Context(), "berth", "--help")
		if err != nil || r.ExitCode != 0 || !strings.Contains(r.Stdout, "berth") {
			t.Errorf("berth --help inside the host: %v\n%s", err, r)
		}
	})
}

// TestTwoHostsAndReboot runs two hosts at once, each with a registry on the
// same port (their networks are separate), and reboots one of them: its
// enabled registry must come back by itself with its images, while the
// other host keeps running undisturbed.
func TestTwoHostsAndReboot(t *testing.T) {
	t.Parallel()
	a := testhost.Boot(t, testhost.Options{})
	b := testhost.Boot(t, testhost.Options{MachinesMount: true})
	if a.Name() == b.Name() {
		t.Fatalf("two hosts share the name %s", a.Name())
	}
	if ida, idb := a.MustRun("cat", "/etc/machine-id"), b.MustRun("cat", "/etc/machine-id"); ida == idb {
		t.Errorf("both hosts have machine ID %s", ida)
	}
	// Only b has /var/lib/machines on a mount of its own.
	if r, _ := a.Run(t.Context(), "mountpoint", "-q", "/var/lib/machines"); r.ExitCode == 0 {
		t.Errorf("host a: /var/lib/machines is a mount point without MachinesMount")
	}
	b.MustRun("mountpoint", "-q", "/var/lib/machines")
	regA := a.StartRegistry(5000)
	regB := b.StartRegistry(5000)
	regA.PushImage("only/a:v1", testhost.BusyboxImage(t))
	if out := b.MustRun("curl", "-fsS", "http://127.0.0.1:5000/v2/_catalog"); strings.Contains(out, "only/a") {
		t.Errorf("host b's registry shows host a's image: %s", out)
	}
	regB.PushImage("only/b:v1", testhost.BusyboxImage(t))

	// A file written before the reboot must survive it: the host's disk
	// is its overlay, kept across boots.
	a.WriteFile("/var/lib/berth-e2e-marker", []byte("before reboot\n"), 0o644)
	bootsBefore := strings.TrimSpace(a.MustSh("journalctl --list-boots -q | wc -l"))
	done := timed(t, "reboot host a")
	a.Reboot()
	done()
	if got := strings.TrimSpace(a.MustSh("journalctl --list-boots -q | wc -l")); got == bootsBefore {
		t.Errorf("journal shows %s boots before and after reboot, want one more", got)
	}
	if got := string(a.ReadFile("/var/lib/berth-e2e-marker")); got != "before reboot\n" {
		t.Errorf("marker after reboot = %q", got)
	}
	a.Eventually("registry is back after reboot", time.Minute,
		"curl -fsS http://127.0.0.1:5000/v2/_catalog | grep -q only/a")
	if got := strings.TrimSpace(b.MustRun("systemctl", "is-active", regB.Unit)); got != "active" {
		t.Errorf("host b's registry is %q after host a rebooted, want active", got)
	}
}

// hasField reports whether some line of out starts with the field f.
func hasField(out, f string) bool {
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Fields(line); len(fields) > 0 && fields[0] == f {
			return true
		}
	}
	return false
}
