package machines

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/machine"
)

// IdmapSupported reports whether the file system holding dir supports
// idmapped mounts, which nspawn's "idmap" bind option needs: ext4, xfs,
// btrfs and tmpfs do on current kernels; overlayfs (a container's root),
// NFS and ZFS do not, and there nspawn fails the start with "Failed to map
// ids for bind mount". It tries what nspawn will do: clone a mount of dir
// and set an idmapping on it (which needs root).
func IdmapSupported(dir string) (bool, error) {
	userns, err := newUserns()
	if err != nil {
		return false, fmt.Errorf("check idmapped mounts on %s: %w", dir, err)
	}
	defer unix.Close(userns)
	tree, err := unix.OpenTree(unix.AT_FDCWD, dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return false, fmt.Errorf("check idmapped mounts on %s: %w", dir, err)
	}
	// The detached clone vanishes with its last file descriptor.
	defer unix.Close(tree)
	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)})
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return false, nil
	}
	return false, fmt.Errorf("check idmapped mounts on %s: %w", dir, err)
}

// newUserns returns a file descriptor of a new user namespace with a
// shifted mapping. A Go process cannot unshare one itself (it has threads),
// so a child is created in one and kept from running anything: with ptrace
// it stops right at its exec, its namespace is opened, and it is killed.
func newUserns() (int, error) {
	// The tracer is the forking thread; keep it for the child's life.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := os.StartProcess("/proc/self/exe", []string{"berth-userns-probe"}, &os.ProcAttr{
		Env: []string{},
		Sys: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 30, Size: 65536}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1 << 30, Size: 65536}},
			Ptrace:      true,
			Pdeathsig:   syscall.SIGKILL,
		},
	})
	if err != nil {
		return -1, fmt.Errorf("create a user namespace: %w", err)
	}
	defer func() {
		_ = p.Kill()
		_, _ = p.Wait()
	}()
	fd, err := unix.Open("/proc/"+strconv.Itoa(p.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open user namespace: %w", err)
	}
	return fd, nil
}

// idmapOK says whether an idmapped bind of p (or, while p does not exist,
// of its nearest existing parent) can work. Without a probe, or when the
// probe itself fails (not root, say), it assumes so: nspawn has the final
// word when the machine starts.
func (h Host) idmapOK(p string) bool {
	if h.IdmapSupported == nil {
		return true
	}
	for {
		if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		p = filepath.Dir(p)
	}
	ok, err := h.IdmapSupported(p)
	return ok || err != nil
}

// checkIdmap fails for an idmapped bind whose source's file system cannot
// do it, before nspawn fails the start with a less helpful message.
func (h Host) checkIdmap(s *machine.Spec) error {
	for _, b := range s.Binds {
		if b.Idmap && !h.idmapOK(b.Source) {
			return fmt.Errorf("%w: bind %s:%s: the file system of %s does not support idmapped mounts; add the noidmap option (-v %s:%s:noidmap) and make the files owned by the machine's UID range, or use --private-users=no",
				machine.ErrInvalidSpec, b.Source, b.Destination, b.Source, b.Source, b.Destination)
		}
	}
	return nil
}
