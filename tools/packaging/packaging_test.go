package packaging

import (
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "scripts", "install.sh")); err != nil {
		t.Fatal(err)
	}
	return root
}

func script(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		if _, err := os.Stat("/usr/local/go/bin/go"); err != nil {
			t.Skip("no go toolchain to build berth with")
		}
	}
	cmd := exec.Command("bash", append([]string{filepath.Join(repoRoot(t), "scripts", name)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// tree lists every entry under dir as "MODE /PATH" (dir's own entry left
// out), sorted.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fi.Mode().String()+" "+strings.TrimPrefix(p, dir))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func static(t *testing.T, p string) bool {
	t.Helper()
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

// TestInstallAndUninstall installs into a --destdir: programs where
// systemd and shells look, static, executable; everything else 0644; a
// manifest of exactly what was written; --uninstall leaves the destdir
// empty.
func TestInstallAndUninstall(t *testing.T) {
	dest := t.TempDir()
	script(t, "install.sh", "--prefix", "/usr/local", "--destdir", dest)

	got := tree(t, dest)
	var files []string
	for _, e := range got {
		mode, p, _ := strings.Cut(e, " ")
		switch {
		case strings.HasPrefix(mode, "d"):
			if mode != "drwxr-xr-x" {
				t.Errorf("%s: mode %s", p, mode)
			}
			continue
		case slices.Contains([]string{"/usr/local/bin/berth", "/usr/local/lib/berth/berth-init", "/usr/local/lib/systemd/system-generators/berth-generator"}, p):
			if mode != "-rwxr-xr-x" {
				t.Errorf("%s: mode %s, want -rwxr-xr-x", p, mode)
			}
			if !static(t, dest+p) {
				t.Errorf("%s is dynamically linked", p)
			}
		default:
			if mode != "-rw-r--r--" {
				t.Errorf("%s: mode %s, want -rw-r--r--", p, mode)
			}
		}
		files = append(files, p)
	}
	for _, want := range []string{
		"/usr/local/bin/berth",
		"/usr/local/lib/berth/berth-init",
		"/usr/local/lib/berth/install-manifest",
		"/usr/local/lib/systemd/system-generators/berth-generator",
		"/usr/local/share/bash-completion/completions/berth",
		"/usr/local/share/zsh/site-functions/_berth",
		"/usr/local/share/fish/vendor_completions.d/berth.fish",
		"/usr/local/share/man/man1/berth.1",
		"/usr/local/share/man/man1/berth-run.1",
		"/usr/local/share/man/man1/berth-compose-up.1",
	} {
		if !slices.Contains(files, want) {
			t.Errorf("%s not installed", want)
		}
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "/usr/local/") {
			t.Errorf("%s is outside the prefix", f)
		}
	}
	if b, err := os.ReadFile(dest + "/usr/local/share/bash-completion/completions/berth"); err != nil || !strings.Contains(string(b), "__start_berth") {
		t.Errorf("bash completion: %v %.100q", err, b)
	}

	// The manifest lists every file and every directory written, nothing else.
	manifest, err := os.ReadFile(dest + "/usr/local/lib/berth/install-manifest")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, l := range strings.Split(strings.TrimSpace(string(manifest)), "\n") {
		kind, p, _ := strings.Cut(l, " ")
		if kind != "f" && kind != "d" {
			t.Errorf("manifest line %q", l)
		}
		listed = append(listed, p)
	}
	var all []string
	for _, e := range got {
		_, p, _ := strings.Cut(e, " ")
		all = append(all, p)
	}
	slices.Sort(listed)
	slices.Sort(all)
	if !slices.Equal(listed, all) {
		t.Errorf("manifest lists\n%s\nwritten\n%s", strings.Join(listed, "\n"), strings.Join(all, "\n"))
	}

	// Keep the binaries: the second install reuses them (--bin).
	bins := t.TempDir()
	for src, name := range map[string]string{"/usr/local/bin/berth": "berth", "/usr/local/lib/berth/berth-init": "berth-init", "/usr/local/lib/systemd/system-generators/berth-generator": "berth-generator"} {
		if err := os.Link(dest+src, filepath.Join(bins, name)); err != nil {
			t.Fatal(err)
		}
	}

	// A file of someone else's in a directory install.sh made stays, and so
	// does that directory.
	other := dest + "/usr/local/bin/other-tool"
	if err := os.WriteFile(other, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	script(t, "install.sh", "--prefix", "/usr/local", "--destdir", dest, "--uninstall")
	if left := tree(t, dest); !slices.Equal(left, []string{"-rwxr-xr-x /usr/local/bin/other-tool", "drwxr-xr-x /usr", "drwxr-xr-x /usr/local", "drwxr-xr-x /usr/local/bin"}) {
		t.Errorf("after --uninstall, with a file of another tool:\n%s", strings.Join(left, "\n"))
	}
	os.Remove(other)
	os.RemoveAll(dest + "/usr")

	// Installed again and removed: nothing at all is left.
	script(t, "install.sh", "--prefix", "/usr/local", "--destdir", dest, "--bin", bins)
	script(t, "install.sh", "--prefix", "/usr/local", "--destdir", dest, "--uninstall")
	if left := tree(t, dest); len(left) != 0 {
		t.Errorf("--uninstall left:\n%s", strings.Join(left, "\n"))
	}
}

// TestDeb builds the .deb and reads it back with dpkg-deb: its control
// fields and that its files are those of an install under /usr.
func TestDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb")
	}
	out := t.TempDir()
	deb := strings.TrimSpace(script(t, "deb.sh", "--out", out))
	if filepath.Dir(deb) != out || !strings.HasPrefix(filepath.Base(deb), "berth_") || !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("deb.sh printed %q", deb)
	}
	field := func(name string) string {
		b, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
		if err != nil {
			t.Fatalf("dpkg-deb --field %s: %v", name, err)
		}
		return strings.TrimSpace(string(b))
	}
	goarch, _ := exec.Command("go", "env", "GOARCH").Output()
	wantArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386", "ppc64le": "ppc64el"}[strings.TrimSpace(string(goarch))]
	for name, want := range map[string]string{
		"Package":      "berth",
		"Depends":      "systemd-container",
		"Recommends":   "isal",
		"Architecture": wantArch,
	} {
		if got := field(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if v := field("Version"); v == "" || v[0] < '0' || v[0] > '9' {
		t.Errorf("Version %q does not start with a digit", v)
	}
	if !strings.HasSuffix(deb, "_"+field("Version")+"_"+wantArch+".deb") {
		t.Errorf("file name %s does not carry version and architecture", deb)
	}

	contents, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{} // path -> mode
	for _, l := range strings.Split(strings.TrimSpace(string(contents)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", l)
		}
		p := strings.TrimPrefix(f[len(f)-1], ".")
		if f[1] != "root/root" {
			t.Errorf("%s owned by %s", p, f[1])
		}
		if p != "/" && !strings.HasPrefix(p, "/usr/") {
			t.Errorf("%s is outside /usr", p)
		}
		files[strings.TrimSuffix(p, "/")] = f[0]
	}
	for p, mode := range map[string]string{
		"/usr/bin/berth":            "-rwxr-xr-x",
		"/usr/lib/berth/berth-init": "-rwxr-xr-x",
		"/usr/lib/systemd/system-generators/berth-generator": "-rwxr-xr-x",
		"/usr/share/bash-completion/completions/berth":       "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_berth":           "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/berth.fish":    "-rw-r--r--",
		"/usr/share/man/man1/berth.1.gz":                     "-rw-r--r--",
		"/usr/share/man/man1/berth-compose-up.1.gz":          "-rw-r--r--",
		"/usr/share/doc/berth/copyright":                     "-rw-r--r--",
	} {
		if got, ok := files[p]; !ok {
			t.Errorf("%s not in the package", p)
		} else if got != mode {
			t.Errorf("%s: mode %s, want %s", p, got, mode)
		}
	}
	if _, ok := files["/usr/lib/berth/install-manifest"]; ok {
		t.Error("the package carries install.sh's manifest; dpkg keeps its own")
	}

	// The hooks reload systemd only where it runs.
	ctl := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "--control", deb, ctl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, b)
	}
	for _, hook := range []string{"postinst", "postrm"} {
		b, err := os.ReadFile(filepath.Join(ctl, hook))
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); !strings.Contains(s, "if [ -d /run/systemd/system ]; then") || !strings.Contains(s, "systemctl daemon-reload") {
			t.Errorf("%s:\n%s", hook, s)
		}
	}
}
