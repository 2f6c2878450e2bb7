package layer

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		for gname, gunzip := range gunzips(t) {
			t.Run(c.name+"/"+gname, func(t *testing.T) {
				rc, comp, err := Decompress(bytes.NewReader(c.blob), inflater(gunzip))
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
}

// gunzips are the gzip decompressors Decompress can use: in-process and
// igzip (required with BERTH_TEST_REQUIRE_TOOLS=1, skipped otherwise).
func gunzips(t testing.TB) map[string]string {
	m := map[string]string{"builtin": ""}
	if p, err := exec.LookPath(AutoGunzip); err == nil {
		m[AutoGunzip] = p
	} else if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found (BERTH_TEST_REQUIRE_TOOLS=1): %v", AutoGunzip, err)
	}
	return m
}

func TestDecompressCorrupt(t *testing.T) {
	layer := mkTar(t, fileE("a", string(bytes.Repeat([]byte("data "), 50000))))
	blobs := map[string][]byte{"zstd": zst(t, layer)}
	gunzip := map[string]string{}
	for gname, g := range gunzips(t) {
		blobs["gzip/"+gname] = gz(t, layer)
		gunzip["gzip/"+gname] = g
	}
	for name, blob := range blobs {
		t.Run(name+" truncated", func(t *testing.T) {
			rc, _, err := Decompress(bytes.NewReader(blob[:len(blob)-10]), inflater(gunzip[name]))
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
			rc, _, err := Decompress(bytes.NewReader(bad), inflater(gunzip[name]))
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

// fakeGunzip writes a shell script standing in for an external decompressor.
func fakeGunzip(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-gunzip")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The decompressor may run as nobody: let it reach the script
	// (t.TempDir makes its directory and the one above it private).
	for d := filepath.Dir(p); d != filepath.Dir(os.TempDir()+"/x"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func TestGunzipExternalFailure(t *testing.T) {
	// A failed exit is an error at the end of the stream, with its stderr,
	// even when the output looked complete.
	g := fakeGunzip(t, `cat >/dev/null; printf partial; echo "bad block at $(id -u)" >&2; exit 3`)
	rc, comp, err := Decompress(bytes.NewReader(gz(t, []byte("x"))), inflater(g))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if comp != Gzip {
		t.Errorf("compression = %v, want gzip", comp)
	}
	got, err := io.ReadAll(rc)
	if string(got) != "partial" {
		t.Errorf("output %q, want %q", got, "partial")
	}
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "bad block") {
		t.Fatalf("err = %v, want the exit status and stderr", err)
	}
	if os.Geteuid() == 0 && !strings.Contains(err.Error(), "bad block at 65534") {
		t.Errorf("as root the decompressor must run as nobody: %v", err)
	}
	// The flags it is called with are gzip's.
	g = fakeGunzip(t, `echo "$@"`)
	rc, _, err = Decompress(bytes.NewReader(gz(t, nil)), inflater(g))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(rc); err != nil || string(got) != "-dc\n" {
		t.Errorf("args %q (err %v), want -dc", got, err)
	}
	rc.Close()
}

func TestGunzipExternalEarlyExit(t *testing.T) {
	// A decompressor that stops reading early: the rest of the input stays
	// with the caller (who drains it to finish digest checks) and nothing hangs.
	g := fakeGunzip(t, `head -c 10 >/dev/null; printf ok`)
	in := append(gz(t, nil), bytes.Repeat([]byte{0}, 8<<20)...)
	r := bytes.NewReader(in)
	rc, _, err := Decompress(r, inflater(g))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || string(got) != "ok" {
		t.Fatalf("got %q, %v", got, err)
	}
	rc.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
}

func TestGunzipExternalClose(t *testing.T) {
	// Closing before the end kills the decompressor, also one that hangs,
	// and returns once the input's pending read does.
	g := fakeGunzip(t, `head -c 10 >/dev/null; printf x; exec sleep 60`)
	pr, pw := io.Pipe()
	defer pw.Close()
	wrote := make(chan struct{})
	go func() {
		pw.Write(gz(t, []byte("x"))[:10])
		close(wrote)
	}()
	rc, _, err := Decompress(pr, inflater(g))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	<-wrote // and the decompressor read it: the feeder now waits for more
	done := make(chan struct{})
	go func() {
		rc.Close()
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("Close returned while the feeder still waited for input")
	case <-time.After(100 * time.Millisecond):
	}
	pw.CloseWithError(context.Canceled)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hangs after its input returned")
	}
}

func TestGunzipExternalMissing(t *testing.T) {
	_, _, err := Decompress(bytes.NewReader(gz(t, nil)), inflater(filepath.Join(t.TempDir(), "no-such-gunzip")))
	if err == nil || !strings.Contains(err.Error(), "BERTH_GUNZIP=builtin") {
		t.Fatalf("err = %v, want a start error naming the way out", err)
	}
}

func TestGunzipExternalFile(t *testing.T) {
	// A file is handed to the decompressor as its stdin, from its current
	// offset; afterwards the file is at its end.
	for gname, gunzip := range gunzips(t) {
		t.Run(gname, func(t *testing.T) {
			layer := mkTar(t, fileE("a", strings.Repeat("file content ", 10000)))
			p := filepath.Join(t.TempDir(), "blob")
			if err := os.WriteFile(p, append([]byte("skip"), gz(t, layer)...), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			f.Seek(4, io.SeekStart)
			rc, comp, err := Decompress(f, inflater(gunzip))
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil || comp != Gzip || !bytes.Equal(got, layer) {
				t.Fatalf("got %d bytes (%v, %v), want %d", len(got), comp, err, len(layer))
			}
			if rest, _ := io.ReadAll(f); len(rest) != 0 {
				t.Errorf("%d bytes left in the file", len(rest))
			}
		})
	}
}
