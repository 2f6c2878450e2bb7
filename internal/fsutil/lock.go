package fsutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// LockMode says how a lock is shared.
type LockMode int

// Lock modes.
const (
	// Shared locks may be held by many at once, never with an Exclusive.
	Shared LockMode = unix.LOCK_SH
	// Exclusive is held by one holder alone.
	Exclusive LockMode = unix.LOCK_EX
)

// ErrLocked is returned by TryLock when another holder has the lock.
var ErrLocked = errors.New("locked by another process")

// TryLock takes an flock(2) on path in mode if it is free now, creating
// the file if needed (it stays; the lock goes with the returned func or
// the process). ErrLocked if another holder has it.
func TryLock(path string, mode LockMode) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock(f, mode); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// Lock is TryLock that waits until the lock is free or ctx is done. It
// polls, backing off to 100ms, so that waiting for another berth can be
// cancelled (Ctrl-C): a blocking flock(2) cannot be interrupted from Go.
func Lock(ctx context.Context, path string, mode LockMode) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		err := flock(f, mode)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, ErrLocked) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: waiting for another berth process: %w", path, ctx.Err())
		case <-t.C:
		}
	}
}

// flock tries the lock once; ErrLocked if it is held.
func flock(f *os.File, mode LockMode) error {
	err := unix.Flock(int(f.Fd()), int(mode)|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrLocked
	}
	return err
}
