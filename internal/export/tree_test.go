package export

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testBase is a UID range nspawn could pick (a multiple of 65536).
const testBase = 0x1A2B0000

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown into a UID range, mknod")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// capV3 is a security.capability value granting CAP_NET_RAW (13),
// namespaced to the user namespace whose root is host uid root.
func capV3(root uint32) []byte {
	b := make([]byte, vfsCapV3Size)
	binary.LittleEndian.PutUint32(b, vfsCapRevision3|1) // effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)
	binary.LittleEndian.PutUint32(b[20:], root)
	return b
}

// aclWithUser is a system.posix_acl_access value for mode 0750 (the mask
// is the group bits) with an entry for user uid.
func aclWithUser(uid uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 7, 0xffffffff}, {aclUser, 5, uid}, {0x04, 0, 0xffffffff}, {0x10, 5, 0xffffffff}, {0x20, 0, 0xffffffff}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// shiftedTree builds a small root filesystem whose ids are shifted by base,
// as nspawn's chown leaves it (base 0: an unshifted tree).
func shiftedTree(t *testing.T, base uint32) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "rootfs")
	id := func(n uint32) int { return int(base + n) }
	must(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "home/app"), 0o700))
	must(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	must(t, os.MkdirAll(filepath.Join(root, "dev"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "bin/ping"), []byte("ping binary"), 0o755))
	must(t, os.WriteFile(filepath.Join(root, "home/app/notes"), []byte("mine"), 0o600))
	must(t, os.WriteFile(filepath.Join(root, "stray"), []byte("host-owned"), 0o644))
	must(t, os.Link(filepath.Join(root, "bin/ping"), filepath.Join(root, "bin/ping6")))
	must(t, os.Symlink("/etc", filepath.Join(root, "escape")))
	must(t, os.Symlink("bin/ping", filepath.Join(root, "ping")))
	must(t, unix.Mkfifo(filepath.Join(root, "run/fifo"), 0o620))
	must(t, unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(root, "run/sock"), unix.S_IFSOCK|0o777, 0))

	for _, p := range []string{"", "bin", "bin/ping", "run", "run/fifo", "dev", "dev/null", "escape", "ping", "home"} {
		must(t, os.Lchown(filepath.Join(root, p), id(0), id(0)))
	}
	for _, p := range []string{"home/app", "home/app/notes"} {
		must(t, os.Lchown(filepath.Join(root, p), id(1000), id(100)))
	}
	// chown clears setuid and file capabilities: mode and xattrs after it.
	must(t, unix.Setxattr(filepath.Join(root, "bin/ping"), "security.capability", capV3(base), 0))
	must(t, unix.Chmod(filepath.Join(root, "bin/ping"), 0o4755))
	must(t, os.Chmod(filepath.Join(root, "run/fifo"), 0o620))
	// Read through /proc/self/fd/DIR/NAME: a FIFO is never opened.
	must(t, unix.Lsetxattr(filepath.Join(root, "run/fifo"), "trusted.note", []byte("fifo"), 0))
	must(t, unix.Setxattr(filepath.Join(root, "home/app/notes"), "user.comment", []byte("hello"), 0))
	must(t, unix.Setxattr(filepath.Join(root, "home/app"), "system.posix_acl_access", aclWithUser(base+1001), 0))
	return root
}

type tarEntry struct {
	hdr  *tar.Header
	body string
}

func readTar(t *testing.T, r io.Reader) (map[string]tarEntry, []string) {
	t.Helper()
	tr := tar.NewReader(r)
	out := map[string]tarEntry{}
	var order []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, order
		}
		must(t, err)
		b, err := io.ReadAll(tr)
		must(t, err)
		out[h.Name] = tarEntry{h, string(b)}
		order = append(order, h.Name)
	}
}

