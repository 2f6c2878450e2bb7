package fsutil

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "unit.service")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	if err := AtomicWrite(p, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	if err != nil || string(b) != "new" || fi.Mode().Perm() != 0o640 {
		t.Errorf("got %q %v mode %v, want new 0640", b, err, fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftovers: %v", ents)
	}
	// A failed write leaves nothing behind and names the file.
	err = AtomicWrite(filepath.Join(dir, "missing", "x"), nil, 0o644)
	if err == nil || !strings.Contains(err.Error(), "write "+filepath.Join(dir, "missing", "x")) {
		t.Errorf("write into a missing directory: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := AtomicWrite(filepath.Join(dir, "d"), []byte("x"), 0o644); err == nil {
		t.Error("AtomicWrite replaced a directory")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("failed write left a temporary file: %v", ents)
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(context.Background(), p, Shared)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p, Exclusive); !errors.Is(err, ErrLocked) {
		t.Fatalf("exclusive while shared is held: %v", err)
	}
	other, err := TryLock(p, Shared)
	if err != nil {
		t.Fatalf("second shared: %v", err)
	}
	other()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, p, Exclusive); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	unlock()
	u, err := Lock(context.Background(), p, Exclusive)
	if err != nil {
		t.Fatalf("exclusive after release: %v", err)
	}
	u()
	if _, err := TryLock(filepath.Join(p, "not-a-dir"), Exclusive); err == nil || errors.Is(err, ErrLocked) {
		t.Errorf("lock under a file: %v", err)
	}
}
