package pull

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// throttled limits blob downloads to bytesPerSec, standing in for a real
// network so that overlapping download and apply shows.
type throttled struct {
	http.ResponseWriter
	bytesPerSec int
}

func (w throttled) Write(p []byte) (int, error) {
	const chunk = 64 << 10
	n := 0
	for len(p) > 0 {
		c := min(chunk, len(p))
		m, err := w.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		time.Sleep(time.Duration(c) * time.Second / time.Duration(w.bytesPerSec))
		p = p[c:]
	}
	return n, nil
}

// BenchmarkPull compares applying layers as they stream in with applying
// each after its download, over a registry throttled to 10 MiB/s per
// connection. The image is one big layer (as a distribution base layer is)
// and a small one.
//
//	go test -run '^$' -bench Pull -benchtime 3x ./internal/pull
func BenchmarkPull(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	var layers []v1.Layer
	for i, n := range []int{3000, 50} {
		files := []string{}
		for j := range n {
			body := make([]byte, rng.Intn(16<<10))
			rng.Read(body[:len(body)/2]) // half random, half zeros: gzip has work to do
			files = append(files, fmt.Sprintf("l%d/%d", i, j), string(body))
		}
		layers = append(layers, layerOf(b, tarOf(b, files...), "gzip"))
	}
	reg := newTestRegistry(b)
	ref := reg.push(b, "bench:1", imageOf(b, "linux/amd64", layers...))
	reg.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet {
			return false
		}
		reg.inner.ServeHTTP(throttled{w, 10 << 20}, r)
		return true
	})

	for _, stream := range []bool{true, false} {
		b.Run(fmt.Sprintf("stream=%v", stream), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				d := b.TempDir()
				o := Options{
					Ref: ref, Root: filepath.Join(d, "root"), MachinesDir: filepath.Join(d, "m"),
					NoStream: !stream, Running: func(string) bool { return false },
				}
				if _, err := Pull(context.Background(), o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
