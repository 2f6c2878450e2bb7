package export

import (
	"archive/tar"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// idRange is the size of the UID/GID range nspawn gives a machine.
const idRange = 0x10000

// overflowID is what an id outside the machine's range is seen as inside
// it (the kernel's overflowuid, "nobody").
const overflowID = 65534

// Shift is a machine's place in the host's UID/GID space: container id N
// is host id Base+N, for N below 65536. Base 0 is an unshifted tree.
type Shift struct{ Base uint32 }

// DetectShift finds the shift of the tree at root the way systemd-nspawn
// does (PrivateUsers=yes, and pick when it reuses a chowned tree): the
// owner of the root directory, rounded down to a multiple of 65536, is the
// base; UID and GID must agree. A tree nspawn never chowned (idmapped
// mounts, or --private-users=no) has root-owned / and base 0.
func DetectShift(root string) (Shift, error) {
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil {
		return Shift{}, fmt.Errorf("detect UID shift of %s: %w", root, err)
	}
	ub, gb := st.Uid&^(idRange-1), st.Gid&^(idRange-1)
	if ub != gb {
		return Shift{}, fmt.Errorf("detect UID shift of %s: owned by %d:%d, whose UID and GID ranges differ (nspawn refuses such a tree too)", root, st.Uid, st.Gid)
	}
	return Shift{Base: ub}, nil
}

// containerID maps host id to the container's, reporting whether it was
// inside the machine's range.
func (s Shift) containerID(id uint32) (int, bool) {
	if s.Base == 0 {
		return int(id), true
	}
	if id >= s.Base && id-s.Base < idRange {
		return int(id - s.Base), true
	}
	return overflowID, false
}

// TreeOptions say how WriteTree reads a root filesystem.
type TreeOptions struct {
	// Shift maps host ids back to the container's. Default (nil):
	// DetectShift.
	Shift *Shift
	// Warn is told about each entry not exported (sockets) or changed
	// (an owner outside the machine's range). Default: ignore.
	Warn func(msg string)
}

// TreeStats counts what WriteTree wrote.
type TreeStats struct {
	Entries int
	Bytes   int64
	// Skipped names the sockets left out.
	Skipped []string
	Shift   Shift
}

// WriteTree writes the tree at root to w as a tar: directories, regular
// files, symlinks, hard links (as links to the first name), device nodes
// and FIFOs, with modes, nanosecond mtimes, and xattrs as PAX
// SCHILY.xattr records; owners are the container's (see Shift). Sockets
// cannot be archived and are skipped. The walk opens every directory and
// file relative to its parent without following symlinks, so a tree
// changed while it is read (a running machine) is never escaped.
func WriteTree(ctx context.Context, w io.Writer, root string, o TreeOptions) (TreeStats, error) {
	tw := &treeWriter{ctx: ctx, tw: tar.NewWriter(w), links: map[devIno]string{}, warn: o.Warn}
	if tw.warn == nil {
		tw.warn = func(string) {}
	}
	if o.Shift != nil {
		tw.stats.Shift = *o.Shift
	} else {
		s, err := DetectShift(root)
		if err != nil {
			return tw.stats, err
		}
		tw.stats.Shift = s
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return tw.stats, fmt.Errorf("export %s: %w", root, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return tw.stats, fmt.Errorf("export %s: %w", root, err)
	}
	if err := tw.entry(fd, -1, "", "./", &st); err != nil {
		return tw.stats, fmt.Errorf("export %s: %w", root, err)
	}
	if err := tw.dir(fd, ""); err != nil {
		return tw.stats, fmt.Errorf("export %s: %w", root, err)
	}
	if tw.outside > 0 {
		tw.warn(fmt.Sprintf("%d entries owned outside the machine's UID range (base %d) are exported as owned by %d", tw.outside, tw.stats.Shift.Base, overflowID))
	}
	if err := tw.tw.Close(); err != nil {
		return tw.stats, fmt.Errorf("export %s: %w", root, err)
	}
	return tw.stats, nil
}

type devIno struct{ dev, ino uint64 }

type treeWriter struct {
	ctx     context.Context
	tw      *tar.Writer
	links   map[devIno]string
	warn    func(string)
	stats   TreeStats
	outside int
}

// dir writes the entries of the directory open at fd, whose archive name
// is prefix ("" for the root, else ending in "/"), sorted by name.
func (t *treeWriter) dir(fd int, prefix string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("read %s: %w", orRoot(prefix), err)
	}
	for _, n := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed since the directory was read
			}
			return fmt.Errorf("stat %s%s: %w", prefix, n, err)
		}
		p := prefix + n
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			cfd, err := openAt(fd, n, unix.O_DIRECTORY, &st)
			if err != nil {
				return fmt.Errorf("open %s: %w", p, err)
			}
			err = t.entry(cfd, fd, n, p+"/", &st)
			if err == nil {
				err = t.dir(cfd, p+"/")
			}
			unix.Close(cfd)
			if err != nil {
				return err
			}
		case unix.S_IFREG:
			if err := t.file(fd, n, p, &st); err != nil {
				return err
			}
		case unix.S_IFSOCK:
			t.stats.Skipped = append(t.stats.Skipped, p)
			t.warn(fmt.Sprintf("skipping socket /%s: a tar cannot hold one", p))
		default:
			if err := t.entry(-1, fd, n, p, &st); err != nil {
				return err
			}
		}
	}
	return nil
}

