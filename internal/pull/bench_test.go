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
// each after its download, over a registry throttled to 20 MiB/s.
//
//	go test -run '^$' -bench Pull -benchtime 3x ./internal/pull
func BenchmarkPull(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	var layers []v1.Layer
	for i := range 4 {
		files := []string{}
		big := make([]byte, 8<<20)
		rng.Read(big)
		files = append(files, fmt.Sprintf("l%d/big", i), string(big))
		for j := range 300 {
			files = append(files, fmt.Sprintf("l%d/small/%d", i, j), strings.Repeat("x", rng.Intn(8192)))
		}
		layers = append(layers, layerOf(b, tarOf(b, files...), "gzip"))
	}
	reg := newTestRegistry(b)
	ref := reg.push(b, "bench:1", imageOf(b, "linux/amd64", layers...))
	base := reg.srv.Config.Handler
	reg.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			w = throttled{w, 20 << 20}
		}
		base.ServeHTTP(w, r)
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
