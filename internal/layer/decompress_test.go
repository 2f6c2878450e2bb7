package layer

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func zst(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := zstd.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestDecompress(t *testing.T) {
	layer := mkTar(t, fileE("a", "hello"), dirE("d"), fileE("d/b", string(bytes.Repeat([]byte("x"), 300000))))
	half := len(layer) / 2
	for _, c := range []struct {
		name string
		blob []byte
		want Compression
		out  []byte
	}{
		{"uncompressed", layer, Uncompressed, layer},
		{"gzip", gz(t, layer), Gzip, layer},
		{"gzip multi-member", append(gz(t, layer[:half]), gz(t, layer[half:])...), Gzip, layer},
		{"zstd", zst(t, layer), Zstd, layer},
		{"empty", nil, Uncompressed, nil},
		{"two bytes", []byte{0x1f, 0x00}, Uncompressed, []byte{0x1f, 0x00}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc, comp, err := Decompress(bytes.NewReader(c.blob))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if comp != c.want {
				t.Errorf("compression = %v, want %v", comp, c.want)
			}
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.out) {
				t.Errorf("decompressed %d bytes, want %d", len(got), len(c.out))
			}
		})
	}
}

func TestDecompressCorrupt(t *testing.T) {
	layer := mkTar(t, fileE("a", string(bytes.Repeat([]byte("data "), 50000))))
	for name, blob := range map[string][]byte{"gzip": gz(t, layer), "zstd": zst(t, layer)} {
		t.Run(name+" truncated", func(t *testing.T) {
			rc, _, err := Decompress(bytes.NewReader(blob[:len(blob)-10]))
			if err == nil {
				_, err = Apply(context.Background(), t.TempDir(), rc, testOpts())
				rc.Close()
			}
			if err == nil {
				t.Error("truncated blob applied without error")
			}
		})
		t.Run(name+" flipped checksum", func(t *testing.T) {
			bad := bytes.Clone(blob)
			bad[len(bad)-5] ^= 0xff // inside the gzip CRC-32/ISIZE trailer or zstd's last block
			rc, _, err := Decompress(bytes.NewReader(bad))
			if err == nil {
				_, err = Apply(context.Background(), t.TempDir(), rc, testOpts())
				rc.Close()
			}
			if err == nil {
				t.Error("corrupt blob applied without error")
			}
		})
	}
}

func TestCompressionString(t *testing.T) {
	for c, want := range map[Compression]string{Uncompressed: "uncompressed", Gzip: "gzip", Zstd: "zstd", 7: "Compression(7)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}
