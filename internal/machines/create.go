package machines

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/fsutil"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/store"
)

// CreateOptions say how Create installs a machine.
type CreateOptions struct {
	// Image is the pulled machine whose root filesystem to use. If it is
	// not the new machine's name, the tree is copied (reflinked where the
	// filesystem can) to MachinesDir/NAME.
	Image string
	// VolumesDir holds the host directories backing the image's anonymous
	// volumes (VOLUME): VolumesDir/NAME/..., removed with the machine.
	// Empty: anonymous volumes stay part of the root filesystem.
	VolumesDir string
}

// volumeDirName names the host directory of an anonymous volume: readable,
// and unique per mount point because of the hash.
func volumeDirName(dest string) string {
	sum := sha256.Sum256([]byte(dest))
	var b strings.Builder
	for _, r := range strings.Trim(dest, "/") {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String() + "-" + hex.EncodeToString(sum[:4])
}

// volumeBinds returns a bind for each anonymous volume of s that no bind
// covers, backed by a directory under dir.
func volumeBinds(s *machine.Spec, dir string) []machine.Bind {
	covered := map[string]bool{}
	for _, b := range s.Binds {
		covered[path.Clean(b.Destination)] = true
	}
	var out []machine.Bind
	for _, v := range s.Volumes {
		if !covered[v] {
			out = append(out, machine.Bind{Source: filepath.Join(dir, volumeDirName(v)), Destination: v, Idmap: s.PrivateUsers != "no"})
		}
	}
	return out
}

// Planned returns s as Create installs it: with a bind for each anonymous
// volume when o.VolumesDir is set and the machine can use it. `berth
// create --dry-run` shows the files of this spec.
func (h Host) Planned(s machine.Spec, o CreateOptions) (machine.Spec, error) {
	s, _, err := h.plan(s, o)
	return s, err
}

// plan is Planned, also returning the volume binds it added.
func (h Host) plan(s machine.Spec, o CreateOptions) (machine.Spec, []machine.Bind, error) {
	if err := h.checkIdmap(&s); err != nil {
		return machine.Spec{}, nil, err
	}
	if o.VolumesDir == "" {
		return s, nil, nil
	}
	vbinds := volumeBinds(&s, filepath.Join(o.VolumesDir, s.Name))
	if len(vbinds) > 0 && vbinds[0].Idmap && !h.idmapOK(o.VolumesDir) {
		// The machine's root could not write to a volume directory
		// that is not idmapped into its UID range; as part of the
		// root filesystem, which nspawn chowns into the range
		// instead, the volumes work (and still go with the machine).
		return s, nil, nil
	}
	s.Binds = append(append([]machine.Bind{}, s.Binds...), vbinds...)
	return s, vbinds, nil
}

// seedVolumes creates the host directory of each volume bind, seeded with
// what the image has at that path (as docker does). src is the image's
// root filesystem; every path in it is resolved inside it, never following
// links out.
func (h Host) seedVolumes(ctx context.Context, binds []machine.Bind, src string) error {
	for _, b := range binds {
		if err := os.MkdirAll(filepath.Dir(b.Source), 0o700); err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
		seed, err := securejoin.SecureJoin(src, b.Destination)
		if err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
		if fi, err := os.Lstat(seed); err == nil && fi.IsDir() {
			if err := h.copyTree(ctx, seed, b.Source); err != nil {
				return fmt.Errorf("create volume %s: copy the image's %s: %w", b.Destination, b.Destination, err)
			}
		} else if err := os.Mkdir(b.Source, 0o755); err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
	}
	return nil
}

// copyTree copies directory src to dst with cp -a, which keeps owners,
// modes, xattrs and hard links; --reflink makes the copy nearly free on
// btrfs and xfs.
func (h Host) copyTree(ctx context.Context, src, dst string) error {
	return command.Run(ctx, h.Runner, "cp", "-a", "--reflink=auto", "-T", "--", src, dst)
}

// Create installs machine s: its root filesystem (if cloned), NAME.nspawn,
// the service unit and berth's record, then reloads systemd. On failure
// nothing it wrote is left behind.
func (h Host) Create(ctx context.Context, s machine.Spec, o CreateOptions) (*Instance, error) {
	unlock, err := h.lock(s.Name)
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	defer unlock()
	in, err := h.create(ctx, s, o)
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	return in, nil
}

// create is Create under the machine's lock.
func (h Host) create(ctx context.Context, s machine.Spec, o CreateOptions) (_ *Instance, err error) {
	if _, err := h.Instance(s.Name); err == nil {
		return nil, fmt.Errorf("%w; remove it with `berth rm %s` first", ErrExists, s.Name)
	}
	if _, err := Files(&s, h.NspawnDir, h.UnitDir); err != nil {
		return nil, err
	}
	planned, vbinds, err := h.plan(s, o)
	if err != nil {
		return nil, err
	}
	in := &Instance{Spec: planned, Image: o.Image, Created: h.Now().UTC()}
	if len(vbinds) > 0 {
		vdir := filepath.Join(o.VolumesDir, s.Name)
		if _, err := os.Lstat(vdir); err == nil {
			return nil, fmt.Errorf("%w: %s is in the way", ErrExists, vdir)
		}
		defer func() {
			if err != nil {
				os.RemoveAll(vdir)
			}
		}()
		if err := h.seedVolumes(ctx, vbinds, filepath.Join(h.MachinesDir, o.Image)); err != nil {
			return nil, err
		}
		in.VolumesDir = vdir
	}
	s = planned
	files, err := Files(&s, h.NspawnDir, h.UnitDir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if _, err := os.Lstat(f.Path()); err == nil {
			return nil, fmt.Errorf("%w: %s is in the way", ErrExists, f.Path())
		}
	}
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.RemoveAll(p)
			}
		}
	}()
	if o.Image == s.Name && s.ImageConfig != "" {
		// The image's own config, which its pull keeps next to it.
		if _, err := os.Stat(s.ImageConfig); err != nil {
			return nil, fmt.Errorf("image config: %w (pull the image again to restore it)", err)
		}
	}
	if o.Image != s.Name {
		if err := h.cloneRootfs(ctx, s.Name, o.Image); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				store.RemoveRootfs(h.MachinesDir, s.Name)
			}
		}()
		in.Cloned = true
		if s.ImageConfig != "" {
			// The copy's image config goes with it: the machine
			// reads it when it starts.
			if err := copyConfig(store.ConfigPath(h.MachinesDir, o.Image), s.ImageConfig); err != nil {
				return nil, err
			}
			defer func() {
				if err != nil {
					os.Remove(s.ImageConfig)
				}
			}()
		}
	}
	for _, f := range files {
		if err := writeFile(f.Path(), f.Data); err != nil {
			return nil, err
		}
		written = append(written, f.Path())
		in.Files = append(in.Files, f.Path())
	}
	if err := h.writeInstance(in); err != nil {
		return nil, err
	}
	written = append(written, h.statePath(s.Name))
	if err := h.daemonReload(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// cloneRootfs copies image's root filesystem to machine name's, through a
// staging directory so a half copy is never name's.
func (h Host) cloneRootfs(ctx context.Context, name, image string) error {
	dst := filepath.Join(h.MachinesDir, name)
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%w: %s is in the way", ErrExists, dst)
	}
	src := filepath.Join(h.MachinesDir, image)
	if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
		return fmt.Errorf("image %s has no root filesystem at %s; pull it first", image, src)
	}
	st, err := store.NewStaging(h.MachinesDir, name)
	if err != nil {
		return err
	}
	if err := h.copyTree(ctx, src, st.Dir); err != nil {
		st.Discard()
		return fmt.Errorf("copy root filesystem of %s: %w", image, err)
	}
	if err := st.Commit(); err != nil {
		st.Discard()
		return err
	}
	return nil
}

// copyConfig copies an image's config (kept next to its root filesystem)
// to where a machine copied from it reads its own.
func copyConfig(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy image config: %w (pull the image again to restore it)", err)
	}
	if err := fsutil.AtomicWrite(to, b, 0o644); err != nil {
		return fmt.Errorf("copy image config: %w", err)
	}
	return nil
}