func TestWriteTreeShifted(t *testing.T) {
	requireRoot(t)
	root := shiftedTree(t, testBase)
	var warnings []string
	var buf bytes.Buffer
	st, err := WriteTree(context.Background(), &buf, root, TreeOptions{Warn: func(m string) { warnings = append(warnings, m) }})
	must(t, err)
	if st.Shift.Base != testBase {
		t.Errorf("detected shift %#x, want %#x", st.Shift.Base, testBase)
	}
	ents, order := readTar(t, &buf)
	if order[0] != "./" {
		t.Errorf("first entry %q, want ./ (the root directory)", order[0])
	}

	owners := map[string][2]int{
		"./": {0, 0}, "bin/": {0, 0}, "bin/ping": {0, 0}, "run/fifo": {0, 0}, "dev/null": {0, 0}, "escape": {0, 0},
		"home/app/": {1000, 100}, "home/app/notes": {1000, 100},
		"stray": {overflowID, overflowID}, // host root, outside the range
	}
	for name, want := range owners {
		e, ok := ents[name]
		if !ok {
			t.Errorf("no entry %s", name)
			continue
		}
		if e.hdr.Uid != want[0] || e.hdr.Gid != want[1] {
			t.Errorf("%s owned by %d:%d, want %d:%d", name, e.hdr.Uid, e.hdr.Gid, want[0], want[1])
		}
	}

	ping := ents["bin/ping"]
	if ping.hdr.Typeflag != tar.TypeReg || ping.body != "ping binary" || ping.hdr.Mode != 0o4755 {
		t.Errorf("bin/ping: type %c mode %o body %q", ping.hdr.Typeflag, ping.hdr.Mode, ping.body)
	}
	capv := []byte(ping.hdr.PAXRecords["SCHILY.xattr.security.capability"])
	if len(capv) != vfsCapV2Size || binary.LittleEndian.Uint32(capv)&vfsCapRevisionMask != vfsCapRevision2 ||
		binary.LittleEndian.Uint32(capv[4:]) != 1<<13 {
		t.Errorf("bin/ping capability %x, want the v2 form of CAP_NET_RAW (the machine's root owns it)", capv)
	}
	if l := ents["bin/ping6"]; l.hdr.Typeflag != tar.TypeLink || l.hdr.Linkname != "bin/ping" {
		t.Errorf("bin/ping6: type %c link %q, want a hard link to bin/ping", l.hdr.Typeflag, l.hdr.Linkname)
	}
	if e := ents["escape"]; e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "/etc" {
		t.Errorf("escape: %+v", e.hdr)
	}
	for name := range ents {
		if strings.HasPrefix(name, "escape/") || strings.HasPrefix(name, "etc/") {
			t.Errorf("followed the symlink out of the tree: %s", name)
		}
	}
	if e := ents["run/fifo"]; e.hdr.Typeflag != tar.TypeFifo || e.hdr.Mode != 0o620 || e.hdr.PAXRecords["SCHILY.xattr.trusted.note"] != "fifo" {
		t.Errorf("run/fifo: type %c mode %o", e.hdr.Typeflag, e.hdr.Mode)
	}
	if e := ents["dev/null"]; e.hdr.Typeflag != tar.TypeChar || e.hdr.Devmajor != 1 || e.hdr.Devminor != 3 {
		t.Errorf("dev/null: type %c %d,%d", e.hdr.Typeflag, e.hdr.Devmajor, e.hdr.Devminor)
	}
	if e := ents["home/app/"]; e.hdr.Mode != 0o750 {
		t.Errorf("home/app mode %o", e.hdr.Mode)
	}
	if got := ents["home/app/notes"].hdr.PAXRecords["SCHILY.xattr.user.comment"]; got != "hello" {
		t.Errorf("user.comment = %q", got)
	}
	acl := []byte(ents["home/app/"].hdr.PAXRecords["SCHILY.xattr.system.posix_acl_access"])
	if len(acl) != 4+5*8 || binary.LittleEndian.Uint32(acl[4+8+4:]) != 1001 {
		t.Errorf("ACL %x: the user entry should name container uid 1001", acl)
	}
	if _, ok := ents["run/sock"]; ok {
		t.Error("the socket was archived")
	}
	if len(st.Skipped) != 1 || st.Skipped[0] != "run/sock" {
		t.Errorf("skipped %v, want [run/sock]", st.Skipped)
	}
	joined := strings.Join(warnings, "\n")
	if !strings.Contains(joined, "/run/sock") || !strings.Contains(joined, "1 entries owned outside") {
		t.Errorf("warnings should name the socket and count the stray owner:\n%s", joined)
	}
}

func TestWriteTreeUnshifted(t *testing.T) {
	requireRoot(t)
	root := shiftedTree(t, 0)
	must(t, os.Lchown(filepath.Join(root, "stray"), 4242, 4343))
	var buf bytes.Buffer
	st, err := WriteTree(context.Background(), &buf, root, TreeOptions{})
	must(t, err)
	if st.Shift.Base != 0 {
		t.Fatalf("shift %#x for a root-owned tree", st.Shift.Base)
	}
	ents, _ := readTar(t, &buf)
	if e := ents["stray"]; e.hdr.Uid != 4242 || e.hdr.Gid != 4343 {
		t.Errorf("stray owned by %d:%d, want the ids unchanged", e.hdr.Uid, e.hdr.Gid)
	}
	if e := ents["home/app/notes"]; e.hdr.Uid != 1000 || e.hdr.Gid != 100 {
		t.Errorf("notes owned by %d:%d", e.hdr.Uid, e.hdr.Gid)
	}
	// A v3 capability with root id 0 is not touched in an unshifted tree.
	if got := []byte(ents["bin/ping"].hdr.PAXRecords["SCHILY.xattr.security.capability"]); len(got) == 0 {
		t.Error("capability lost")
	}
}

func TestDetectShiftMismatch(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	must(t, os.Chown(root, testBase, testBase+0x10000))
	if _, err := DetectShift(root); err == nil || !strings.Contains(err.Error(), "ranges differ") {
		t.Errorf("DetectShift of a tree with different UID and GID ranges: %v", err)
	}
}

func TestWriteTreeCancelled(t *testing.T) {
	root := t.TempDir()
	for i := range 20 {
		must(t, os.WriteFile(filepath.Join(root, strings.Repeat("f", i+1)), []byte("x"), 0o644))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := WriteTree(ctx, io.Discard, root, TreeOptions{Shift: &Shift{}}); err == nil {
		t.Error("WriteTree with a cancelled context succeeded")
	}
}
