// Package layer applies OCI/Docker image layers (tar streams) onto a rootfs
// directory without letting any entry read, write, link or delete anything
// outside that directory.
//
// Every name, symlink target and hardlink target in a layer is untrusted. Names
// are cleaned as in a chroot ("../../x" and "/x" both mean root/x). Parent
// directories are resolved with openat2(RESOLVE_IN_ROOT) so a symlink in the
// image (absolute or relative) resolves inside the rootfs, as it would inside
// the container; the final component is then created or removed with *at
// syscalls that never follow it. docs/layer-semantics.md describes every tar
// feature and where berth differs from umoci.
package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Options tunes Apply. The zero value is what berth uses when running as root.
type Options struct {
	// Rootless makes Apply usable without root (tests, unprivileged tools).
	// Default false: berth runs as root and must reproduce the image exactly.
	// When true, owners are not applied (files belong to the caller), char and
	// block devices are skipped (mknod needs CAP_MKNOD), and trusted.* and
	// security.* xattrs are skipped (they need CAP_SYS_ADMIN / CAP_SETFCAP).
	// Skipped entries and xattrs are counted in Stats.Skipped.
	Rootless bool

	// XattrFilter decides which extended attributes from PAX SCHILY.xattr.*
	// records are applied; it returns false to drop one. Default (nil):
	// DefaultXattrFilter, which applies user.*, trusted.* and
	// security.capability and drops the rest (security.selinux labels and ACLs
	// belong to the host's policy, not the image's).
	XattrFilter func(name string) bool

	// noOpenat2 makes tests take the securejoin path used on kernels without openat2.
	noOpenat2 bool
	// noAsync makes tests write every file on the main goroutine, and
	// forceAsync hands small files to workers even on one CPU (async.go).
	noAsync, forceAsync bool
}

// DefaultXattrFilter is the XattrFilter used when Options.XattrFilter is nil.
func DefaultXattrFilter(name string) bool {
	return strings.HasPrefix(name, "user.") ||
		strings.HasPrefix(name, "trusted.") ||
		name == "security.capability"
}

// Stats counts what Apply did.
type Stats struct {
	Entries   int   // tar entries read, including whiteouts
	Files     int   // regular files written
	Dirs      int   // directory entries applied (created or updated)
	Symlinks  int   // symbolic links created
	Hardlinks int   // hard links created
	Whiteouts int   // whiteout and opaque markers applied
	Devices   int   // char/block devices and FIFOs created
	Skipped   int   // entries and xattrs skipped because of Options.Rootless
	Bytes     int64 // regular file content bytes written
}

// ErrTruncated reports a layer stream that ended before its end-of-archive marker.
var ErrTruncated = errors.New("layer stream truncated")

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"

	// copyBufSize is the chunk in which file content moves from the tar stream
	// to the file; big enough that a large file costs few write syscalls.
	copyBufSize = 256 << 10
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Apply applies one uncompressed OCI/Docker layer tar stream onto the rootfs
// directory root. It consumes r to EOF (trailing bytes after the tar
// end-of-archive are read and discarded, so a caller hashing the stream sees
// every byte), and returns an error on a truncated/corrupt stream.
//
// On error the rootfs is left half-applied; callers unpack into a fresh
// directory and discard it on failure.
func Apply(ctx context.Context, root string, r io.Reader, opts Options) (Stats, error) {
	a, err := newApplier(ctx, root, opts)
	if err != nil {
		return Stats{}, fmt.Errorf("apply layer: %w", err)
	}
	defer a.close()
	if err := a.run(r); err != nil {
		return a.stats, fmt.Errorf("apply layer: %w", err)
	}
	return a.stats, nil
}

// eofReader remembers whether the tar reader asked for bytes past the end of
// the stream. archive/tar reports a stream that stops exactly between entries
// as a clean io.EOF; only this tells it apart from a real end-of-archive marker.
type eofReader struct {
	r       io.Reader
	emptyAt bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if n == 0 && errors.Is(err, io.EOF) && len(p) > 0 {
		e.emptyAt = true
	}
	return n, err
}

