package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression names accepted by --compression.
const (
	CompressGzip = "gzip"
	CompressZstd = "zstd"
	CompressNone = "none"
)

// fileLayer is a v1.Layer whose tar and compressed blob sit in files, so
// multi-hundred-megabyte layers are hashed once and streamed, never held in
// memory (tarball.LayerFromOpener would recompress on every read).
type fileLayer struct {
	tarPath, blobPath string
	digest, diffID    v1.Hash
	size              int64
	mediaType         types.MediaType
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.blobPath) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	return os.Open(l.tarPath)
}

// layerMediaType picks the layer media type for a compression and manifest
// flavour. Docker manifests have no zstd or uncompressed layer type that
// registries and runtimes agree on, so those combinations are refused.
func layerMediaType(compression string, docker bool) (types.MediaType, error) {
	switch {
	case docker && compression == CompressGzip:
		return types.DockerLayer, nil
	case docker:
		return "", fmt.Errorf("compression %q needs OCI media types (drop --docker)", compression)
	case compression == CompressGzip:
		return types.OCILayer, nil
	case compression == CompressZstd:
		return types.OCILayerZStd, nil
	case compression == CompressNone:
		return types.OCIUncompressedLayer, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or none)", compression)
}

// buildLayer writes spec's tar and compressed blob into dir and returns the
// layer. Compression is deterministic (fixed levels and block sizes), so the
// same inputs always give the same digests.
func buildLayer(spec LayerSpec, compression string, mt types.MediaType, dir string) (*fileLayer, error) {
	tarFile, err := os.CreateTemp(dir, "layer-*.tar")
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	defer tarFile.Close()
	diffHash := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tarFile, diffHash), 1<<20)
	if err := writeLayerTar(bw, spec, dir); err != nil {
		return nil, fmt.Errorf("build layer from %s %s: %w", spec.Kind, spec.Path, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("build layer: write %s: %w", tarFile.Name(), err)
	}
	if err := tarFile.Close(); err != nil {
		return nil, fmt.Errorf("build layer: write %s: %w", tarFile.Name(), err)
	}
	l := &fileLayer{tarPath: tarFile.Name(), mediaType: mt, diffID: hashOf(diffHash)}

	if compression == CompressNone {
		l.blobPath, l.digest = l.tarPath, l.diffID
		st, err := os.Stat(l.tarPath)
		if err != nil {
			return nil, fmt.Errorf("build layer: %w", err)
		}
		l.size = st.Size()
		return l, nil
	}

	l.blobPath = filepath.Join(dir, filepath.Base(l.tarPath)+"."+compression)
	if err := compressFile(l.tarPath, l.blobPath, compression); err != nil {
		return nil, fmt.Errorf("build layer: compress %s: %w", l.tarPath, err)
	}
	f, err := os.Open(l.blobPath)
	if err != nil {
		return nil, fmt.Errorf("build layer: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, fmt.Errorf("build layer: hash %s: %w", l.blobPath, err)
	}
	l.digest, l.size = hashOf(h), n
	return l, nil
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

func compressFile(src, dst, compression string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	var zw io.WriteCloser
	switch compression {
	case CompressGzip:
		// pgzip keeps building a 400 MB image quick on small machines; its
		// output is one ordinary gzip member and depends only on the level
		// and block size, both fixed here.
		gw, err := pgzip.NewWriterLevel(bw, gzip.DefaultCompression)
		if err != nil {
			return err
		}
		if err := gw.SetConcurrency(1<<20, 4); err != nil {
			return err
		}
		zw = gw
	case CompressZstd:
		zw, err = zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown compression %q", compression)
	}
	if _, err := io.Copy(zw, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return out.Close()
}

// openMaybeCompressed opens a tar file that may be gzip- or zstd-compressed
// (recognised by magic bytes, not by name) and returns the plain tar stream.
func openMaybeCompressed(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open tar: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open tar %s: gzip: %w", p, err)
		}
		return readCloser{zr, f}, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open tar %s: zstd: %w", p, err)
		}
		return readCloser{zr.IOReadCloser(), f}, nil
	}
	return readCloser{br, f}, nil
}

type readCloser struct {
	io.Reader
	f *os.File
}

func (r readCloser) Close() error {
	if c, ok := r.Reader.(io.Closer); ok {
		c.Close()
	}
	return r.f.Close()
}
