package cli

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machines"
)

// fakeSystem is what the machine verbs drive in these tests: temporary
// directories, and a recording runner that plays systemd.
type fakeSystem struct {
	*command.RecordingRunner
	dirs   map[string]string // berth's environment
	etc    string            // stands in for / of /etc/systemd and /run/systemd
	booted bool
	// realCommands runs commands for real instead of recording them.
	realCommands bool
}

func fakeHost(t *testing.T, dirs map[string]string, booted bool) *fakeSystem {
	t.Helper()
	return &fakeSystem{
		RecordingRunner: &command.RecordingRunner{Results: map[string]command.Result{}},
		dirs:            dirs,
		etc:             t.TempDir(),
		booted:          booted,
	}
}

func (f *fakeSystem) host(root, machinesDir string) machines.Host {
	var r command.Runner = f.RecordingRunner
	if f.realCommands {
		r = command.ExecRunner{}
	}
	return machines.Host{
		Runner:           r,
		SystemdBooted:    f.booted,
		NspawnDir:        filepath.Join(f.etc, "etc/systemd/nspawn"),
		RuntimeNspawnDir: filepath.Join(f.etc, "run/systemd/nspawn"),
		UnitDir:          filepath.Join(f.etc, "etc/systemd/system"),
		StateDir:         filepath.Join(root, "units"),
		MachinesDir:      machinesDir,
		Now:              func() time.Time { return time.Unix(0, 0) },
	}
}

// berth runs the CLI against the fake system.
func (f *fakeSystem) berth(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{
		Args:     args,
		Stdin:    strings.NewReader(""),
		Stdout:   &out,
		Stderr:   &errb,
		Getenv:   func(k string) string { return f.dirs[k] },
		Machines: f.host,
	})
	return out.String(), errb.String(), code
}

// pulledImage pulls a tiny image into fresh berth directories.
func pulledImage(t *testing.T, conf v1.Config) map[string]string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	ref := pushBusybox(t, writeFakeBusybox(t), host, "test/app:1", conf)
	d := t.TempDir()
	initBin := filepath.Join(d, "berth-init")
	if err := os.WriteFile(initBin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{
		"BERTH_ROOT":         filepath.Join(d, "root"),
		"BERTH_MACHINES_DIR": filepath.Join(d, "machines"),
		"BERTH_INIT":         initBin,
	}
	if out, errOut, code := runBerth(t, dirs, "pull", "-q", "--platform", "linux/amd64", "--name", "app", ref); code != 0 {
		t.Fatalf("pull: %d %s %s", code, out, errOut)
	}
	return dirs
}

