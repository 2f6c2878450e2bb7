package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// RemoveMachine deletes machine name: its root filesystem, its .oci-config
// and its record. Blobs stay until CollectGarbage. ErrNotFound if berth has
// no record of name (berth never deletes a tree it did not install).
func (s *Store) RemoveMachine(ctx context.Context, machinesDir, name string) error {
	unlock, err := s.LockName(ctx, name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	defer unlock()
	if _, err := s.Record(name); err != nil {
		return fmt.Errorf("remove machine: %w", err)
	}
	if err := RemoveRootfs(machinesDir, name); err != nil {
		return err
	}
	if err := os.Remove(ConfigPath(machinesDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	return s.RemoveRecord(name)
}

// CollectGarbage takes the store lock exclusively (waiting for running
// pulls) and removes unreferenced blobs. It returns files removed and bytes
// freed.
func (s *Store) CollectGarbage(ctx context.Context) (int, int64, error) {
	unlock, err := s.Lock(ctx, Exclusive)
	if err != nil {
		return 0, 0, fmt.Errorf("collect garbage: %w", err)
	}
	defer unlock()
	return s.GC()
}

// TryCollectGarbage collects garbage only if no pull is running (it never
// waits: the next pull to finish collects instead). ran reports whether it
// did.
func (s *Store) TryCollectGarbage() (n int, freed int64, ran bool, err error) {
	unlock, ok := s.TryLock(Exclusive)
	if !ok {
		return 0, 0, false, nil
	}
	defer unlock()
	n, freed, err = s.GC()
	return n, freed, true, err
}
