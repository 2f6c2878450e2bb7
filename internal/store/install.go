package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// StagingPrefix starts the names of root filesystems being built or torn
// down in the machines directory. The leading dot hides them from
// machinectl, which lists only non-hidden entries.
const StagingPrefix = ".berth-tmp-"

// Staging is a machine root filesystem under construction: a hidden
// directory next to its final place (same filesystem, so Commit is a
// rename). It holds an flock on itself while alive, which is how
// CleanStaging tells an abandoned directory from one still being built.
type Staging struct {
	// Dir is the directory to build the root filesystem in.
	Dir         string
	machinesDir string
	name        string
	lock        *os.File
}

// NewStaging creates a staging directory for machine name in machinesDir.
func NewStaging(machinesDir, name string) (*Staging, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(machinesDir, 0o700); err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	// Between its mkdir and its flock a staging directory looks abandoned;
	// CleanStaging claims directories only under this lock's exclusive
	// side, so it never sees one in that instant.
	unlock, err := lockDir(machinesDir, unix.LOCK_SH)
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	defer unlock()
	dir, err := os.MkdirTemp(machinesDir, StagingPrefix+name+"-")
	if err != nil {
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	// MkdirTemp makes 0700; a root filesystem's / is 0755 unless a layer says otherwise.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("create staging directory: %w", err)
	}
	lock, err := os.Open(dir)
	if err == nil {
		err = unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		os.Remove(dir)
		return nil, fmt.Errorf("lock staging directory %s: %w", dir, err)
	}
	return &Staging{Dir: dir, machinesDir: machinesDir, name: name, lock: lock}, nil
}

// StartWriteback syncs the staging tree's filesystem in the background, every
// interval, until the returned stop is called (stop waits for a sync in
// progress). Nothing else writes the new tree back early — the kernel holds
// dirty pages for up to 30 s — so without it Commit's sync would write the
// whole tree while the pull waits; with it the disk works while the layers
// are still being applied, and Commit only syncs the rest. Durability is not
// weakened: Commit still syncs everything before the tree becomes visible.
func (s *Staging) StartWriteback(interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	done := make(chan struct{})
	fd := int(s.lock.Fd())
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				// An error here is not the pull's: Commit's sync reports it.
				syncfs(fd)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}

// syncfs is unix.Syncfs; tests replace it to watch the background writeback.
var syncfs = unix.Syncfs

// Commit moves the staged tree to machinesDir/name. If name exists it is
// swapped atomically with RENAME_EXCHANGE and the old tree deleted, so at no
// instant is there no machine or half a machine. After a successful Commit
// the Staging is spent; after a failed one the caller still Discards it.
func (s *Staging) Commit() error {
	final := filepath.Join(s.machinesDir, s.name)
	// Make sure the tree is on disk before it becomes visible.
	if err := unix.Syncfs(int(s.lock.Fd())); err != nil {
		return fmt.Errorf("install machine %s: sync: %w", s.name, err)
	}
	err := unix.Renameat2(unix.AT_FDCWD, s.Dir, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		err = unix.Renameat2(unix.AT_FDCWD, s.Dir, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
		if err == nil {
			// s.Dir now holds the old tree, still hidden. The new tree is
			// installed whatever happens next; an old tree that cannot be
			// deleted now is left to the next CleanStaging.
			s.Discard()
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("install machine %s: rename %s to %s: %w", s.name, s.Dir, final, err)
	}
	s.lock.Close()
	return nil
}

// Discard deletes the staging directory (a failed build, or the old tree
// after a swap).
func (s *Staging) Discard() error {
	defer s.lock.Close()
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.Dir, err)
	}
	return nil
}

// lockDir flocks the machines directory itself (how), the staging lock:
// held shared while a staging directory is made and locked, exclusively
// while CleanStaging claims abandoned ones, so it never takes one in the
// instant between its creator's mkdir and flock. Both hold it briefly.
func lockDir(dir string, how int) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}

// CleanStaging removes staging directories left by pulls that were killed.
// A directory whose flock is still held belongs to a running pull and is
// left alone. It claims the abandoned ones (takes their flock) under the
// staging lock, then deletes them without it.
func CleanStaging(machinesDir string) error {
	ents, err := os.ReadDir(machinesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean stale staging directories: %w", err)
	}
	var claimed []*os.File
	defer func() {
		for _, f := range claimed {
			f.Close()
		}
	}()
	unlock, err := lockDir(machinesDir, unix.LOCK_EX)
	if err != nil {
		return fmt.Errorf("clean stale staging directories: %w", err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), StagingPrefix) || !e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(machinesDir, e.Name()))
		if err != nil {
			continue // raced with its owner removing it
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close()
			continue
		}
		claimed = append(claimed, f)
	}
	unlock()
	var errs []error
	for _, f := range claimed {
		if err := os.RemoveAll(f.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean stale staging directories: %w", err)
	}
	return nil
}

// RemoveRootfs deletes machinesDir/name: first renamed to a hidden staging
// name, so the machine disappears at once even if deleting a large tree is
// interrupted (the next pull's CleanStaging finishes it). A missing tree is
// not an error.
func RemoveRootfs(machinesDir, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	final := filepath.Join(machinesDir, name)
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s, err := NewStaging(machinesDir, name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	if err := unix.Renameat2(unix.AT_FDCWD, final, unix.AT_FDCWD, s.Dir, unix.RENAME_EXCHANGE); err != nil {
		s.Discard()
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	// final is now the empty staging directory; s.Dir holds the old tree.
	if err := os.Remove(final); err != nil {
		s.Discard()
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	return s.Discard()
}

// ConfigPath is where the image config of machine name is kept next to its
// root filesystem, as importctl does for OCI imports. Machines that
// resolve their image when they start read it from there
// (machine.Spec.ImageConfig), so every way of installing a machine writes
// it with the tree, and removing the machine removes it.
func ConfigPath(machinesDir, name string) string {
	return filepath.Join(machinesDir, name+".oci-config")
}

// WriteConfig installs the image config blob config (read from the store
// and verified) as machine name's ConfigPath, atomically.
func (s *Store) WriteConfig(machinesDir, name string, config v1.Hash) error {
	b, err := s.ReadBlob(config)
	if err != nil {
		return fmt.Errorf("install config of machine %s: %w", name, err)
	}
	if err := WriteFileAtomic(ConfigPath(machinesDir, name), b, 0o644); err != nil {
		return fmt.Errorf("install config of machine %s: %w", name, err)
	}
	return nil
}

// LoadMachine returns the record of machine name in the store at root and
// its image config, parsed. The config is read from the store by digest and
// verified, so it is exactly what the machine was installed from.
func LoadMachine(root, name string) (*Record, *v1.ConfigFile, error) {
	s := At(root)
	r, err := s.Record(name)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := s.Config(r)
	if err != nil {
		return nil, nil, err
	}
	return r, cfg, nil
}

// Config reads and parses the image config of record r.
func (s *Store) Config(r *Record) (*v1.ConfigFile, error) {
	b, err := s.ReadBlob(r.Config)
	if err != nil {
		return nil, fmt.Errorf("load config of machine %s: %w", r.Name, err)
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("load config of machine %s: %w", r.Name, err)
	}
	return &cfg, nil
}
