package compose

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// WriteListing prints files as a listing: a "==> PATH (what) <==" header
// per file followed by its content. Secret contents are never printed.
func WriteListing(w io.Writer, files []File) error {
	var b bytes.Buffer
	for _, f := range files {
		switch {
		case f.Dir:
			fmt.Fprintf(&b, "==> %s/ (directory %04o) <==\n", f.Path, f.Mode.Perm())
		case f.Secret:
			src := fmt.Sprintf("%d bytes", len(f.Data))
			if f.CopyFrom != "" {
				src = "copied from " + strconv.Quote(f.CopyFrom)
			}
			owner := ""
			if f.UID != "" || f.GID != "" {
				owner = fmt.Sprintf(", owner %s:%s", orDefault(f.UID, "0"), orDefault(f.GID, "0"))
			}
			fmt.Fprintf(&b, "==> %s (%04o%s, secret: %s) <==\n", f.Path, f.Mode.Perm(), owner, src)
		default:
			fmt.Fprintf(&b, "==> %s (%04o) <==\n", f.Path, f.Mode.Perm())
			b.Write(f.Data)
			if len(f.Data) > 0 && f.Data[len(f.Data)-1] != '\n' {
				b.WriteByte('\n')
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TreeOptions control WriteTree.
type TreeOptions struct {
	// Chown applies the files' UID and GID (needs root). Staging trees
	// written by `berth compose convert -o` leave ownership to `up`.
	Chown bool
}

// WriteTree writes files under dir (dir + each file's absolute path). Each
// file is written to a temporary name and renamed into place, so a reader
// never sees half a file; secret files are created with their final mode
// before any content is written.
func WriteTree(dir string, files []File, o TreeOptions) error {
	if dir == "" {
		return errors.New("write files: empty output directory")
	}
	for _, f := range files {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if f.Dir {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("write directory %s: %w", dst, err)
			}
			if err := os.Chmod(dst, f.Mode); err != nil {
				return fmt.Errorf("write directory %s: %w", dst, err)
			}
			continue
		}
		data := f.Data
		if f.CopyFrom != "" {
			b, err := readRegular(f.CopyFrom)
			if err != nil {
				return fmt.Errorf("write %s: %w", dst, err)
			}
			data = b
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
		if err := writeAtomic(dst, data, f.Mode); err != nil {
			return err
		}
		if o.Chown && (f.UID != "" || f.GID != "") {
			uid, err1 := strconv.Atoi(orDefault(f.UID, "0"))
			gid, err2 := strconv.Atoi(orDefault(f.GID, "0"))
			if err1 != nil || err2 != nil {
				return fmt.Errorf("write %s: owner %s:%s is not numeric", dst, f.UID, f.GID)
			}
			if err := os.Chown(dst, uid, gid); err != nil {
				return fmt.Errorf("write %s: %w", dst, err)
			}
		}
	}
	return nil
}

// readRegular reads a secret or config source, refusing anything but a
// regular file (a FIFO or device would hang or leak).
func readRegular(p string) ([]byte, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", p)
	}
	return os.ReadFile(p)
}

func writeAtomic(dst string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".berth-tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600, so secret data is never readable by
	// others even before the chmod.
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}
