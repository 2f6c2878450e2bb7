package decl

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-sh/berth/internal/fsutil"
)

// WriteUnits writes units into a generator output directory, each file
// atomically, and their [Install] symlinks. It writes nowhere else. The
// units are written in two halves at once, one per core: the generator runs
// at every boot and daemon-reload, and each unit costs several system
// calls. On errors it returns the one about the earliest unit.
func WriteUnits(dir string, units []Unit) error {
	half := len(units) / 2
	var wg sync.WaitGroup
	var err2 error
	wg.Go(func() { err2 = writeUnits(dir, units[half:]) })
	err := writeUnits(dir, units[:half])
	wg.Wait()
	return cmp.Or(err, err2)
}

// writeUnits is WriteUnits one unit after another, stopping at an error.
func writeUnits(dir string, units []Unit) error {
	for _, u := range units {
		if strings.ContainsRune(u.Name, '/') {
			return fmt.Errorf("write unit %q: not a unit name", u.Name)
		}
		if err := writeAtomic(filepath.Join(dir, u.Name), u.Data); err != nil {
			return fmt.Errorf("write unit %s: %w", u.Name, err)
		}
		for _, l := range u.Links {
			p := filepath.Join(dir, l)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("link unit %s: %w", u.Name, err)
			}
			if err := os.Symlink(filepath.Join("..", u.Name), p); err != nil && !os.IsExist(err) {
				return fmt.Errorf("link unit %s: %w", u.Name, err)
			}
		}
	}
	return nil
}

// WriteListing prints units as `berth-generator --dry-run` shows them: a
// "# NAME (from SOURCE)" header, the links, then the content.
func WriteListing(w io.Writer, units []Unit) error {
	for i, u := range units {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "# %s (from %s)\n", u.Name, u.Source)
		for _, l := range u.Links {
			fmt.Fprintf(w, "# link %s\n", l)
		}
		if _, err := w.Write(u.Data); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic writes a unit through a temporary file renamed over it, so
// systemd never reads half a unit. Unlike fsutil.AtomicWrite it does not
// sync: generator output lives in /run and is made anew at every boot and
// daemon-reload, and two syncs per unit would cost the boot time.
func writeAtomic(p string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(p), fsutil.TempPrefix+filepath.Base(p)+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
