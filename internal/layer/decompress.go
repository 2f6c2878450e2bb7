package layer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Compression is the compression format of a layer blob, as sniffed from its
// first bytes (the media type in a manifest is a claim; the bytes are the truth).
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

const (
	// sniffBuffer is the read-ahead of the reader wrapped around the blob.
	// Large enough that the decompressor's small reads do not each become a
	// read of the network or file.
	sniffBuffer = 64 << 10

	// gzip is decompressed in a separate goroutine (pgzip) so inflating overlaps
	// with writing files, as `gzip -dc | tar -x` overlaps two processes. Four
	// 512 KiB blocks bound the read-ahead to 2 MiB.
	gzipBlockSize = 512 << 10
	gzipBlocks    = 4

	// zstdMaxWindow bounds the memory a zstd frame may demand. zstd levels 1-19
	// use at most an 8 MiB window; only `--long`/`--ultra` frames need more and
	// they fail with a clear error instead of growing the pull past its memory budget.
	zstdMaxWindow = 32 << 20
)

// Gunzip starts an external decompressor reading r (an *os.File is passed
// as the process's stdin) and returns its output; see package gunzip.
type Gunzip func(r io.Reader) (io.ReadCloser, error)

// Decompress sniffs gzip / zstd / uncompressed (by magic bytes) and returns the
// uncompressed stream. Reading the returned stream to EOF reads r to EOF and
// verifies the compressed format's own checksums (gzip CRC-32, zstd frame
// checksum when present); a corrupt or truncated blob is an error from Read.
// Close releases the decompressor; it does not close r.
//
// gunzip, when not nil, starts an external gzip decompressor that gzip
// blobs are piped through instead of inflating them in-process (package
// gunzip: igzip, as nobody). The decompressed stream is checked against the
// layer's DiffID by the caller either way.
func Decompress(r io.Reader, gunzip Gunzip) (io.ReadCloser, Compression, error) {
	if f, ok := r.(*os.File); ok && gunzip != nil {
		// A file goes to the external decompressor as its stdin: no copy
		// through a pipe. Sniff without moving the offset.
		head := make([]byte, len(gzipMagic))
		off, err := f.Seek(0, io.SeekCurrent)
		if err == nil {
			var n int
			n, err = f.ReadAt(head, off)
			if n == len(head) && bytes.Equal(head, gzipMagic) {
				zr, err := gunzip(f)
				return zr, Gzip, err
			}
		}
	}
	br := bufio.NewReaderSize(r, sniffBuffer)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("decompress layer: read header: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic) && gunzip != nil:
		zr, err := gunzip(br)
		return zr, Gzip, err
	case bytes.HasPrefix(head, gzipMagic):
		zr, err := pgzip.NewReaderN(br, gzipBlockSize, gzipBlocks)
		if err != nil {
			return nil, Gzip, fmt.Errorf("decompress layer: gzip header: %w", err)
		}
		return zr, Gzip, nil
	case bytes.HasPrefix(head, zstdMagic):
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderLowmem(true),
			// One goroutine decodes ahead of the consumer; more would only add
			// memory since the tar side is the bottleneck.
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
		)
		if err != nil {
			return nil, Zstd, fmt.Errorf("decompress layer: zstd: %w", err)
		}
		return zr.IOReadCloser(), Zstd, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}
