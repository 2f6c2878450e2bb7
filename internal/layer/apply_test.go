package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("this test needs root (chown, mknod, trusted.* xattrs)")
		}
		t.Skip("needs root")
	}
}

func TestApplyBasicTree(t *testing.T) {
	s := newSandbox(t)
	l := mkTar(t,
		dirE("./etc/"),
		fileE("./etc/hostname", "box\n"),
		fileE("usr/bin/tool", "#!/bin/sh\n").with(func(h *tar.Header) { h.Mode = 0o755 }),
		symE("bin", "usr/bin"),
		linkE("usr/bin/tool2", "usr/bin/tool"),
	)
	st, err := Apply(context.Background(), s.root, bytes.NewReader(l), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Entries: 5, Files: 2, Dirs: 1, Symlinks: 1, Hardlinks: 1, Bytes: 14}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	if got := readFile(t, filepath.Join(s.root, "bin/tool")); got != "#!/bin/sh\n" {
		t.Errorf("bin/tool through symlink = %q", got)
	}
	// usr and usr/bin were implied by usr/bin/tool: 0755.
	if m := lstat(t, filepath.Join(s.root, "usr/bin")).Mode; m != unix.S_IFDIR|0o755 {
		t.Errorf("implied parent mode = %#o, want dir 0755", m)
	}
	if m := lstat(t, filepath.Join(s.root, "usr/bin/tool")).Mode & 0o7777; m != 0o755 {
		t.Errorf("tool mode = %#o", m)
	}
	a, b := lstat(t, filepath.Join(s.root, "usr/bin/tool")), lstat(t, filepath.Join(s.root, "usr/bin/tool2"))
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hardlink: ino %d vs %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
}

func TestWhiteouts(t *testing.T) {
	s := newSandbox(t)
	l1 := mkTar(t, dirE("a"), fileE("a/x", "x"), fileE("a/y", "y"), dirE("d"), dirE("d/sub"), fileE("d/sub/deep", "z"), fileE("keep", "k"))
	l2 := mkTar(t, whE("a", "x"), whE("", "d"), whE("", "missing"), whE("nodir", "x"))
	if err := applyAll(t, s.root, testOpts(), l1, l2); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a/x": false, "a/y": true, "d": false, "keep": true, ".wh.d": false, "a/.wh.x": false} {
		if got := exists(filepath.Join(s.root, p)); got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
}

// A whiteout or opaque marker applies to lower layers only: this layer's own
// entries survive whatever their order in the tar.
func TestOpaqueSameLayerOrder(t *testing.T) {
	lower := mkTar(t, dirE("d"), fileE("d/old", "old"), dirE("d/sub"), fileE("d/sub/old", "old"), fileE("d/f", "lower"), fileE("other", "o"))
	for name, upper := range map[string][]ent{
		"marker first":  {opqE("d"), fileE("d/new", "new"), fileE("d/sub/new", "new"), fileE("d/f", "upper")},
		"marker last":   {fileE("d/new", "new"), fileE("d/sub/new", "new"), fileE("d/f", "upper"), opqE("d")},
		"marker middle": {fileE("d/new", "new"), opqE("d"), fileE("d/sub/new", "new"), fileE("d/f", "upper")},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSandbox(t)
			if err := applyAll(t, s.root, testOpts(), lower, mkTar(t, upper...)); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string]bool{"d": true, "d/old": false, "d/sub/old": false, "d/new": true, "d/sub/new": true, "other": true, "d/" + opaqueMarker: false} {
				if got := exists(filepath.Join(s.root, p)); got != want {
					t.Errorf("%s exists = %v, want %v", p, got, want)
				}
			}
			if got := readFile(t, filepath.Join(s.root, "d/f")); got != "upper" {
				t.Errorf("d/f = %q, want upper", got)
			}
		})
	}
}

func TestWhiteoutSameLayerKeepsEntry(t *testing.T) {
	s := newSandbox(t)
	lower := mkTar(t, fileE("x", "lower"), fileE("y", "lower"))
	upper := mkTar(t, fileE("x", "upper"), whE("", "x"), whE("", "y"), fileE("y", "upper"))
	if err := applyAll(t, s.root, testOpts(), lower, upper); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"x", "y"} {
		if got := readFile(t, filepath.Join(s.root, p)); got != "upper" {
			t.Errorf("%s = %q, want upper", p, got)
		}
	}
}

