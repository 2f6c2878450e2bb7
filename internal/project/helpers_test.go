package project

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
)

// fakeSystemd is a command.Runner standing in for systemctl, journalctl,
// machinectl and ps: it records every command as a line of text and
// answers queries from its unit table.
type fakeSystemd struct {
	mu    sync.Mutex
	lines []string
	// units maps a unit to its `systemctl show` properties; a unit not
	// listed is active (running).
	units map[string]map[string]string
	// journal maps a unit to what journalctl prints for it.
	journal map[string]string
	// out maps a command line to its stdout.
	out map[string]string
}

func newFake() *fakeSystemd {
	return &fakeSystemd{units: map[string]map[string]string{}, journal: map[string]string{}, out: map[string]string{}}
}

func (f *fakeSystemd) Run(_ context.Context, c command.Command) error {
	line := c.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	// Polls repeat; record each distinct query once so expectations
	// do not depend on how often the waiter looked.
	if !(strings.HasPrefix(line, "systemctl show") || strings.HasPrefix(line, "systemctl list-jobs")) || !contains(f.lines, line) {
		f.lines = append(f.lines, line)
	}
	w := c.Stdout
	if w == nil {
		w = io.Discard
	}
	if o, ok := f.out[line]; ok {
		io.WriteString(w, o)
		return nil
	}
	switch {
	case len(c.Args) > 2 && c.Args[0] == "systemctl" && c.Args[1] == "show":
		var units []string
		for i, a := range c.Args {
			if a == "--" {
				units = c.Args[i+1:]
			}
		}
		for _, u := range units {
			props := map[string]string{"Id": u, "LoadState": "loaded", "ActiveState": "active", "SubState": "running", "Result": "success", "ExecMainCode": "0", "ExecMainStatus": "0", "MainPID": "42"}
			for k, v := range f.units[u] {
				props[k] = v
			}
			keys := make([]string, 0, len(props))
			for k := range props {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s=%s\n", k, props[k])
			}
			io.WriteString(w, "\n")
		}
	case c.Args[0] == "journalctl":
		for _, a := range c.Args {
			if u, ok := strings.CutPrefix(a, "--unit="); ok {
				io.WriteString(w, f.journal[u])
			}
		}
	}
	return nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Commands returns the recorded commands and forgets them.
func (f *fakeSystemd) Commands() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.Join(f.lines, "\n")
	f.lines = nil
	if s != "" {
		s += "\n"
	}
	return s
}

// fakeImages installs an "image" as a machine directory holding one file,
// so pulls, removals and seeding are visible on disk.
type fakeImages struct {
	machinesDir string
	digest      map[string]string // ref → digest a pull gets
	installed   map[string]ImageRecord
	pulls       []string
	removed     []string
	gcs         int
}

func newFakeImages(machinesDir string) *fakeImages {
	return &fakeImages{machinesDir: machinesDir, digest: map[string]string{}, installed: map[string]ImageRecord{}}
}

func (f *fakeImages) Installed(m, ref string) (string, bool) {
	r, ok := f.installed[m]
	if !ok || r.Reference != ref {
		return "", false
	}
	return r.Digest, true
}

func (f *fakeImages) Pull(_ context.Context, ref, m string, stop func() error) (string, error) {
	f.pulls = append(f.pulls, m+"="+ref)
	d := f.digest[ref]
	if d == "" {
		d = "sha256:" + strings.Repeat("a", 64)
	}
	old, had := f.installed[m]
	if had && old.Digest == d {
		return d, nil
	}
	// Like pull: only an installed tree about to be replaced needs its
	// machine stopped.
	if had && stop != nil {
		if err := stop(); err != nil {
			return "", err
		}
	}
	dir := filepath.Join(f.machinesDir, m)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "seed.txt"), []byte("from "+ref), 0o644); err != nil {
		return "", err
	}
	f.installed[m] = ImageRecord{Reference: ref, Digest: d, Size: 100}
	return d, nil
}

