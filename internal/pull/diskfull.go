package pull

import (
	"errors"
	"fmt"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// explainDiskFull turns a "no space left on device" error of installing img
// into one that says which file system filled, what is free there, about
// how much the image needs and what to do. The install has already removed
// what it wrote (the staging tree, the partial blob), so the space is back.
func explainDiskFull(err error, img v1.Image, o *Options) error {
	if !errors.Is(err, syscall.ENOSPC) {
		return err
	}
	var layers int64
	if m, merr := img.Manifest(); merr == nil {
		for _, l := range m.Layers {
			layers += l.Size
		}
	}
	// The store and the machines usually share a file system; else the
	// fuller one is the one that filled.
	where, free := o.MachinesDir, freeSpace(o.MachinesDir)
	switch {
	case sameFS(o.Root, o.MachinesDir):
		where = o.Root + " and " + o.MachinesDir
	case freeSpace(o.Root) < free:
		where, free = o.Root, freeSpace(o.Root)
	}
	return fmt.Errorf("no space left on the file system of %s (%s free now): the image needs about %s or more "+
		"(its layers, %s compressed, are kept in the store and unpacked into the machine, usually larger); "+
		"free space with `berth system prune` or `berth rmi`, or keep berth's state on a larger file system (--root, --machines-dir): %w",
		where, HumanSize(free), HumanSize(2*layers), HumanSize(layers), err)
}

func freeSpace(dir string) int64 {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

func sameFS(a, b string) bool {
	var sa, sb syscall.Stat_t
	return syscall.Stat(a, &sa) == nil && syscall.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}