func TestReplaceSemantics(t *testing.T) {
	s := newSandbox(t)
	lower := mkTar(t,
		dirE("dir2file"), fileE("dir2file/inner", "i"), dirE("dir2file/deep"), fileE("dir2file/deep/x", "x"),
		fileE("file2dir", "f"),
		dirE("keep"), fileE("keep/child", "c"),
		symE("sym2dir", "/nonexistent"),
		fileE("hard", "old content"), linkE("hardalias", "hard"),
	)
	upper := mkTar(t,
		fileE("dir2file", "now a file"),
		dirE("file2dir"), fileE("file2dir/x", "x"),
		dirE("keep").with(func(h *tar.Header) { h.Mode = 0o700 }),
		dirE("sym2dir"),
		fileE("hard", "new content"),
	)
	if err := applyAll(t, s.root, testOpts(), lower, upper); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(s.root, "dir2file")); got != "now a file" {
		t.Errorf("dir2file = %q", got)
	}
	if got := readFile(t, filepath.Join(s.root, "file2dir/x")); got != "x" {
		t.Errorf("file2dir/x = %q", got)
	}
	if !exists(filepath.Join(s.root, "keep/child")) {
		t.Error("dir entry over existing dir dropped its contents")
	}
	if m := lstat(t, filepath.Join(s.root, "keep")).Mode & 0o7777; m != 0o700 {
		t.Errorf("keep mode = %#o, want 0700", m)
	}
	if m := lstat(t, filepath.Join(s.root, "sym2dir")).Mode & unix.S_IFMT; m != unix.S_IFDIR {
		t.Errorf("sym2dir type = %#o, want dir", m)
	}
	// The new file is a new inode; the old hardlink keeps the old content.
	if got := readFile(t, filepath.Join(s.root, "hardalias")); got != "old content" {
		t.Errorf("hardalias = %q, want old content", got)
	}
}

func TestOwnersModesSetuid(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	l := mkTar(t,
		dirE("d").with(func(h *tar.Header) { h.Uid, h.Gid, h.Mode = 1000, 1001, 0o2775 }),
		fileE("d/suid", "x").with(func(h *tar.Header) { h.Uid, h.Gid, h.Mode = 1000, 1001, 0o4755 }),
		fileE("d/sgid", "x").with(func(h *tar.Header) { h.Uid, h.Gid, h.Mode = 0, 50, 0o2711 }),
		dirE("tmp").with(func(h *tar.Header) { h.Mode = 0o1777 }),
		fileE("ro", "x").with(func(h *tar.Header) { h.Mode = 0o400 }),
		fileE("rw", "x").with(func(h *tar.Header) { h.Mode = 0o666 }),
		symE("d/link", "suid").with(func(h *tar.Header) { h.Uid, h.Gid = 33, 34 }),
		dirE("ro-dir").with(func(h *tar.Header) { h.Mode = 0o555 }),
		fileE("ro-dir/inside", "written after the dir entry"),
	)
	// In a setgid directory new entries inherit its group unless chowned.
	l2 := mkTar(t, fileE("d/root-owned", "x"), symE("d/root-link", "x"), dirE("d/root-dir"))
	if err := applyAll(t, s.root, testOpts(), l, l2); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][3]uint32{
		"d/root-owned":  {unix.S_IFREG | 0o644, 0, 0},
		"d/root-link":   {unix.S_IFLNK | 0o777, 0, 0},
		"d/root-dir":    {unix.S_IFDIR | 0o755, 0, 0},
		"d":             {unix.S_IFDIR | 0o2775, 1000, 1001},
		"d/suid":        {unix.S_IFREG | 0o4755, 1000, 1001},
		"d/sgid":        {unix.S_IFREG | 0o2711, 0, 50},
		"tmp":           {unix.S_IFDIR | 0o1777, 0, 0},
		"ro":            {unix.S_IFREG | 0o400, 0, 0},
		"rw":            {unix.S_IFREG | 0o666, 0, 0},
		"d/link":        {unix.S_IFLNK | 0o777, 33, 34},
		"ro-dir":        {unix.S_IFDIR | 0o555, 0, 0},
		"ro-dir/inside": {unix.S_IFREG | 0o644, 0, 0},
	} {
		st := lstat(t, filepath.Join(s.root, p))
		if got := [3]uint32{st.Mode, st.Uid, st.Gid}; got != want {
			t.Errorf("%s: mode/uid/gid = %#o/%d/%d, want %#o/%d/%d", p, got[0], got[1], got[2], want[0], want[1], want[2])
		}
	}
}