func (a *applier) run(r io.Reader) error {
	er := &eofReader{r: r}
	tr := tar.NewReader(er)
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if er.emptyAt {
				return fmt.Errorf("%w: no end-of-archive marker after %d entries", ErrTruncated, a.stats.Entries)
			}
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w after %d entries: %w", ErrTruncated, a.stats.Entries, err)
			}
			return fmt.Errorf("read tar header after %d entries: %w", a.stats.Entries, err)
		}
		a.stats.Entries++
		a.reap()
		if len(a.cache) >= maxCachedDirs {
			a.flush()
			a.reap()
		}
		if err := a.entry(hdr, tr); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: %w", ErrTruncated, err)
			}
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if err := a.async.failed(); err != nil {
			return err
		}
	}
	a.barrier()
	if err := a.async.failed(); err != nil {
		return err
	}
	if err := a.finishDirs(); err != nil {
		return err
	}
	// Drain what follows the end-of-archive marker (zero padding to the record
	// size, or anything else): the caller's digest covers the whole blob.
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r}, *bp); err != nil {
		return fmt.Errorf("read trailing bytes: %w", err)
	}
	return nil
}

// cleanName maps a tar name to a path relative to the rootfs as a chroot would
// see it: "./a", "/a", "a/" and "../../a" all become "a"; "", ".", "/" become "".
func cleanName(name string) string {
	return path.Clean("/" + name)[1:]
}

// split returns the parent ("" for a top-level name) and the last component.
func split(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func (a *applier) entry(hdr *tar.Header, data io.Reader) error {
	name := cleanName(hdr.Name)
	dir, base := split(name)
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("entry for the root directory has type %q, want a directory", hdr.Typeflag)
		}
		a.stats.Dirs++
		return a.rootDir(hdr)
	}
	if base == opaqueMarker {
		a.stats.Whiteouts++
		a.barrier()
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		a.stats.Whiteouts++
		a.barrier()
		return a.whiteout(dir, base[len(whiteoutPrefix):])
	}
	if hdr.Typeflag == tar.TypeLink || a.async.conflicts(name) {
		// A link reaches another name; this name, or a parent of it, may
		// still be a worker's (async.go).
		a.barrier()
	}
	if hdr.Uid < 0 || hdr.Gid < 0 {
		return fmt.Errorf("negative owner %d:%d", hdr.Uid, hdr.Gid)
	}

	pfd, pcached, err := a.dirFD(dir, true)
	if err != nil {
		return err
	}
	defer a.release(pfd, pcached)
	if !pcached {
		dir = a.physical(dir, pfd, pcached)
		name = path.Join(dir, base)
	}
	a.touch(dir, pfd)
	t := target{fd: pfd, base: base, path: name, cached: pcached, sgid: a.sgid[dir]}
	if a.async.eligible(t, hdr) {
		if err := a.addAsync(t, hdr, data); err != nil {
			return err
		}
		a.markLayer(name)
		return nil
	}

	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
		err = a.file(t, hdr, data)
	case tar.TypeDir:
		err = a.dir(t, hdr)
	case tar.TypeSymlink:
		err = a.symlink(t, hdr)
	case tar.TypeLink:
		err = a.hardlink(t, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = a.device(t, hdr)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return err
	}
	a.markLayer(name)
	return nil
}

// target is where an entry lands: name base inside the directory fd.
type target struct {
	fd     int
	base   string
	path   string // rootfs path: the cleaned name, or where a symlinked parent leads
	cached bool   // the parent fd is cached: reached without following a symlink
	sgid   bool   // the parent is setgid: new entries inherit its group
}

// needChown reports whether a node this applier just created needs a chown:
// it already belongs to our euid and egid unless the parent is setgid.
func (a *applier) needChown(t target, hdr *tar.Header) bool {
	return !a.opts.Rootless && (hdr.Uid != a.euid || hdr.Gid != a.egid || t.sgid)
}

