package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/e2e/testhost"
)

// svcScript is the command of the service image: it greets, then waits
// for a signal and logs which one came, so a test can tell the image's
// StopSignal from nspawn's or systemd's defaults. "sleep & wait" lets the
// trap run at once instead of after a sleep ends. Its newlines cannot be
// written in a .nspawn file, so it also proves the way around that
// (berth-init --argv-json).
const svcScript = `for s in HUP INT QUIT USR1 USR2 TERM; do trap "echo got SIG$s; exit 0" $s; done
echo "hello from $(hostname) as $(id -u)"
sleep 100000 & wait`

// crashScript crashes on its first two starts and then stays up; the count
// lives in the machine's own root filesystem, which survives restarts.
const crashScript = `n=$(cat /starts 2>/dev/null || echo 0); n=$((n+1)); echo $n > /starts
echo "start $n"
if [ $n -lt 3 ]; then echo "crash $n"; exit 7; fi
echo steady
sleep 100000 & wait`

// machineImages are pushed to the test host's registry by TestMachines.
type machineImages struct {
	busybox, svc, distroless string // references in the host's registry
}

// TestMachines proves issue 3's checks on one real systemd test host,
// shared by the scenarios (a boot is quick, but each host also needs berth,
// a registry and the images): images pulled from a registry inside the
// host, `berth run` output and exit code, a distroless image with a numeric
// user, the service lifecycle (create, start, machinectl, logs, exec, stop
// with the image's StopSignal, volumes, rm without leftovers), the stop
// timeout, restart policies, the user namespace, and values that need
// escaping in every file berth writes. Each scenario uses machines of its
// own names and removes them, so one failing leaves the others meaningful.
func TestMachines(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	h := testhost.Boot(t, testhost.Options{})
	t.Logf("timing: boot test host: %v", since(begin))

	begin = time.Now()
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	imgs := pushMachineImages(t, reg)
	for name, ref := range map[string]string{"bb": imgs.busybox, "svc": imgs.svc, "distroless": imgs.distroless} {
		h.MustRun("berth", "pull", "-q", "--name", name, ref)
	}
	t.Logf("timing: install berth, start registry, push and pull 3 images: %v", since(begin))

	scenario(t, h, "pull inflates with igzip", func(t *testing.T, h *testhost.Host) { testPullInflater(t, h, imgs.svc) })
	scenario(t, h, "run", testRun)
	scenario(t, h, "distroless", testDistroless)
	scenario(t, h, "service lifecycle", testServiceLifecycle)
	scenario(t, h, "stop timeout", testStopTimeout)
	scenario(t, h, "restart policy", testRestartPolicy)
	scenario(t, h, "user namespace", testUserNamespace)
	scenario(t, h, "hostile values", func(t *testing.T, h *testhost.Host) { testHostileValues(t, h, reg) })
	scenario(t, h, "unit escaping", testUnitEscaping)
}