func TestRootEntry(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	l := mkTar(t,
		dirE("./").with(func(h *tar.Header) { h.Mode = 0o6750; h.Gid = 7 }),
		fileE("f", "x"),
	)
	st, err := Apply(context.Background(), s.root, bytes.NewReader(l), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if st.Dirs != 1 {
		t.Errorf("Dirs = %d", st.Dirs)
	}
	got := lstat(t, s.root)
	if got.Mode&0o7777 != 0o750 || got.Gid != 7 {
		t.Errorf("root mode %#o gid %d, want 0750 (setuid/setgid dropped) gid 7", got.Mode&0o7777, got.Gid)
	}
	if got.Mtim.Sec != testTime.Unix() {
		t.Errorf("root mtime = %d, want %d", got.Mtim.Sec, testTime.Unix())
	}
	if _, err := Apply(context.Background(), s.root, bytes.NewReader(mkTar(t, fileE(".", ""))), testOpts()); err == nil {
		t.Error("a regular file named . applied without error")
	}
}

func TestDirTimesSetLast(t *testing.T) {
	s := newSandbox(t)
	dt := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	at := time.Date(2002, 1, 1, 0, 0, 0, 0, time.UTC)
	l := mkTar(t,
		dirE("d").with(func(h *tar.Header) { h.ModTime, h.AccessTime, h.Format = dt, at, tar.FormatPAX }),
		dirE("d/e").with(func(h *tar.Header) { h.ModTime, h.Format = dt, tar.FormatPAX }),
		fileE("d/e/f", "x"),
		fileE("d/g", "y").with(func(h *tar.Header) { h.ModTime, h.AccessTime, h.Format = dt, at, tar.FormatPAX }),
		symE("d/s", "g").with(func(h *tar.Header) { h.ModTime, h.Format = dt, tar.FormatPAX }),
		fileE("d/e/late", "created after d/e's entry"),
	)
	if err := applyAll(t, s.root, testOpts(), l); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d", "d/e", "d/g", "d/s"} {
		st := lstat(t, filepath.Join(s.root, p))
		if st.Mtim.Sec != dt.Unix() || st.Mtim.Nsec != 789 {
			t.Errorf("%s mtime = %d.%09d, want %d.000000789", p, st.Mtim.Sec, st.Mtim.Nsec, dt.Unix())
		}
	}
	for _, p := range []string{"d", "d/g"} {
		if st := lstat(t, filepath.Join(s.root, p)); st.Atim.Sec != at.Unix() {
			t.Errorf("%s atime = %d, want %d", p, st.Atim.Sec, at.Unix())
		}
	}
	if st := lstat(t, filepath.Join(s.root, "d/e/f")); st.Mtim.Sec != testTime.Unix() {
		t.Errorf("d/e/f mtime = %d", st.Mtim.Sec)
	}
}