// file writes a regular file. The old name is unlinked, never truncated, so
// hardlinks to the old inode keep their content (as tar -x does).
func (a *applier) file(t target, hdr *tar.Header, data io.Reader) error {
	mode := uint32(hdr.Mode) & 0o7777
	fd, err := a.create(t, func() (int, error) {
		return unix.Openat(t.fd, t.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode&0o777)
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	defer unix.Close(fd)
	n, err := a.copyTo(fd, data)
	a.stats.Bytes += n
	if err != nil {
		return err
	}
	// xattrs after owner and mode (chown drops security.capability) and
	// after writing (a write drops it too).
	if err := ownerMode(fd, a.needChown(t, hdr), hdr.Uid, hdr.Gid, a.needChmod(mode), mode); err != nil {
		return err
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	if err := futimens(fd, hdr); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	a.stats.Files++
	return nil
}

// needChmod reports whether a file created with mode&0o777 needs a chmod:
// for setuid and friends, or bits the umask removed.
func (a *applier) needChmod(mode uint32) bool {
	return mode&0o7000 != 0 || mode&a.umask != 0
}

// ownerMode sets the owner and then the mode of a new file, each only when
// needed: chown before chmod, because chown clears setuid/setgid.
func ownerMode(fd int, chown bool, uid, gid int, chmod bool, mode uint32) error {
	if chown {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", uid, gid, err)
		}
	}
	if chmod {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod %#o: %w", mode, err)
		}
	}
	return nil
}

// copyTo copies an entry's content into fd with a pooled buffer.
func (a *applier) copyTo(fd int, data io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var total int64
	for i := 0; ; i++ {
		if i&63 == 63 {
			if err := a.ctx.Err(); err != nil {
				return total, err
			}
		}
		n, rerr := data.Read(buf)
		for off := 0; off < n; {
			w, err := unix.Write(fd, buf[off:n])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total, fmt.Errorf("write content: %w", err)
			}
			off += w
			total += int64(w)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("read content: %w", rerr)
		}
	}
}

