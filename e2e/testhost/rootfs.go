package testhost

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// BasePackages are installed into every test host on top of debootstrap's
// minbase: a booting systemd with D-Bus (machinectl and systemctl talk over
// it), nspawn and machined for nested machines, and the tools scenarios use
// inside the host (a registry, busybox for tiny rootfs trees, curl), and
// igzip (isal), which berth pulls inflate gzip layers with when installed:
// the e2e pulls take the path a set-up host takes.
var BasePackages = []string{
	"systemd",
	"systemd-sysv",
	"dbus",
	"systemd-container",
	"iproute2",
	"docker-registry",
	"busybox-static",
	"curl",
	"ca-certificates",
	"isal",
}

// recipeVersion is part of the cache key: bump it whenever prepareRootfs
// changes what a cached rootfs contains, so stale caches are rebuilt.
const recipeVersion = "1"

// defaultMirror is used when this machine's apt sources name no mirror for
// the suite.
const defaultMirror = "http://deb.debian.org/debian"

// cacheKey names a cached rootfs by everything that decides its content.
func cacheKey(suite string, packages []string) string {
	pkgs := slices.Clone(packages)
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	sum := sha256.Sum256([]byte(recipeVersion + "\x00" + suite + "\x00" + strings.Join(pkgs, ",")))
	return suite + "-" + hex.EncodeToString(sum[:6])
}

// sourceFile is one apt sources file: its name decides the format
// (".sources" is deb822, anything else one-line "deb URI SUITE ..." style).
type sourceFile struct {
	Name string
	Data []byte
}

// mirrorFromSources returns the first mirror URI in files that serves suite's
// main component for plain "deb" packages, so the harness downloads from the
// same mirror as this machine's apt (CI machines often reach only that one).
// Security and updates suites don't count: debootstrap needs the release
// suite itself.
func mirrorFromSources(files []sourceFile, suite string) (string, bool) {
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".sources") {
			if uri, ok := mirrorFromDeb822(f.Data, suite); ok {
				return uri, true
			}
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(f.Data))
		for sc.Scan() {
			line, _, _ := strings.Cut(sc.Text(), "#")
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[0] != "deb" {
				continue
			}
			rest := fields[1:]
			if strings.HasPrefix(rest[0], "[") { // options like [arch=amd64 signed-by=...]
				for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
					rest = rest[1:]
				}
				if len(rest) == 0 {
					continue
				}
				rest = rest[1:]
			}
			if len(rest) >= 3 && rest[1] == suite && slices.Contains(rest[2:], "main") {
				return strings.TrimSuffix(rest[0], "/"), true
			}
		}
	}
	return "", false
}