// testPullInflater: on a host with isal installed, berth pull finds igzip in
// PATH and inflates gzip layers with it, as nobody; BERTH_GUNZIP=builtin
// inflates in-process; both trees are the same. A wrapper early in PATH
// logs each call.
func testPullInflater(t *testing.T, h *testhost.Host, ref string) {
	const wrap = "/usr/local/lib/berth-e2e-wrap"
	h.MustSh("mkdir -p " + wrap + " && printf '%s\\n' '#!/bin/sh' 'echo \"$(id -u) $*\" >> " + wrap + "/log' 'exec /usr/bin/igzip \"$@\"' > " + wrap + "/igzip" +
		" && chmod 755 " + wrap + "/igzip && : > " + wrap + "/log && chmod 666 " + wrap + "/log")
	defer h.MustSh("rm -rf " + wrap)
	layers := h.MustSh("cat /var/lib/berth/machines/svc.json") // the record lists the layers
	// Layer media types end in tar.gzip (Docker) or tar+gzip (OCI).
	gz := strings.Count(layers, `gzip"`)
	if gz == 0 {
		t.Fatalf("the test image has no gzip layer; record:\n%s", layers)
	}
	h.MustSh("PATH=" + wrap + ":$PATH berth pull -q --name viaigzip " + ref)
	if log := h.MustSh("cat " + wrap + "/log"); log != strings.Repeat("65534 -dc\n", gz) {
		t.Errorf("igzip calls (uid, args), one per gzip layer (%d):\n%s", gz, log)
	}
	h.MustSh(": > " + wrap + "/log; BERTH_GUNZIP=builtin PATH=" + wrap + ":$PATH berth pull -q --name builtin " + ref)
	if log := h.MustSh("cat " + wrap + "/log"); log != "" {
		t.Errorf("BERTH_GUNZIP=builtin still called igzip:\n%s", log)
	}
	describe := func(name string) string {
		return h.MustSh("cd /var/lib/machines/" + name + " && find . -printf '%p %y %m %U %G %s %T@ %l\\n' | sort && find . -type f -exec sha256sum {} + | sort")
	}
	if a, b := describe("viaigzip"), describe("builtin"); a != b {
		t.Errorf("trees inflated by igzip and in-process differ:\nigzip:\n%s\nbuiltin:\n%s", a, b)
	}
	for _, name := range []string{"viaigzip", "builtin"} {
		if r := berth(t, h, "rmi", name); r.ExitCode != 0 {
			t.Errorf("berth rmi %s: %s", name, r)
		}
	}
}

// scenario runs f as a subtest on the shared host and logs how long it took.
func scenario(t *testing.T, h *testhost.Host, name string, f func(*testing.T, *testhost.Host)) {
	t.Run(name, func(t *testing.T) {
		begin := time.Now()
		defer func() { t.Logf("timing: scenario %s: %v", name, since(begin)) }()
		f(t, h.For(t))
	})
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// pushMachineImages pushes the scenarios' images: busybox (entrypoint
// /bin/sh), a service built on it with StopSignal SIGUSR2, and a
// distroless-style image that is one static binary, no shell and no
// /etc/passwd, run as 1000:1000.
func pushMachineImages(t *testing.T, reg *testhost.Registry) machineImages {
	t.Helper()
	bb := testhost.BusyboxImage(t)
	reg.PushImage("e2e/busybox:1", bb)
	// The service keeps its data in an anonymous volume, seeded from
	// the image.
	svc, err := mutate.AppendLayers(bb, tarLayer(t,
		tarFile{name: "data/", mode: 0o755}, tarFile{name: "data/seed", mode: 0o644, data: []byte("seeded\n")}))
	if err != nil {
		t.Fatal(err)
	}
	reg.PushImage("e2e/svc:1", withConfig(t, svc, func(c *v1.Config) {
		c.Entrypoint = []string{"/bin/sh", "-c"}
		c.Cmd = []string{svcScript}
		c.StopSignal = "SIGUSR2"
		c.Volumes = map[string]struct{}{"/data": {}}
	}))
	reg.PushImage("e2e/distroless:1", distrolessImage(t))
	return machineImages{
		busybox:    reg.Ref("e2e/busybox:1"),
		svc:        reg.Ref("e2e/svc:1"),
		distroless: reg.Ref("e2e/distroless:1"),
	}
}

// withConfig returns img with its runtime config changed by f.
func withConfig(t *testing.T, img v1.Image, f func(*v1.Config)) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	f(&cf.Config)
	out, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// distrolessImage is a one-layer image holding only /id, a static busybox
// that runs its id applet because of its name.
func distrolessImage(t *testing.T) v1.Image {
	t.Helper()
	testhost.RequireTools(t, "busybox")
	p, _ := exec.LookPath("busybox")
	bin, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, tarLayer(t, tarFile{name: "id", mode: 0o755, data: bin}))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: []string{"/id"},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		User:       "1000:1000",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// tarFile is one entry of tarLayer: a directory if name ends in "/".
type tarFile struct {
	name string
	mode int64
	data []byte
}

// tarLayer is an uncompressed OCI layer of files, owned by root.
func tarLayer(t *testing.T, files ...tarFile) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data))}
		if strings.HasSuffix(f.name, "/") {
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return layer
}

