package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// pgRecipe names the cached PostgreSQL tree; change it when the recipe in
// pgRootfs changes so caches rebuild.
const pgRecipe = "pg-rootfs-v2"

// pgRootfs returns a Debian root filesystem with PostgreSQL and busybox
// (debootstrap from the same mirror as the test hosts), built once under
// .cache/compose/ and reused: the image every service of the test project
// runs. Building it costs a debootstrap (about 2 min); the cache makes
// later runs cost nothing.
func pgRootfs(t *testing.T) string {
	t.Helper()
	testhost.RequireTools(t, "debootstrap")
	root, err := testhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(root, ".cache", "compose")
	if d := os.Getenv("BERTH_E2E_CACHE"); d != "" {
		cache = filepath.Join(d, "compose")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, pgRecipe)
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	// Test binaries started together build the tree once.
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/psql")); err == nil {
		return dir
	}
	begin := time.Now()
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	mirror := os.Getenv("BERTH_E2E_MIRROR")
	if mirror == "" {
		mirror = "http://deb.debian.org/debian"
	}
	args := []string{"--variant=minbase", "--include=postgresql,busybox"}
	if _, err := os.Stat("/usr/share/keyrings/debian-archive-keyring.gpg"); err == nil {
		args = append(args, "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg")
	}
	args = append(args, testhost.Suite, tmp, mirror)
	cmd := exec.Command("debootstrap", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap PostgreSQL image: %v\n%s", err, tail(string(out), 30))
	}
	if err := preparePG(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("timing: build PostgreSQL rootfs (debootstrap): %v", since(begin))
	return dir
}

// preparePG trims the fresh tree into an image: no cluster of the
// package's own (the service makes one in its volume), no apt caches,
// documentation or translations, no LLVM JIT (half the tree; PostgreSQL
// runs without its JIT provider), and the volume's mount point owned by
// postgres so the new volume is too (compose seeds a new volume from the
// image, owner included). 444 MB → 220 MB: four machines unpack it.
func preparePG(dir string) error {
	for _, p := range []string{
		"var/lib/postgresql/15", "etc/postgresql/15", "var/cache/apt/archives", "var/lib/apt/lists",
		"usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
		"usr/lib/x86_64-linux-gnu/libLLVM-14.so.1", "usr/lib/x86_64-linux-gnu/libz3.so.4",
		"usr/lib/postgresql/15/lib/llvmjit.so", "usr/lib/postgresql/15/lib/llvmjit_types.bc", "usr/lib/postgresql/15/lib/bitcode",
	} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			return err
		}
	}
	uid, gid, err := lookupPasswd(dir, "postgres")
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "var/lib/postgresql/data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	return os.Chown(data, uid, gid)
}

// lookupPasswd reads user's uid and gid from the tree's /etc/passwd (the
// tree was just built by debootstrap, so the plain path is safe).
func lookupPasswd(root, user string) (int, int, error) {
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 3 && f[0] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 == nil && err2 == nil {
				return uid, gid, nil
			}
		}
	}
	return 0, 0, fmt.Errorf("no user %s in %s/etc/passwd", user, root)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// journalTime returns the realtime (µs) of the first journal entry of the
// current boot with MESSAGE_ID id about unit (systemd's "Starting" and
// "Started" messages carry UNIT= and a MESSAGE_ID).
func journalTime(t *testing.T, h *testhost.Host, id, unit string) int64 {
	t.Helper()
	out := h.MustRun("journalctl", "-b", "--no-pager", "-o", "json", "MESSAGE_ID="+id, "UNIT="+unit)
	line, _, _ := strings.Cut(out, "\n")
	var e struct {
		T string `json:"__REALTIME_TIMESTAMP"`
	}
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("no journal entry %s for %s: %q", id, unit, out)
	}
	us, err := strconv.ParseInt(e.T, 10, 64)
	if err != nil {
		t.Fatalf("journal entry %s for %s: bad timestamp %q", id, unit, e.T)
	}
	return us
}

