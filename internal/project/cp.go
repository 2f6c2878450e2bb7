package project

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// CopyOptions say how `berth compose cp` copies.
type CopyOptions struct {
	// Index is the instance (1-based). Default 1.
	Index int
	// ToMachine copies HostPath into the machine at MachinePath;
	// otherwise MachinePath is copied out to HostPath.
	ToMachine   bool
	MachinePath string
	HostPath    string
	// Archive keeps owners (uid:gid) as they are; otherwise what is
	// copied belongs to the user berth runs as (root), as docker cp does.
	Archive bool
	// FollowLink copies what a symbolic link as the source points to.
	FollowLink bool
	// Stderr receives warnings about files that are skipped.
	Stderr io.Writer
}

// ErrReadOnlyMount: cp into a path the machine mounts read-only.
var ErrReadOnlyMount = errors.New("path is on a read-only mount")

// Copy copies between the host and a service machine's tree, as docker
// compose cp does. Paths in the machine are resolved in its root
// filesystem, or in the host directory of the volume or bind mounted
// there (read from the machine's .nspawn file), never outside it: every
// step is taken relative to a directory handle opened inside the root
// (filepath-securejoin's pathrs-lite), and links are never followed out.
// The machine need not be running.
func (h *Host) Copy(_ context.Context, name, service string, o CopyOptions) error {
	_, svcs, err := h.selected(name, []string{service})
	if err != nil {
		return err
	}
	if o.Index <= 0 {
		o.Index = 1
	}
	if o.Index > len(svcs[0].Instances) {
		return fmt.Errorf("cp %s/%s: service has %d instances, not %d", name, service, len(svcs[0].Instances), o.Index)
	}
	if o.Stderr == nil {
		o.Stderr = h.Stderr
	}
	mach := svcs[0].Instances[o.Index-1].Machine
	binds, err := readBinds(filepath.Join(h.NspawnDir, mach+".nspawn"))
	if err != nil {
		return fmt.Errorf("cp %s/%s: %w", name, service, err)
	}
	mp := o.MachinePath
	if !path.IsAbs(mp) {
		// docker resolves a relative path against the container's /.
		mp = "/" + mp
	}
	root, rel, ro := resolveMount(filepath.Join(h.MachinesDir, mach), binds, mp)
	contents := strings.HasSuffix(o.MachinePath, "/.")
	if o.ToMachine {
		if ro {
			return fmt.Errorf("cp to %s:%s: %w", service, o.MachinePath, ErrReadOnlyMount)
		}
		err = copyIn(o, root, rel, strings.HasSuffix(o.HostPath, "/."))
	} else {
		err = copyOut(o, root, rel, contents)
	}
	if err != nil {
		return fmt.Errorf("cp %s/%s: %w", name, service, err)
	}
	return nil
}

type bind struct {
	src, dst string
	ro       bool
}

// readBinds lists the Bind= and BindReadOnly= mounts of a .nspawn file
// (SRC:DST[:OPTIONS], ':' and '\' escaped with '\').
func readBinds(file string) ([]bind, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []bind
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok || (k != "Bind" && k != "BindReadOnly") {
			continue
		}
		parts := splitEscaped(strings.Trim(v, `"`))
		if len(parts) < 2 {
			continue
		}
		out = append(out, bind{src: parts[0], dst: path.Clean(parts[1]), ro: k == "BindReadOnly"})
	}
	return out, sc.Err()
}

