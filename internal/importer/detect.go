package importer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/ulikunitz/xz"

	"github.com/berth-sh/berth/internal/layer"
)

// Format is what an imported tarball holds, as detected from its content.
type Format string

const (
	FormatRootfs        Format = "rootfs"         // a plain root filesystem tar
	FormatACI           Format = "aci"            // appc image: manifest + rootfs/
	FormatDockerArchive Format = "docker-archive" // `docker save`: manifest.json + layers
	FormatOCIArchive    Format = "oci-archive"    // a tarred OCI image layout
)

// Compression of the whole file, sniffed from its magic bytes.
const (
	compNone  = "none"
	compGzip  = "gzip"
	compZstd  = "zstd"
	compXz    = "xz"
	compBzip2 = "bzip2"
)

var (
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	bzip2Magic = []byte("BZh")
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sniff names the compression of a stream from its first bytes. A tar
// header (ustar magic at 257) wins over everything: a rootfs whose first
// file is called "BZh9" is still a tar.
func sniff(head []byte) string {
	switch {
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return compNone
	case bytes.HasPrefix(head, gzipMagic):
		return compGzip
	case bytes.HasPrefix(head, zstdMagic):
		return compZstd
	case bytes.HasPrefix(head, xzMagic):
		return compXz
	case len(head) >= 4 && bytes.HasPrefix(head, bzip2Magic) && head[3] >= '1' && head[3] <= '9':
		return compBzip2
	}
	return compNone
}

// decompress returns the uncompressed stream of r and its compression.
// Reading it to EOF reads r to EOF and checks the format's own checksums.
func decompress(r io.Reader) (io.ReadCloser, string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", fmt.Errorf("read header: %w", err)
	}
	if len(head) == 0 {
		return nil, "", errors.New("the source is empty")
	}
	switch c := sniff(head); c {
	case compXz:
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), c, nil
	case compBzip2:
		return io.NopCloser(bzip2.NewReader(br)), c, nil
	case compGzip, compZstd:
		// The layer package's decompressors, tuned for layers.
		rc, _, err := layer.Decompress(br, nil)
		return rc, c, err
	default:
		return io.NopCloser(br), compNone, nil
	}
}

// scan is what one pass over the tarball found.
type scan struct {
	format      Format
	compression string
	// fileDigest and fileSize are of the file as stored (compressed);
	// diffID is of the uncompressed tar stream, to its end.
	fileDigest v1.Hash
	fileSize   int64
	diffID     v1.Hash
	// lift is the single top-level directory of a rootfs tar that is lifted
	// to be the root ("" for none).
	lift string
	// aciManifest, dockerManifest, ociIndex are the metadata files of the
	// other formats.
	aciManifest    []byte
	dockerManifest tarball.Manifest
	ociIndex       *v1.IndexManifest
}

// maxMetaSize bounds the metadata files read into memory during the scan.
const maxMetaSize = 4 << 20

// fhsDirs are top-level directories of a root filesystem itself: a tar
// holding only usr/ is a tree without /etc, not a rootfs wrapped in usr/.
var fhsDirs = map[string]bool{
	"bin": true, "boot": true, "dev": true, "etc": true, "home": true, "lib": true, "lib32": true, "lib64": true,
	"libx32": true, "media": true, "mnt": true, "opt": true, "proc": true, "root": true, "run": true, "sbin": true,
	"srv": true, "sys": true, "tmp": true, "usr": true, "var": true,
}

// cleanName is a tar entry name as the layer applier reads it: relative to
// the root, as in a chroot ("../x" and "/x" are "x"); "" is the root.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// scanTar reads r (the file as stored) once: it hashes it, sniffs its
// compression, reads every tar header and the small metadata files, and
// decides the format. Every byte is read, so a truncated or corrupt file
// fails here, before anything is installed.
func scanTar(r io.Reader) (*scan, error) {
	fileHash := sha256.New()
	counted := &countingReader{r: io.TeeReader(r, fileHash)}
	zr, comp, err := decompress(counted)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	tarHash := sha256.New()
	tr := tar.NewReader(io.TeeReader(zr, tarHash))
	s := &scan{compression: comp}
	meta := map[string][]byte{}
	tops := map[string]bool{} // first path components
	topNotDir := map[string]bool{}
	entries := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tar: %w", err)
		}
		entries++
		p := cleanName(h.Name)
		if p == "" {
			continue
		}
		first, rest, _ := strings.Cut(p, "/")
		tops[first] = true
		if rest == "" && h.Typeflag != tar.TypeDir {
			topNotDir[first] = true
		}
		switch p {
		case "manifest", "manifest.json", "index.json", "oci-layout":
			if h.Typeflag == tar.TypeReg && h.Size <= maxMetaSize {
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, fmt.Errorf("read tar: %s: %w", p, err)
				}
				meta[p] = b
			}
		}
	}
	if entries == 0 {
		return nil, errors.New("the tar holds no entries (is it a tar?)")
	}
	// The rest of the stream (zero blocks, padding) counts too: the
	// applier reads to EOF and the DiffID covers it.
	if _, err := io.Copy(io.Discard, io.TeeReader(zr, tarHash)); err != nil {
		return nil, fmt.Errorf("read tar: %w", err)
	}
	if _, err := io.Copy(io.Discard, counted); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	s.fileDigest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(fileHash.Sum(nil))}
	s.fileSize = counted.n
	s.diffID = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(tarHash.Sum(nil))}

	switch {
	case isDockerManifest(meta["manifest.json"], &s.dockerManifest):
		s.format = FormatDockerArchive
	case meta["oci-layout"] != nil && isOCIIndex(meta["index.json"], &s.ociIndex):
		s.format = FormatOCIArchive
	case isACIManifest(meta["manifest"]) && tops["rootfs"] && !topNotDir["rootfs"]:
		s.format, s.aciManifest = FormatACI, meta["manifest"]
	default:
		s.format = FormatRootfs
		if len(tops) == 1 {
			for d := range tops {
				if !topNotDir[d] && !fhsDirs[d] {
					s.lift = d
				}
			}
		}
	}
	return s, nil
}

func isDockerManifest(b []byte, out *tarball.Manifest) bool {
	if b == nil || json.Unmarshal(b, out) != nil || len(*out) == 0 {
		return false
	}
	for _, d := range *out {
		if d.Config == "" {
			return false
		}
	}
	return true
}

func isOCIIndex(b []byte, out **v1.IndexManifest) bool {
	if b == nil {
		return false
	}
	var im v1.IndexManifest
	if json.Unmarshal(b, &im) != nil || im.SchemaVersion != 2 {
		return false
	}
	*out = &im
	return true
}

func isACIManifest(b []byte) bool {
	var m struct {
		ACKind string `json:"acKind"`
	}
	return b != nil && json.Unmarshal(b, &m) == nil && m.ACKind == "ImageManifest"
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
