package layer

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// maxCachedDirs bounds the open directory fds kept between entries. Layers
// list a directory's entries together, so a small cache hits almost always.
const maxCachedDirs = 512

// Bits of applier.layer: what this layer itself put at a path.
const (
	inLayer     = 1 << iota // an entry of this layer has exactly this path
	layerParent             // an entry of this layer lies below this path
)

type applier struct {
	ctx      context.Context
	opts     Options
	stats    Stats
	root     *os.File // O_PATH handle of the rootfs
	rootFD   int
	rootPath string // canonical path of the rootfs, to name dirs reached via symlinks
	umask    uint32

	// cache maps a directory path to an open fd of it, only for paths reached
	// without following any symlink: then the layer path is the physical path
	// and removing or replacing a path invalidates exactly its keys.
	cache map[string]int

	// layer records the paths this layer created, so whiteouts and opaque
	// markers hide only lower layers' entries whatever the order in the tar.
	layer map[string]uint8

	// dirs holds directory metadata applied after the whole layer, indexed by
	// inode: one directory may be reached by several paths through symlinks.
	dirs    []dirMeta
	dirIdx  map[fileID]int
	touched map[string]bool // paths already passed to touch
	sgid    map[string]bool // touched directories with the setgid bit

	euid, egid int // owner of what this process creates

	// dead holds invalidated fds until the current entry is done: a caller
	// up the stack may still use one, and closing it early could let a new
	// fd reuse the number for another directory.
	dead []int

	noOpenat2 bool // the kernel lacks openat2; fall back to securejoin

	async *asyncFiles // workers for small files (async.go); nil: none
}

type fileID struct{ dev, ino uint64 }

type dirMeta struct {
	path     string
	dev, ino uint64
	mode     uint32
	ts       [2]unix.Timespec
	timeOnly bool // a directory this layer only changed the contents of
}

func newApplier(ctx context.Context, root string, opts Options) (*applier, error) {
	f, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open rootfs: %w", err)
	}
	rootPath, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		rootPath = "" // physical() then falls back to layer paths
	}
	var async *asyncFiles
	if !opts.noAsync {
		async = newAsyncFiles(opts.forceAsync)
	}
	return &applier{
		async:     async,
		rootPath:  rootPath,
		noOpenat2: opts.noOpenat2,
		ctx:       ctx,
		opts:      opts,
		root:      f,
		rootFD:    int(f.Fd()),
		umask:     processUmask(),
		cache:     make(map[string]int),
		layer:     make(map[string]uint8),
		dirIdx:    make(map[fileID]int),
		touched:   make(map[string]bool),
		sgid:      make(map[string]bool),
		euid:      os.Geteuid(),
		egid:      os.Getegid(),
	}, nil
}

func (a *applier) close() {
	a.async.stop()
	a.async = nil
	a.flush()
	a.reap()
	a.root.Close()
}

// flush empties the cache; its fds are closed by the next reap.
func (a *applier) flush() {
	for p, fd := range a.cache {
		a.dead = append(a.dead, fd)
		delete(a.cache, p)
	}
}

// reap closes invalidated fds; called between entries, when none is in use
// (a worker may hold one: wait for them first).
func (a *applier) reap() {
	if len(a.dead) > 0 {
		a.barrier()
	}
	for _, fd := range a.dead {
		unix.Close(fd)
	}
	a.dead = a.dead[:0]
}

// release closes an fd returned by dirFD unless the cache owns it.
func (a *applier) release(fd int, cached bool) {
	if !cached && fd != a.rootFD {
		unix.Close(fd)
	}
}

// dirFD returns a directory fd for the layer path p, resolving symlinks inside
// the rootfs. With create, missing directories are created (0755, owned by the
// applying user, like `mkdir -p` in a chroot). cached reports that the cache
// owns fd (p was reached without following a symlink); otherwise the caller
// closes it with release.
func (a *applier) dirFD(p string, create bool) (fd int, cached bool, err error) {
	if p == "" {
		return a.rootFD, true, nil
	}
	if fd, ok := a.cache[p]; ok {
		return fd, true, nil
	}
	parent, base := split(p)
	pfd, pcached, err := a.dirFD(parent, create)
	if err != nil {
		return -1, false, err
	}
	defer a.release(pfd, pcached)

	// One component, not "." or "..", not followed: this lookup cannot leave pfd.
	fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT && create {
		a.touch(parent, pfd)
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil && err != unix.EEXIST {
			return -1, false, fmt.Errorf("create parent directory %q: %w", p, err)
		}
		if err := chmodNoFollow(pfd, base, 0o755); err != nil { // undo the umask
			return -1, false, fmt.Errorf("chmod parent directory %q: %w", p, err)
		}
		fd, err = unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err == unix.ENOTDIR || err == unix.ELOOP {
		var st unix.Stat_t
		if serr := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); serr != nil {
			return -1, false, fmt.Errorf("stat parent %q: %w", p, serr)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return -1, false, fmt.Errorf("parent %q is not a directory", p)
		}
		// A symlink: follow it as the container would, inside the rootfs.
		// What it leads to may be a name a worker owns under its physical
		// path (async.go): let them finish first.
		a.barrier()
		fd, err = a.openInRoot(p)
		if err == unix.ENOENT && create {
			return -1, false, fmt.Errorf("parent %q is a symlink to a missing directory (mkdir -p fails the same way in a chroot)", p)
		}
		if err != nil {
			return -1, false, fmt.Errorf("resolve parent %q in rootfs: %w", p, err)
		}
		return fd, false, nil
	}
	if err != nil {
		return -1, false, fmt.Errorf("open parent %q: %w", p, err)
	}
	if pcached {
		a.cache[p] = fd
		return fd, true, nil
	}
	return fd, false, nil
}

