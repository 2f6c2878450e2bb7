package system

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/berth-sh/berth/internal/store"
)

// Usage is one line of `berth system df`, as docker system df shows it.
type Usage struct {
	Type  string `json:"type"`  // Images, Machines, Volumes
	Total int    `json:"total"` // how many
	// Active: images some machine is installed from that runs, machines
	// that run, volumes a project that is installed owns.
	Active      int   `json:"active"`
	Size        int64 `json:"size"`        // bytes on disk
	Reclaimable int64 `json:"reclaimable"` // what prune would give back
}

// DiskUsage measures the store's blobs (images: the blobs records keep,
// and the unused ones prune would remove), the machine trees (hard links
// counted once) and the compose volumes. running says whether a machine
// runs (machined).
func (h Host) DiskUsage(ctx context.Context, running func(name string) bool) ([]Usage, error) {
	st := store.At(h.Root)
	images := Usage{Type: "Images"}
	machinesU := Usage{Type: "Machines"}
	volumes := Usage{Type: "Volumes"}
	var recs []*store.Record
	if _, err := os.Stat(h.Root); err == nil {
		unlock, err := st.Lock(ctx, store.Shared)
		if err != nil {
			return nil, fmt.Errorf("disk usage: %w", err)
		}
		defer unlock()
		if recs, err = st.Records(); err != nil {
			return nil, fmt.Errorf("disk usage: %w", err)
		}
	}
	keep := map[string]bool{}
	images.Total = len(recs)
	for _, r := range recs {
		for _, d := range r.Blobs() {
			keep[d.Hex] = true
		}
		if running(r.Name) {
			images.Active++
		}
	}
	ents, err := os.ReadDir(filepath.Join(h.Root, "blobs", "sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		images.Size += fi.Size()
		if !keep[e.Name()] {
			images.Reclaimable += fi.Size()
		}
	}
	trees, err := os.ReadDir(h.MachinesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("disk usage: %w", err)
	}
	for _, e := range trees {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(h.MachinesDir, e.Name())
		if strings.HasPrefix(e.Name(), store.StagingPrefix) && e.IsDir() {
			size, _ := treeSize(p)
			machinesU.Size += size
			if !held(p) {
				machinesU.Reclaimable += size
			}
			continue
		}
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(store.ConfigPath(h.MachinesDir, e.Name())); err != nil {
			continue // not berth's
		}
		machinesU.Total++
		if running(e.Name()) {
			machinesU.Active++
		}
		size, err := treeSize(p)
		if err != nil {
			return nil, fmt.Errorf("disk usage of %s: %w", p, err)
		}
		machinesU.Size += size
	}
	projects, _ := os.ReadDir(filepath.Join(h.Root, "compose"))
	for _, pr := range projects {
		vols, _ := os.ReadDir(filepath.Join(h.Root, "compose", pr.Name(), "volumes"))
		for _, v := range vols {
			if !v.IsDir() {
				continue
			}
			volumes.Total++
			size, _ := treeSize(filepath.Join(h.Root, "compose", pr.Name(), "volumes", v.Name()))
			volumes.Size += size
			if _, err := os.Stat(filepath.Join(h.Root, "compose", pr.Name(), "project.json")); err == nil {
				volumes.Active++
			} else {
				volumes.Reclaimable += size
			}
		}
	}
	return []Usage{images, machinesU, volumes}, nil
}

// treeSize is the disk space (allocated blocks) of the files under dir,
// each inode counted once, not crossing into other file systems.
func treeSize(dir string) (int64, error) {
	seen := map[[2]uint64]bool{}
	var size int64
	var dev uint64
	first := true
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		s, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if first {
			dev, first = s.Dev, false
		} else if d.IsDir() && s.Dev != dev {
			return fs.SkipDir
		}
		key := [2]uint64{s.Dev, s.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		size += s.Blocks * 512
		return nil
	})
	return size, err
}