func TestXattrs(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	// security.capability v2: cap_net_raw (bit 13) permitted+effective.
	capv2 := string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	px := func(kv ...string) func(h *tar.Header) {
		return func(h *tar.Header) {
			h.PAXRecords = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
			}
		}
	}
	l := mkTar(t,
		fileE("ping", "elf").with(px("security.capability", capv2, "user.note", "hi", "security.selinux", "system_u:object_r:bin_t:s0")),
		dirE("d").with(px("user.dir", "yes", "trusted.overlay.x", "y")),
		fifoE("d/fifo").with(px("user.fifo", "f")),
		symE("s", "ping").with(px("trusted.sym", "t")),
	)
	if err := applyAll(t, s.root, testOpts(), l); err != nil {
		t.Fatal(err)
	}
	check := func(p, name, want string) {
		t.Helper()
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(s.root, p), name, buf)
		got := string(buf[:max(n, 0)])
		if want == "" {
			if err == nil {
				t.Errorf("%s: xattr %s = %q, want none", p, name, got)
			}
			return
		}
		if err != nil || got != want {
			t.Errorf("%s: xattr %s = %q, %v; want %q", p, name, got, err, want)
		}
	}
	check("ping", "security.capability", capv2)
	check("ping", "user.note", "hi")
	check("ping", "security.selinux", "")
	check("d", "user.dir", "yes")
	check("d", "trusted.overlay.x", "y")
	check("d/fifo", "user.fifo", "") // Linux allows user.* only on files and dirs
	check("s", "trusted.sym", "t")
	check("ping", "trusted.sym", "") // set on the symlink, not followed to its target

	// Rootless skips what needs privilege and counts it.
	s2 := newSandbox(t)
	st, err := Apply(context.Background(), s2.root, bytes.NewReader(l), Options{Rootless: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 4 {
		t.Errorf("rootless Skipped = %d, want 4 (security.capability, trusted.overlay.x, trusted.sym, user.fifo)", st.Skipped)
	}
}

func fifoE(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o640, ModTime: testTime}}
}

func TestDevices(t *testing.T) {
	requireRoot(t)
	s := newSandbox(t)
	l := mkTar(t,
		ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}},
		ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0, ModTime: testTime}},
		fifoE("run/fifo").with(func(h *tar.Header) { h.Mode = 0o4620 }),
	)
	st, err := Apply(context.Background(), s.root, bytes.NewReader(l), testOpts())
	if err != nil {
		t.Fatal(err)
	}
	if st.Devices != 3 {
		t.Errorf("Devices = %d", st.Devices)
	}
	for p, want := range map[string][3]uint64{
		"dev/null":  {unix.S_IFCHR | 0o666, uint64(unix.Mkdev(1, 3)), 0},
		"dev/loop0": {unix.S_IFBLK | 0o660, uint64(unix.Mkdev(7, 0)), 6},
		"run/fifo":  {unix.S_IFIFO | 0o4620, 0, 0},
	} {
		st := lstat(t, filepath.Join(s.root, p))
		if got := [3]uint64{uint64(st.Mode), st.Rdev, uint64(st.Gid)}; got != want {
			t.Errorf("%s: mode/rdev/gid = %#o/%d/%d, want %#o/%d/%d", p, got[0], got[1], got[2], want[0], want[1], want[2])
		}
	}
	// Rootless: devices skipped, FIFOs still made.
	s2 := newSandbox(t)
	st, err = Apply(context.Background(), s2.root, bytes.NewReader(l), Options{Rootless: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Skipped != 2 || st.Devices != 1 || exists(filepath.Join(s2.root, "dev/null")) {
		t.Errorf("rootless: Skipped=%d Devices=%d dev/null exists=%v", st.Skipped, st.Devices, exists(filepath.Join(s2.root, "dev/null")))
	}
}

func TestHardlinkToSymlinkLinksTheSymlink(t *testing.T) {
	s := newSandbox(t)
	l := mkTar(t, fileE("target", "t"), symE("sym", "target"), linkE("hl", "sym"), linkE("./abs", "/target"))
	if err := applyAll(t, s.root, testOpts(), l); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.root, "hl"))
	if st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Nlink != 2 {
		t.Errorf("hl: mode %#o nlink %d, want a symlink with 2 links", st.Mode, st.Nlink)
	}
	if lstat(t, filepath.Join(s.root, "abs")).Ino != lstat(t, filepath.Join(s.root, "target")).Ino {
		t.Error("hardlink with absolute target name did not link root/target")
	}
	if _, err := Apply(context.Background(), s.root, bytes.NewReader(mkTar(t, linkE("x", "nope"))), testOpts()); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("hardlink to missing target: err = %v, want an error naming the entry", err)
	}
}

