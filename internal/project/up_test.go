package project

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestUpInstallsPullsAndStarts(t *testing.T) {
	e := newTestEnv(t)
	p := e.load(t, stackYAML)
	res, err := e.up(t, p, UpOptions{})
	if err != nil {
		t.Fatalf("up: %v\nstderr:\n%s", err, e.stderr)
	}
	// migrate uses db's image: its tree is copied from db, not pulled.
	wantPulls := "app-api-1=reg.test/api:1 app-db-1=reg.test/pg:1 app-migrate-1<app-db-1 app-web-1=reg.test/web:1"
	if got := strings.Join(e.images.pulls, " "); got != wantPulls {
		t.Errorf("pulls = %s\nwant    %s", got, wantPulls)
	}
	if len(res.Restarted) != 0 {
		t.Errorf("first up restarted %v", res.Restarted)
	}
	// The routes are read twice: to keep the automatic subnets off them,
	// and to check every subnet (explicit ones too) against them.
	want := `ip -o -4 route show table all
ip -o -4 route show table all
systemctl daemon-reload
systemctl enable -- berth_app.target
systemctl start --no-block -- berth_app.target
systemctl list-jobs --plain --no-legend
systemctl show --property=Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainCode,MainPID,StatusText,ActiveEnterTimestamp,ControlGroup -- berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service
`
	if got := e.fake.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	for _, f := range []string{
		filepath.Join(e.host.UnitDir, "berth_app.target"),
		filepath.Join(e.host.UnitDir, "berth-app-db-1_health.service"),
		filepath.Join(e.host.UnitDir, "berth-app-web-1_port-127-0-0-1-8080-tcp.socket"),
		filepath.Join(e.host.NspawnDir, "app-api-1.nspawn"),
		filepath.Join(e.host.Root, "compose/app/project.json"),
		filepath.Join(e.host.Root, "compose/app/applied.json"),
	} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	// The new named volume got the image's files, as under docker.
	seed, err := os.ReadFile(filepath.Join(e.host.Root, "compose/app/volumes/pgdata/seed.txt"))
	if err != nil || string(seed) != "from reg.test/pg:1" {
		t.Errorf("volume not seeded from the image: %q, %v", seed, err)
	}
	// No leftovers of the atomic writes.
	filepath.Walk(e.host.Root, func(p string, fi os.FileInfo, err error) error {
		if strings.Contains(p, ".berth-tmp-") || strings.Contains(p, ".berth-seed") {
			t.Errorf("leftover temporary file %s", p)
		}
		return nil
	})
}