// writeFakeBusybox stands in for busybox where nothing is executed.
func writeFakeBusybox(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "busybox")
	if err := os.WriteFile(p, []byte("not run"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCreateDryRunAndOutput(t *testing.T) {
	dirs := pulledImage(t, v1.Config{Entrypoint: []string{"/bin/app"}, Cmd: []string{"--serve"}, Env: []string{"PATH=/bin"}})
	fs := fakeHost(t, dirs, true)
	out, errOut, code := fs.berth(t, "create", "--dry-run", "--network=zone:proj", "-p", "8080:80", "--restart=always", "--cpus=1.5", "--memory=1G", "-e", "GREETING=50% off", "web", "app", "--port", "80")
	if code != 0 {
		t.Fatalf("create --dry-run: %d %s", code, errOut)
	}
	etc := fs.etc
	for _, want := range []string{
		"# " + etc + "/etc/systemd/nspawn/web.nspawn\n",
		// The image's Entrypoint, Env and the rest are read when the
		// machine starts; only the overrides are in the file.
		`Parameters="/.berth/init" "--image-config" "/.berth/image.json" "--env" "GREETING=50% off" "--cmd" "--port" "80"` + "\n",
		"BindReadOnly=" + dirs["BERTH_MACHINES_DIR"] + "/web.oci-config:/.berth/image.json\n",
		"Zone=proj\nPort=tcp:8080:80\n",
		"# " + etc + "/etc/systemd/system/berth-web.service\n",
		"--directory=" + dirs["BERTH_MACHINES_DIR"] + "/web",
		"CPUQuota=150%\n", "MemoryMax=1G\n", "Restart=always\n", "TimeoutStopSec=10s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dirs["BERTH_MACHINES_DIR"], "web")); err == nil {
		t.Error("--dry-run created the machine")
	}

	// Booted machines keep systemd's stop timeout unless one is given.
	if out, errOut, code := fs.berth(t, "create", "--dry-run", "--boot", "web", "app"); code != 0 || strings.Contains(out, "TimeoutStopSec") {
		t.Errorf("create --dry-run --boot: code %d, TimeoutStopSec set or error %s:\n%s", code, errOut, out)
	}
	if out, errOut, code := fs.berth(t, "create", "--dry-run", "--boot", "--stop-timeout=120", "web", "app"); code != 0 || !strings.Contains(out, "TimeoutStopSec=120s\n") {
		t.Errorf("create --dry-run --boot --stop-timeout=120: code %d %s:\n%s", code, errOut, out)
	}

	outDir := t.TempDir()
	if _, errOut, code := fs.berth(t, "create", "--output", outDir, "web", "app"); code != 0 {
		t.Fatalf("create --output: %d %s", code, errOut)
	}
	for _, f := range []string{"web.nspawn", "berth-web.service"} {
		if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
			t.Errorf("--output did not write %s: %v", f, err)
		}
	}

	for _, bad := range [][]string{
		{"create", "--dry-run", "-v", "rel:/x", "web", "app"},
		{"create", "--dry-run", "-p", "80", "web", "app"},
		{"create", "--dry-run", "--network=host", "-p", "1:2", "web", "app"},
		{"create", "--dry-run", "--network=zone", "web", "app"},
		{"create", "--dry-run", "--cpus=x", "web", "app"},
		{"create", "--dry-run", "--memory=lots", "web", "app"},
		{"create", "--dry-run", "--stop-timeout=-1", "web", "app"},
		{"create", "--dry-run", "--restart=sometimes", "web", "app"},
		{"create", "--dry-run", "Bad_Name", "app"},
		{"create", "--dry-run", "web", "missing"},
	} {
		if out, errOut, code := fs.berth(t, bad...); code == 0 || out != "" || errOut == "" {
			t.Errorf("%q: code %d stdout %q stderr %q", bad, code, out, errOut)
		}
	}
}

func TestLifecycleCommands(t *testing.T) {
	dirs := pulledImage(t, v1.Config{Cmd: []string{"/bin/app"}, User: "app"})
	rr := fakeHost(t, dirs, true)
	machines := dirs["BERTH_MACHINES_DIR"]
	etc := rr.etc

	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := rr.berth(t, args...)
		if code != 0 {
			t.Fatalf("berth %q: code %d stderr %q", args, code, errOut)
		}
		return out
	}
	if out := run("create", "app", "app"); out != "app\n" {
		t.Errorf("create stdout %q", out)
	}
	rr.Results["systemctl show --property=ActiveState,SubState,MainPID -- berth-app.service"] = command.Result{Stdout: "ActiveState=active\nSubState=running\nMainPID=42\n"}
	rr.Results["machinectl show --property=Leader --value -- app"] = command.Result{Stdout: "4242\n"}
	rr.Results["nsenter --target=4242 --all --root --wd -- /.berth/init --image-config /.berth/image.json --user root -- /bin/false"] = command.Result{Code: 9}
	run("start", "app")
	run("stop", "app")
	run("restart", "app")
	ps := run("ps")
	if !strings.Contains(ps, "app") || !strings.Contains(ps, "active (running)") {
		t.Errorf("ps:\n%s", ps)
	}
	if js := run("ps", "--format", "json"); !strings.Contains(js, `"mainPID": 42`) {
		t.Errorf("ps json:\n%s", js)
	}
	run("logs", "-f", "app")
	run("exec", "app", "/bin/sh", "-c", "echo hi")
	if _, _, code := rr.berth(t, "exec", "--user", "root", "app", "/bin/false"); code != 9 {
		t.Errorf("exec exit code %d, want 9", code)
	}
	if _, errOut, code := rr.berth(t, "rm", "app"); code == 0 || !strings.Contains(errOut, "running") {
		t.Errorf("rm of a running machine: code %d stderr %q", code, errOut)
	}
	run("rm", "--force", "app")

	want := strings.Join([]string{
		"systemctl daemon-reload",
		"systemctl start berth-app.service",
		"systemctl stop berth-app.service",
		"systemctl restart berth-app.service",
		"systemctl show --property=ActiveState,SubState,MainPID -- berth-app.service",
		"systemctl show --property=ActiveState,SubState,MainPID -- berth-app.service",
		"journalctl --no-pager --output=cat _SYSTEMD_UNIT=berth-app.service _TRANSPORT=stdout --since=@0 --follow",
		"machinectl show --property=Leader --value -- app",
		// The image's user, environment and working directory come
		// from its config, as for the machine's own command.
		"nsenter --target=4242 --all --root --wd -- /.berth/init --image-config /.berth/image.json -- /bin/sh -c 'echo hi'",
		"machinectl show --property=Leader --value -- app",
		"nsenter --target=4242 --all --root --wd -- /.berth/init --image-config /.berth/image.json --user root -- /bin/false",
		"systemctl --quiet is-active berth-app.service",
		"systemctl --quiet is-active berth-app.service",
		"systemctl stop berth-app.service",
		"systemctl --quiet disable berth-app.service",
		"systemctl --quiet reset-failed berth-app.service",
		"systemctl daemon-reload",
	}, "\n") + "\n"
	if got := rr.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	for _, p := range []string{etc + "/etc/systemd/nspawn/app.nspawn", etc + "/etc/systemd/system/berth-app.service", dirs["BERTH_ROOT"] + "/units/app.json"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("rm left %s", p)
		}
	}
	if _, err := os.Stat(filepath.Join(machines, "app", "bin")); err != nil {
		t.Errorf("rm removed the image's own root filesystem: %v", err)
	}
}

