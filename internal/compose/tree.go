package compose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-sh/berth/internal/fsutil"
)

// WriteListing prints files as a listing: a "==> PATH (what) <==" header
// per file followed by its content. Secret contents are never printed.
func WriteListing(w io.Writer, files []File) error {
	var b bytes.Buffer
	for _, f := range files {
		switch {
		case f.Dir && f.SeedFrom != "":
			fmt.Fprintf(&b, "==> %s/ (directory %04o, new: filled from %s) <==\n", f.Path, f.Mode.Perm(), f.SeedFrom)
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
			// Create if missing; an existing directory (a user's bind
			// source, a volume with data) is never changed.
			if _, err := os.Lstat(dst); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return fmt.Errorf("write directory %s: %w", dst, err)
			}
			if err := os.Mkdir(dst, f.Mode); err != nil {
				return fmt.Errorf("write directory %s: %w", dst, err)
			}
			// Mkdir applies the umask; the mode is part of the plan.
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
		if err := fsutil.AtomicWrite(dst, data, f.Mode); err != nil {
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

// WriteListingJSON prints files as a JSON array: path, mode (octal
// string), kind (file, directory, secret) and content for plain files.
// Secret contents are never included.
func WriteListingJSON(w io.Writer, files []File) error {
	type entry struct {
		Path     string `json:"path"`
		Mode     string `json:"mode"`
		Kind     string `json:"kind"`
		Content  string `json:"content,omitempty"`
		CopyFrom string `json:"copy_from,omitempty"`
		Owner    string `json:"owner,omitempty"`
		SeedFrom string `json:"seed_from,omitempty"`
	}
	out := make([]entry, 0, len(files))
	for _, f := range files {
		e := entry{Path: f.Path, Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Kind: "file"}
		switch {
		case f.Dir:
			e.Kind, e.SeedFrom = "directory", f.SeedFrom
		case f.Secret:
			e.Kind, e.CopyFrom = "secret", f.CopyFrom
			if f.UID != "" || f.GID != "" {
				e.Owner = orDefault(f.UID, "0") + ":" + orDefault(f.GID, "0")
			}
		default:
			e.Content = string(f.Data)
		}
		out = append(out, e)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
