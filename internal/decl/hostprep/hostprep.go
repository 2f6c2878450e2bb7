// Package hostprep is the host side of the generator's volume units: what
// they run (berth _volume) because a generator may write nothing but units.
// The generator decides every value; the helper only carries it out: a
// volume directory under berth's root, its owner, and its first content
// copied from the image.
//
// Copies go through the command.Runner seam (cp), so tests compare the
// commands.
package hostprep

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-sh/berth/internal/command"
)

// Volume is a named volume directory a machine binds.
type Volume struct {
	// Dir is the volume: ROOT/volumes/NAME.
	Dir string
	// UID and GID, when not negative, own Dir's top directory; they are
	// applied at every start (the declaration is the state), after a seed.
	UID, GID int
	// SeedFrom is a machine's root filesystem and SeedPath the mount
	// point in it: when Dir is empty, what the image has there is copied
	// in (docker's and podman's copy-up). "" skips seeding.
	SeedFrom, SeedPath string
}

// EnsureVolume creates v.Dir if missing (its parent 0700, root's only: the
// machines reach volumes through bind mounts made by root), seeds it when
// empty, and applies the owner.
func EnsureVolume(ctx context.Context, r command.Runner, v Volume) error {
	if !filepath.IsAbs(v.Dir) || filepath.Clean(v.Dir) != v.Dir {
		return fmt.Errorf("prepare volume %q: not an absolute clean path", v.Dir)
	}
	if err := os.MkdirAll(filepath.Dir(v.Dir), 0o700); err != nil {
		return fmt.Errorf("prepare volume %s: %w", v.Dir, err)
	}
	if err := os.Mkdir(v.Dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("prepare volume %s: %w", v.Dir, err)
	}
	if fi, err := os.Lstat(v.Dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("prepare volume %s: not a directory", v.Dir)
	}
	if v.SeedFrom != "" {
		if err := seed(ctx, r, v); err != nil {
			return fmt.Errorf("prepare volume %s: %w", v.Dir, err)
		}
	}
	if v.UID >= 0 || v.GID >= 0 {
		if err := os.Lchown(v.Dir, v.UID, v.GID); err != nil {
			return fmt.Errorf("prepare volume %s: %w", v.Dir, err)
		}
	}
	return nil
}

// seed copies the image's content at the mount point into an empty volume.
// The path comes from the declaration but is resolved inside the machine's
// tree (a link in the image never leads out of it), and cp -a copies links
// as links.
func seed(ctx context.Context, r command.Runner, v Volume) error {
	ents, err := os.ReadDir(v.Dir)
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return nil
	}
	src, err := securejoin.SecureJoin(v.SeedFrom, v.SeedPath)
	if err != nil {
		return fmt.Errorf("seed from %s: %w", v.SeedPath, err)
	}
	fi, err := os.Lstat(src)
	if err != nil || !fi.IsDir() {
		return nil // nothing there in the image: an empty volume
	}
	if err := command.Run(ctx, r, "cp", "-a", "--reflink=auto", "-T", "--", src, v.Dir); err != nil {
		return fmt.Errorf("seed from the image's %s: %w", v.SeedPath, err)
	}
	return nil
}