// berth runs berth inside the host; a non-zero exit is not a failure.
func berth(t *testing.T, h *testhost.Host, args ...string) testhost.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := h.Run(ctx, "berth", args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// unitProps reads properties of a unit inside the host.
func unitProps(h *testhost.Host, unit string, props ...string) map[string]string {
	out := h.MustRun("systemctl", "show", "--property="+strings.Join(props, ","), unit)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

// noLeftovers fails t if anything of machine name is left on the host.
func noLeftovers(t *testing.T, h *testhost.Host, name string) {
	t.Helper()
	unit := "berth-" + name + ".service"
	for _, p := range []string{
		"/etc/systemd/system/" + unit,
		"/etc/systemd/nspawn/" + name + ".nspawn",
		"/run/systemd/nspawn/" + name + ".nspawn",
		"/run/systemd/system/" + unit,
		"/run/systemd/transient/" + unit,
		"/run/systemd/machines/" + name,
		"/var/lib/berth/units/" + name + ".json",
		"/var/lib/berth/volumes/" + name,
		"/var/lib/machines/" + name,
	} {
		if r, _ := h.Run(t.Context(), "test", "-e", p); r.ExitCode == 0 {
			t.Errorf("%s is left behind", p)
		}
	}
	// Enablement links (machines.target.wants/...), drop-ins, anything.
	if out := h.MustSh("find /etc/systemd /run/systemd -name " + shq(unit+"*") + " -o -name " + shq(name+".nspawn")); out != "" {
		t.Errorf("files left behind:\n%s", out)
	}
	if got := unitProps(h, unit, "LoadState")["LoadState"]; got != "not-found" {
		t.Errorf("%s: LoadState=%s after rm, want not-found", unit, got)
	}
	// Nor does systemd remember it (a failed unit stays listed until
	// reset-failed).
	if out := h.MustRun("systemctl", "list-units", "--all", "--no-legend", "--plain", unit); strings.TrimSpace(out) != "" {
		t.Errorf("systemctl still lists %s after rm:\n%s", unit, out)
	}
	if list := h.MustRun("machinectl", "list", "--no-legend"); hasField(list, name) {
		t.Errorf("machinectl list still shows %s:\n%s", name, list)
	}
}

// testRun: `berth run` passes the command's stdout, stderr and exit code
// through, on the default network (a veth in the host's own namespace), and
// cleans up its transient settings.
func testRun(t *testing.T, h *testhost.Host) {
	r := berth(t, h, "run", "--rm", "--name", "once", "bb", "-c", "echo hello from busybox; echo to stderr >&2; exit 3")
	if r.ExitCode != 3 {
		t.Errorf("berth run exit code %d, want 3\n%s", r.ExitCode, r)
	}
	if r.Stdout != "hello from busybox\n" {
		t.Errorf("berth run stdout %q, want %q", r.Stdout, "hello from busybox\n")
	}
	if !strings.Contains(r.Stderr, "to stderr\n") {
		t.Errorf("berth run stderr %q lacks the command's stderr", r.Stderr)
	}
	if r := berth(t, h, "run", "--rm", "--network=none", "bb", "-c", "exit 0"); r.ExitCode != 0 {
		t.Errorf("berth run of exit 0: %s", r)
	}
	// --rm ran on an overlay: the image is untouched.
	berth(t, h, "run", "--rm", "bb", "-c", "echo scribble > /scribble")
	if r, _ := h.Run(t.Context(), "test", "-e", "/var/lib/machines/bb/scribble"); r.ExitCode == 0 {
		t.Errorf("berth run --rm changed the image's root filesystem")
	}
	noLeftovers(t, h, "once")

	// The host's root is overlayfs, which cannot be idmapped: an
	// idmapped -v bind from it is refused before nspawn runs, with the
	// way out; with noidmap it works (root's files then show as nobody).
	h.MustSh("mkdir -p /srv/shared && echo from host > /srv/shared/in")
	r = berth(t, h, "run", "--rm", "-v", "/srv/shared:/mnt", "bb", "-c", "cat /mnt/in")
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "does not support idmapped mounts") || !strings.Contains(r.Stderr, "noidmap") {
		t.Errorf("berth run -v from overlayfs: want a clear error naming noidmap\n%s", r)
	}
	r = berth(t, h, "run", "--rm", "-v", "/srv/shared:/mnt:ro,noidmap", "bb", "-c", "cat /mnt/in; stat -c %u /mnt/in")
	if r.ExitCode != 0 || r.Stdout != "from host\n65534\n" {
		t.Errorf("berth run -v ...:noidmap: want the file, owned by nobody\n%s", r)
	}
}

// testDistroless: an image with no shell and no /etc/passwd entry for its
// numeric USER runs as that user.
func testDistroless(t *testing.T, h *testhost.Host) {
	h.MustSh("test -x /var/lib/machines/distroless/id && ! test -e /var/lib/machines/distroless/bin/sh && ! test -e /var/lib/machines/distroless/etc/passwd")
	r := berth(t, h, "run", "--rm", "distroless")
	if r.ExitCode != 0 || !regexp.MustCompile(`^uid=1000 gid=1000( |\n)`).MatchString(r.Stdout) {
		t.Errorf("berth run distroless: want id to print uid=1000 gid=1000\n%s", r)
	}
	for flag, want := range map[string]string{"-u": "1000\n", "-g": "1000\n"} {
		if r := berth(t, h, "run", "--rm", "distroless", flag); r.ExitCode != 0 || r.Stdout != want {
			t.Errorf("berth run distroless %s: want %q\n%s", flag, want, r)
		}
	}
	// --user overrides the image's user, still without a passwd entry.
	if r := berth(t, h, "run", "--rm", "--user", "4321:99", "distroless", "-u"); r.ExitCode != 0 || r.Stdout != "4321\n" {
		t.Errorf("berth run --user 4321:99 distroless -u: want 4321\n%s", r)
	}
}

// testServiceLifecycle: create + start a machine service, see it in
// machinectl, read its logs, exec into it, stop it with the image's
// StopSignal, remove it without a trace.
func testServiceLifecycle(t *testing.T, h *testhost.Host) {
	const unit = "berth-web.service"
	if r := berth(t, h, "create", "web", "svc"); r.ExitCode != 0 || r.Stdout != "web\n" {
		t.Fatalf("berth create web svc: %s", r)
	}
	h.MustRun("test", "-f", "/etc/systemd/system/"+unit)
	h.MustRun("test", "-f", "/etc/systemd/nspawn/web.nspawn")
	if got := unitProps(h, unit, "LoadState")["LoadState"]; got != "loaded" {
		t.Fatalf("%s: LoadState=%s after create, want loaded (daemon-reload missing?)", unit, got)
	}

	begin := time.Now()
	if r := berth(t, h, "start", "web"); r.ExitCode != 0 {
		t.Fatalf("berth start web: %s\n%s", r, h.JournalTail(30))
	}
	t.Logf("timing: berth start: %v", since(begin))
	list := h.MustRun("machinectl", "list", "--no-legend")
	if !regexp.MustCompile(`(?m)^web +container +systemd-nspawn`).MatchString(list) {
		t.Errorf("machinectl list does not show web as a container:\n%s", list)
	}
	if got := unitProps(h, unit, "ActiveState")["ActiveState"]; got != "active" {
		t.Errorf("%s is %s after start, want active", unit, got)
	}
	h.Eventually("berth logs shows the greeting", 30*time.Second,
		"berth logs web | grep -qx 'hello from web as 0'")
	if r := berth(t, h, "ps"); !regexp.MustCompile(`(?m)^web +svc +active`).MatchString(r.Stdout) {
		t.Errorf("berth ps does not show web active:\n%s", r)
	}

	// exec: output, stderr and exit code pass through; the command runs
	// in the machine (its hostname, its root filesystem).
	r := berth(t, h, "exec", "web", "/bin/sh", "-c", "hostname; echo oops >&2; exit 5")
	if r.ExitCode != 5 || r.Stdout != "web\n" || !strings.Contains(r.Stderr, "oops") {
		t.Errorf("berth exec web: want exit 5, stdout web, stderr oops\n%s", r)
	}
	if r := berth(t, h, "exec", "web", "cat", "/etc/os-release"); r.ExitCode != 0 || !strings.Contains(r.Stdout, "ID=busybox") {
		t.Errorf("berth exec web cat /etc/os-release:\n%s", r)
	}
	if r := berth(t, h, "exec", "web", "/no/such/program"); r.ExitCode != 127 {
		t.Errorf("berth exec of a missing program: exit %d, want 127\n%s", r.ExitCode, r)
	}
	if r := berth(t, h, "rm", "web"); r.ExitCode == 0 {
		t.Errorf("berth rm of a running machine succeeded")
	}

	// The image's VOLUME /data is seeded from the image and writable by
	// the machine's root. The host's /var/lib/berth is overlayfs, which
	// cannot be idmapped, so the volume stays in the machine's root
	// filesystem (testUserNamespace covers volume directories).
	if r := berth(t, h, "exec", "web", "/bin/sh", "-c", "cat /data/seed && echo written > /data/new && stat -c %u /data/new"); r.ExitCode != 0 || r.Stdout != "seeded\n0\n" {
		t.Errorf("volume /data in web: want seeded and a file owned by root\n%s", r)
	}
	if fs := strings.TrimSpace(h.MustRun("stat", "-f", "-c", "%T", "/var/lib/berth")); fs != "overlayfs" {
		t.Fatalf("the test host's /var/lib/berth is %s, this scenario expects overlayfs", fs)
	}
	h.MustSh("grep -qx written /var/lib/machines/web/data/new && ! test -e /var/lib/berth/volumes/web")

	// stop: nspawn gets SIGTERM from systemd and sends the image's
	// StopSignal (SIGUSR2) to the command, which logs it and exits 0; a
	// stop that ran into TimeoutStopSec would leave Result=timeout.
	begin = time.Now()
	if r := berth(t, h, "stop", "web"); r.ExitCode != 0 {
		t.Fatalf("berth stop web: %s", r)
	}
	stopped := since(begin)
	props := unitProps(h, unit, "ActiveState", "Result", "ExecMainStatus", "TimeoutStopUSec")
	t.Logf("timing: berth stop: %v (TimeoutStopSec %s)", stopped, props["TimeoutStopUSec"])
	if props["ActiveState"] != "inactive" || props["Result"] != "success" || props["ExecMainStatus"] != "0" {
		t.Errorf("%s after stop: %v, want inactive, Result=success, ExecMainStatus=0", unit, props)
	}
	got := h.MustSh("journalctl -q -o cat -u " + unit + " | grep '^got SIG' || true")
	if got != "got SIGUSR2\n" {
		t.Errorf("signals the command logged = %q, want exactly the image's StopSignal (got SIGUSR2)", got)
	}
	// berth logs is the machine's output, as docker logs: not systemd's
	// messages about the unit.
	if r := berth(t, h, "logs", "web"); r.ExitCode != 0 || r.Stdout != "hello from web as 0\ngot SIGUSR2\n" {
		t.Errorf("berth logs web after stop: want the greeting and the signal only\n%s", r)
	}
	if list := h.MustRun("machinectl", "list", "--no-legend"); hasField(list, "web") {
		t.Errorf("machinectl list still shows web after stop:\n%s", list)
	}
	if r := berth(t, h, "exec", "web", "true"); r.ExitCode == 0 || !strings.Contains(r.Stderr, "not running") {
		t.Errorf("berth exec in a stopped machine: want an error saying it is not running\n%s", r)
	}

	// rm also undoes `systemctl enable`.
	h.MustRun("systemctl", "enable", unit)
	if r := berth(t, h, "rm", "web"); r.ExitCode != 0 || r.Stdout != "web\n" {
		t.Fatalf("berth rm web: %s", r)
	}
	noLeftovers(t, h, "web")
	h.MustRun("test", "-x", "/var/lib/machines/svc/bin/busybox") // the image stays
}

// stubbornScript ignores every stop signal.
const stubbornScript = `trap '' HUP INT QUIT USR1 USR2 TERM
echo stubborn
while :; do sleep 1; done`

// testStopTimeout: a machine that ignores its stop signal is killed when
// the stop timeout (--stop-timeout, TimeoutStopSec=) runs out.
func testStopTimeout(t *testing.T, h *testhost.Host) {
	const unit = "berth-stubborn.service"
	if r := berth(t, h, "create", "--stop-timeout=2", "--network=none", "stubborn", "bb", "-c", stubbornScript); r.ExitCode != 0 {
		t.Fatalf("berth create stubborn: %s", r)
	}
	if got := unitProps(h, unit, "TimeoutStopUSec")["TimeoutStopUSec"]; got != "2s" {
		t.Errorf("%s: TimeoutStopUSec=%s, want 2s", unit, got)
	}
	if r := berth(t, h, "start", "stubborn"); r.ExitCode != 0 {
		t.Fatalf("berth start stubborn: %s", r)
	}
	h.Eventually("stubborn is up", 30*time.Second, "berth logs stubborn | grep -qx stubborn")
	begin := time.Now()
	r := berth(t, h, "stop", "stubborn")
	t.Logf("timing: berth stop of a machine that ignores its stop signal, --stop-timeout=2: %v (exit code %d)", since(begin), r.ExitCode)
	props := unitProps(h, unit, "ActiveState", "Result")
	if props["Result"] != "timeout" || props["ActiveState"] == "active" || props["ActiveState"] == "deactivating" {
		t.Errorf("%s after stop: %v, want stopped with Result=timeout", unit, props)
	}
	if list := h.MustRun("machinectl", "list", "--no-legend"); hasField(list, "stubborn") {
		t.Errorf("machinectl list still shows stubborn after stop:\n%s", list)
	}
	if r := berth(t, h, "rm", "stubborn"); r.ExitCode != 0 {
		t.Errorf("berth rm stubborn: %s", r)
	}
	noLeftovers(t, h, "stubborn")
}

// testRestartPolicy: a machine that crashes twice is restarted by systemd
// until it stays up (Restart=on-failure), and one with Restart=no is not.
func testRestartPolicy(t *testing.T, h *testhost.Host) {
	// Create both before starting either: create reloads systemd, and a
	// daemon-reload while a unit waits to be restarted makes systemd 252
	// schedule that restart twice (NRestarts counts both; seen in the
	// journal as two "Scheduled restart job" lines for one failure).
	for _, name := range []string{"crashy", "crashno"} {
		policy := map[string]string{"crashy": "on-failure", "crashno": "no"}[name]
		if r := berth(t, h, "create", "--restart="+policy, "--network=none", name, "bb", "-c", crashScript); r.ExitCode != 0 {
			t.Fatalf("berth create %s: %s", name, r)
		}
	}
	for _, name := range []string{"crashy", "crashno"} {
		// The first start may already fail, depending on whether nspawn
		// reported readiness before the command crashed; systemd
		// applies the policy either way.
		berth(t, h, "start", name)
	}

	h.Eventually("crashy stays up after its crashes", time.Minute,
		"systemctl is-active -q berth-crashy.service && journalctl -q -o cat -u berth-crashy.service | grep -qx steady")
	// Every restart must answer a failure, and both crashes must have
	// been restarted.
	got := unitProps(h, "berth-crashy.service", "NRestarts")["NRestarts"]
	failures := strings.Count(h.MustSh("journalctl -q -o cat -u berth-crashy.service"), "Failed with result")
	if n, err := strconv.Atoi(got); err != nil || n < 2 || n != failures {
		t.Errorf("berth-crashy.service NRestarts=%s after %d failures, want one restart per failure and at least 2\njournal:\n%s",
			got, failures, h.MustSh("journalctl -q -o short-precise -u berth-crashy.service"))
	}
	logs := berth(t, h, "logs", "crashy").Stdout
	if !strings.Contains(logs, "start 1\ncrash 1\n") || !strings.Contains(logs, "start 2\ncrash 2\n") || !strings.Contains(logs, "start 3\nsteady\n") {
		t.Errorf("berth logs crashy lacks the three starts:\n%s", logs)
	}

	h.Eventually("crashno fails", time.Minute, "systemctl is-failed -q berth-crashno.service")
	props := unitProps(h, "berth-crashno.service", "NRestarts", "Result", "ExecMainStatus")
	if props["NRestarts"] != "0" || props["Result"] != "exit-code" || props["ExecMainStatus"] != "7" {
		t.Errorf("berth-crashno.service: %v, want NRestarts=0 Result=exit-code ExecMainStatus=7", props)
	}

	berth(t, h, "stop", "crashy")
	for _, name := range []string{"crashy", "crashno"} {
		if r := berth(t, h, "rm", name); r.ExitCode != 0 {
			t.Errorf("berth rm %s: %s", name, r)
		}
	}
	noLeftovers(t, h, "crashy")
	noLeftovers(t, h, "crashno")
}

// testUserNamespace: with the default private users, root in the machine
// is an unprivileged UID on the host: the machine's init has a shifted
// uid_map and runs as that UID, and a file root creates in the machine
// belongs to it when the host looks.
func testUserNamespace(t *testing.T, h *testhost.Host) {
	// Volume directories on a file system that supports idmapped
	// mounts, as /var/lib/berth on ext4 or xfs would be.
	h.MustSh("mkdir -p /var/lib/berth/volumes && mount -t tmpfs berth-volumes /var/lib/berth/volumes")
	defer h.MustRun("umount", "/var/lib/berth/volumes")
	if r := berth(t, h, "create", "--network=none", "userns", "svc"); r.ExitCode != 0 {
		t.Fatalf("berth create userns: %s", r)
	}
	if r := berth(t, h, "start", "userns"); r.ExitCode != 0 {
		t.Fatalf("berth start userns: %s\n%s", r, h.JournalTail(20))
	}
	defer func() {
		berth(t, h, "rm", "--force", "userns")
		noLeftovers(t, h, "userns")
	}()
	leader := strings.TrimSpace(h.MustRun("machinectl", "show", "--property=Leader", "--value", "userns"))
	if n, err := strconv.Atoi(leader); err != nil || n <= 1 {
		t.Fatalf("machinectl reports leader %q", leader)
	}
	uidMap := strings.Fields(h.MustRun("cat", "/proc/"+leader+"/uid_map"))
	if len(uidMap) != 3 || uidMap[0] != "0" || uidMap[1] == "0" || uidMap[2] != "65536" {
		t.Fatalf("uid_map of the machine's init = %q, want one line 0 BASE 65536 with BASE != 0", uidMap)
	}
	base := uidMap[1]
	t.Logf("machine root is host UID %s", base)
	// The init's real, effective, saved and fs UIDs as the host sees them.
	status := h.MustRun("grep", "^Uid:", "/proc/"+leader+"/status")
	if f := strings.Fields(status); len(f) != 5 || f[1] != base || f[2] != base || f[3] != base || f[4] != base {
		t.Errorf("machine init's %s, want all four UIDs %s", strings.TrimSpace(status), base)
	}
	if r := berth(t, h, "exec", "userns", "/bin/sh", "-c", "id -u; touch /made-by-root"); r.ExitCode != 0 || r.Stdout != "0\n" {
		t.Fatalf("berth exec userns: %s", r)
	}
	if got := strings.TrimSpace(h.MustRun("stat", "-c", "%u", "/proc/"+leader+"/root/made-by-root")); got != base {
		t.Errorf("file created by machine root is owned by host UID %s, want %s", got, base)
	}
	onDisk := strings.TrimSpace(h.MustRun("stat", "-c", "%u", "/var/lib/machines/userns/made-by-root"))
	t.Logf("on disk the file has UID %s (0 with idmapped mounts, %s with chown)", onDisk, base)

	// The volume directory is idmapped: machine root writes as its own
	// root, and on disk the file belongs to host root, as with docker.
	if r := berth(t, h, "exec", "userns", "/bin/sh", "-c", "cat /data/seed && touch /data/by-root && stat -c %u /data/by-root"); r.ExitCode != 0 || r.Stdout != "seeded\n0\n" {
		t.Errorf("volume /data in userns: want seeded and root-owned\n%s", r)
	}
	if got := strings.TrimSpace(h.MustSh("stat -c %u /var/lib/berth/volumes/userns/data-*/by-root")); got != "0" {
		t.Errorf("file machine root wrote to its idmapped volume has host UID %s on disk, want 0", got)
	}
}

// shq quotes s for /bin/sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// psEntry is one line of `berth ps --format json`.
type psEntry struct {
	Name        string `json:"name"`
	ActiveState string `json:"activeState"`
}

// testHostileValues drives a machine whose state and machines directories
// and environment need escaping in the unit and settings files, with an
// image USER and WORKDIR, through the whole lifecycle.
func testHostileValues(t *testing.T, h *testhost.Host, reg *testhost.Registry) {
	img := withConfig(t, testhost.BusyboxImage(t), func(c *v1.Config) {
		*c = v1.Config{
			Env:        []string{"PATH=/bin"},
			Cmd:        []string{"/bin/sh", "-c", `trap 'echo "bye $GREETING"; exit 0' USR1; echo "hello $GREETING from $(id -u):$(id -g) in $(pwd)"; while :; do sleep 1; done`},
			User:       "1000:1000",
			WorkingDir: "/srv/app dir",
			StopSignal: "SIGUSR1",
		}
	})
	reg.PushImage("e2e/app:v1", img)

	root := `/var/lib/berth hostile %i $HOME`
	md := `/var/lib/ma chines %i $HOME "q"`
	b := func(args ...string) testhost.Result {
		t.Helper()
		return berth(t, h, append([]string{"--root", root, "--machines-dir", md}, args...)...)
	}
	must := func(args ...string) string {
		t.Helper()
		r := b(args...)
		if r.ExitCode != 0 {
			t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
		}
		return r.Stdout
	}
	must("pull", "-q", "--name", "app", reg.Ref("e2e/app:v1"))
	greeting := `50% $x "q" \`
	must("create", "--network=none", "-e", "GREETING="+greeting, "hostile", "app")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, f := range []string{"/etc/systemd/system/berth-hostile.service"} {
		if r, err := h.Run(ctx, "systemd-analyze", "verify", "--man=no", f); err != nil || r.ExitCode != 0 || r.Stdout+r.Stderr != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", f, err, r)
		}
	}

	must("start", "hostile")
	hello := "hello " + greeting + " from 1000:1000 in /srv/app dir"
	h.Eventually("hostile greets in its journal", 30*time.Second,
		"journalctl -q -o cat -u berth-hostile.service | grep -qxF -e "+shq(hello))
	var ps []psEntry
	if err := json.Unmarshal([]byte(must("ps", "--format", "json")), &ps); err != nil || len(ps) != 1 || ps[0].Name != "hostile" || ps[0].ActiveState != "active" {
		t.Errorf("ps: %v %+v", err, ps)
	}
	if out := must("exec", "hostile", "/bin/sh", "-c", `echo "$(id -u) $GREETING $(pwd)"`); out != "1000 "+greeting+" /srv/app dir\n" {
		t.Errorf("exec output %q", out)
	}
	if r := b("exec", "hostile", "/bin/sh", "-c", "exit 4"); r.ExitCode != 4 {
		t.Errorf("exec exit code: %s", r)
	}
	if out := must("logs", "hostile"); !strings.Contains(out, hello+"\n") {
		t.Errorf("logs lack the greeting:\n%s", out)
	}
	if r := b("run", "--rm", "--network=none", "app", "/bin/sh", "-c", "id -u; exit 3"); r.ExitCode != 3 || r.Stdout != "1000\n" {
		t.Errorf("berth run: %s", r)
	}
	must("stop", "hostile")
	h.MustSh("journalctl -q -o cat -u berth-hostile.service | grep -qxF -e " + shq("bye "+greeting))
	must("rm", "hostile")
	h.MustSh("! test -e /etc/systemd/system/berth-hostile.service && ! test -e /etc/systemd/nspawn/hostile.nspawn && ! test -e " + shq(md+"/hostile"))
	h.MustSh("test -d " + shq(md+"/app/bin"))
	must("rmi", "app")
}
