package store

import (
	"context"
	"fmt"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

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

// LockBlob takes the exclusive lock of fetching blob d, so pulls running
// side by side download it once: the others wait, then find it stored. The
// locks are 256 files (by the digest's first byte), not one per blob.
func (s *Store) LockBlob(ctx context.Context, d v1.Hash) (func(), error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("lock blob: %w", err)
	}
	return fsutil.Lock(ctx, filepath.Join(s.root, locksDir, "blob-"+d.Hex[:2]+".lock"), Exclusive)
}