func splitEscaped(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ':':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

// resolveMount maps a path in the machine to the host root it lives
// under (the machine's tree or the source of the innermost mount) and
// the path inside that root.
func resolveMount(tree string, binds []bind, p string) (root, rel string, ro bool) {
	p = path.Clean(p)
	root, rel = tree, p
	best := -1
	for _, b := range binds {
		if (p == b.dst || strings.HasPrefix(p, strings.TrimSuffix(b.dst, "/")+"/")) && len(b.dst) > best {
			best = len(b.dst)
			root, rel, ro = b.src, "/"+strings.TrimPrefix(p[len(b.dst):], "/"), b.ro
			if fi, err := os.Stat(b.src); err == nil && !fi.IsDir() && rel == "/" {
				// A file bound on its own (a secret): its directory
				// is the root.
				root, rel = filepath.Dir(b.src), "/"+filepath.Base(b.src)
			}
		}
	}
	return root, rel, ro
}

// openParent opens the directory holding rel inside root and returns it
// with rel's last element ("" for the root itself).
func openParent(root, rel string) (*os.File, string, error) {
	rel = path.Clean("/" + rel)
	if rel == "/" {
		f, err := os.Open(root)
		return f, "", err
	}
	dir, base := path.Split(rel)
	f, err := pathrs.OpenInRoot(root, dir)
	if err != nil {
		return nil, "", err
	}
	return f, base, nil
}

func copyOut(o CopyOptions, root, rel string, contents bool) error {
	parent, base, err := openParent(root, rel)
	if err != nil {
		return fmt.Errorf("open %s: %w", o.MachinePath, err)
	}
	defer parent.Close()
	if base == "" {
		contents = true
	} else if o.FollowLink {
		f, err := pathrs.OpenInRoot(root, rel)
		if err != nil {
			return fmt.Errorf("open %s: %w", o.MachinePath, err)
		}
		defer f.Close()
		// Copy what the link resolves to: open its parent, by the
		// handle's own path, which is inside root.
		real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
		if err != nil {
			return err
		}
		parent.Close()
		if parent, err = os.Open(filepath.Dir(real)); err != nil {
			return err
		}
		base = filepath.Base(real)
	}
	var st unix.Stat_t
	if base != "" {
		if err := unix.Fstatat(int(parent.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: %w", o.MachinePath, err)
		}
	}
	dst := o.HostPath
	if dst == "-" {
		return errors.New("copy to - (a tar stream on stdout) is not supported; give a host path")
	}
	dfi, derr := os.Stat(dst)
	isDir := base == "" || st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case derr == nil && dfi.IsDir() && !contents:
		dst = filepath.Join(dst, base)
	case derr == nil && !dfi.IsDir() && isDir:
		return fmt.Errorf("cannot copy directory %s to file %s", o.MachinePath, dst)
	case derr != nil && !errors.Is(derr, os.ErrNotExist):
		return derr
	}
	if base == "" {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		return copyChildrenOut(o, parent, dst)
	}
	if contents && derr == nil {
		dir, err := openDirAt(parent, base)
		if err != nil {
			return err
		}
		defer dir.Close()
		return copyChildrenOut(o, dir, dst)
	}
	return copyEntryOut(o, parent, base, dst)
}

func openDirAt(parent *os.File, name string) (*os.File, error) {
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

func copyChildrenOut(o CopyOptions, dir *os.File, dst string) error {
	// dir may be an O_PATH handle: reopen it for reading.
	d, err := openDirAt(dir, ".")
	if err != nil {
		return err
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := copyEntryOut(o, d, e.Name(), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyEntryOut copies parent/name (in the machine, never following a
// link) to dst on the host.
func copyEntryOut(o CopyOptions, parent *os.File, name, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(int(parent.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	perm := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := os.Mkdir(dst, perm|0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		dir, err := openDirAt(parent, name)
		if err != nil {
			return err
		}
		err = copyChildrenOut(o, dir, dst)
		dir.Close()
		if err != nil {
			return err
		}
		os.Chmod(dst, perm)
	case unix.S_IFREG:
		fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", name, err)
		}
		src := os.NewFile(uintptr(fd), name)
		defer src.Close()
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
		os.Chmod(dst, perm)
	case unix.S_IFLNK:
		target, err := readlinkat(parent, name)
		if err != nil {
			return err
		}
		os.Remove(dst)
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		fmt.Fprintf(o.Stderr, "berth: cp: skipping %s: not a file, directory or link\n", dst)
		return nil
	}
	if o.Archive {
		return os.Lchown(dst, int(st.Uid), int(st.Gid))
	}
	return nil
}

func readlinkat(dir *os.File, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func copyIn(o CopyOptions, root, rel string, contents bool) error {
	if o.HostPath == "-" {
		return errors.New("copy from - (a tar stream on stdin) is not supported; give a host path")
	}
	src := o.HostPath
	sfi, err := os.Lstat(src)
	if err == nil && o.FollowLink {
		sfi, err = os.Stat(src)
	}
	if err != nil {
		return err
	}
	parent, base, err := openParent(root, rel)
	if err != nil {
		return fmt.Errorf("open %s: %w (its directory must exist)", o.MachinePath, err)
	}
	defer parent.Close()
	// An existing directory at the destination receives the source
	// (its contents with SRC/.); anything else is replaced by it.
	var st unix.Stat_t
	dstDir := base == ""
	if !dstDir {
		if unix.Fstatat(int(parent.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			dstDir = true
		}
	}
	if dstDir {
		dir := parent
		if base != "" {
			if dir, err = openDirAt(parent, base); err != nil {
				return err
			}
			defer dir.Close()
		} else if dir, err = openDirAt(parent, "."); err != nil {
			return err
		} else {
			defer dir.Close()
		}
		if contents && sfi.IsDir() {
			ents, err := os.ReadDir(src)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if err := copyEntryIn(o, filepath.Join(src, e.Name()), dir, e.Name(), false); err != nil {
					return err
				}
			}
			return nil
		}
		return copyEntryIn(o, src, dir, filepath.Base(src), o.FollowLink)
	}
	if strings.HasSuffix(o.MachinePath, "/") {
		return fmt.Errorf("%s: destination directory does not exist", o.MachinePath)
	}
	return copyEntryIn(o, src, parent, base, o.FollowLink)
}

// copyEntryIn copies host path src to parent/name in the machine. Every
// file is created relative to parent with O_NOFOLLOW, so a link in the
// machine's tree cannot redirect a write out of it.
func copyEntryIn(o CopyOptions, src string, parent *os.File, name string, follow bool) error {
	fi, err := os.Lstat(src)
	if err == nil && follow {
		fi, err = os.Stat(src)
	}
	if err != nil {
		return err
	}
	pfd := int(parent.Fd())
	perm := uint32(fi.Mode().Perm())
	switch {
	case fi.IsDir():
		if err := unix.Mkdirat(pfd, name, perm|0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s: %w", name, err)
		}
		dir, err := openDirAt(parent, name)
		if err != nil {
			return fmt.Errorf("%w (a link in the machine is not followed)", err)
		}
		defer dir.Close()
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := copyEntryIn(o, filepath.Join(src, e.Name()), dir, e.Name(), false); err != nil {
				return err
			}
		}
		if err := unix.Fchmod(int(dir.Fd()), perm); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		defer in.Close()
		fd, err := unix.Openat(pfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		if err != nil {
			return fmt.Errorf("create %s: %w (a link in the machine is not followed)", name, err)
		}
		out := os.NewFile(uintptr(fd), name)
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := unix.Fchmod(fd, perm); err != nil {
			out.Close()
			return err
		}
		if err := out.Close(); err != nil {
			return err
		}
	case fi.Mode()&os.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		unix.Unlinkat(pfd, name, 0)
		if err := unix.Symlinkat(target, pfd, name); err != nil {
			return fmt.Errorf("create link %s: %w", name, err)
		}
	default:
		fmt.Fprintf(o.Stderr, "berth: cp: skipping %s: not a file, directory or link\n", src)
		return nil
	}
	uid, gid := 0, 0
	if o.Archive {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	if os.Geteuid() != 0 && !o.Archive {
		return nil
	}
	return unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}
