package layer

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// rssChildEnv names the blob a re-executed test binary applies for TestPeakRSS.
const rssChildEnv = "BERTH_LAYER_RSS_BLOB"

// rssBudget is the pull's memory budget: Apply must stream, never buffer a
// layer or a file, whatever their size.
const rssBudget = 64 << 20

// TestPeakRSS applies a layer with a 96 MiB file (gzip and zstd) in a fresh
// process and checks that process's peak RSS stays under the budget.
func TestPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~200 MB")
	}
	dir := t.TempDir()
	for name, compress := range map[string]func(io.Writer) io.WriteCloser{
		"gzip": func(w io.Writer) io.WriteCloser { zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed); return zw },
		"zstd": func(w io.Writer) io.WriteCloser {
			zw, _ := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
			return zw
		},
	} {
		t.Run(name, func(t *testing.T) {
			blob := filepath.Join(dir, name)
			writeBigLayer(t, blob, compress)
			cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$")
			cmd.Env = append(os.Environ(), rssChildEnv+"="+blob, "BERTH_LAYER_RSS_OUT="+filepath.Join(dir, name+"-root"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			maxrss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
			t.Logf("%s: peak RSS %.1f MiB", name, float64(maxrss)/(1<<20))
			if maxrss > rssBudget {
				t.Errorf("peak RSS %d bytes, budget %d", maxrss, rssBudget)
			}
		})
	}
}

func writeBigLayer(t *testing.T, path string, compress func(io.Writer) io.WriteCloser) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	zw := compress(bw)
	tw := tar.NewWriter(zw)
	r := rand.New(rand.NewPCG(7, 7))
	chunk := content(r, 1<<20)
	const big = 96 << 20
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: big, ModTime: testTime}); err != nil {
		t.Fatal(err)
	}
	for range big / len(chunk) {
		if _, err := tw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2000 {
		body := chunk[i*100 : i*100+400]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "small/" + strconv.Itoa(i), Mode: 0o644, Size: int64(len(body)), ModTime: testTime}); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	for _, c := range []io.Closer{tw, zw} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestRSSChild is the child half of TestPeakRSS.
func TestRSSChild(t *testing.T) {
	blob := os.Getenv(rssChildEnv)
	if blob == "" {
		t.Skip("run by TestPeakRSS")
	}
	f, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, _, err := Decompress(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := os.Getenv("BERTH_LAYER_RSS_OUT")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(context.Background(), root, rc, testOpts()); err != nil {
		t.Fatal(err)
	}
}
