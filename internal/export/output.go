package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tmpPrefix starts the hidden name an output is built under beside its
// destination (same directory, so the final rename is atomic).
const tmpPrefix = ".berth-export-"

// atomicFile is an output file under construction.
type atomicFile struct {
	*os.File
	dest string
	done bool
}

// createFile starts writing dest: a temporary file beside it that commit
// renames over dest, replacing a file that is there. A directory in the
// way is an error now, before any work.
func createFile(dest string) (*atomicFile, error) {
	if strings.HasSuffix(dest, "/") {
		return nil, fmt.Errorf("create %s: a directory name, but the format writes a file", dest)
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("create %s: %w: it is a directory (an oci layout goes there with --format oci)", dest, fs.ErrExist)
	}
	f, err := os.CreateTemp(filepath.Dir(dest), tmpPrefix+filepath.Base(dest)+"-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", dest, err)
	}
	return &atomicFile{File: f, dest: dest}, nil
}

// commit makes the file whole on disk and moves it to its destination.
func (a *atomicFile) commit() error {
	if err := a.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	if err := a.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	if err := a.Close(); err != nil {
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	if err := os.Rename(a.Name(), a.dest); err != nil {
		os.Remove(a.Name())
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	a.done = true
	return nil
}

// abort removes the temporary file unless commit moved it into place.
func (a *atomicFile) abort() {
	if !a.done {
		a.Close()
		os.Remove(a.Name())
		a.done = true
	}
}

// atomicDir is an output directory under construction.
type atomicDir struct {
	tmp  string
	dest string
	done bool
}

// createDir starts building directory dest in a temporary directory beside
// it. dest may exist only as an empty directory, which commit replaces.
func createDir(dest string) (*atomicDir, error) {
	dest = strings.TrimRight(dest, "/")
	if dest == "" {
		return nil, fmt.Errorf("create /: %w", fs.ErrExist)
	}
	if err := checkEmptyDir(dest); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), tmpPrefix+filepath.Base(dest)+"-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", dest, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("create %s: %w", dest, err)
	}
	return &atomicDir{tmp: tmp, dest: dest}, nil
}

func checkEmptyDir(dest string) error {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("create %s: %w and is not a directory", dest, fs.ErrExist)
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		return fmt.Errorf("create %s: %w", dest, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("create %s: %w and is not empty", dest, fs.ErrExist)
	}
	return nil
}

// commit syncs the tree and renames it over dest (rename(2) replaces an
// empty directory; a non-empty one that appeared meanwhile is an error).
func (a *atomicDir) commit() error {
	d, err := os.Open(a.tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	err = unix.Syncfs(int(d.Fd()))
	d.Close()
	if err != nil {
		return fmt.Errorf("write %s: sync: %w", a.dest, err)
	}
	// unix.Rename, not os.Rename, which refuses any existing directory.
	if err := unix.Rename(a.tmp, a.dest); err != nil {
		return fmt.Errorf("write %s: %w", a.dest, err)
	}
	a.done = true
	return nil
}

func (a *atomicDir) abort() {
	if !a.done {
		os.RemoveAll(a.tmp)
		a.done = true
	}
}

// ctxReader fails reads once ctx is done, so a long copy stops at the next
// chunk after ^C instead of running to the end.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