// file writes regular file n of the directory at dirfd.
func (t *treeWriter) file(dirfd int, n, p string, st *unix.Stat_t) error {
	if t.hardlink(p, st) {
		return t.linkEntry(p, st)
	}
	ffd, err := openAt(dirfd, n, 0, st)
	if err != nil {
		return fmt.Errorf("open %s: %w", p, err)
	}
	f := os.NewFile(uintptr(ffd), p)
	defer f.Close()
	if err := t.entry(ffd, dirfd, n, p, st); err != nil {
		return err
	}
	c, err := io.Copy(t.tw, ctxReader{t.ctx, io.LimitReader(f, st.Size)})
	if err == nil && c != st.Size {
		err = fmt.Errorf("file shrank from %d to %d bytes while it was read", st.Size, c)
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	t.stats.Bytes += c
	return nil
}

// hardlink records the first name of a multiply-linked inode and reports
// whether p is a later name of one already written.
func (t *treeWriter) hardlink(p string, st *unix.Stat_t) bool {
	if st.Nlink < 2 {
		return false
	}
	k := devIno{st.Dev, st.Ino}
	if _, ok := t.links[k]; ok {
		return true
	}
	t.links[k] = p
	return false
}

func (t *treeWriter) linkEntry(p string, st *unix.Stat_t) error {
	h := t.header(p, st)
	h.Typeflag, h.Linkname, h.Size = tar.TypeLink, t.links[devIno{st.Dev, st.Ino}], 0
	t.stats.Entries++
	return t.tw.WriteHeader(h)
}

// openAt opens n in dirfd without following a symlink, and checks it is
// still the inode st describes (a running machine may swap it meanwhile).
func openAt(dirfd int, n string, flags int, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|flags, 0)
	if err != nil {
		return -1, err
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return -1, errors.New("replaced while it was read")
	}
	*st = now
	return fd, nil
}

