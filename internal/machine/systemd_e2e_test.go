package machine_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-sh/berth/e2e/testhost"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/unit"
)

// These scenarios need a real systemd: they boot a test host (package
// e2e/testhost) and skip unless BERTH_E2E=1.

// hostileWords are values every dialect must carry through unchanged.
var hostileWords = []string{"%s|%n", "-rf", "@x", "$$", "${HOME}", "$(id)", `a"b`, `c\d`, "", ";", `e\`, "ünïcödé ✓", "tab\there", "'", `"`, "  lead and trail  ", "#not a comment", "[Section]", `\;`}

// TestSystemdParsesUnitValues renders a service whose command line and
// environment are full of hostile values, lets the real service manager run
// it, and compares what the process got byte for byte.
func TestSystemdParsesUnitValues(t *testing.T) {
	h := testhost.Boot(t, testhost.Options{})
	h.InstallGo("./internal/machine/testdata/printargs")

	env := append([]string{`A=100% $HOME ${X} "q" 'q' \ \\ trailing\`, "B=  spaced  ", "C=x=y", "D=", "E=tab\tx", "F=%n%%"}, machine.RandomEnv(100)...)
	words := append(append([]string{}, hostileWords...), machine.RandomWords(300)...)
	f := unit.New(unit.Systemd)
	f.Section("Unit").Add("Description", `berth 100% "hostile" $unit \ test`)
	s := f.Section("Service")
	s.Add("Type", "oneshot")
	s.AddCommand("ExecStart", "", append([]string{"/usr/local/bin/printargs"}, words...)...)
	for _, kv := range env {
		s.AddEnv("Environment", kv)
	}
	s.Add("StandardOutput", "file:/run/berth-printargs.json")
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h.WriteFile("/etc/systemd/system/berth-printargs.service", b, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := h.Run(ctx, "systemd-analyze", "verify", "--man=no", "/etc/systemd/system/berth-printargs.service"); err != nil || r.ExitCode != 0 || r.Stdout+r.Stderr != "" {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, r, b)
	}
	h.MustRun("systemctl", "daemon-reload")
	h.MustRun("systemctl", "start", "berth-printargs.service")
	var got struct {
		Args []string
		Env  []string
	}
	if err := json.Unmarshal([]byte(h.MustRun("cat", "/run/berth-printargs.json")), &got); err != nil {
		t.Fatal(err)
	}
	if want := append([]string{"/usr/local/bin/printargs"}, words...); !reflect.DeepEqual(got.Args, want) {
		t.Errorf("ExecStart= argv differs\ngot  %q\nwant %q\nunit:\n%s", got.Args, want, b)
	}
	have := map[string]bool{}
	for _, kv := range got.Env {
		have[kv] = true
	}
	for _, kv := range env {
		if !have[kv] {
			t.Errorf("Environment= lost %q; got %q", kv, got.Env)
		}
	}
	if d := h.MustRun("systemctl", "show", "--property=Description", "--value", "berth-printargs.service"); d != `berth 100% "hostile" $unit \ test`+"\n" {
		t.Errorf("Description= = %q", d)
	}
}

// TestSystemdMachineLifecycle drives an app machine through create, start,
// ps, exec, logs, stop and rm on a real systemd host, from a machines
// directory whose path needs escaping in the unit.
func TestSystemdMachineLifecycle(t *testing.T) {
	h := testhost.Boot(t, testhost.Options{})
	h.InstallBerth()
	reg := h.StartRegistry(5000)

	img := testhost.BusyboxImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config = v1.Config{
		Env:        []string{"PATH=/bin"},
		Cmd:        []string{"/bin/sh", "-c", `trap 'echo "bye $GREETING"; exit 0' USR1; echo "hello $GREETING from $(id -u):$(id -g) in $(pwd)"; while :; do sleep 1; done`},
		User:       "1000:1000",
		WorkingDir: "/srv/app dir",
		StopSignal: "SIGUSR1",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	reg.PushImage("e2e/app:v1", img)

	md := `/var/lib/ma chines %i $HOME "q"`
	berth := func(args ...string) string {
		t.Helper()
		return h.MustRun("berth", append([]string{"--machines-dir", md}, args...)...)
	}
	berth("pull", "-q", "--name", "app", reg.Ref("e2e/app:v1"))
	greeting := `50% $x "q" \`
	berth("create", "--network=none", "-e", "GREETING="+greeting, "web", "app")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if r, err := h.Run(ctx, "systemd-analyze", "verify", "--man=no", "/etc/systemd/system/berth-web.service"); err != nil || r.ExitCode != 0 || r.Stdout+r.Stderr != "" {
		t.Errorf("systemd-analyze verify berth-web.service: %v\n%s", err, r)
	}

	berth("start", "web")
	hello := "hello " + greeting + " from 1000:1000 in /srv/app dir"
	h.Eventually("web greets in its journal", 30*time.Second,
		"journalctl -q -o cat -u berth-web.service | grep -qxF -e "+shq(hello))
	var ps []struct {
		Name, ActiveState string
	}
	if err := json.Unmarshal([]byte(berth("ps", "--format", "json")), &ps); err != nil || len(ps) != 1 || ps[0].Name != "web" || ps[0].ActiveState != "active" {
		t.Errorf("ps: %v %+v", err, ps)
	}
	if out := berth("exec", "web", "/bin/sh", "-c", `echo "$(id -u) $GREETING $(pwd)"`); out != "1000 "+greeting+" /srv/app dir\n" {
		t.Errorf("exec output %q", out)
	}
	if r, err := h.Run(ctx, "berth", "--machines-dir", md, "exec", "web", "/bin/sh", "-c", "exit 4"); err != nil || r.ExitCode != 4 {
		t.Errorf("exec exit code: %v %s", err, r)
	}
	if out := berth("logs", "web"); !strings.Contains(out, hello+"\n") {
		t.Errorf("logs lack the greeting:\n%s", out)
	}
	if r, _ := h.Run(ctx, "berth", "--machines-dir", md, "rm", "web"); r.ExitCode == 0 {
		t.Errorf("rm of a running machine succeeded")
	}
	// berth run under systemd: nspawn registers the machine and makes
	// its own scope; output and exit code still pass through.
	if r, err := h.Run(ctx, "berth", "--machines-dir", md, "run", "--rm", "--network=none", "app", "/bin/sh", "-c", "id -u; exit 3"); err != nil || r.ExitCode != 3 || r.Stdout != "1000\n" {
		t.Errorf("berth run: %v\n%s", err, r)
	}
	berth("stop", "web")
	h.MustSh("journalctl -q -o cat -u berth-web.service | grep -qxF -e " + shq("bye "+greeting))
	berth("rm", "web")
	h.MustSh("! test -e /etc/systemd/system/berth-web.service && ! test -e /etc/systemd/nspawn/web.nspawn && ! test -e " + shq(md+"/web"))
	h.MustSh("test -d " + shq(md+"/app/bin"))
}

// shq quotes s for /bin/sh.
func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// cachedSystemdTree is the Debian tree with systemd that testhost boots its
// hosts from (read only here: it becomes an image layer).
func cachedSystemdTree(t *testing.T) string {
	t.Helper()
	root, err := testhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("BERTH_E2E_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache", "testhost")
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, testhost.Suite+"-*"))
	for _, d := range dirs {
		if fi, err := os.Stat(filepath.Join(d, "usr/lib/systemd/systemd")); err == nil && fi.Mode().IsRegular() {
			return d
		}
	}
	t.Fatalf("no cached %s tree with systemd in %s (boot a test host first)", testhost.Suite, cache)
	return ""
}

// TestSystemdBootMachine boots an image that contains systemd with
// `berth create --boot` and runs a command in it through `berth exec`.
func TestSystemdBootMachine(t *testing.T) {
	h := testhost.Boot(t, testhost.Options{})
	tree := cachedSystemdTree(t)
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	reg.Mkimage("image", "--layer", "dir:"+tree, "--push", reg.Ref("e2e/debian:v1"))
	h.MustRun("berth", "pull", "-q", "--name", "deb", reg.Ref("e2e/debian:v1"))
	h.MustRun("berth", "create", "--boot", "--network=none", "deb", "deb")
	h.MustRun("berth", "start", "deb")
	h.Eventually("deb has booted", 2*time.Minute,
		"berth exec deb /bin/systemctl is-system-running | grep -qxE 'running|degraded'")
	if out := h.MustRun("berth", "exec", "deb", "/bin/sh", "-c", "echo $((6*7)) $(cat /proc/1/comm)"); out != "42 systemd\n" {
		t.Errorf("exec in the booted machine printed %q", out)
	}
	h.MustRun("berth", "stop", "deb")
	if got := h.MustSh("systemctl is-active berth-deb.service || true"); got != "inactive\n" {
		t.Errorf("after stop berth-deb.service is %q", got)
	}
	h.MustRun("berth", "rm", "deb")
}
