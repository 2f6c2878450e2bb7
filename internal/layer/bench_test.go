package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"golang.org/x/sys/unix"
)

// Benchmarks compare Apply with `tar -x` and `gzip -dc | tar -x` (and umoci)
// on the same layers, written to the same filesystem (TMPDIR, or
// BERTH_LAYER_BENCH_DIR to measure a real disk):
//
//	go test -run '^$' -bench . -benchtime 5x ./internal/layer
//
// "small" is an application layer of many small files, "big" a few large ones.

type benchLayer struct {
	tar, gz, zst string // files holding the layer
	size         int64  // uncompressed bytes
	entries      int
}

var (
	benchOnce   sync.Once
	benchLayers map[string]benchLayer
	benchErr    error
)

func benchDir(b *testing.B) string {
	if d := os.Getenv("BERTH_LAYER_BENCH_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// compressible content: words from a small vocabulary plus some random bytes,
// which gzip shrinks about 3x, like typical binaries and text.
func content(r *rand.Rand, n int) []byte {
	words := []string{"berth ", "layer ", "systemd ", "nspawn ", "\x00\x00\x00\x00", "container ", "image ", "\x7fELF", "rootfs "}
	out := make([]byte, 0, n)
	for len(out) < n {
		if r.IntN(4) == 0 {
			for range 16 {
				out = append(out, byte(r.Uint32()))
			}
		} else {
			out = append(out, words[r.IntN(len(words))]...)
		}
	}
	return out[:n]
}

func genLayer(dir, name string, files int, size func(r *rand.Rand) int) (benchLayer, error) {
	r := rand.New(rand.NewPCG(1, uint64(files)))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	l := benchLayer{}
	dirs := max(files/50, 1)
	for d := range dirs {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("usr/lib/pkg%03d/", d), Mode: 0o755, ModTime: testTime}
		if err := tw.WriteHeader(h); err != nil {
			return l, err
		}
		l.entries++
	}
	for i := range files {
		data := content(r, size(r))
		// Entries of a directory are contiguous, as tar and image builders write them.
		d := i * dirs / files
		h := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/pkg%03d/file%05d.so", d, i), Mode: 0o644, Size: int64(len(data)), ModTime: testTime}
		if err := tw.WriteHeader(h); err != nil {
			return l, err
		}
		if _, err := tw.Write(data); err != nil {
			return l, err
		}
		l.size += int64(len(data))
		l.entries++
		if i%20 == 0 {
			h := &tar.Header{Typeflag: tar.TypeSymlink, Name: fmt.Sprintf("usr/lib/pkg%03d/link%05d.so", d, i), Linkname: filepath.Base(h.Name), ModTime: testTime}
			if err := tw.WriteHeader(h); err != nil {
				return l, err
			}
			l.entries++
		}
	}
	if err := tw.Close(); err != nil {
		return l, err
	}
	l.tar = filepath.Join(dir, name+".tar")
	l.gz = filepath.Join(dir, name+".tar.gz")
	l.zst = filepath.Join(dir, name+".tar.zst")
	if err := os.WriteFile(l.tar, buf.Bytes(), 0o644); err != nil {
		return l, err
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(buf.Bytes())
	zw.Close()
	if err := os.WriteFile(l.gz, gz.Bytes(), 0o644); err != nil {
		return l, err
	}
	var zs bytes.Buffer
	ze, _ := zstd.NewWriter(&zs)
	ze.Write(buf.Bytes())
	ze.Close()
	return l, os.WriteFile(l.zst, zs.Bytes(), 0o644)
}

func layers(b *testing.B) map[string]benchLayer {
	benchOnce.Do(func() {
		dir, err := os.MkdirTemp(benchDir(b), "berth-layer-bench-data-")
		if err != nil {
			benchErr = err
			return
		}
		benchLayers = map[string]benchLayer{}
		small, err := genLayer(dir, "small", 20000, func(r *rand.Rand) int { return 256 + r.IntN(8192) })
		if err != nil {
			benchErr = err
			return
		}
		big, err := genLayer(dir, "big", 4, func(r *rand.Rand) int { return 64 << 20 })
		if err != nil {
			benchErr = err
			return
		}
		benchLayers["small"], benchLayers["big"] = small, big
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchLayers
}

// runInto runs f b.N times, each time into a fresh empty directory; removing
// the previous tree is not timed.
func runInto(b *testing.B, bytes int64, f func(dst string) error) {
	b.SetBytes(bytes)
	base := benchDir(b)
	var cpu time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dst := filepath.Join(base, fmt.Sprintf("berth-layer-bench-out-%d", i))
		os.RemoveAll(dst)
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		before := cpuTime()
		b.StartTimer()
		if err := f(dst); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cpu += cpuTime() - before
		os.RemoveAll(dst)
		b.StartTimer()
	}
	// CPU time (user+sys, this process and the tools it ran) is steadier than
	// wall time on a shared machine.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

func cpuTime() time.Duration {
	var total time.Duration
	for _, who := range []int{unix.RUSAGE_SELF, unix.RUSAGE_CHILDREN} {
		var ru unix.Rusage
		if err := unix.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

func BenchmarkApply(b *testing.B) {
	for _, name := range []string{"small", "big"} {
		for _, format := range []string{"tar", "gz", "gz-igzip", "zst"} {
			b.Run(name+"/"+format, func(b *testing.B) {
				l := layers(b)[name]
				file := map[string]string{"tar": l.tar, "gz": l.gz, "gz-igzip": l.gz, "zst": l.zst}[format]
				gunzip := ""
				if format == "gz-igzip" {
					gunzip = requireTool(b, AutoGunzip)
				}
				runInto(b, l.size, func(dst string) error {
					f, err := os.Open(file)
					if err != nil {
						return err
					}
					defer f.Close()
					rc, _, err := Decompress(f, inflater(gunzip))
					if err != nil {
						return err
					}
					defer rc.Close()
					_, err = Apply(context.Background(), dst, rc, testOpts())
					return err
				})
			})
		}
	}
}

// BenchmarkGNUTar is the yardstick: GNU tar as root (owners, modes, times).
func BenchmarkGNUTar(b *testing.B) {
	tarBin := requireTool(b, "tar")
	requireTool(b, "gzip")
	for _, name := range []string{"small", "big"} {
		b.Run(name+"/tar", func(b *testing.B) {
			l := layers(b)[name]
			runInto(b, l.size, func(dst string) error {
				out, err := exec.Command(tarBin, "-x", "-f", l.tar, "-C", dst).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		})
		b.Run(name+"/gz", func(b *testing.B) {
			l := layers(b)[name]
			runInto(b, l.size, func(dst string) error {
				out, err := exec.Command("sh", "-c", `gzip -dc "$1" | tar -x -C "$2"`, "sh", l.gz, dst).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		})
	}
}

// BenchmarkUmoci unpacks the same layer as a one-layer OCI image.
func BenchmarkUmoci(b *testing.B) {
	umoci := requireTool(b, "umoci")
	for _, name := range []string{"small", "big"} {
		b.Run(name+"/gz", func(b *testing.B) {
			l := layers(b)[name]
			img := filepath.Join(filepath.Dir(l.tar), name+"-image")
			if _, err := os.Stat(img); err != nil {
				data, err := os.ReadFile(l.tar)
				if err != nil {
					b.Fatal(err)
				}
				writeLayout(b, img, [][]byte{data})
			}
			runInto(b, l.size, func(dst string) error {
				os.Remove(dst) // umoci creates it
				out, err := exec.Command(umoci, "raw", "unpack", "--image", img+":test", dst).CombinedOutput()
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		})
	}
}

// BenchmarkGunzip picks the gzip reader: stdlib, klauspost/compress/gzip,
// or klauspost/pgzip (decompresses ahead in its own goroutine).
func BenchmarkGunzip(b *testing.B) {
	for _, name := range []string{"small", "big"} {
		for impl, open := range map[string]func(io.Reader) (io.Reader, error){
			"stdlib":    func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
			"klauspost": func(r io.Reader) (io.Reader, error) { return kgzip.NewReader(r) },
			"pgzip":     func(r io.Reader) (io.Reader, error) { return pgzip.NewReaderN(r, gzipBlockSize, gzipBlocks) },
		} {
			b.Run(name+"/"+impl, func(b *testing.B) {
				l := layers(b)[name]
				data, err := os.ReadFile(l.gz)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(l.size)
				b.ResetTimer()
				for range b.N {
					zr, err := open(bytes.NewReader(data))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, zr); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
