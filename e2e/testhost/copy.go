package testhost

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// CopyIn copies the file or directory tree hostPath to guestPath inside the
// host, owned by root, modes and symlinks kept. It streams a tar into the
// host's own tar, so it lands in the host's view of the filesystem (also
// below mounts made inside it), not in the overlay behind its back.
func (h *Host) CopyIn(hostPath, guestPath string) {
	h.t.Helper()
	begin := time.Now()
	pr, pw := io.Pipe()
	counter := &countWriter{w: pw}
	go func() {
		pw.CloseWithError(writeTree(counter, hostPath, path.Base(guestPath)))
	}()
	if err := h.untar(guestPath, pr); err != nil {
		pr.CloseWithError(err) // unblocks the writer if tar gave up early
		h.t.Fatalf("testhost %s: copy %s to %s: %v", h.name, hostPath, guestPath, err)
	}
	h.t.Logf("testhost %s: copied %s to %s (%d KiB) in %v", h.name, hostPath, guestPath, counter.n/1024, time.Since(begin).Round(time.Millisecond))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteFile writes data to guestPath inside the host, creating parent
// directories.
func (h *Host) WriteFile(guestPath string, data []byte, perm fs.FileMode) {
	h.t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: path.Base(guestPath), Mode: int64(perm.Perm()), Size: int64(len(data)), ModTime: time.Now()}
	err := errors.Join(tw.WriteHeader(hdr), writeAll(tw, data), tw.Close())
	if err == nil {
		err = h.untar(guestPath, &buf)
	}
	if err != nil {
		h.t.Fatalf("testhost %s: write %s: %v", h.name, guestPath, err)
	}
}

// ReadFile returns the content of guestPath inside the host.
func (h *Host) ReadFile(guestPath string) []byte {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CommandTimeout)
	defer cancel()
	r, err := h.Run(ctx, "cat", "--", guestPath)
	if err != nil || r.ExitCode != 0 {
		h.t.Fatalf("testhost %s: read %s: %v\n%s", h.name, guestPath, errOr(err, "failed"), r.Stderr)
	}
	return []byte(r.Stdout)
}

func writeAll(w io.Writer, data []byte) error {
	_, err := w.Write(data)
	return err
}

// untar extracts a tar whose single top entry is named path.Base(guestPath)
// into path.Dir(guestPath) inside the host. A failure of the reader (the
// tar writer) is reported as such, not as tar's complaint about it.
func (h *Host) untar(guestPath string, tarball io.Reader) error {
	if !path.IsAbs(guestPath) || path.Clean(guestPath) != guestPath || guestPath == "/" {
		return fmt.Errorf("guest path %q must be absolute, clean and not /", guestPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CommandTimeout)
	defer cancel()
	// -p and --numeric-owner: modes and root ownership exactly as in the
	// tar, whatever users the host has.
	cmd := h.Command(ctx, "/bin/sh", "-c", `mkdir -p "$1" && exec tar -x -p --numeric-owner -C "$1" -f -`, "sh", path.Dir(guestPath))
	src := &errReader{r: tarball}
	cmd.Stdin = src
	out, err := cmd.CombinedOutput()
	if src.err != nil && !errors.Is(src.err, io.EOF) {
		return fmt.Errorf("build tar: %w", src.err)
	}
	if err != nil {
		return fmt.Errorf("unpack in host: %w\n%s", err, out)
	}
	return nil
}

// errReader remembers the error its reader returned.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// writeTree writes src (a file, symlink or directory tree) as a tar whose
// top entry is named top, owned by root. Hard links become copies.
func writeTree(w io.Writer, src, top string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := top
		if rel != "." {
			name = path.Join(top, filepath.ToSlash(rel))
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		hdr.Name = name
		if info.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
