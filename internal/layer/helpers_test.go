package layer

import (
	gunzippkg "github.com/berth-sh/berth/internal/gunzip"

	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body string
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func fileE(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime}, body: body}
}

func dirE(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: testTime}}
}

func symE(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: testTime}}
}

func linkE(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: testTime}}
}

func whE(dir, name string) ent {
	p := whiteoutPrefix + name
	if dir != "" {
		p = dir + "/" + p
	}
	return fileE(p, "")
}

func opqE(dir string) ent { return fileE(dir+"/"+opaqueMarker, "") }

// with returns e after f modified its header.
func (e ent) with(f func(h *tar.Header)) ent { f(&e.hdr); return e }

// mkTar writes entries as a tar stream. Format is the writer's choice unless set.
func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatalf("write body %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// applyAll applies layers in order onto root and returns the first error.
func applyAll(t testing.TB, root string, opts Options, layers ...[]byte) error {
	t.Helper()
	for i, l := range layers {
		if _, err := Apply(context.Background(), root, bytes.NewReader(l), opts); err != nil {
			t.Logf("layer %d: %v", i, err)
			return err
		}
	}
	return nil
}

// snapshot describes every file under dir, except the subtree skip, as text:
// type, mode, owner, nlink, size, content hash, link target, device, mtime.
func snapshot(t testing.TB, dir, skip string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		out[p] = describe(t, p)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func describe(t testing.TB, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	d := fmt.Sprintf("mode=%#o uid=%d gid=%d nlink=%d size=%d mtime=%d.%09d",
		st.Mode, st.Uid, st.Gid, st.Nlink, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d += fmt.Sprintf(" sha256=%x", sha256.Sum256(data))
	case unix.S_IFLNK:
		l, err := os.Readlink(p)
		if err != nil {
			t.Fatal(err)
		}
		d += " link=" + l
	case unix.S_IFCHR, unix.S_IFBLK:
		d += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return d
}

// diffSnap lists what changed between two snapshots.
func diffSnap(before, after map[string]string) []string {
	var out []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			out = append(out, "deleted "+p)
		case a != b:
			out = append(out, "changed "+p+": "+b+" -> "+a)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			out = append(out, "created "+p)
		}
	}
	sort.Strings(out)
	return out
}

// sandbox is a temp dir holding root/ (the rootfs) and outside/ (host files a
// layer must never touch).
type sandbox struct {
	base, root, outside string
}

func newSandbox(t testing.TB) sandbox {
	t.Helper()
	base := t.TempDir()
	s := sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.root, s.outside, filepath.Join(s.outside, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{"secret": "host secret", "sub/file": "host file", "passwd": "root:x:0:0"} {
		if err := os.WriteFile(filepath.Join(s.outside, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("secret", filepath.Join(s.outside, "link")); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s sandbox) snap(t testing.TB) map[string]string { return snapshot(t, s.base, s.root) }

// hostFiles are real host paths layers aim at; their description must not change.
var hostFiles = []string{"/etc/passwd", "/etc/shadow", "/etc", "/tmp"}

func hostSnap(t testing.TB) map[string]string {
	out := map[string]string{}
	for _, p := range hostFiles {
		if f, err := os.Open(p); err == nil { // unreadable (non-root): cannot be checked
			f.Close()
			d := describe(t, p)
			if fi, _ := os.Lstat(p); fi.IsDir() {
				// A directory's mtime and size move with unrelated activity
				// (other tests create temp dirs); its identity is its mode and owner.
				d = strings.Fields(d)[0] + " " + strings.Fields(d)[1] + " " + strings.Fields(d)[2]
			}
			out[p] = d
		}
	}
	return out
}

// lstat returns the stat of root/p or fails the test.
func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// testOpts are the options for tests that do not test privileges: berth's
// defaults as root, rootless mode otherwise (chown to uid 0 would fail).
func testOpts() Options { return Options{Rootless: os.Geteuid() != 0} }

// AutoGunzip is the external decompressor tests look for.
const AutoGunzip = gunzippkg.Auto

// inflater is the Gunzip running the program at path ("" = in-process).
func inflater(path string) Gunzip {
	if path == "" {
		return nil
	}
	return gunzippkg.New(path)
}
