package project

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/machine"
)

func upStack(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	e.fake.Commands()
	return e
}

func TestDownRemovesEverythingButVolumes(t *testing.T) {
	e := upStack(t)
	if err := e.host.Down(context.Background(), "app", DownOptions{Images: e.images}); err != nil {
		t.Fatal(err)
	}
	want := `systemctl stop -- berth_app.target berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service berth-app-web-1_port-127-0-0-1-8080-tcp.service berth-app-web-1_port-127-0-0-1-8080-tcp.socket berth_br-e6fb520bbf46.service
systemctl disable -- berth_app.target
systemctl daemon-reload
systemctl reset-failed -- berth_app.target berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service berth-app-web-1_port-127-0-0-1-8080-tcp.service berth-app-web-1_port-127-0-0-1-8080-tcp.socket berth_br-e6fb520bbf46.service
`
	if got := e.fake.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	for _, d := range []string{e.host.UnitDir, e.host.NspawnDir, e.host.MachinesDir} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s not empty after down: %v", d, ents)
		}
	}
	ents, _ := os.ReadDir(e.host.Dir("app"))
	if len(ents) != 1 || ents[0].Name() != "volumes" {
		t.Errorf("project dir after down holds %v, want only volumes", ents)
	}
	if _, err := os.Stat(filepath.Join(e.host.Dir("app"), "volumes/pgdata/seed.txt")); err != nil {
		t.Errorf("volume data lost: %v", err)
	}
	if len(e.images.installed) != 0 {
		t.Errorf("machines left: %v", e.images.installed)
	}

	// A second up finds the volume with its data.
	if _, err := e.up(t, e.load(t, stackYAML), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.Down(context.Background(), "app", DownOptions{Images: e.images, Volumes: true, RemoveImages: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.host.Dir("app")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("down -v left the project directory: %v", err)
	}
	if e.images.gcs != 1 {
		t.Errorf("down --rmi collected garbage %d times", e.images.gcs)
	}
	// Down of a project that is not installed is not an error.
	if err := e.host.Down(context.Background(), "app", DownOptions{Images: e.images}); err != nil {
		t.Errorf("second down: %v", err)
	}
}

func TestPs(t *testing.T) {
	e := upStack(t)
	e.fake.units["berth-app-migrate-1.service"] = map[string]string{"SubState": "exited", "ExecMainCode": "1"}
	e.fake.units["berth-app-web-1.service"] = map[string]string{"ActiveState": "activating", "SubState": "auto-restart", "ExecMainCode": "1", "ExecMainStatus": "2"}
	e.fake.units["berth-app-api-1.service"] = map[string]string{"ActiveState": "failed", "SubState": "failed", "Result": "exit-code", "ExecMainCode": "1", "ExecMainStatus": "1"}
	os.WriteFile(filepath.Join(e.host.Dir("app"), "machines/app-db-1/health.json"), []byte(`{"status":"unhealthy","failing_streak":2}`), 0o600)
	got, err := e.host.Ps(context.Background(), "app", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `[{"Name":"app-api-1","Project":"app","Service":"api","Image":"reg.test/api:1","State":"failed","Status":"failed (failed)","Health":"","ExitCode":1,"Publishers":[],"Unit":"berth-app-api-1.service","MainPID":42,"Ports":[]},` +
		`{"Name":"app-db-1","Project":"app","Service":"db","Image":"reg.test/pg:1","State":"running","Status":"active (running)","Health":"unhealthy","ExitCode":0,"Publishers":[],"Unit":"berth-app-db-1.service","MainPID":42,"Ports":[]},` +
		`{"Name":"app-migrate-1","Project":"app","Service":"migrate","Image":"reg.test/pg:1","State":"exited","Status":"active (exited)","Health":"","ExitCode":0,"Publishers":[],"Unit":"berth-app-migrate-1.service","MainPID":42,"Ports":[]},` +
		`{"Name":"app-web-1","Project":"app","Service":"web","Image":"reg.test/web:1","State":"restarting","Status":"activating (auto-restart)","Health":"","ExitCode":2,` +
		`"Publishers":[{"URL":"127.0.0.1","TargetPort":80,"PublishedPort":8080,"Protocol":"tcp"}],"Unit":"berth-app-web-1.service","MainPID":42,"Ports":["127.0.0.1:8080-\u003e80/tcp"]}]`
	if string(b) != want {
		t.Errorf("ps:\n%s\nwant:\n%s", b, want)
	}
	running, _ := e.host.Ps(context.Background(), "app", []string{"db", "api"}, false)
	if len(running) != 1 || running[0].Service != "db" {
		t.Errorf("ps db api without -a = %+v, want only db", running)
	}
	if _, err := e.host.Ps(context.Background(), "nope", nil, true); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("ps of an unknown project = %v", err)
	}
}

func TestLogsPrefixesLines(t *testing.T) {
	e := upStack(t)
	args := "journalctl --no-pager --quiet --output=json --output-fields=MESSAGE,_SYSTEMD_UNIT,__REALTIME_TIMESTAMP --lines=2 _SYSTEMD_UNIT=berth-app-db-1.service + _SYSTEMD_UNIT=berth-app-migrate-1.service"
	e.fake.out[args] = `{"MESSAGE":"ready to accept connections","_SYSTEMD_UNIT":"berth-app-db-1.service","__REALTIME_TIMESTAMP":"1700000000000000"}
{"MESSAGE":[109,105,103,114,97,116,101,100,255],"_SYSTEMD_UNIT":"berth-app-migrate-1.service","__REALTIME_TIMESTAMP":"1700000001000000"}
`
	var out strings.Builder
	if err := e.host.Logs(context.Background(), "app", &out, LogOptions{Services: []string{"db", "migrate"}, Tail: 2}); err != nil {
		t.Fatal(err)
	}
	want := "db      | ready to accept connections\nmigrate | migrated\xff\n"
	if out.String() != want {
		t.Errorf("logs = %q, want %q", out.String(), want)
	}
	out.Reset()
	e.host.Logs(context.Background(), "app", &out, LogOptions{Services: []string{"db", "migrate"}, Tail: 2, NoPrefix: true, Timestamps: true})
	if !strings.HasPrefix(out.String(), "2023-11-14T22:13:20Z ready") {
		t.Errorf("logs -t --no-log-prefix = %q", out.String())
	}
}

func TestExecUsesTheMachinesInitOptions(t *testing.T) {
	e := upStack(t)
	e.fake.out["machinectl show --property=Leader --value -- app-db-1"] = "4242\n"
	e.host.ReadFile = func(p string) ([]byte, error) {
		switch p {
		case "/proc/4242/cmdline":
			return []byte("/.berth/init\x00--user\x00postgres\x00--workdir\x00/srv\x00--env-json\x00[\"A=1\"]\x00--\x00db-start\x00"), nil
		case "/proc/4242/environ":
			return []byte("PATH=/usr/bin\x00container=systemd-nspawn\x00"), nil
		}
		return nil, os.ErrNotExist
	}
	var ran command.Command
	e.host.Runner = runnerFunc(func(c command.Command) error {
		if c.Args[0] == "machinectl" {
			return e.fake.Run(context.Background(), c)
		}
		ran = c
		return &command.ExitError{Command: c.String(), Code: 7}
	})
	code, err := e.host.Exec(context.Background(), "app", "db", []string{"sh", "-c", "exit 7"}, ExecOptions{Env: []string{"B=2"}, WorkDir: "/tmp"})
	if err != nil || code != 7 {
		t.Fatalf("exec = %d, %v; want 7, nil", code, err)
	}
	want := `nsenter --target=4242 --all --root --wd -- /.berth/init --env-json '["A=1"]' --user postgres --workdir /tmp --env-json '["B=2"]' -- sh -c 'exit 7'`
	if got := ran.String(); got != want {
		t.Errorf("exec ran\n%s\nwant\n%s", got, want)
	}
	if !reflect.DeepEqual(ran.Env, []string{"PATH=/usr/bin", "container=systemd-nspawn"}) {
		t.Errorf("exec environment = %q", ran.Env)
	}
	if _, err := e.host.Exec(context.Background(), "app", "db", []string{"true"}, ExecOptions{Index: 2}); err == nil {
		t.Error("exec in instance 2 of a one-instance service succeeded")
	}
	if _, err := e.host.Exec(context.Background(), "app", "nope", []string{"true"}, ExecOptions{}); !errors.Is(err, ErrNoService) {
		t.Errorf("exec in unknown service = %v", err)
	}
}

type runnerFunc func(command.Command) error

func (f runnerFunc) Run(_ context.Context, c command.Command) error { return f(c) }

func TestExecInitArgvRefusesOtherInits(t *testing.T) {
	if _, err := execInitArgv([]string{"/bin/sh", "-c", "x"}, []string{"id"}, ExecOptions{}); err == nil {
		t.Error("accepted a machine whose init is not berth-init")
	}
	if _, err := execInitArgv([]string{machine.InitPath, "--"}, []string{"id"}, ExecOptions{Env: []string{"=x"}}); err == nil {
		t.Error("accepted environment without a name")
	}
}

func TestStopStartRestart(t *testing.T) {
	e := upStack(t)
	ctx := context.Background()
	if err := e.host.Stop(ctx, "app", []string{"web"}); err != nil {
		t.Fatal(err)
	}
	if err := e.host.Restart(ctx, "app", []string{"db"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.host.Start(ctx, "app", nil, 0); err != nil {
		t.Fatal(err)
	}
	want := `systemctl stop -- berth-app-web-1_port-127-0-0-1-8080-tcp.socket berth-app-web-1.service
systemctl restart --no-block -- berth-app-db-1.service
systemctl start --no-block -- berth-app-db-1.service berth-app-db-1_health.service
systemctl list-jobs --plain --no-legend
systemctl show --property=Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainCode,MainPID,StatusText,ActiveEnterTimestamp,ControlGroup -- berth-app-db-1.service berth-app-db-1_health.service
systemctl start --no-block -- berth_app.target berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service berth-app-web-1_port-127-0-0-1-8080-tcp.socket
systemctl show --property=Id,LoadState,ActiveState,SubState,Result,ExecMainStatus,ExecMainCode,MainPID,StatusText,ActiveEnterTimestamp,ControlGroup -- berth-app-api-1.service berth-app-db-1.service berth-app-db-1_health.service berth-app-migrate-1.service berth-app-web-1.service
`
	if got := e.fake.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
}

func TestTopFiltersByCgroup(t *testing.T) {
	e := upStack(t)
	e.fake.out["ps -e --no-headers -o cgroup:512,user,pid,ppid,c,stime,tty,time,args"] = `0::/machine.slice/berth-app-db-1.service/payload root 100 90 0 10:00 ? 00:00:00 /.berth/init -- db-start
0::/machine.slice/berth-app-db-1.service/supervisor root 90 1 0 10:00 ? 00:00:00 systemd-nspawn --machine=app-db-1
0::/machine.slice/berth-app-db-1.service/payload postgres 101 100 0 10:00 ? 00:00:01 postgres -D /data
0::/machine.slice/berth-app-db-1x.service/payload root 200 1 0 10:00 ? 00:00:00 other
0::/system.slice/cron.service root 5 1 0 10:00 ? 00:00:00 cron
`
	procs, err := e.host.Top(context.Background(), "app", []string{"db"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range procs {
		got = append(got, p.Machine+": "+strings.Join(p.Fields, "|"))
	}
	want := []string{
		"app-db-1: root|100|90|0|10:00|?|00:00:00|/.berth/init -- db-start",
		"app-db-1: postgres|101|100|0|10:00|?|00:00:01|postgres -D /data",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("top:\n%q\nwant\n%q", got, want)
	}
}

func TestImagesAndPull(t *testing.T) {
	e := upStack(t)
	rows, err := e.host.Images("app", []string{"web"}, e.images)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Machine != "app-web-1" || rows[0].Reference != "reg.test/web:1" || rows[0].Size != 100 {
		t.Errorf("images = %+v", rows)
	}
	e.images.pulls = nil
	if err := e.host.PullImages(context.Background(), "app", []string{"db", "api"}, e.images); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(e.images.pulls, " "); got != "app-api-1=reg.test/api:1 app-db-1=reg.test/pg:1" {
		t.Errorf("pulls = %s", got)
	}
}

// A volume seed comes from an image: a symlink there must not make up
// copy host files into the volume.
func TestSeedStaysInsideTheImage(t *testing.T) {
	e := newTestEnv(t)
	root := filepath.Join(e.host.MachinesDir, "m")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "inside"), []byte("image file"), 0o644)
	// /data -> /etc: resolved inside the machine, it is the image's /etc.
	os.Symlink("/etc", filepath.Join(root, "data"))
	// /data/escape -> ../../../../../../etc/passwd would be the host's.
	os.Symlink("../../../../../../../etc/passwd", filepath.Join(root, "etc", "escape"))
	dst := filepath.Join(e.host.Root, "vol")
	if err := e.host.seedVolumes([]compose.File{{Path: dst, Dir: true, Mode: 0o755, SeedFrom: filepath.Join(root, "data")}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "inside")); err != nil || string(b) != "image file" {
		t.Errorf("seed did not copy the image's file: %q %v", b, err)
	}
	fi, err := os.Lstat(filepath.Join(dst, "escape"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was not copied as a link: %v %v", fi, err)
	}
	if err := e.host.seedVolumes([]compose.File{{Path: filepath.Join(e.host.Root, "v2"), Dir: true, SeedFrom: "/etc"}}); err == nil {
		t.Error("seeded from outside the machines directory")
	}
}

// The exec'd command gets a terminal of its own, relayed to the caller's.
func TestWithPTYRelays(t *testing.T) {
	m, s, err := openPTY()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer m.Close()
	defer s.Close()
	// s stands for the caller's terminal; the command sees another one.
	var out strings.Builder
	var sawTTY bool
	err = withPTY(s, &out, func(slave *os.File) error {
		_, terr := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		sawTTY = terr == nil && slave.Name() != s.Name()
		_, err := slave.WriteString("hello from the command\n")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawTTY {
		t.Error("the command did not get a new terminal")
	}
	// The slave side's line discipline turns \n into \r\n.
	if out.String() != "hello from the command\r\n" {
		t.Errorf("relayed %q", out.String())
	}
	// The caller's terminal is back in its mode (echo on).
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil || tio.Lflag&unix.ECHO == 0 {
		t.Errorf("caller's terminal not restored: %v %v", tio, err)
	}
}

// A read_only service's tree gets its mount points before it starts,
// each created inside the machine: an image's symlink is followed only
// within the machine's root, and one that leads nowhere inside it is an
// error, never a path on the host.
func TestReadOnlyMountPoints(t *testing.T) {
	e := newTestEnv(t)
	yaml := strings.Replace(stackYAML, "    image: reg.test/pg:1\n    restart: always", "    image: reg.test/pg:1\n    read_only: true\n    restart: always", 1)
	root := filepath.Join(e.host.MachinesDir, "app-db-1")
	os.MkdirAll(filepath.Join(root, "srv/run"), 0o755)
	// An absolute link means /srv/run inside the machine.
	os.Symlink("/srv/run", filepath.Join(root, "run"))
	e.images.installed["app-db-1"] = ImageRecord{Reference: "reg.test/pg:1", Digest: "sha256:" + strings.Repeat("a", 64)}
	if _, err := e.up(t, e.load(t, yaml), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".berth/init", ".berth/image.json", "etc/hosts", "srv/run/secrets/dbpass"} {
		fi, err := os.Lstat(filepath.Join(root, f))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("mount point /%s: %v, %v", f, fi, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, "data")); err != nil || !fi.IsDir() {
		t.Errorf("volume mount point /data: %v", err)
	}
	// Services without read_only are left to nspawn.
	if _, err := os.Lstat(filepath.Join(e.host.MachinesDir, "app-api-1", ".berth")); err == nil {
		t.Error("mount points made for a service without read_only")
	}

	// A link climbing out of the machine to a host directory.
	outside := t.TempDir()
	os.Remove(filepath.Join(root, "run"))
	os.Symlink("../../../../../../../../.."+outside, filepath.Join(root, "run"))
	_, err := e.up(t, e.load(t, yaml), UpOptions{})
	if err == nil || !strings.Contains(err.Error(), "create mount point /run/secrets/dbpass in machine app-db-1") {
		t.Errorf("up = %v, want a mount point error", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("created outside the machine: %v", ents)
	}
}

func TestPsShowsEveryAddressAsDockerDoes(t *testing.T) {
	e := newTestEnv(t)
	if _, err := e.up(t, e.load(t, strings.Replace(stackYAML, `"127.0.0.1:8080:80"`, `"8080:80"`, 1)), UpOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := e.host.Ps(context.Background(), "app", []string{"web"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || strings.Join(st[0].Ports, ",") != "0.0.0.0:8080->80/tcp" {
		t.Errorf("ps web = %+v", st)
	}
}

// TestExecInitArgvImageConfig: a machine that resolves its image at start
// re-executes its berth-init resolved (the stop signal is the machine's
// own, not the exec's); should it not have, the image config and the
// environment overrides carry over to the exec, and the service's Cmd
// does not.
func TestExecInitArgvImageConfig(t *testing.T) {
	for _, tt := range []struct {
		leader []string
		want   []string
	}{
		{[]string{machine.InitPath, "--user", "1000", "--workdir", "/srv", "--stop-signal", "SIGQUIT", "--keep-home", "--", "app"},
			[]string{machine.InitPath, "--keep-home", "--user", "1000", "--workdir", "/srv", "--", "id"}},
		{[]string{machine.InitPath, "--image-config", machine.ImageConfigPath, "--user", "app", "--stop-signal", "SIGINT", "--env", "A=1", "--env-json", `["B=x\ny"]`, "--cmd", "serve", "--port", "80"},
			[]string{machine.InitPath, "--image-config", machine.ImageConfigPath, "--env", "A=1", "--env-json", `["B=x\ny"]`, "--user", "app", "--", "id"}},
		{[]string{machine.InitPath, "--image-config", machine.ImageConfigPath, "--cmd-json", `["a\nb"]`},
			[]string{machine.InitPath, "--image-config", machine.ImageConfigPath, "--", "id"}},
	} {
		got, err := execInitArgv(tt.leader, []string{"id"}, ExecOptions{})
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("leader %q: exec %q, %v; want %q", tt.leader, got, err, tt.want)
		}
	}
	if _, err := execInitArgv([]string{machine.InitPath, "--future-option", "x", "--", "app"}, []string{"id"}, ExecOptions{}); err == nil {
		t.Error("accepted an init option this berth does not know")
	}
}