// openInRoot opens directory p with every symlink resolved inside the rootfs,
// as in a chroot. Magic links (/proc/self/root...) are refused, and so is
// crossing a mount point.
func (a *applier) openInRoot(p string) (int, error) {
	if !a.noOpenat2 {
		how := unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		for range 16 { // EAGAIN: a concurrent rename; retry, then give up
			fd, err := unix.Openat2(a.rootFD, p, &how)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			if err != unix.ENOSYS {
				return fd, err
			}
			a.noOpenat2 = true
			break
		}
		if !a.noOpenat2 {
			return -1, unix.EAGAIN
		}
	}
	f, err := pathrs.OpenatInRoot(a.root, p)
	if err != nil {
		var perr *os.PathError
		if errors.As(err, &perr) {
			return -1, perr.Err
		}
		return -1, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return -1, unix.ENOTDIR
	}
	return unix.Dup(int(f.Fd()))
}

// physical returns the rootfs path of directory fd, reached as layer path p.
// Without a symlink on the way (cached) they are the same; otherwise the
// kernel's name for fd says where p really is, so that "this layer created it"
// holds for a path whichever alias the layer used.
func (a *applier) physical(p string, fd int, cached bool) string {
	if cached || a.rootPath == "" {
		return p
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return p
	}
	if real == a.rootPath {
		return ""
	}
	if rel, ok := strings.CutPrefix(real, a.rootPath+"/"); ok && a.rootPath != "/" {
		return rel
	}
	if a.rootPath == "/" && strings.HasPrefix(real, "/") {
		return real[1:]
	}
	return p
}

// invalidate drops cached fds at or below p after p was removed. If p's parent
// was reached through a symlink, p is not its physical path, so drop them all.
func (a *applier) invalidate(p string, parentCached bool) {
	if !parentCached {
		a.flush()
		return
	}
	for k, fd := range a.cache {
		if k == p || (len(k) > len(p) && k[len(p)] == '/' && strings.HasPrefix(k, p)) {
			a.dead = append(a.dead, fd)
			delete(a.cache, k)
		}
	}
}

// removeAt removes name in dirfd: a file, symlink, device, or a whole
// directory tree, never following a symlink. ENOENT is success.
func (a *applier) removeAt(dirfd int, name, p string, parentCached bool) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	a.barrier() // workers may be creating files in the tree
	a.invalidate(p, parentCached)
	if err := removeTree(dirfd, name); err != nil {
		return fmt.Errorf("remove directory %q: %w", p, err)
	}
	return nil
}

// removeTree deletes directory name in dirfd and everything below it. Entries
// are unlinked by name in an fd of their directory, so a symlink is removed,
// never followed.
func removeTree(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return err
	}
	names, err := readDirNames(fd)
	if err != nil {
		unix.Close(fd)
		return err
	}
	for _, n := range names {
		err := unix.Unlinkat(fd, n, 0)
		if err == unix.EISDIR {
			err = removeTree(fd, n)
		}
		if err != nil && err != unix.ENOENT {
			unix.Close(fd)
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	unix.Close(fd)
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

// readDirNames lists a directory fd opened O_RDONLY, without "." and "..".
func readDirNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 8<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory: %w", err)
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// markLayer records that this layer created p (and so everything above it).
func (a *applier) markLayer(p string) {
	a.layer[p] |= inLayer
	for p != "" {
		p, _ = split(p)
		if a.layer[p]&layerParent != 0 {
			return
		}
		a.layer[p] |= layerParent
	}
}

// whiteout hides dir/name of the lower layers. Paths that this layer created
// stay, whatever their order in the tar (OCI image-spec: a whiteout only
// applies to lower layers).
func (a *applier) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." || strings.HasPrefix(name, whiteoutPrefix) {
		return fmt.Errorf("invalid whiteout name %q", whiteoutPrefix+name)
	}
	pfd, pcached, err := a.dirFD(dir, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // nothing to hide
		}
		return fmt.Errorf("whiteout: %w", err)
	}
	defer a.release(pfd, pcached)
	dir = a.physical(dir, pfd, pcached)
	a.touch(dir, pfd)
	p := name
	if dir != "" {
		p = dir + "/" + name
	}
	return a.removeLower(pfd, name, p, pcached)
}