// systemd's catalog IDs for "unit starting" and "unit started".
const (
	msgStarting = "7d4958e842da4a758f6c1cdc7b36dcc5"
	msgStarted  = "39f53479d3a045ac8e11786248231fbf"
)

// TestComposeStack proves issue 5 on a real systemd host: the three-tier
// project of testdata/compose/stack (PostgreSQL with a healthcheck, a
// one-shot migration, an API, a web front on a host port) comes up in
// dependency order, serves a row written by the migration on the host's
// 127.0.0.1, survives a crash of its database and a reboot of the host,
// keeps its secret out of systemd and world-readable files, keeps its
// volume across down/up, and leaves nothing behind after down -v.
func TestComposeStack(t *testing.T) {
	t.Parallel()
	if !testhost.Enabled() {
		// Checked before building the PostgreSQL tree, which costs a
		// debootstrap.
		t.Skip("end-to-end test: set BERTH_E2E=1 or run scripts/e2e.sh")
	}
	begin := time.Now()
	pg := pgRootfs(t)
	t.Logf("timing: PostgreSQL rootfs ready: %v", since(begin))

	begin = time.Now()
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	t.Logf("timing: boot test host: %v", since(begin))
	begin = time.Now()
	h.InstallBerth()
	reg := h.StartRegistry(5000)
	t.Logf("timing: install berth, start registry: %v", since(begin))

	begin = time.Now()
	reg.Mkimage("image", "--layer", "dir:"+pg, "--layer", "dir:testdata/compose/stack/image",
		"--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--env", "LANG=C.UTF-8",
		"--push", reg.Ref("pg:1"))
	t.Logf("timing: build and push the PostgreSQL image: %v", since(begin))

	h.CopyIn("testdata/compose/stack", "/srv/stack")
	h.MustSh("chmod 600 /srv/stack/dbpass.txt")
	secret := strings.TrimSpace(string(h.ReadFile("/srv/stack/dbpass.txt")))
	compose := "cd /srv/stack && REGISTRY=" + reg.Addr + " berth compose "
	up := compose + "up -d --init-binary /usr/local/bin/berth-init --berth-binary /usr/local/bin/berth"
	page := "curl -fsS --max-time 10 http://127.0.0.1:8088/"

	begin = time.Now()
	h.MustSh(up)
	t.Logf("timing: first berth compose up (1 pull, 3 copies, initdb, migrate): %v", since(begin))

	t.Run("page shows the migrated row", func(t *testing.T) {
		h := h.For(t)
		if got := h.MustSh(page); !strings.Contains(got, "hello from migrate") {
			t.Errorf("page = %q, want the row migrate wrote", got)
		}
	})

	t.Run("order from the journal", func(t *testing.T) {
		h := h.For(t)
		healthy := journalTime(t, h, msgStarted, "berth-stack-db-1_health.service")
		migrated := journalTime(t, h, msgStarted, "berth-stack-migrate-1.service")
		migrateStart := journalTime(t, h, msgStarting, "berth-stack-migrate-1.service")
		apiStart := journalTime(t, h, msgStarting, "berth-stack-api-1.service")
		if !(healthy <= migrateStart && healthy <= apiStart && migrated <= apiStart) {
			t.Errorf("order wrong: db healthy at %d, migrate starting %d, migrate done %d, api starting %d", healthy, migrateStart, migrated, apiStart)
		}
		if st := h.MustRun("systemctl", "show", "-p", "ExecMainStatus", "--value", "berth-stack-migrate-1.service"); strings.TrimSpace(st) != "0" {
			t.Errorf("migrate exit status %q, want 0", st)
		}
	})

	t.Run("ps", func(t *testing.T) {
		h := h.For(t)
		var st []struct {
			Service, State, Health string
			Ports                  []string
		}
		if err := json.Unmarshal([]byte(h.MustSh(compose+"ps -a --format json")), &st); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, s := range st {
			got[s.Service] = s.State + "/" + s.Health + "/" + strings.Join(s.Ports, ",")
		}
		want := map[string]string{"db": "running/healthy/", "migrate": "exited//", "api": "running//", "web": "running//127.0.0.1:8088->80/tcp"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("ps %s = %q, want %q (all: %v)", k, got[k], v, got)
			}
		}
	})

	t.Run("logs exec top images", func(t *testing.T) {
		h := h.For(t)
		if got := h.MustSh(compose + "logs migrate"); !strings.Contains(got, "migrate | migrate: done") {
			t.Errorf("logs migrate = %q", got)
		}
		if got := h.MustSh(compose + "logs --tail 5 db api"); !strings.Contains(got, "db ") {
			t.Errorf("logs db api lack the db prefix: %q", got)
		}
		r, err := h.Sh(t.Context(), compose+"exec -T db sh -c 'id -un; exit 7'")
		if err != nil || r.ExitCode != 7 || strings.TrimSpace(r.Stdout) != "postgres" {
			t.Errorf("exec: exit %d (want 7), stdout %q (want postgres), err %v, stderr %s", r.ExitCode, r.Stdout, err, r.Stderr)
		}
		if got := h.MustSh(compose + "top db"); !strings.Contains(got, "postgres") {
			t.Errorf("top db shows no postgres process:\n%s", got)
		}
		if got := h.MustSh(compose + "images"); strings.Count(got, reg.Ref("pg:1")) != 4 {
			t.Errorf("images:\n%s", got)
		}
	})

	t.Run("exec gives a terminal unless -T", func(t *testing.T) {
		h := h.For(t)
		// script(1) runs berth on a pseudo-terminal, as a user's shell.
		probe := `sh -c "if test -t 0 && test -t 1; then echo on-a-terminal; else echo no-terminal; fi"`
		got := h.MustSh("cd /srv/stack && script -qec 'REGISTRY=" + reg.Addr + " berth compose exec db " + probe + "' /dev/null")
		if !strings.Contains(got, "on-a-terminal") {
			t.Errorf("exec on a terminal: %q, want the command on a terminal", got)
		}
		got = h.MustSh("cd /srv/stack && script -qec 'REGISTRY=" + reg.Addr + " berth compose exec -T db " + probe + "' /dev/null")
		if !strings.Contains(got, "no-terminal") {
			t.Errorf("exec -T on a terminal: %q, want the command without a terminal", got)
		}
	})

	t.Run("logs follow", func(t *testing.T) {
		h := h.For(t)
		r, err := h.Sh(t.Context(), compose+"logs --follow --tail 3 db & pid=$!; sleep 3; kill -INT $pid; wait $pid; echo status=$?")
		if err != nil || !strings.Contains(r.Stdout, "db | ") || !strings.Contains(r.Stdout, "status=0") {
			t.Errorf("logs --follow: %v\n%s", err, r)
		}
	})

	t.Run("up again restarts only what changed", func(t *testing.T) {
		h := h.For(t)
		ids := func() map[string]string {
			out := map[string]string{}
			for _, s := range []string{"db", "migrate", "api"} {
				out[s] = strings.TrimSpace(h.MustRun("systemctl", "show", "-p", "InvocationID", "--value", "berth-stack-"+s+"-1.service"))
			}
			return out
		}
		before := ids()
		begin := time.Now()
		// A concurrent second up must wait for the first (project lock)
		// and both must succeed: neither sees a half-installed project.
		h.MustSh(up + " -f compose.yaml -f change-api.yaml & a=$!; sleep 0.2; " + strings.Replace(up, "up -d", "-f compose.yaml -f change-api.yaml up -d", 1) + "; wait $a")
		t.Logf("timing: two concurrent ups applying a change: %v", since(begin))
		after := ids()
		if before["db"] != after["db"] || before["migrate"] != after["migrate"] {
			t.Errorf("db or migrate restarted for a change to api: before %v, after %v", before, after)
		}
		if before["api"] == after["api"] {
			t.Errorf("api not restarted after its environment changed")
		}
		if got := h.MustSh(compose + "exec -T api printenv CHANGED"); strings.TrimSpace(got) != "yes" {
			t.Errorf("api's new environment: CHANGED=%q", got)
		}
		begin = time.Now()
		h.Eventually("page served after the change", 60*time.Second, page+" | grep -q 'hello from migrate'")
		t.Logf("timing: page served again after the change: %v", since(begin))
	})

	t.Run("secret stays secret", func(t *testing.T) {
		h := h.For(t)
		if got := strings.TrimSpace(h.MustSh(compose + "exec -T api cat /run/secrets/dbpass")); got != secret {
			t.Errorf("secret in api = %q, want %q", got, secret)
		}
		units := h.MustSh("systemctl list-units --all --plain --no-legend 'berth*' | awk '{print $1}'")
		if show := h.MustSh("systemctl show " + strings.Join(strings.Fields(units), " ")); strings.Contains(show, secret) {
			t.Errorf("the secret is in systemctl show")
		}
		// Every world-readable regular file in the places berth writes
		// (the test's own copy of the source is 0600).
		found := h.MustSh("find /etc/systemd /run/systemd /var/lib/berth /run/netns /srv -xdev -type f -perm -o=r -size -1M -print0 2>/dev/null | xargs -0 -r grep -l -F '" + secret + "' || true")
		if strings.TrimSpace(found) != "" {
			t.Errorf("the secret is in world-readable files:\n%s", found)
		}
	})

	t.Run("db crash restarts it, and only it", func(t *testing.T) {
		h := h.For(t)
		// As in docker compose, a dependency's crash and automatic
		// restart leave its dependents running (no depends_on
		// restart: true here): api and web keep their invocation.
		ids := func() string {
			return h.MustRun("systemctl", "show", "-p", "InvocationID", "--value", "berth-stack-api-1.service", "berth-stack-web-1.service")
		}
		before := ids()
		// The leader is berth-init; its child is the postmaster.
		h.MustSh("leader=$(machinectl show -p Leader --value stack-db-1); pid=$(pgrep -P $leader); test -n \"$pid\" && kill -KILL $pid")
		h.Eventually("db restarted by systemd", 60*time.Second,
			"test $(systemctl show -p NRestarts --value berth-stack-db-1.service) -ge 1 && systemctl is-active -q berth-stack-db-1.service")
		h.Eventually("page served again", 90*time.Second, page+" | grep -q 'hello from migrate'")
		if after := ids(); after != before {
			t.Errorf("api or web restarted with their dependency db: invocations %q before, %q after", before, after)
		}
	})

	t.Run("reboot brings the project back", func(t *testing.T) {
		h := h.For(t)
		begin := time.Now()
		h.Reboot()
		h.Eventually("page served after reboot", 3*time.Minute, page+" | grep -q 'hello from migrate'")
		t.Logf("timing: reboot until the page is served: %v", since(begin))
	})

	t.Run("volume survives down and up", func(t *testing.T) {
		h := h.For(t)
		h.MustSh(compose + `exec -T db psql -h /tmp -U app -d app -qc "INSERT INTO greeting VALUES ('kept across down')"`)
		begin := time.Now()
		h.MustSh(compose + "down")
		t.Logf("timing: down: %v", since(begin))
		assertNothingLeft(t, h, true)
		begin = time.Now()
		h.MustSh(up)
		t.Logf("timing: up again (volume kept): %v", since(begin))
		if got := h.MustSh(page); !strings.Contains(got, "kept across down") {
			t.Errorf("page after down/up = %q, want the row written before down", got)
		}
	})

	t.Run("attached up shows logs and stops on interrupt", func(t *testing.T) {
		h := h.For(t)
		// Without -d, up follows the services' logs; ^C (SIGINT) stops
		// the project, as docker compose up does.
		// timeout signals berth itself (no shell in between), and
		// berth's exit status is what up returns after stopping.
		r, err := h.Sh(t.Context(), "cd /srv/stack && timeout --preserve-status -s INT 15 env REGISTRY="+reg.Addr+
			" berth compose up --init-binary /usr/local/bin/berth-init --berth-binary /usr/local/bin/berth; echo status=$?")
		if err != nil || !strings.Contains(r.Stdout, "status=0") || !strings.Contains(r.Stdout, "db      | ") || !strings.Contains(r.Stderr, "stopping project stack") {
			t.Errorf("attached up: %v\n%s", err, r)
		}
		got, _ := h.Sh(t.Context(), "systemctl is-active berth-stack-db-1.service berth-stack-web-1.service")
		for _, state := range strings.Fields(got.Stdout) {
			if state == "active" {
				t.Errorf("project still running after the interrupt:\n%s", got.Stdout)
			}
		}
	})

	t.Run("down -v removes everything", func(t *testing.T) {
		h := h.For(t)
		h.MustSh(compose + "down -v --rmi all")
		assertNothingLeft(t, h, false)
	})

	t.Run("failing migration keeps api down", func(t *testing.T) {
		h := h.For(t)
		r, err := h.Sh(t.Context(), "cd /srv/stack && FAIL_WITH=3 REGISTRY="+reg.Addr+" berth compose -p failing up -d --init-binary /usr/local/bin/berth-init --berth-binary /usr/local/bin/berth")
		if err != nil {
			t.Fatal(err)
		}
		if r.ExitCode == 0 {
			t.Fatalf("up with a failing migration succeeded:\n%s", r)
		}
		for _, want := range []string{"migrate (berth-failing-migrate-1.service): failed", "exit status 3", "migrate: failing on purpose with status 3", "api (berth-failing-api-1.service): inactive (dead), result exec-condition", "not starting api: a required dependency is not running: berth-failing-migrate-1.service is failed"} {
			if !strings.Contains(r.Stderr, want) {
				t.Errorf("up's report lacks %q:\n%s", want, r.Stderr)
			}
		}
		if got, _ := h.Sh(t.Context(), "systemctl is-active berth-failing-api-1.service"); strings.TrimSpace(got.Stdout) == "active" {
			t.Errorf("api is active although migrate failed")
		}
		h.MustSh("cd /srv/stack && REGISTRY=" + reg.Addr + " berth compose -p failing down -v")
		assertNothingLeft(t, h, false)
	})
}

