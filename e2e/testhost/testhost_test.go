package testhost

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

func TestMirrorFromSources(t *testing.T) {
	tests := []struct {
		name   string
		files  []sourceFile
		want   string
		wantOK bool
	}{
		{
			name: "deb822 with security first",
			files: []sourceFile{{Name: "debian.sources", Data: []byte(`Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`)}},
			want: "http://mirror.example/debian", wantOK: true,
		},
		{
			name:  "deb822 disabled stanza skipped",
			files: []sourceFile{{Name: "a.sources", Data: []byte("Enabled: no\nTypes: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://on.example/debian\nSuites: bookworm\nComponents: main\n")}},
			want:  "http://on.example/debian", wantOK: true,
		},
		{
			name: "one-line with options and comments",
			files: []sourceFile{{Name: "sources.list", Data: []byte(`# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian/ bookworm main non-free
`)}},
			want: "http://one.example/debian", wantOK: true,
		},
		{
			name: "other suites and components only",
			files: []sourceFile{
				{Name: "sources.list", Data: []byte("deb http://x.example/debian bullseye main\ndeb http://y.example/debian bookworm contrib\n")},
				{Name: "nodesource.sources", Data: []byte("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n")},
			},
			wantOK: false,
		},
		{
			name: "first file wins",
			files: []sourceFile{
				{Name: "sources.list", Data: []byte("deb http://first.example/debian bookworm main\n")},
				{Name: "later.list", Data: []byte("deb http://later.example/debian bookworm main\n")},
			},
			want: "http://first.example/debian", wantOK: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mirrorFromSources(tt.files, "bookworm")
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("mirrorFromSources = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestReadAptSourcesOrder(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "sources.list.d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list"), []byte("main"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list.d", "b.sources"), []byte("b"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list.d", "a.list"), []byte("a"), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "sources.list.d", "c.list.save"), []byte("ignored"), 0o644))
	var names []string
	for _, f := range readAptSources(dir) {
		names = append(names, f.Name)
	}
	if want := []string{"sources.list", "a.list", "b.sources"}; !slices.Equal(names, want) {
		t.Errorf("readAptSources names = %v, want %v", names, want)
	}
}

func TestCacheKey(t *testing.T) {
	a := cacheKey("bookworm", []string{"systemd", "dbus", "curl"})
	if b := cacheKey("bookworm", []string{"curl", "systemd", "dbus", "dbus"}); a != b {
		t.Errorf("cache key depends on package order or duplicates: %s vs %s", a, b)
	}
	if c := cacheKey("bookworm", []string{"systemd", "dbus"}); c == a {
		t.Errorf("cache key ignores the package list: %s", c)
	}
	if d := cacheKey("trixie", []string{"systemd", "dbus", "curl"}); d == a {
		t.Errorf("cache key ignores the suite: %s", d)
	}
}

func TestParseProcStatus(t *testing.T) {
	status := []byte("Name:\tsystemd\nUmask:\t0000\nState:\tS (sleeping)\nTgid:\t17750\nNgid:\t0\nPid:\t17750\nPPid:\t17746\nNSpid:\t17750\t1\n")
	st, err := parseProcStatus(status)
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != 17746 || !slices.Equal(st.NSpid, []int{17750, 1}) {
		t.Fatalf("parsed %+v", st)
	}
	if !st.isContainerInit(17746) {
		t.Error("container init not recognized")
	}
	if st.isContainerInit(1) {
		t.Error("init of another parent recognized")
	}
	for _, other := range []procStatus{
		{PPid: 17746, NSpid: []int{17751}},        // nspawn's helper in our namespace
		{PPid: 17746, NSpid: []int{17752, 2}},     // not PID 1 in there
		{PPid: 17746, NSpid: []int{17753, 40, 1}}, // a nested machine's init
	} {
		if other.isContainerInit(17746) {
			t.Errorf("%+v recognized as the container init", other)
		}
	}
	if _, err := parseProcStatus([]byte("PPid:\tx\n")); err == nil {
		t.Error("bad PPid accepted")
	}
}

func TestFindContainerInit(t *testing.T) {
	proc := t.TempDir()
	write := func(pid int, status string) {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644))
	}
	write(100, "PPid:\t1\nNSpid:\t100\n")                    // nspawn itself
	write(101, "PPid:\t100\nNSpid:\t101\n")                  // a helper child
	write(202, "PPid:\t999\nNSpid:\t202\t1\n")               // another host's init
	must(t, os.MkdirAll(filepath.Join(proc, "self"), 0o755)) // not a PID
	if pid, err := findContainerInit(proc, 100); err != nil || pid != 0 {
		t.Fatalf("before init: findContainerInit = %d, %v; want 0", pid, err)
	}
	write(105, "PPid:\t100\nNSpid:\t105\t1\n")
	if pid, err := findContainerInit(proc, 100); err != nil || pid != 105 {
		t.Fatalf("findContainerInit = %d, %v; want 105", pid, err)
	}
}

func TestWriteTree(t *testing.T) {
	src := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(src, "bin"), 0o750))
	must(t, os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Symlink("tool", filepath.Join(src, "bin", "alias")))
	if os.Geteuid() == 0 { // ownership must not leak into the tar
		must(t, os.Chown(filepath.Join(src, "bin", "tool"), 1000, 1000))
	}

	var buf bytes.Buffer
	must(t, writeTree(&buf, src, "bb"))
	type entry struct {
		typ  byte
		mode int64
		link string
		body string
		uid  int
	}
	got := map[string]entry{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		must(t, err)
		body, err := io.ReadAll(tr)
		must(t, err)
		got[hdr.Name] = entry{hdr.Typeflag, hdr.Mode & 0o7777, hdr.Linkname, string(body), hdr.Uid}
	}
	want := map[string]entry{
		"bb/":          {tar.TypeDir, int64(mode(t, src)), "", "", 0},
		"bb/bin/":      {tar.TypeDir, 0o750, "", "", 0},
		"bb/bin/tool":  {tar.TypeReg, 0o755, "", "#!/bin/sh\n", 0},
		"bb/bin/alias": {tar.TypeSymlink, 0o777, "tool", "", 0},
	}
	if len(got) != len(want) {
		t.Errorf("tar has %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("entry %s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}

	// A single file becomes one entry with the top name.
	buf.Reset()
	must(t, writeTree(&buf, filepath.Join(src, "bin", "tool"), "berth"))
	hdr, err := tar.NewReader(&buf).Next()
	must(t, err)
	if hdr.Name != "berth" || hdr.Typeflag != tar.TypeReg || hdr.Mode&0o777 != 0o755 {
		t.Errorf("single file entry = %q type %c mode %o", hdr.Name, hdr.Typeflag, hdr.Mode)
	}
}

