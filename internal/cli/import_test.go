package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// rootfsTarGz is a gzip rootfs tarball wrapped in one top-level directory,
// holding the given file (a busybox, or a stand-in) as /bin/busybox.
func rootfsTarGz(t *testing.T, busybox string) []byte {
	t.Helper()
	bin, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, d := range []string{"rootfs/", "rootfs/bin/", "rootfs/etc/", "rootfs/tmp/"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755})
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "rootfs/bin/busybox", Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	for _, l := range []string{"sh", "echo", "cat"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "rootfs/bin/" + l, Linkname: "busybox"})
	}
	os := "ID=imported\n"
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "rootfs/etc/os-release", Mode: 0o644, Size: int64(len(os))})
	tw.Write([]byte(os))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestImportImagesInspectCreateRmi(t *testing.T) {
	tb := rootfsTarGz(t, writeFakeBusybox(t))
	sum := sha256.Sum256(tb)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/rel/Debian_Rootfs.tar.gz":
			http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(tb))
		case "/rel/SHA256SUMS":
			w.Write([]byte(hex.EncodeToString(sum[:]) + "  Debian_Rootfs.tar.gz\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	d := t.TempDir()
	initBin := filepath.Join(d, "berth-init")
	os.WriteFile(initBin, []byte("#!/bin/false\n"), 0o755)
	dirs := map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines"), "BERTH_INIT": initBin}
	url := srv.URL + "/rel/Debian_Rootfs.tar.gz"

	// A wrong --sha256 installs nothing and says so.
	out, errOut, code := runBerth(t, dirs, "import", "--sha256", strings.Repeat("0", 64), url)
	if code == 0 || out != "" || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("wrong --sha256: code %d stdout %q stderr %q", code, out, errOut)
	}
	if ents, _ := os.ReadDir(dirs["BERTH_MACHINES_DIR"]); len(ents) != 0 {
		t.Errorf("machines after a failed import: %v", ents)
	}
	if _, errOut, code = runBerth(t, dirs, "import", "--verify=maybe", url); code == 0 || !strings.Contains(errOut, "--verify=maybe") {
		t.Errorf("bad --verify: %d %q", code, errOut)
	}

	out, errOut, code = runBerth(t, dirs, "import", url)
	if code != 0 || out != "" {
		t.Fatalf("import: code %d stdout %q stderr %q", code, out, errOut)
	}
	for _, want := range []string{"downloading " + url, "imported " + url + " as debian-rootfs (rootfs, gzip, rootfs/ lifted to /)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	out, _, _ = runBerth(t, dirs, "images")
	if !strings.Contains(out, "debian-rootfs ") || !strings.Contains(out, url) {
		t.Errorf("images:\n%s", out)
	}
	out, _, code = runBerth(t, dirs, "inspect", "debian-rootfs")
	var insp struct {
		Record struct{ Name, Reference string }
		Config v1.ConfigFile
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil || code != 0 || insp.Record.Reference != url ||
		len(insp.Config.History) != 1 || insp.Config.History[0].CreatedBy != "berth import "+url {
		t.Errorf("inspect: %d %v\n%s", code, err, out)
	}

	// A file, read from standard input with its digest.
	var stdout, stderr bytes.Buffer
	code = Main(t.Context(), Env{
		Args:   []string{"import", "-q", "--name", "from-stdin", "--sha256", hex.EncodeToString(sum[:]), "-"},
		Stdin:  bytes.NewReader(tb),
		Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return dirs[k] },
	})
	if code != 0 || stderr.Len() != 0 {
		t.Fatalf("import -q -: %d %q", code, stderr.String())
	}

	fs := fakeHost(t, dirs, false)
	fs.realCommands = true
	// A root filesystem tarball sets no command: give one, or --boot.
	if _, errOut, code := fs.berth(t, "create", "web-1", "debian-rootfs"); code == 0 || !strings.Contains(errOut, "no command") {
		t.Errorf("create without a command: %d %s", code, errOut)
	}
	if _, errOut, code := fs.berth(t, "create", "web-1", "debian-rootfs", "/bin/sh", "-c", "sleep 1"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(dirs["BERTH_MACHINES_DIR"], "web-1", "etc", "os-release")); err != nil || string(b) != "ID=imported\n" {
		t.Errorf("created machine's tree: %q %v", b, err)
	}
	if _, errOut, code := fs.berth(t, "rm", "web-1"); code != 0 {
		t.Fatalf("rm: %d %s", code, errOut)
	}
	if _, errOut, code := runBerth(t, dirs, "rmi", "debian-rootfs", "from-stdin"); code != 0 {
		t.Fatalf("rmi: %d %s", code, errOut)
	}
	if out, _, _ = runBerth(t, dirs, "images", "--format", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("images after rmi: %s", out)
	}
}

// TestImportThenRun runs a command in an imported busybox rootfs with the
// real systemd-nspawn.
func TestImportThenRun(t *testing.T) {
	bb := requireRunTools(t)
	src := filepath.Join(t.TempDir(), "bb.tar.gz")
	os.WriteFile(src, rootfsTarGz(t, bb), 0o644)
	d := t.TempDir()
	dirs := map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines"), "BERTH_INIT": buildInit(t)}
	if _, errOut, code := runBerth(t, dirs, "import", "-q", src); code != 0 {
		t.Fatalf("import: %d %s", code, errOut)
	}
	out, errOut, code := runBerth(t, dirs, "run", "--rm", "--network=none", "bb", "/bin/cat", "/etc/os-release")
	if code != 0 || out != "ID=imported\n" {
		t.Errorf("run: %d %q %s", code, out, errOut)
	}
}