func TestCreateClonesAndRemoves(t *testing.T) {
	dirs := pulledImage(t, v1.Config{Cmd: []string{"/bin/app"}})
	fs := fakeHost(t, dirs, false)
	// The copy of the root filesystem runs for real.
	fs.realCommands = true
	if _, errOut, code := fs.berth(t, "create", "web-1", "app"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	clone := filepath.Join(dirs["BERTH_MACHINES_DIR"], "web-1")
	if _, err := os.Stat(filepath.Join(clone, "bin", "busybox")); err != nil {
		t.Fatalf("no cloned root filesystem: %v", err)
	}
	if _, errOut, code := fs.berth(t, "create", "web-1", "app"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("second create: code %d stderr %q", code, errOut)
	}
	// Without systemd, lifecycle verbs say so.
	if _, errOut, code := fs.berth(t, "start", "web-1"); code == 0 || !strings.Contains(errOut, "PID 1") {
		t.Errorf("start without systemd: code %d stderr %q", code, errOut)
	}
	if _, errOut, code := fs.berth(t, "rm", "web-1"); code != 0 {
		t.Fatalf("rm: %d %s", code, errOut)
	}
	if _, err := os.Stat(clone); err == nil {
		t.Error("rm left the cloned root filesystem")
	}
	if _, err := os.Stat(filepath.Join(dirs["BERTH_MACHINES_DIR"], "app", "bin")); err != nil {
		t.Errorf("rm touched the image: %v", err)
	}
}

// TestCreateDryRunMatchesCreate: --dry-run and --output show exactly the
// files create installs, including the binds that back the image's
// anonymous volumes.
func TestCreateDryRunMatchesCreate(t *testing.T) {
	dirs := pulledImage(t, v1.Config{Cmd: []string{"/bin/app"}, Volumes: map[string]struct{}{"/data": {}, "/var/log/app": {}}})
	fs := fakeHost(t, dirs, true)
	dry, errOut, code := fs.berth(t, "create", "--dry-run", "-v", "/srv/logs:/var/log/app", "web", "app")
	if code != 0 {
		t.Fatalf("create --dry-run: %d %s", code, errOut)
	}
	outDir := t.TempDir()
	if _, errOut, code := fs.berth(t, "create", "--output", outDir, "-v", "/srv/logs:/var/log/app", "web", "app"); code != 0 {
		t.Fatalf("create --output: %d %s", code, errOut)
	}
	if _, errOut, code := fs.berth(t, "create", "-v", "/srv/logs:/var/log/app", "web", "app"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	var installed strings.Builder
	for i, p := range []string{fs.etc + "/etc/systemd/nspawn/web.nspawn", fs.etc + "/etc/systemd/system/berth-web.service"} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			installed.WriteString("\n")
		}
		installed.WriteString("# " + p + "\n" + string(b))
		if o, err := os.ReadFile(filepath.Join(outDir, filepath.Base(p))); err != nil || string(o) != string(b) {
			t.Errorf("--output wrote a different %s (%v):\n%s\ninstalled:\n%s", filepath.Base(p), err, o, b)
		}
	}
	if dry != installed.String() {
		t.Errorf("--dry-run output differs from the installed files\ndry run:\n%s\ninstalled:\n%s", dry, installed.String())
	}
	// /data is backed by a directory of the machine's own; /var/log/app
	// is the user's bind, not a second one.
	vol := regexp.MustCompile(`(?m)^Bind=` + regexp.QuoteMeta(dirs["BERTH_ROOT"]) + `/volumes/web/data-[0-9a-f]{8}:/data:idmap$`)
	if !vol.MatchString(dry) || strings.Count(dry, ":/var/log/app") != 1 {
		t.Errorf("dry run lacks the volume bind for /data or binds /var/log/app twice:\n%s", dry)
	}
}