// assertNothingLeft checks that down removed every unit, machine, bridge,
// veth, network namespace and root filesystem, and the project state
// (except the volumes when keptVolumes).
func assertNothingLeft(t *testing.T, h *testhost.Host, keptVolumes bool) {
	t.Helper()
	checks := map[string]string{
		"units":          "systemctl list-units --all --plain --no-legend 'berth*' | grep -v berth-e2e-registry || true",
		"unit files":     "find /etc/systemd/system /run/systemd/system -name 'berth*' | grep -v berth-e2e-registry || true",
		"nspawn files":   "ls /etc/systemd/nspawn 2>/dev/null || true",
		"machines":       "machinectl list --no-legend | grep -v '^$' || true",
		"bridges, veths": "ip -o link show | grep -E ' (br|bv)-' || true",
		"netns":          "ls /run/netns 2>/dev/null || true",
		"rootfs":         "ls /var/lib/machines | grep -E 'stack|failing' || true",
	}
	keys := make([]string, 0, len(checks))
	for k := range checks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if got := strings.TrimSpace(h.MustSh(checks[k])); got != "" {
			t.Errorf("after down, %s left:\n%s", k, got)
		}
	}
	state := strings.Fields(h.MustSh("ls -A /var/lib/berth/compose/stack 2>/dev/null || true"))
	want := ""
	if keptVolumes {
		want = "volumes"
	}
	if strings.Join(state, " ") != want {
		t.Errorf("after down, /var/lib/berth/compose/stack holds %v, want %q", state, want)
	}
}