func (t *treeWriter) header(p string, st *unix.Stat_t) *tar.Header {
	uid, uok := t.stats.Shift.containerID(st.Uid)
	gid, gok := t.stats.Shift.containerID(st.Gid)
	if !uok || !gok {
		t.outside++
	}
	return &tar.Header{
		Name:    p,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     uid,
		Gid:     gid,
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
}

// entry writes the header of a directory, file, symlink, device or FIFO.
// fd is the open entry (directories and files) or -1; then the entry is
// n in dirfd.
func (t *treeWriter) entry(fd, dirfd int, n, p string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Mode&unix.S_IFMT != unix.S_IFREG && t.hardlink(p, st) {
		return t.linkEntry(p, st)
	}
	h := t.header(p, st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		target, err := readlinkAt(dirfd, n)
		if err != nil {
			return fmt.Errorf("read link %s: %w", p, err)
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return fmt.Errorf("%s: unsupported file type %#o", p, st.Mode&unix.S_IFMT)
	}
	x, err := t.xattrs(fd, dirfd, n)
	if err != nil {
		return fmt.Errorf("read xattrs of %s: %w", p, err)
	}
	if len(x) > 0 {
		h.PAXRecords = x
	}
	t.stats.Entries++
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// xattrs reads the entry's extended attributes as PAX records. Entries
// without an open fd are read through /proc/self/fd/DIRFD/NAME with the
// l* calls, which never follow the last component.
func (t *treeWriter) xattrs(fd, dirfd int, n string) (map[string]string, error) {
	var list func([]byte) (int, error)
	var get func(string, []byte) (int, error)
	if fd >= 0 {
		list = func(b []byte) (int, error) { return unix.Flistxattr(fd, b) }
		get = func(a string, b []byte) (int, error) { return unix.Fgetxattr(fd, a, b) }
	} else {
		p := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + n
		list = func(b []byte) (int, error) { return unix.Llistxattr(p, b) }
		get = func(a string, b []byte) (int, error) { return unix.Lgetxattr(p, a, b) }
	}
	names, err := grow(list)
	if errors.Is(err, unix.ENOTSUP) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out map[string]string
	for _, a := range strings.Split(strings.TrimRight(string(names), "\x00"), "\x00") {
		if a == "" || !exportXattr(a) {
			continue
		}
		v, err := grow(func(b []byte) (int, error) { return get(a, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a, err)
		}
		if v = t.unshiftXattr(a, v); v == nil {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out["SCHILY.xattr."+a] = string(v)
	}
	return out, nil
}

// exportXattr says whether attribute a belongs in the archive: everything
// but the host's security labels, which the host's policy gave and another
// host's policy will give again (berth's layer applier drops them too).
func exportXattr(a string) bool {
	return a != "security.selinux" && a != "security.apparmor" && a != "security.ima" && a != "security.evm"
}

// Binary formats that carry ids (linux/capability.h, linux/posix_acl_xattr.h).
const (
	vfsCapRevisionMask = 0xff000000
	vfsCapRevision2    = 0x02000000
	vfsCapRevision3    = 0x03000000
	vfsCapV2Size       = 20
	vfsCapV3Size       = 24
	aclHeaderSize      = 4
	aclEntrySize       = 8
	aclUser            = 0x02
	aclGroup           = 0x08
)

// unshiftXattr maps host ids inside a value back to the container's: the
// root id of a namespaced file capability (v3; one whose root is the
// machine's root becomes an ordinary v2 capability) and the ids of POSIX
// ACL entries. nil drops the attribute.
func (t *treeWriter) unshiftXattr(a string, v []byte) []byte {
	s := t.stats.Shift
	if s.Base == 0 {
		return v
	}
	switch {
	case a == "security.capability" && len(v) == vfsCapV3Size && binary.LittleEndian.Uint32(v)&vfsCapRevisionMask == vfsCapRevision3:
		root, _ := s.containerID(binary.LittleEndian.Uint32(v[20:]))
		if root == 0 {
			out := slices.Clone(v[:vfsCapV2Size])
			magic := binary.LittleEndian.Uint32(out)
			binary.LittleEndian.PutUint32(out, magic&^vfsCapRevisionMask|vfsCapRevision2)
			return out
		}
		out := slices.Clone(v)
		binary.LittleEndian.PutUint32(out[20:], uint32(root))
		return out
	case (a == "system.posix_acl_access" || a == "system.posix_acl_default") && len(v) >= aclHeaderSize && (len(v)-aclHeaderSize)%aclEntrySize == 0:
		out := slices.Clone(v)
		for off := aclHeaderSize; off < len(out); off += aclEntrySize {
			if tag := binary.LittleEndian.Uint16(out[off:]); tag == aclUser || tag == aclGroup {
				id, _ := s.containerID(binary.LittleEndian.Uint32(out[off+4:]))
				binary.LittleEndian.PutUint32(out[off+4:], uint32(id))
			}
		}
		return out
	}
	return v
}

// grow calls f with a buffer big enough for its answer.
func grow(f func([]byte) (int, error)) ([]byte, error) {
	size, err := f(nil)
	for {
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		b := make([]byte, size)
		var n int
		n, err = f(b)
		if errors.Is(err, unix.ERANGE) {
			size, err = f(nil) // grew in between
			continue
		}
		if err != nil {
			return nil, err
		}
		return b[:n], nil
	}
}

func readlinkAt(dirfd int, n string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		l, err := unix.Readlinkat(dirfd, n, b)
		if err != nil {
			return "", err
		}
		if l < size {
			return string(b[:l]), nil
		}
	}
}

// readDirNames lists the directory open at fd, sorted, so the same tree
// always gives the same archive.
func readDirNames(fd int) ([]string, error) {
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(dfd), "dir")
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func orRoot(prefix string) string {
	if prefix == "" {
		return "/"
	}
	return prefix
}