// opaque hides every lower-layer entry of dir; dir itself stays.
func (a *applier) opaque(dir string) error {
	pfd, pcached, err := a.dirFD(dir, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("opaque directory: %w", err)
	}
	defer a.release(pfd, pcached)
	return a.clearLower(pfd, a.physical(dir, pfd, pcached), pcached)
}

// removeLower removes the lower-layer content at name in dirfd (layer path p):
// all of it if this layer put nothing there, else what lies below it except
// this layer's own entries.
func (a *applier) removeLower(dirfd int, name, p string, parentCached bool) error {
	if a.layer[p] == 0 {
		return a.removeAt(dirfd, name, p, parentCached)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("stat %q: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", p, err)
	}
	defer unix.Close(fd)
	return a.clearLower(fd, p, parentCached)
}

// clearLower applies removeLower to every entry of directory fd (layer path dir).
func (a *applier) clearLower(fd int, dir string, cachedPath bool) error {
	a.touch(dir, fd)
	rfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", dir, err)
	}
	names, err := readDirNames(rfd)
	unix.Close(rfd)
	if err != nil {
		return fmt.Errorf("list %q: %w", dir, err)
	}
	sort.Strings(names)
	for _, n := range names {
		p := n
		if dir != "" {
			p = dir + "/" + n
		}
		if err := a.removeLower(fd, n, p, cachedPath); err != nil {
			return err
		}
	}
	return nil
}

// deferDir records a directory's mode and times for finishDirs. The inode
// identifies it: if a later entry replaced the directory, the record no
// longer matches and is dropped.
func (a *applier) deferDir(p string, st unix.Stat_t, mode uint32, hdr *tar.Header) {
	m := dirMeta{path: p, dev: st.Dev, ino: st.Ino, mode: mode, ts: times(hdr)}
	id := fileID{st.Dev, st.Ino}
	if i, ok := a.dirIdx[id]; ok {
		a.dirs[i] = m
		return
	}
	a.dirIdx[id] = len(a.dirs)
	a.dirs = append(a.dirs, m)
}

// touch records the times of directory p (open as fd) before this layer
// first changes its contents, so finishDirs can put them back: a directory's
// times come from the last layer that had an entry for it, not from when the
// layer was applied (as umoci does; the unpacked tree stays reproducible).
func (a *applier) touch(p string, fd int) {
	if a.touched[p] {
		return
	}
	a.touched[p] = true
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return // finishDirs will not find it either; nothing to restore
	}
	if st.Mode&unix.S_ISGID != 0 {
		a.sgid[p] = true
	}
	id := fileID{st.Dev, st.Ino}
	if _, ok := a.dirIdx[id]; ok {
		return
	}
	a.dirIdx[id] = len(a.dirs)
	a.dirs = append(a.dirs, dirMeta{path: p, dev: st.Dev, ino: st.Ino, ts: [2]unix.Timespec{st.Atim, st.Mtim}, timeOnly: true})
}

// finishDirs sets the deferred mode and times of this layer's directories,
// deepest first, after every entry is in place.
func (a *applier) finishDirs() error {
	a.flush()
	a.reap()
	sort.SliceStable(a.dirs, func(i, j int) bool {
		return strings.Count(a.dirs[i].path, "/") > strings.Count(a.dirs[j].path, "/")
	})
	for _, d := range a.dirs {
		if err := a.finishDir(d); err != nil {
			return fmt.Errorf("entry %q: %w", d.path, err)
		}
	}
	return nil
}

func (a *applier) finishDir(d dirMeta) error {
	pfd := a.rootFD
	if d.path != "" {
		fd, err := a.openInRoot(d.path)
		if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
			return nil // removed or replaced by a later entry
		}
		if err != nil {
			return fmt.Errorf("reopen directory: %w", err)
		}
		defer unix.Close(fd)
		pfd = fd
	}
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopen directory: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat directory: %w", err)
	}
	if st.Dev != d.dev || st.Ino != d.ino {
		return nil // a different directory now has this path
	}
	if !d.timeOnly {
		if err := unix.Fchmod(fd, d.mode); err != nil {
			return fmt.Errorf("chmod %#o: %w", d.mode, err)
		}
	}
	if err := utimensatFD(fd, &d.ts); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// chmodNoFollow sets the mode of name in dirfd without following it.
// fchmodat2(AT_SYMLINK_NOFOLLOW) (Linux 6.6) does it in one call; older
// kernels get an O_PATH fd of the node and chmod through its /proc magic link,
// which names the inode itself rather than a path that could be swapped.
func chmodNoFollow(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if err != unix.EOPNOTSUPP && err != unix.ENOSYS {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil // symlinks have no mode of their own
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// utimensatFD is futimens(2): utimensat with a NULL path sets the times of
// the open file itself.
func utimensatFD(fd int, ts *[2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(ts)), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// processUmask reads the umask without changing it (umask(2) can only read by
// setting, which would race with other goroutines creating files).
func processUmask() uint32 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o777 // unknown: always chmod
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err == nil {
				return uint32(m)
			}
		}
	}
	return 0o777
}
