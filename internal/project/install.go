package project

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/fsutil"
)

// lock takes project name's lock, serialising up, down and the other
// verbs that change it. It lives next to the project directory, not in
// it, because down removes the directory.
func (h *Host) lock(ctx context.Context, name string) (func(), error) {
	dir := filepath.Join(h.Root, "compose")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock project %s: %w", name, err)
	}
	for {
		unlock, err := fsutil.TryLock(filepath.Join(dir, "."+name+".lock"), fsutil.Exclusive)
		if err == nil {
			return unlock, nil
		}
		if !errors.Is(err, fsutil.ErrLocked) {
			return nil, fmt.Errorf("lock project %s: %w", name, err)
		}
		fmt.Fprintf(h.Stderr, "berth: waiting for another berth command on project %s\n", name)
		if err := h.Sleep(ctx, pollInterval); err != nil {
			return nil, fmt.Errorf("lock project %s: %w", name, err)
		}
	}
}

// owners maps each file of the set to the machines whose behaviour depends
// on it: the machine's own units and state, its secrets and configs, and
// the bridge units of its networks.
func owners(plan *compose.Plan, files []compose.File, o compose.ConvertOptions) map[string][]string {
	byPath := map[string][]string{}
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			m := in.Machine
			add := func(p string) { byPath[p] = append(byPath[p], m) }
			add(path.Join(o.NspawnDir, m+".nspawn"))
			for _, ifc := range in.Interfaces {
				if ifc.Network != nil && !ifc.Network.External {
					add(path.Join(o.UnitDir, ifc.Network.Unit))
				}
			}
			for _, mt := range in.Mounts {
				if mt.File != nil {
					add(mt.File.HostPath)
				}
			}
			for _, f := range files {
				base := path.Base(f.Path)
				if path.Dir(f.Path) == o.UnitDir && (strings.HasPrefix(base, "berth-"+m+".") || strings.HasPrefix(base, "berth-"+m+"_")) ||
					strings.HasPrefix(f.Path, in.StateDir+"/") {
					add(f.Path)
				}
			}
		}
	}
	return byPath
}

// machineHashes digests, per machine, its image and every file it depends
// on (content, mode, owner; a copied secret by the content of its source),
// so `up` can tell which machines a change touches.
func machineHashes(plan *compose.Plan, files []compose.File, o compose.ConvertOptions, images map[string]string) (map[string]string, error) {
	own := owners(plan, files, o)
	hs := map[string]io.Writer{}
	sums := map[string]func() []byte{}
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			h := sha256.New()
			fmt.Fprintf(h, "image %s\n", images[in.Machine])
			hs[in.Machine] = h
			sums[in.Machine] = func() []byte { return h.Sum(nil) }
		}
	}
	for _, f := range files {
		ms := own[f.Path]
		if len(ms) == 0 {
			continue
		}
		data := f.Data
		if f.CopyFrom != "" {
			b, err := os.ReadFile(f.CopyFrom)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f.CopyFrom, err)
			}
			data = b
		}
		d := sha256.Sum256(data)
		for _, m := range ms {
			fmt.Fprintf(hs[m], "%s %v %t %s:%s %x\n", f.Path, f.Mode, f.Dir, f.UID, f.GID, d)
		}
	}
	out := map[string]string{}
	for m, sum := range sums {
		out[m] = hex.EncodeToString(sum())
	}
	return out, nil
}

// applied is what `up` records after installing: the hash each machine
// was last started with.
type applied struct {
	Hashes map[string]string `json:"hashes"`
	// ConfigFiles are the compose files the project was loaded from,
	// for `berth compose ls`.
	ConfigFiles []string `json:"config_files,omitempty"`
}

func (h *Host) appliedPath(name string) string {
	return filepath.Join(h.Dir(name), "applied.json")
}

func (h *Host) readApplied(name string) applied {
	var a applied
	if b, err := os.ReadFile(h.appliedPath(name)); err == nil {
		json.Unmarshal(b, &a)
	}
	if a.Hashes == nil {
		a.Hashes = map[string]string{}
	}
	return a
}

func (h *Host) writeApplied(name string, a applied) error {
	b, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return err
	}
	return compose.WriteTree("/", []compose.File{{Path: h.appliedPath(name), Mode: 0o600, Data: append(b, '\n')}}, compose.TreeOptions{})
}

// installOrder writes state files and directories first, then .nspawn
// files, then units, and the project target last: a daemon-reload that
// runs in the middle of an install (another up, a package upgrade) sees
// whole files, and never a target that wants units not yet written.
func installOrder(files []compose.File, o compose.ConvertOptions, target string) []compose.File {
	rank := func(f compose.File) int {
		switch {
		case path.Dir(f.Path) == o.UnitDir && path.Base(f.Path) == target:
			return 3
		case path.Dir(f.Path) == o.UnitDir:
			return 2
		case path.Dir(f.Path) == o.NspawnDir:
			return 1
		}
		return 0
	}
	out := append([]compose.File(nil), files...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// seedVolumes creates each missing volume directory that the image has
// content for, filled with a copy of it (as docker fills a new volume).
// The source comes from an image: it is resolved inside the machine's
// root filesystem, and the copy never follows a link.
func (h *Host) seedVolumes(files []compose.File) error {
	for _, f := range files {
		if !f.Dir || f.SeedFrom == "" {
			continue
		}
		if _, err := os.Lstat(f.Path); err == nil {
			continue
		}
		rel, ok := strings.CutPrefix(f.SeedFrom, h.MachinesDir+"/")
		if !ok {
			return fmt.Errorf("seed volume %s: %s is not in %s", f.Path, f.SeedFrom, h.MachinesDir)
		}
		machine, inner, _ := strings.Cut(rel, "/")
		src, err := securejoin.SecureJoin(filepath.Join(h.MachinesDir, machine), inner)
		if err != nil {
			return fmt.Errorf("seed volume %s from %s: %w", f.Path, f.SeedFrom, err)
		}
		fi, err := os.Lstat(src)
		if err != nil || !fi.IsDir() {
			// Nothing at the target in the image: an empty volume,
			// which WriteTree creates.
			continue
		}
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o700); err != nil {
			return fmt.Errorf("seed volume %s: %w", f.Path, err)
		}
		// Build beside the final name and rename, so an interrupted
		// copy never looks like a seeded volume.
		tmp := f.Path + ".berth-seed"
		os.RemoveAll(tmp)
		if err := copyTree(src, tmp); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("seed volume %s from %s: %w", f.Path, f.SeedFrom, err)
		}
		if err := os.Chmod(tmp, f.Mode.Perm()); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("seed volume %s: %w", f.Path, err)
		}
		if err := os.Rename(tmp, f.Path); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("seed volume %s: %w", f.Path, err)
		}
	}
	return nil
}

// copyTree copies directory src to dst (which must not exist): regular
// files, directories and symlinks (as links, never followed), with modes
// and owners. Devices, FIFOs and sockets in a volume seed are skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		switch {
		case d.IsDir():
			if err := os.Mkdir(out, 0o700); err != nil {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, out); err != nil {
				return err
			}
			if st != nil {
				os.Lchown(out, int(st.Uid), int(st.Gid))
			}
			return nil
		case d.Type().IsRegular():
			if err := copyFile(p, out); err != nil {
				return err
			}
		default:
			return nil
		}
		if st != nil {
			if err := os.Lchown(out, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
		}
		// After chown, which clears setuid bits.
		return os.Chmod(out, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	})
}

func copyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