// mirrorFromDeb822 scans the stanzas of a deb822 ".sources" file.
func mirrorFromDeb822(data []byte, suite string) (string, bool) {
	for _, stanza := range strings.Split(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if ok {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if !slices.Contains(strings.Fields(fields["types"]), "deb") ||
			!slices.Contains(strings.Fields(fields["suites"]), suite) ||
			!slices.Contains(strings.Fields(fields["components"]), "main") ||
			strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 {
			return strings.TrimSuffix(uris[0], "/"), true
		}
	}
	return "", false
}

// readAptSources reads this machine's apt source lists, main file first.
func readAptSources(etcApt string) []sourceFile {
	var files []sourceFile
	if data, err := os.ReadFile(filepath.Join(etcApt, "sources.list")); err == nil {
		files = append(files, sourceFile{Name: "sources.list", Data: data})
	}
	entries, _ := os.ReadDir(filepath.Join(etcApt, "sources.list.d"))
	for _, e := range entries { // ReadDir sorts by name, as apt does
		name := e.Name()
		if !strings.HasSuffix(name, ".list") && !strings.HasSuffix(name, ".sources") {
			continue
		}
		if data, err := os.ReadFile(filepath.Join(etcApt, "sources.list.d", name)); err == nil {
			files = append(files, sourceFile{Name: name, Data: data})
		}
	}
	return files
}

// rootfsSpec says which rootfs to build and where to keep it.
type rootfsSpec struct {
	CacheDir string
	Suite    string
	Packages []string
	Mirror   string
	// Logf reports progress (debootstrap takes tens of seconds).
	Logf func(format string, args ...any)
}

// ensureRootfs returns the cached rootfs for spec, building it first when
// absent. A lock file serializes test binaries that start at the same time;
// the tree is built under a temporary name and renamed into place, so a
// half-built rootfs is never used.
func ensureRootfs(spec rootfsSpec) (dir string, built bool, err error) {
	if err := os.MkdirAll(spec.CacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("create test host cache %s: %w", spec.CacheDir, err)
	}
	key := cacheKey(spec.Suite, spec.Packages)
	dir = filepath.Join(spec.CacheDir, key)
	if _, err := os.Stat(filepath.Join(dir, "etc", "os-release")); err == nil {
		return dir, false, nil
	}

	unlock, err := lockFile(filepath.Join(spec.CacheDir, key+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()
	// Another test binary may have built it while we waited for the lock.
	if _, err := os.Stat(filepath.Join(dir, "etc", "os-release")); err == nil {
		return dir, false, nil
	}

	// We hold the lock, so any temporary tree of this key is a leftover of
	// an interrupted build.
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", false, fmt.Errorf("remove stale test host build %s: %w", tmp, err)
	}
	logPath := dir + ".debootstrap.log"
	start := time.Now()
	if err := debootstrap(spec, tmp, logPath); err != nil {
		return "", false, err
	}
	spec.Logf("testhost: debootstrap %s (%d packages) took %v", spec.Suite, len(spec.Packages), time.Since(start).Round(time.Millisecond))
	if err := prepareRootfs(tmp); err != nil {
		return "", false, err
	}
	if err := os.RemoveAll(dir); err != nil { // a tree without os-release is broken
		return "", false, fmt.Errorf("remove broken test host rootfs %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", false, fmt.Errorf("move test host rootfs into place: %w", err)
	}
	return dir, true, nil
}

func debootstrap(spec rootfsSpec, target, logPath string) error {
	args := []string{"--variant=minbase", "--include=" + strings.Join(spec.Packages, ",")}
	// Verify the download against the archive keyring when this machine has
	// it; debootstrap's built-in default may point at a missing file.
	if _, err := os.Stat("/usr/share/keyrings/debian-archive-keyring.gpg"); err == nil {
		args = append(args, "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg")
	}
	args = append(args, spec.Suite, target, spec.Mirror)
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create debootstrap log: %w", err)
	}
	defer logf.Close()
	spec.Logf("testhost: building cached rootfs: debootstrap %s (log %s)", strings.Join(args, " "), logPath)
	cmd := exec.Command("debootstrap", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debootstrap test host rootfs from %s: %w\n%s", spec.Mirror, err, tailFile(logPath, 30))
	}
	return nil
}

// prepareRootfs turns a fresh debootstrap tree into a quiet, fast-booting
// test host. dir was just built by us, so plain paths are safe here.
func prepareRootfs(dir string) error {
	p := func(rel string) string { return filepath.Join(dir, rel) }
	var errs []error
	// nspawn sets the hostname to the machine name unless the tree has its
	// own; debootstrap copies the outer machine's.
	if err := os.Remove(p("etc/hostname")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	// Every host gets its own machine ID (written into its overlay), so
	// journals of two hosts never mix; an empty file means "not set".
	errs = append(errs, os.WriteFile(p("etc/machine-id"), nil, 0o444))
	// Tests start registries with their own config; Debian's enabled
	// default one wants an htpasswd file and would hold port 5000.
	errs = append(errs, removeIfExists(p("etc/systemd/system/multi-user.target.wants/docker-registry.service")))
	// Timers that would start apt or fsck work in the middle of a test.
	for _, u := range []string{"apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "dpkg-db-backup.timer", "fstrim.timer"} {
		errs = append(errs, removeIfExists(p("etc/systemd/system/"+u)), os.Symlink("/dev/null", p("etc/systemd/system/"+u)))
	}
	// Bound every stop job: a shutdown that hangs would eat CI time and
	// end in a SIGKILL instead of a clean poweroff.
	errs = append(errs,
		os.MkdirAll(p("etc/systemd/system.conf.d"), 0o755),
		os.WriteFile(p("etc/systemd/system.conf.d/berth-testhost.conf"), []byte("# berth test host: bounded stop jobs\n[Manager]\nDefaultTimeoutStopSec=15s\n"), 0o644),
		// A persistent journal survives Reboot, so a failed test's
		// artifact covers every boot of the host.
		os.MkdirAll(p("var/log/journal"), 0o2755),
		os.MkdirAll(p("etc/systemd/journald.conf.d"), 0o755),
		os.WriteFile(p("etc/systemd/journald.conf.d/berth-testhost.conf"), []byte("# berth test host: small persistent journal\n[Journal]\nStorage=persistent\nSystemMaxUse=64M\n"), 0o644),
		os.MkdirAll(p("var/lib/machines"), 0o700),
		os.MkdirAll(p("etc/systemd/nspawn"), 0o755),
	)
	// Downloaded packages are dead weight in every overlay lower.
	debs, _ := filepath.Glob(p("var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		errs = append(errs, os.Remove(d))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prepare test host rootfs %s: %w", dir, err)
	}
	return nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting as long as it takes:
// the holder is building a rootfs, which is bounded by the test timeout.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open test host cache lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock test host cache %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	return tailLines(string(data), n)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