func TestLongNames(t *testing.T) {
	long := strings.Repeat("a", 120) + "/" + strings.Repeat("b", 150) + "/" + strings.Repeat("c", 200)
	longTarget := strings.Repeat("t", 180)
	for _, format := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		t.Run(format.String(), func(t *testing.T) {
			s := newSandbox(t)
			set := func(h *tar.Header) { h.Format = format }
			l := mkTar(t, fileE(long, "deep").with(set), symE("s/"+longTarget, long).with(set), linkE("h/"+longTarget, long).with(set))
			if err := applyAll(t, s.root, testOpts(), l); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(s.root, long)); got != "deep" {
				t.Errorf("long name content = %q", got)
			}
			if got, _ := os.Readlink(filepath.Join(s.root, "s", longTarget)); got != long {
				t.Errorf("long symlink target = %q", got)
			}
			if got := readFile(t, filepath.Join(s.root, "h", longTarget)); got != "deep" {
				t.Errorf("long hardlink content = %q", got)
			}
		})
	}
}

// countingReader counts bytes read and whether EOF was reached.
type countingReader struct {
	r   io.Reader
	n   int64
	eof bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

func TestTrailingBytesConsumed(t *testing.T) {
	s := newSandbox(t)
	junk := make([]byte, 100_000)
	rand.Read(junk)
	data := append(mkTar(t, fileE("f", "x")), junk...)
	cr := &countingReader{r: bytes.NewReader(data)}
	if _, err := Apply(context.Background(), s.root, cr, testOpts()); err != nil {
		t.Fatal(err)
	}
	if cr.n != int64(len(data)) || !cr.eof {
		t.Errorf("consumed %d of %d bytes (eof %v)", cr.n, len(data), cr.eof)
	}
}

func TestTruncatedAndCorrupt(t *testing.T) {
	full := mkTar(t, fileE("a", strings.Repeat("A", 1000)), fileE("b", "bb"))
	// Offsets: header a [0,512), data a [512,1536), header b [1536,2048),
	// data b [2048,2560), end marker [2560,3584).
	for _, cut := range []int{0, 100, 512, 700, 1536, 2000, 2048, 2560, 3072, 3583} {
		s := newSandbox(t)
		_, err := Apply(context.Background(), s.root, bytes.NewReader(full[:cut]), testOpts())
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("cut at %d: err = %v, want ErrTruncated", cut, err)
		}
	}
	bad := bytes.Clone(full)
	bad[1536+10] ^= 0xff // header b's name: checksum mismatch
	if _, err := Apply(context.Background(), newSandbox(t).root, bytes.NewReader(bad), testOpts()); err == nil {
		t.Error("tampered header applied without error")
	}
	bad = bytes.Clone(full)
	bad[2560+5] = 1 // non-zero byte in the end marker
	if _, err := Apply(context.Background(), newSandbox(t).root, bytes.NewReader(bad), testOpts()); err == nil {
		t.Error("tampered end marker applied without error")
	}
}

func TestUnsupportedType(t *testing.T) {
	s := newSandbox(t)
	l := mkTar(t, ent{hdr: tar.Header{Typeflag: 'Z', Name: "weird", ModTime: testTime}})
	_, err := Apply(context.Background(), s.root, bytes.NewReader(l), testOpts())
	if err == nil || !strings.Contains(err.Error(), `entry "weird"`) {
		t.Errorf("err = %v", err)
	}
}

func TestContextCanceled(t *testing.T) {
	s := newSandbox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Apply(ctx, s.root, bytes.NewReader(mkTar(t, fileE("f", "x"))), testOpts()); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// "Created by this layer" holds whichever alias (symlinked parent) the layer
// used to write a path.
func TestWhiteoutSameLayerThroughAlias(t *testing.T) {
	s := newSandbox(t)
	lower := mkTar(t, dirE("b"), fileE("b/old", "o"), dirE("c"), fileE("c/old", "o"))
	upper := mkTar(t, symE("a", "b"), fileE("a/x", "x"), whE("b", "x"), symE("d", "/c"), fileE("d/y", "y"), opqE("c"))
	if err := applyAll(t, s.root, testOpts(), lower, upper); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"b/x": true, "b/old": true, "c/y": true, "c/old": false} {
		if got := exists(filepath.Join(s.root, p)); got != want {
			t.Errorf("%s exists = %v, want %v", p, got, want)
		}
	}
}
