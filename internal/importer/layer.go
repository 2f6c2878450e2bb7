package importer

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"

	"github.com/berth-sh/berth/internal/layer"
)

// fileLayer is a layer blob in a local file whose digests are known from
// the scan or the rewrite, so handing it to the installer costs no hashing
// pass; the installer verifies both digests again as it copies and applies.
type fileLayer struct {
	path   string
	digest v1.Hash
	diffID v1.Hash
	size   int64
	mt     types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	rc, _, err := layer.Decompress(f, nil)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{rc, closers{rc, f}}, nil
}

type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// layerMediaType is the media type of a file the installer can use as a
// layer blob as it is, or "" when it must be recompressed (xz, bzip2).
func layerMediaType(compression string) types.MediaType {
	switch compression {
	case compGzip:
		return types.OCILayer
	case compZstd:
		return types.OCILayerZStd
	case compNone:
		return types.OCIUncompressedLayer
	}
	return ""
}

// paxStandard are the PAX records that restate header fields. They are
// dropped when an entry is rewritten: the writer derives them from the
// (renamed) header, and a stale "path" record would win over the new name.
var paxStandard = []string{"path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime",
	"GNU.sparse.major", "GNU.sparse.minor", "GNU.sparse.name", "GNU.sparse.realsize", "GNU.sparse.size", "GNU.sparse.map"}

// rewriteLayer copies the uncompressed tar r to w as a gzip layer, keeping
// only the entries under the directory prefix, renamed relative to it (the
// prefix itself becomes the root "./"). Names are cleaned as the applier
// cleans them, so an entry like prefix/../../x is x below the prefix's
// parent, which is outside the prefix and dropped. dropped counts entries
// outside the prefix (the manifest of an ACI).
func rewriteLayer(r io.Reader, prefix string, w io.Writer) (l *fileLayer, dropped []string, err error) {
	tarHash := sha256.New()
	blobHash := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, blobHash)}
	zw := pgzip.NewWriter(cw)
	tw := tar.NewWriter(io.MultiWriter(zw, tarHash))
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read tar: %w", err)
		}
		p := cleanName(h.Name)
		rel, ok := underPrefix(p, prefix)
		if !ok {
			if p != "" {
				dropped = append(dropped, p)
			}
			continue
		}
		h.Name = rel
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			// Hard link targets name entries of the same tar.
			if t, ok := underPrefix(cleanName(h.Linkname), prefix); ok && t != "." {
				h.Linkname = t
			} else {
				h.Linkname = cleanName(h.Linkname)
			}
		}
		if h.Typeflag == tar.TypeGNUSparse {
			h.Typeflag = tar.TypeReg // archive/tar reads it filled in
		}
		for _, k := range paxStandard {
			delete(h.PAXRecords, k)
		}
		h.Format = tar.FormatUnknown
		if err := tw.WriteHeader(h); err != nil {
			return nil, nil, fmt.Errorf("write %s: %w", h.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, nil, fmt.Errorf("copy %s: %w", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	// Read the source to its end: a corrupt compressed tail must fail here.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, nil, fmt.Errorf("read tar: %w", err)
	}
	return &fileLayer{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(blobHash.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarHash.Sum(nil))},
		size:   cw.n,
		mt:     types.OCILayer,
	}, dropped, nil
}

// underPrefix is p relative to the directory prefix ("." for prefix
// itself); ok is false for entries outside it. An empty prefix keeps all.
func underPrefix(p, prefix string) (rel string, ok bool) {
	switch {
	case prefix == "":
		if p == "" {
			return ".", true
		}
		return p, true
	case p == prefix:
		return ".", true
	case strings.HasPrefix(p, prefix+"/"):
		return p[len(prefix)+1:], true
	}
	return "", false
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
