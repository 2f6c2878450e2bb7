package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

// Images is where machines get their root filesystems. Each compose
// instance is its own berth machine (MACHINES_DIR/M with a store record),
// so a service's image is installed once per instance; layers are shared
// in the store.
type Images interface {
	// Installed returns the manifest digest of ref if machine has it
	// installed (record and root filesystem present), else ok=false.
	Installed(machine, ref string) (digest string, ok bool)
	// Pull installs ref as machine, replacing an older image; it returns
	// the manifest digest. stop, if not nil, is called before a machine's
	// tree is replaced by a different image (never when it is up to
	// date), so a running machine is stopped only when it must be.
	Pull(ctx context.Context, ref, machine string, stop func() error) (string, error)
	// Clone installs machine from's image as machine to by copying its
	// root filesystem (instances of one service share an image; copying
	// beats unpacking the layers again). stop is called as for Pull. It
	// returns the manifest digest.
	Clone(ctx context.Context, from, to string, stop func() error) (string, error)
	// Info returns the image config of ref if any machine has it.
	Info(ref string) (*v1.Config, bool)
	// Image describes what machine has installed; ok=false if nothing.
	Image(machine string) (ImageRecord, bool)
	// Remove deletes machine's root filesystem and record; a machine
	// berth has no record of is not an error (nothing to remove).
	Remove(ctx context.Context, machine string) error
	// GC removes store blobs no machine uses any more.
	GC(ctx context.Context) (files int, bytes int64, err error)
}

// ImageRecord is what `berth compose images` shows of one machine.
type ImageRecord struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// StoreImages keeps images in berth's store, pulling with package pull.
type StoreImages struct {
	Root        string
	MachinesDir string
	// Progress returns a reporter for one pull's progress; nil: none.
	Progress func() pull.Reporter
	// Insecure allows plain HTTP to non-loopback registries.
	Insecure bool
	// Gunzip is pull.Options.Gunzip.
	Gunzip string
	// Runner runs cp, which copies a machine's tree for Clone. Default
	// command.ExecRunner.
	Runner command.Runner
}

func (s StoreImages) open() (*store.Store, bool) {
	// A host with nothing pulled has no store yet; reading must not
	// create one.
	if _, err := os.Stat(filepath.Join(s.Root, "machines")); err != nil {
		return nil, false
	}
	st, err := store.Open(s.Root)
	return st, err == nil
}

func normalize(ref string) string {
	r, err := pull.ParseRef(ref, false)
	if err != nil {
		return ref
	}
	return r.String()
}

// Installed implements Images.
func (s StoreImages) Installed(machine, ref string) (string, bool) {
	st, ok := s.open()
	if !ok {
		return "", false
	}
	rec, err := st.Record(machine)
	if err != nil || rec.Reference != normalize(ref) {
		return "", false
	}
	if fi, err := os.Stat(filepath.Join(s.MachinesDir, machine)); err != nil || !fi.IsDir() {
		return "", false
	}
	return rec.Manifest.String(), true
}

// Pull implements Images.
func (s StoreImages) Pull(ctx context.Context, ref, machine string, stop func() error) (string, error) {
	o := pull.Options{Ref: ref, Name: machine, Root: s.Root, MachinesDir: s.MachinesDir, Insecure: s.Insecure, Gunzip: s.Gunzip}
	var stopErr error
	if stop != nil {
		// pull asks whether the machine runs only when it is about
		// to replace its tree: the moment to stop it.
		o.Running = func(name string) bool {
			stopErr = stop()
			return pull.MachinedRunning(name)
		}
	}
	if s.Progress != nil {
		r := s.Progress()
		defer r.Close()
		o.Progress = r
	}
	res, err := pull.Pull(ctx, o)
	if stopErr != nil {
		return "", fmt.Errorf("stop machine %s to replace its image: %w", machine, stopErr)
	}
	if err != nil {
		return "", err
	}
	return res.Record.Manifest.String(), nil
}

// Clone implements Images.
func (s StoreImages) Clone(ctx context.Context, from, to string, stop func() error) (_ string, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("copy machine %s to %s: %w", from, to, err)
		}
	}()
	st, err := store.Open(s.Root)
	if err != nil {
		return "", err
	}
	unlockStore, err := st.Lock(ctx, store.Shared)
	if err != nil {
		return "", err
	}
	defer unlockStore()
	unlock, err := st.LockName(ctx, to)
	if err != nil {
		return "", err
	}
	defer unlock()
	rec, err := st.Record(from)
	if err != nil {
		return "", err
	}
	stg, err := store.NewStaging(s.MachinesDir, to)
	if err != nil {
		return "", err
	}
	// cp -a keeps owners, modes, xattrs and hard links; --reflink makes
	// the copy nearly free on btrfs and xfs.
	r := s.Runner
	if r == nil {
		r = command.ExecRunner{}
	}
	if err := command.Run(ctx, r, "cp", "-a", "--reflink=auto", "-T", "--", filepath.Join(s.MachinesDir, from), stg.Dir); err != nil {
		stg.Discard()
		return "", err
	}
	if _, err := os.Lstat(filepath.Join(s.MachinesDir, to)); err == nil && stop != nil {
		if err := stop(); err != nil {
			stg.Discard()
			return "", err
		}
	}
	if err := stg.Commit(); err != nil {
		stg.Discard()
		return "", err
	}
	// The machine resolves its image from this config when it starts.
	if err := st.WriteConfig(s.MachinesDir, to, rec.Config); err != nil {
		return "", err
	}
	cp := *rec
	cp.Name = to
	cp.Pulled = time.Now().UTC()
	if err := st.SaveRecord(&cp); err != nil {
		return "", err
	}
	return cp.Manifest.String(), nil
}

// Info implements Images.
func (s StoreImages) Info(ref string) (*v1.Config, bool) {
	st, ok := s.open()
	if !ok {
		return nil, false
	}
	recs, err := st.Records()
	if err != nil {
		return nil, false
	}
	want := normalize(ref)
	for _, rec := range recs {
		if rec.Reference != want {
			continue
		}
		cf, err := st.Config(rec)
		if err != nil {
			continue
		}
		return &cf.Config, true
	}
	return nil, false
}

// Image implements Images.
func (s StoreImages) Image(machine string) (ImageRecord, bool) {
	st, ok := s.open()
	if !ok {
		return ImageRecord{}, false
	}
	rec, err := st.Record(machine)
	if err != nil {
		return ImageRecord{}, false
	}
	return ImageRecord{Reference: rec.Reference, Digest: rec.Manifest.String(), Size: rec.Size}, true
}

// Remove implements Images.
func (s StoreImages) Remove(ctx context.Context, machine string) error {
	st, ok := s.open()
	if !ok {
		return nil
	}
	err := st.RemoveMachine(ctx, s.MachinesDir, machine)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", machine, err)
	}
	return nil
}

// GC implements Images.
func (s StoreImages) GC(ctx context.Context) (int, int64, error) {
	st, ok := s.open()
	if !ok {
		return 0, 0, nil
	}
	return st.CollectGarbage(ctx)
}
