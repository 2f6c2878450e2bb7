package store

import (
	"context"
	"path/filepath"

	"github.com/berth-sh/berth/internal/fsutil"
)

// Lock modes. Pulls hold the store lock shared (blob writes are atomic and
// idempotent, so pulls may run side by side); garbage collection holds it
// exclusive, so it never deletes a blob a running pull is about to use.
const (
	Shared    = fsutil.Shared
	Exclusive = fsutil.Exclusive
)

// Lock takes the store-wide lock in mode (Shared or Exclusive), waiting until
// ctx is done. The returned func releases it.
func (s *Store) Lock(ctx context.Context, mode fsutil.LockMode) (func(), error) {
	return fsutil.Lock(ctx, filepath.Join(s.root, locksDir, "store.lock"), mode)
}

// LockName takes the exclusive lock of machine name, serialising pulls and
// removals of the same machine.
func (s *Store) LockName(ctx context.Context, name string) (func(), error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return fsutil.Lock(ctx, filepath.Join(s.root, locksDir, "machine-"+name+".lock"), Exclusive)
}

// TryLock takes the store-wide lock in mode if it is free right now.
func (s *Store) TryLock(mode fsutil.LockMode) (func(), bool) {
	unlock, err := fsutil.TryLock(filepath.Join(s.root, locksDir, "store.lock"), mode)
	return unlock, err == nil
}