// dir creates a directory, or keeps an existing one with its contents and
// only updates its metadata. Mode and times are set after the whole layer
// (finishDirs) so entries created inside it later neither fail on a read-only
// mode nor bump its mtime.
func (a *applier) dir(t target, hdr *tar.Header) error {
	err := unix.Mkdirat(t.fd, t.base, 0o700)
	created := err == nil
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err := unix.Fstatat(t.fd, t.base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat existing: %w", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := a.removeAt(t.fd, t.base, t.path, t.cached); err != nil {
				return err
			}
			err = unix.Mkdirat(t.fd, t.base, 0o700)
			created = err == nil
		} else {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	fd, err := unix.Openat(t.fd, t.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	cached := false
	defer func() {
		if !cached {
			unix.Close(fd)
		}
	}()
	if !a.opts.Rootless && (!created || a.needChown(t, hdr)) {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat directory: %w", err)
	}
	a.deferDir(t.path, st, uint32(hdr.Mode)&0o7777, hdr)
	// The fd is a fine dirfd for the entries that follow inside it.
	if t.cached {
		if _, ok := a.cache[t.path]; !ok {
			a.cache[t.path] = fd
			cached = true
		}
	}
	a.stats.Dirs++
	return nil
}

// rootDir applies an entry named "." or "/". The rootfs directory is the
// container's "/", so its owner, permission bits and times come from the image
// like any directory's — but setuid/setgid are dropped: they mean nothing on
// "/" except that setgid would make every later file inherit the group.
func (a *applier) rootDir(hdr *tar.Header) error {
	if !a.opts.Rootless {
		if err := unix.Fchownat(a.rootFD, "", hdr.Uid, hdr.Gid, unix.AT_EMPTY_PATH); err != nil {
			return fmt.Errorf("chown root %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	fd, err := unix.Openat(a.rootFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(fd)
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat root: %w", err)
	}
	a.deferDir("", st, uint32(hdr.Mode)&0o1777, hdr)
	return nil
}

func (a *applier) symlink(t target, hdr *tar.Header) error {
	if hdr.Linkname == "" {
		return errors.New("symlink with an empty target")
	}
	// The target is stored verbatim: it is only ever followed inside the rootfs
	// (here via RESOLVE_IN_ROOT, later inside the container).
	if _, err := a.create(t, func() (int, error) {
		return -1, unix.Symlinkat(hdr.Linkname, t.fd, t.base)
	}); err != nil {
		return fmt.Errorf("symlink to %q: %w", hdr.Linkname, err)
	}
	if err := a.nodeMeta(t, hdr, false); err != nil {
		return err
	}
	a.stats.Symlinks++
	return nil
}

// hardlink links to another path of the rootfs. The target name is cleaned as
// in a chroot and its parent resolved inside root; linkat without
// AT_SYMLINK_FOLLOW links a symlink itself, never what it points to.
func (a *applier) hardlink(t target, hdr *tar.Header) error {
	tname := cleanName(hdr.Linkname)
	if tname == "" {
		return fmt.Errorf("hardlink target %q is the root directory", hdr.Linkname)
	}
	if tname == t.path {
		// A link to itself: the name already is that inode.
		a.stats.Hardlinks++
		return nil
	}
	tdir, tbase := split(tname)
	tfd, tcached, err := a.dirFD(tdir, false)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	defer a.release(tfd, tcached)
	if _, err := a.create(t, func() (int, error) {
		return -1, unix.Linkat(tfd, tbase, t.fd, t.base, 0)
	}); err != nil {
		return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
	}
	a.stats.Hardlinks++
	return nil
}

func (a *applier) device(t target, hdr *tar.Header) error {
	var kind uint32
	switch hdr.Typeflag {
	case tar.TypeChar:
		kind = unix.S_IFCHR
	case tar.TypeBlock:
		kind = unix.S_IFBLK
	default:
		kind = unix.S_IFIFO
	}
	if a.opts.Rootless && kind != unix.S_IFIFO {
		a.stats.Skipped++
		return nil
	}
	if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor > 0xfffff {
		return fmt.Errorf("device number %d:%d out of range", hdr.Devmajor, hdr.Devminor)
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if _, err := a.create(t, func() (int, error) {
		return -1, unix.Mknodat(t.fd, t.base, kind|0o600, int(dev))
	}); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if err := a.nodeMeta(t, hdr, true); err != nil {
		return err
	}
	a.stats.Devices++
	return nil
}

// nodeMeta sets owner, mode, xattrs and times of a symlink or device node by
// name in its parent, never following the name.
func (a *applier) nodeMeta(t target, hdr *tar.Header, chmod bool) error {
	if a.needChown(t, hdr) {
		if err := unix.Fchownat(t.fd, t.base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if chmod {
		mode := uint32(hdr.Mode) & 0o7777
		if err := chmodNoFollow(t.fd, t.base, mode); err != nil {
			return fmt.Errorf("chmod %#o: %w", mode, err)
		}
	}
	// lsetxattr on /proc/self/fd/PARENT/NAME: the magic link leads to the
	// parent directory we hold, and the l-variant does not follow NAME itself.
	if err := a.xattrs(hdr, func(k string, v []byte) error {
		if strings.HasPrefix(k, "user.") {
			// Linux refuses user.* on anything but files and directories
			// (EPERM); no Linux-built layer can carry one here.
			a.stats.Skipped++
			return nil
		}
		return unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", t.fd, t.base), k, v, 0)
	}); err != nil {
		return err
	}
	ts := times(hdr)
	if err := unix.UtimesNanoAt(t.fd, t.base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// create runs mk (which creates t.base exclusively) and, if the name is taken,
// removes what is there — a whole tree for a directory, without following
// symlinks — and runs mk once more.
func (a *applier) create(t target, mk func() (int, error)) (int, error) {
	fd, err := mk()
	if err != unix.EEXIST {
		return fd, err
	}
	if err := a.removeAt(t.fd, t.base, t.path, t.cached); err != nil {
		return -1, err
	}
	return mk()
}

// xattrs applies the entry's SCHILY.xattr.* records that the filter admits.
func (a *applier) xattrs(hdr *tar.Header, set func(name string, value []byte) error) error {
	const prefix = "SCHILY.xattr."
	if len(hdr.PAXRecords) == 0 {
		return nil
	}
	filter := a.opts.XattrFilter
	if filter == nil {
		filter = DefaultXattrFilter
	}
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // deterministic order, so errors are reproducible
	for _, k := range keys {
		name := k[len(prefix):]
		if !filter(name) {
			continue
		}
		if a.opts.Rootless && !strings.HasPrefix(name, "user.") {
			a.stats.Skipped++
			continue
		}
		if err := set(name, []byte(hdr.PAXRecords[k])); err != nil {
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}

// times returns atime and mtime for an entry; a missing atime is the mtime,
// so an unpacked tree does not depend on when it was unpacked.
func times(hdr *tar.Header) [2]unix.Timespec {
	mt := hdr.ModTime
	at := hdr.AccessTime
	if at.IsZero() {
		at = mt
	}
	return [2]unix.Timespec{timespec(at), timespec(mt)}
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, hdr *tar.Header) error {
	ts := times(hdr)
	return utimensatFD(fd, &ts)
}
