package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
)

// awesomeDir is docker/awesome-compose's examples, kept in the repository
// (testdata/corpus at its root, as internal/compose's corpus test uses).
func awesomeDir(t *testing.T) string {
	t.Helper()
	root, err := testhost.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "corpus", "awesome-compose")
	if _, err := os.Stat(filepath.Join(dir, "LICENSE")); err != nil {
		t.Fatalf("the awesome-compose corpus belongs at %s: %v", dir, err)
	}
	return dir
}

// awesomeExamples are the awesome-compose examples that need no build:
// and run here for real. Each runs its compose file unchanged, with an
// override (testdata/compose/overrides/NAME.yaml) that points its images
// at stand-ins in the test registry: PostgreSQL is Debian's real server
// behind the official image's environment contract; the web apps are
// busybox httpd pages that use the database the way the app would.
var awesomeExamples = []struct {
	name  string
	port  int
	wants []string // in the page
}{
	{"gitea-postgres", 3000, []string{"gitea stand-in", "connected to gitea as gitea"}},
	{"nextcloud-postgres", 80, []string{"nextcloud stand-in", "data volume writable", "connected to nextcloud as nextcloud"}},
	{"postgresql-pgadmin", 5050, []string{"pgadmin stand-in for your@email.com", "connected to postgres as yourUser"}},
}

// TestAwesomeCompose runs awesome-compose examples on a real systemd host:
// up, the published page works end to end (host port → proxy → app →
// database by service name), then down -v leaves nothing.
func TestAwesomeCompose(t *testing.T) {
	t.Parallel()
	if !testhost.Enabled() {
		// Checked before building the PostgreSQL tree, which costs a
		// debootstrap.
		t.Skip("end-to-end test: set BERTH_E2E=1 or run scripts/e2e.sh")
	}
	corpus := awesomeDir(t)
	pg := pgRootfs(t)
	h := testhost.Boot(t, testhost.Options{Packages: []string{"nftables", "procps"}})
	h.InstallBerth()
	reg := h.StartRegistry(5000)

	begin := time.Now()
	path := "--env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	pgImage := []string{"image", "--layer", "dir:" + pg, "--layer", "dir:testdata/compose/standins/postgres", path,
		"--entrypoint", `["docker-entrypoint.sh"]`, "--cmd", `["postgres"]`, "--stop-signal", "SIGINT", "--volume", "/var/lib/postgresql/data"}
	reg.Mkimage(append(pgImage, "--push", reg.Ref("postgres:alpine"))...)
	reg.Mkimage(append(pgImage, "--push", reg.Ref("postgres:latest"))...)
	for _, app := range []struct{ ref, dir, port string }{
		{"gitea/gitea:latest", "/srv/gitea", "3000"},
		{"nextcloud:apache", "/srv/nextcloud", "80"},
		{"dpage/pgadmin4:latest", "/srv/pgadmin", "80"},
	} {
		reg.Mkimage("image", "--layer", "dir:"+pg, "--layer", "dir:testdata/compose/standins/apps", path,
			"--cmd", `["busybox","httpd","-f","-p","`+app.port+`","-h","`+app.dir+`"]`, "--push", reg.Ref(app.ref))
	}
	t.Logf("timing: build and push 5 stand-in images: %v", since(begin))
	h.CopyIn("testdata/compose/overrides", "/srv/overrides")

	for _, ex := range awesomeExamples {
		t.Run(ex.name, func(t *testing.T) {
			h := h.For(t)
			h.CopyIn(filepath.Join(corpus, ex.name), "/srv/ac/"+ex.name)
			compose := "cd /srv/ac/" + ex.name + " && REGISTRY=" + reg.Addr + " berth compose -f compose.yaml -f /srv/overrides/" + ex.name + ".yaml "
			begin := time.Now()
			h.MustSh(compose + "up -d --init-binary /usr/local/bin/berth-init")
			t.Logf("timing: %s up: %v", ex.name, since(begin))
			// Like the real apps, the stand-ins reach the database
			// only once it accepts connections; these examples have
			// no healthcheck, so up does not wait for that.
			url := "http://127.0.0.1:" + strconv.Itoa(ex.port) + "/"
			check := "page=$(curl -fsS --max-time 20 " + url + ") && echo \"$page\""
			for _, w := range ex.wants {
				check += " && echo \"$page\" | grep -qF '" + w + "'"
			}
			h.Eventually(ex.name+" page works end to end", 60*time.Second, check)
			t.Logf("timing: %s up until the page works: %v", ex.name, since(begin))
			begin = time.Now()
			h.MustSh(compose + "down -v")
			t.Logf("timing: %s down -v: %v", ex.name, since(begin))
			if left := strings.TrimSpace(h.MustSh("systemctl list-units --all --plain --no-legend 'berth*' | grep -v berth-e2e-registry; find /etc/systemd/nspawn /run/netns /var/lib/machines /var/lib/berth/compose -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null; ip -o link show | grep -E ' (br|bv)-'; true")); left != "" {
				t.Errorf("down -v left:\n%s", left)
			}
		})
	}
}