func TestUpRestartsOnlyChangedServices(t *testing.T) {
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	e.fake.Commands()

	// Unchanged: nothing pulled again, nothing restarted.
	res, err := e.up(t, e.load(t, stackYAML), UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Restarted) != 0 || len(e.images.pulls) != 4 {
		t.Errorf("unchanged up restarted %v, pulled %v", res.Restarted, e.images.pulls)
	}
	if got := e.fake.Commands(); strings.Contains(got, "restart") {
		t.Errorf("unchanged up restarted something:\n%s", got)
	}

	// api's environment changed: only api restarts.
	res, err = e.up(t, e.load(t, strings.Replace(stackYAML, "MODE: one", "MODE: two", 1)), UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Restarted, " ") != "app-api-1" {
		t.Errorf("restarted %v, want [app-api-1]", res.Restarted)
	}
	if got := e.fake.Commands(); !strings.Contains(got, "systemctl try-restart -- berth-app-api-1.service\n") {
		t.Errorf("api not restarted:\n%s", got)
	}

	// The secret's source file changed: only db, which mounts it.
	if err := os.WriteFile(filepath.Join(e.dir, "dbpass.txt"), []byte("other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.load(t, strings.Replace(stackYAML, "MODE: one", "MODE: two", 1))
	os.WriteFile(filepath.Join(e.dir, "dbpass.txt"), []byte("changed\n"), 0o600)
	res, err = e.up(t, p, UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Restarted, " ") != "app-db-1" {
		t.Errorf("restarted %v, want [app-db-1]", res.Restarted)
	}

	// A new image for web (pull always): web is stopped, replaced,
	// restarted; nothing else.
	e.images.digest["reg.test/web:1"] = "sha256:" + strings.Repeat("b", 64)
	res, err = e.up(t, p, UpOptions{Pull: "always", Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Restarted, " ") != "app-web-1" {
		t.Errorf("restarted %v, want [app-web-1]", res.Restarted)
	}
	got := e.fake.Commands()
	for _, want := range []string{
		"systemctl stop -- berth-app-web-1.service\n",
		"systemctl start --no-block -- berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service berth-app-web-1_port-127-0-0-1-8080-tcp.socket\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

func TestUpReportsWhichServiceFailed(t *testing.T) {
	e := newTestEnv(t)
	e.fake.units["berth-app-migrate-1.service"] = map[string]string{"ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "ExecMainCode": "1", "ExecMainStatus": "3"}
	e.fake.units["berth-app-api-1.service"] = map[string]string{"ActiveState": "inactive", "SubState": "dead"}
	e.fake.units["berth-app-web-1.service"] = map[string]string{"ActiveState": "inactive", "SubState": "dead"}
	e.fake.journal["berth-app-migrate-1.service"] = "psql: relation \"x\" exists\nmigration failed\n"
	_, err := e.up(t, e.load(t, stackYAML), UpOptions{})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("up = %v, want ErrNotReady", err)
	}
	want := `project app:
  api (berth-app-api-1.service): not started: a service it depends on failed
  migrate (berth-app-migrate-1.service): failed, result exit-code, exit status 3
    | psql: relation "x" exists
    | migration failed
  web (berth-app-web-1.service): not started: a service it depends on failed
services not ready`
	if err.Error() != want {
		t.Errorf("error:\n%s\nwant:\n%s", err, want)
	}
}

func TestUpTimesOut(t *testing.T) {
	e := newTestEnv(t)
	e.fake.units["berth-app-db-1_health.service"] = map[string]string{"ActiveState": "activating", "SubState": "start"}
	e.fake.units["berth-app-api-1.service"] = map[string]string{"ActiveState": "inactive", "SubState": "dead"}
	e.fake.out["systemctl list-jobs --plain --no-legend"] = "12 berth-app-api-1.service start waiting\n"
	e.fake.journal["berth-app-db-1_health.service"] = "check failed: exit status 2\n"
	// The clock jumps an hour per reading: the first poll is past the
	// deadline, so the test never waits.
	var now = e.host.Now
	_ = now
	tick := 0
	e.host.Now = func() (t0 timeT) { tick++; return epoch.Add(hours(tick)) }
	_, err := e.up(t, e.load(t, stackYAML), UpOptions{})
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("up = %v, want ErrNotReady", err)
	}
	for _, want := range []string{"not ready after 5m0s", "db (healthcheck) (berth-app-db-1_health.service): activating (start)\n    | check failed: exit status 2", "api (berth-app-api-1.service): inactive (dead)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%s", want, err)
		}
	}
}

func TestUpSelectsDependencies(t *testing.T) {
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{Services: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	// web is not a dependency of api: not started (but installed, so
	// its image is pulled).
	got := e.fake.Commands()
	if !strings.Contains(got, "systemctl start --no-block -- berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service\n") {
		t.Errorf("up api did not start api and its dependencies:\n%s", got)
	}
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{Services: []string{"nope"}}); !errors.Is(err, ErrNoService) {
		t.Errorf("up nope = %v, want ErrNoService", err)
	}
}

func TestUpRemovesServicesNoLongerInTheProject(t *testing.T) {
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	e.fake.Commands()
	smaller := stackYAML[:strings.Index(stackYAML, "  web:")] + stackYAML[strings.Index(stackYAML, "volumes:\n  pgdata"):]
	res, err := e.up(t, e.load(t, smaller), UpOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Removed, " ") != "app-web-1" {
		t.Errorf("removed %v", res.Removed)
	}
	if got := e.fake.Commands(); !strings.Contains(got, "systemctl stop -- berth-app-web-1.service berth-app-web-1_port-127-0-0-1-8080-tcp.service berth-app-web-1_port-127-0-0-1-8080-tcp.socket\n") {
		t.Errorf("web's units not stopped:\n%s", got)
	}
	for _, p := range []string{filepath.Join(e.host.UnitDir, "berth-app-web-1.service"), filepath.Join(e.host.NspawnDir, "app-web-1.nspawn"), filepath.Join(e.host.MachinesDir, "app-web-1")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestConcurrentUpsAreSerialised(t *testing.T) {
	e := newTestEnv(t)
	unlock, err := e.host.lock(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	// While the lock is held, an up waits (its Sleep is where it
	// waits); release the lock from that wait.
	waited := 0
	e.host.Sleep = func(ctx context.Context, _ timeD) error {
		waited++
		if waited == 1 {
			unlock()
		}
		return nil
	}
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if waited == 0 || !strings.Contains(e.stderr.String(), "waiting for another berth command on project app") {
		t.Errorf("up did not wait for the lock (waited %d): %s", waited, e.stderr)
	}
}

func TestUpRefusesSubnetsThatOverlapHostRoutes(t *testing.T) {
	e := newTestEnv(t)
	p := e.load(t, stackYAML)
	// The project's automatic subnet, as the conversion picks it.
	if _, err := e.up(t, p, UpOptions{NoStart: true}); err != nil {
		t.Fatal(err)
	}
	m, _ := e.host.Manifest("app")
	subnet := m.Networks[0].Subnet
	// A VPN now routes that subnet: the automatic subnet moves off it.
	e.fake.out["ip -o -4 route show table all"] = "default via 10.0.0.1 dev eth0\n" + subnet + " dev wg0 proto kernel scope link src 1.2.3.4\n"
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatalf("up beside a route over its old subnet: %v", err)
	}
	m, _ = e.host.Manifest("app")
	if moved := m.Networks[0].Subnet; moved == subnet || netip.MustParsePrefix(moved).Overlaps(netip.MustParsePrefix(subnet)) {
		t.Errorf("automatic subnet %s, want one off the route %s", moved, subnet)
	}
	// An explicit subnet over the route is refused, naming both.
	explicit := strings.Replace(stackYAML, "services:", "networks:\n  default:\n    ipam:\n      config:\n        - subnet: "+subnet+"\nservices:", 1)
	_, err := e.up(t, e.load(t, explicit), UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "network default ("+subnet+") overlaps the host's route "+subnet+" dev wg0") {
		t.Errorf("up = %v, want an overlap error", err)
	}
	// A route through the project's own bridge is not a conflict, and
	// does not move the subnet.
	m, _ = e.host.Manifest("app")
	e.fake.out["ip -o -4 route show table all"] = subnet + " dev wg0 proto kernel scope link src 1.2.3.4\n" +
		m.Networks[0].Subnet + " dev " + m.Networks[0].Bridge + " proto kernel scope link\nlocal 127.0.0.1 dev lo table local\n"
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Errorf("up with its own bridge route: %v", err)
	}
	if again, _ := e.host.Manifest("app"); again.Networks[0].Subnet != m.Networks[0].Subnet {
		t.Errorf("own bridge's route moved the subnet %s → %s", m.Networks[0].Subnet, again.Networks[0].Subnet)
	}
}

// TestTwoProjectsNeverShareASubnet: a second project whose automatic
// subnet would be the first one's gets another (the first's manifest
// reserves it), as two projects coming up at once do under the subnet lock.
func TestTwoProjectsNeverShareASubnet(t *testing.T) {
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{NoStart: true}); err != nil {
		t.Fatal(err)
	}
	first, _ := e.host.Manifest("app")
	unlock, taken, err := e.host.reserveSubnets(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if !slices.Contains(taken, netip.MustParsePrefix(first.Networks[0].Subnet)) {
		t.Errorf("reserved for another project: %v, want %s among them", taken, first.Networks[0].Subnet)
	}
	// The same project keeps its own.
	unlock, taken, _ = e.host.reserveSubnets(context.Background(), "app")
	unlock()
	if slices.Contains(taken, netip.MustParsePrefix(first.Networks[0].Subnet)) {
		t.Errorf("a project's own subnet is reserved against it: %v", taken)
	}
}