func TestArtifactName(t *testing.T) {
	for in, want := range map[string]string{
		"TestX":                "TestX",
		"TestX/nested machine": "TestX_nested_machine",
		"TestY/a/b#01":         "TestY_a_b_01",
		"../../etc":            ".._.._etc",
	} {
		if got := artifactName(in); got != want {
			t.Errorf("artifactName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHostNameRE(t *testing.T) {
	m := hostNameRE.FindStringSubmatch("bt12345-7")
	if m == nil || m[1] != "12345" {
		t.Errorf("bt12345-7 parsed as %v", m)
	}
	for _, bad := range []string{"payload", "bt-1", "bt12x-1", "xbt1-1"} {
		if hostNameRE.MatchString(bad) {
			t.Errorf("%q taken for a host cgroup", bad)
		}
	}
}

func TestDeclaresModule(t *testing.T) {
	if !declaresModule([]byte("// x\nmodule github.com/berth-sh/berth\n\ngo 1.26\n"), modulePath) {
		t.Error("berth's go.mod not recognized")
	}
	if declaresModule([]byte("module github.com/berth-sh/berth/tools\n"), modulePath) {
		t.Error("a nested module taken for berth")
	}
}

func TestUnsafeOverlayPath(t *testing.T) {
	for p, bad := range map[string]bool{
		"/work/main/.cache/testhost/bookworm-abc": false,
		"/tmp/berth-testhost-bt1-1-123":           false,
		"/tmp/a,b":                                true,
		"/tmp/a:b":                                true,
		"/tmp/a b":                                true,
	} {
		if got := unsafeOverlayPath.MatchString(p); got != bad {
			t.Errorf("unsafeOverlayPath(%q) = %v, want %v", p, got, bad)
		}
	}
}

func TestTailLines(t *testing.T) {
	if got := tailLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tailLines = %q", got)
	}
	if got := tailLines("a\n", 5); got != "a" {
		t.Errorf("tailLines = %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	must(t, err)
	return fi.Mode().Perm()
}

func TestHostDirRE(t *testing.T) {
	m := hostDirRE.FindStringSubmatch("berth-testhost-bt42-3-123456")
	if m == nil || m[1] != "bt42-3" {
		t.Errorf("host dir parsed as %v", m)
	}
	for _, bad := range []string{"berth-testhost-bt42-3", "berth-testhost-x-1-2", "other-bt42-3-1"} {
		if hostDirRE.MatchString(bad) {
			t.Errorf("%q taken for a host dir", bad)
		}
	}
}
