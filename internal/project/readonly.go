package project

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/machine"
)

// mountPoint is a path nspawn binds something onto inside a machine.
type mountPoint struct {
	Path string
	File bool // a file is bound there, not a directory
}

// readOnlyMountPoints lists, per machine of a read_only service, where
// nspawn will mount: berth-init and the image config, /etc/hosts, resolv.conf, secrets,
// configs, volumes, binds and tmpfs. nspawn cannot create a missing mount
// point in a read-only tree ("Failed to make parents of …"), so up
// creates them first.
func readOnlyMountPoints(plan *compose.Plan, files []compose.File) map[string][]mountPoint {
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	out := map[string][]mountPoint{}
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			if !in.Spec.ReadOnly {
				continue
			}
			mps := []mountPoint{{Path: machine.InitPath, File: true}}
			if in.Spec.ImageConfig != "" {
				mps = append(mps, mountPoint{Path: machine.ImageConfigPath, File: true})
			}
			if have[path.Join(in.StateDir, "hosts")] {
				mps = append(mps, mountPoint{Path: "/etc/hosts", File: true})
			}
			if have[path.Join(in.StateDir, "resolv.conf")] {
				mps = append(mps, mountPoint{Path: "/etc/resolv.conf", File: true})
			}
			for _, m := range in.Mounts {
				file := m.File != nil
				if !file && m.Kind == compose.BindMount {
					if fi, err := os.Stat(m.Source); err == nil && !fi.IsDir() {
						file = true
					}
				}
				mps = append(mps, mountPoint{Path: m.Target, File: file})
			}
			sort.Slice(mps, func(i, j int) bool { return mps[i].Path < mps[j].Path })
			out[in.Machine] = mps
		}
	}
	return out
}

// createMountPoints creates the missing mount points in machine root
// filesystems. Every path comes from an image or a compose file: each is
// resolved inside the root (pathrs), so a symlink in the image cannot
// make up create anything outside it.
func (h *Host) createMountPoints(points map[string][]mountPoint) error {
	for m, mps := range points {
		root := filepath.Join(h.MachinesDir, m)
		for _, mp := range mps {
			if err := createMountPoint(root, mp); err != nil {
				return fmt.Errorf("create mount point %s in machine %s: %w", mp.Path, m, err)
			}
		}
	}
	return nil
}

func createMountPoint(root string, mp mountPoint) error {
	rootDir, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer rootDir.Close()
	dir := mp.Path
	if mp.File {
		dir = path.Dir(mp.Path)
	}
	d, err := pathrs.MkdirAllHandle(rootDir, dir, 0o755)
	if err != nil {
		return err
	}
	defer d.Close()
	if !mp.File {
		return nil
	}
	fd, err := unix.Openat(int(d.Fd()), path.Base(mp.Path), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return err
	}
	return unix.Close(fd)
}
