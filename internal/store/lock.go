package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock modes. Pulls hold the store lock shared (blob writes are atomic and
// idempotent, so pulls may run side by side); garbage collection holds it
// exclusive, so it never deletes a blob a running pull is about to use.
const (
	Shared    = unix.LOCK_SH
	Exclusive = unix.LOCK_EX
)

// Lock takes the store-wide lock in mode (Shared or Exclusive), waiting until
// ctx is done. The returned func releases it.
func (s *Store) Lock(ctx context.Context, mode int) (func(), error) {
	return lockFile(ctx, filepath.Join(s.root, locksDir, "store.lock"), mode)
}

// LockName takes the exclusive lock of machine name, serialising pulls and
// removals of the same machine.
func (s *Store) LockName(ctx context.Context, name string) (func(), error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	return lockFile(ctx, filepath.Join(s.root, locksDir, "machine-"+name+".lock"), Exclusive)
}

func lockFile(ctx context.Context, path string, mode int) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flockCtx(ctx, int(f.Fd()), mode); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// flockCtx polls a non-blocking flock so that waiting for another berth can
// be cancelled (Ctrl-C) — a blocking flock(2) cannot be interrupted from Go.
func flockCtx(ctx context.Context, fd, mode int) error {
	delay := time.Millisecond
	for {
		err := unix.Flock(fd, mode|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for another berth process: %w", ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// TryLock takes the store-wide lock in mode if it is free right now.
func (s *Store) TryLock(mode int) (func(), bool) {
	f, err := os.OpenFile(filepath.Join(s.root, locksDir, "store.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false
	}
	if unix.Flock(int(f.Fd()), mode|unix.LOCK_NB) != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
