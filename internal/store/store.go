// Package store is berth's on-disk state: a content-addressed blob store laid
// out as an OCI image layout (so umoci, skopeo `oci:` and crane can read it),
// the per-machine records that say which image each machine was installed
// from, and the atomic install of machine root filesystems.
//
// Layout under the root (default /var/lib/berth):
//
//	oci-layout, index.json      OCI image layout marker and index (one entry per machine)
//	blobs/sha256/HEX            manifests, configs and layers by digest
//	machines/NAME.json          berth's record of machine NAME (see Record)
//	locks/                      flock(2) files; see Store.Lock and LockName
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/fsutil"
)

// ErrDigestMismatch is returned when content does not hash to the digest it
// was fetched by.
var ErrDigestMismatch = errors.New("digest mismatch")

// Store is a content-addressed blob store rooted at a directory.
type Store struct {
	root string
}

const (
	blobsDir    = "blobs/sha256"
	machinesDir = "machines"
	locksDir    = "locks"
	// tmpPrefix marks blobs being written; they never match a digest name, so
	// a reader can never see half a blob, and GC removes leftovers.
	tmpPrefix = ".tmp-"
)

// Open opens (creating if needed) the store rooted at root.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("open store: empty root directory")
	}
	for _, d := range []string{blobsDir, machinesDir, locksDir} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	s := &Store{root: root}
	if _, err := os.Stat(filepath.Join(root, "oci-layout")); errors.Is(err, fs.ErrNotExist) {
		if err := fsutil.AtomicWrite(filepath.Join(root, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("open store %s: %w", root, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "index.json")); errors.Is(err, fs.ErrNotExist) {
		if err := s.WriteIndex(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// At returns the store at root without creating anything, for read-only
// use: listing a store that does not exist yet shows no machines.
func At(root string) *Store { return &Store{root: root} }

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob with digest d lives (whether or not it exists).
func (s *Store) BlobPath(d v1.Hash) string {
	return filepath.Join(s.root, blobsDir, d.Hex)
}

// Has reports whether the blob d is present and its size.
func (s *Store) Has(d v1.Hash) (int64, bool) {
	if err := checkDigest(d); err != nil {
		return 0, false
	}
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil || !fi.Mode().IsRegular() {
		return 0, false
	}
	return fi.Size(), true
}

// OpenBlob opens blob d for reading. The content is not re-verified here;
// callers that consume it check what it must hash to (a layer's DiffID, or
// ReadBlob's digest check).
func (s *Store) OpenBlob(d v1.Hash) (*os.File, error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return f, nil
}

// ReadBlob reads a small blob (manifest, config) and verifies its digest.
func (s *Store) ReadBlob(d v1.Hash) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", d, err)
	}
	if got := sha256Hash(b); got != d {
		return nil, fmt.Errorf("read blob %s: store copy hashes to %s: %w", d, got, ErrDigestMismatch)
	}
	return b, nil
}

// PutBlob stores b under digest d after checking that b hashes to d.
func (s *Store) PutBlob(d v1.Hash, b []byte) error {
	if _, ok := s.Has(d); ok {
		return nil
	}
	w, err := s.NewBlobWriter(d, int64(len(b)))
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Abort()
		return err
	}
	return w.Commit()
}

// BlobWriter writes one blob to a temporary file, hashing as it goes; Commit
// verifies size and digest and only then renames the file to its digest name.
type BlobWriter struct {
	s      *Store
	want   v1.Hash
	size   int64 // expected size, -1 if unknown
	f      *os.File
	h      hash.Hash
	n      int64
	closed bool
}

// NewBlobWriter starts writing blob d of the given size (-1 if unknown).
func (s *Store) NewBlobWriter(d v1.Hash, size int64) (*BlobWriter, error) {
	if err := checkDigest(d); err != nil {
		return nil, fmt.Errorf("write blob: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(s.root, blobsDir), tmpPrefix+d.Hex+"-*")
	if err != nil {
		return nil, fmt.Errorf("write blob %s: %w", d, err)
	}
	return &BlobWriter{s: s, want: d, size: size, f: f, h: sha256.New()}, nil
}

// TempPath is the temporary file being written; a reader may open it to
// consume the blob while it is still arriving.
func (w *BlobWriter) TempPath() string { return w.f.Name() }

// Written is the number of bytes written so far.
func (w *BlobWriter) Written() int64 { return w.n }

func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.size >= 0 && w.n+int64(len(p)) > w.size {
		// A registry sending more than the manifest promised is either broken
		// or hostile; stop before filling the disk.
		return 0, fmt.Errorf("write blob %s: more than the %d bytes the manifest declares: %w", w.want, w.size, ErrDigestMismatch)
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("write blob %s: %w", w.want, err)
	}
	return n, nil
}

// Commit verifies the blob and moves it into place. On error the temporary
// file is removed.
func (w *BlobWriter) Commit() (err error) {
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	if w.size >= 0 && w.n != w.size {
		return fmt.Errorf("verify blob %s: got %d bytes, manifest declares %d: %w", w.want, w.n, w.size, ErrDigestMismatch)
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
	if got != w.want {
		return fmt.Errorf("verify blob: expected %s, got %s: %w", w.want, got, ErrDigestMismatch)
	}
	// fsync before rename: after a crash a blob under its digest name is whole.
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("write blob %s: %w", w.want, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("write blob %s: %w", w.want, err)
	}
	w.closed = true
	if err := os.Rename(w.f.Name(), w.s.BlobPath(w.want)); err != nil {
		return fmt.Errorf("write blob %s: %w", w.want, err)
	}
	return nil
}

// Abort discards the temporary file. Safe to call more than once and after
// Commit failed.
func (w *BlobWriter) Abort() {
	if !w.closed {
		w.f.Close()
		w.closed = true
	}
	os.Remove(w.f.Name())
}

// checkDigest rejects digests that are not sha256 of the right shape: the hex
// becomes a file name, so it must never contain a path separator.
func checkDigest(d v1.Hash) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q in %s", d.Algorithm, d)
	}
	if len(d.Hex) != 64 || strings.Trim(d.Hex, "0123456789abcdef") != "" {
		return fmt.Errorf("malformed sha256 digest %q", d.String())
	}
	return nil
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// WriteFileAtomic is fsutil.AtomicWrite, for the machine's .oci-config
// next to its rootfs.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return fsutil.AtomicWrite(path, data, mode)
}

// RemoveBlob deletes blob d (a store copy found corrupt). Missing is fine.
func (s *Store) RemoveBlob(d v1.Hash) error {
	if err := checkDigest(d); err != nil {
		return fmt.Errorf("remove blob: %w", err)
	}
	if err := os.Remove(s.BlobPath(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove blob %s: %w", d, err)
	}
	return nil
}