func (f *fakeImages) Clone(_ context.Context, from, to string, stop func() error) (string, error) {
	f.pulls = append(f.pulls, to+"<"+from)
	src, ok := f.installed[from]
	if !ok {
		return "", fmt.Errorf("clone: no machine %s", from)
	}
	if _, had := f.installed[to]; had && stop != nil {
		if err := stop(); err != nil {
			return "", err
		}
	}
	if err := os.CopyFS(filepath.Join(f.machinesDir, to), os.DirFS(filepath.Join(f.machinesDir, from))); err != nil && !os.IsExist(err) {
		return "", err
	}
	f.installed[to] = src
	return src.Digest, nil
}

func (f *fakeImages) Info(ref string) (*v1.Config, bool) {
	for _, r := range f.installed {
		if r.Reference == ref {
			return &v1.Config{Cmd: []string{"/bin/serve"}, Env: []string{"PATH=/bin"}}, true
		}
	}
	return nil, false
}

func (f *fakeImages) Image(m string) (ImageRecord, bool) {
	r, ok := f.installed[m]
	return r, ok
}

func (f *fakeImages) Remove(_ context.Context, m string) error {
	f.removed = append(f.removed, m)
	delete(f.installed, m)
	return os.RemoveAll(filepath.Join(f.machinesDir, m))
}

func (f *fakeImages) GC(context.Context) (int, int64, error) {
	f.gcs++
	return 0, 0, nil
}

type testEnv struct {
	host   *Host
	fake   *fakeSystemd
	images *fakeImages
	dir    string // project directory
	stderr *strings.Builder
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	base := t.TempDir()
	e := &testEnv{fake: newFake(), stderr: &strings.Builder{}, dir: filepath.Join(base, "src")}
	e.host = &Host{
		Root:        filepath.Join(base, "berth"),
		MachinesDir: filepath.Join(base, "machines"),
		UnitDir:     filepath.Join(base, "system"),
		NspawnDir:   filepath.Join(base, "nspawn"),
		Runner:      e.fake,
		Stderr:      e.stderr,
		Sleep:       func(context.Context, time.Duration) error { return nil },
	}
	e.images = newFakeImages(e.host.MachinesDir)
	for _, d := range []string{e.dir, e.host.MachinesDir, e.host.UnitDir, e.host.NspawnDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *testEnv) load(t *testing.T, yaml string) *compose.Project {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "dbpass.txt"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "compose.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := compose.Load(context.Background(), compose.LoadOptions{WorkDir: e.dir, Files: []string{filepath.Join(e.dir, "compose.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *testEnv) up(t *testing.T, p *compose.Project, o UpOptions) (*UpResult, error) {
	t.Helper()
	o.Images = e.images
	o.Convert.Berth = "/usr/bin/berth"
	o.Convert.Init = "/usr/lib/berth-init"
	return e.host.Up(context.Background(), p, o)
}

// The project of the end-to-end test, in small: a database with a
// healthcheck, a oneshot migration, an API waiting for both, a web front
// publishing a port, a named volume and a secret.
const stackYAML = `name: app
services:
  db:
    image: reg.test/pg:1
    restart: always
    healthcheck:
      test: ["CMD", "pg_isready"]
      interval: 1s
    volumes:
      - pgdata:/data
    secrets:
      - dbpass
  migrate:
    image: reg.test/pg:1
    depends_on:
      db:
        condition: service_healthy
  api:
    image: reg.test/api:1
    environment:
      MODE: one
    depends_on:
      db:
        condition: service_healthy
      migrate:
        condition: service_completed_successfully
  web:
    image: reg.test/web:1
    ports:
      - "127.0.0.1:8080:80"
    depends_on: [api]
volumes:
  pgdata: {}
secrets:
  dbpass:
    file: ./dbpass.txt
`

type (
	timeT = time.Time
	timeD = time.Duration
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func hours(n int) time.Duration { return time.Duration(n) * time.Hour }
