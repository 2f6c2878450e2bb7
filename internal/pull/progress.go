package pull

import (
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Progress receives events during a pull. Methods may be called from
// several goroutines at once. Layers are numbered from 0 in manifest order.
type Progress interface {
	// Resolved: ref points at digest; manifest is the image to install.
	Resolved(ref string, digest, manifest v1.Hash)
	// LayerStart announces a layer; cached means it is already in the store.
	LayerStart(i int, digest v1.Hash, size int64, cached bool)
	// LayerBytes reports n more bytes of layer i downloaded.
	LayerBytes(i int, n int64)
	// LayerDownloaded: layer i is in the store, verified.
	LayerDownloaded(i int)
	// LayerApplied: layer i is unpacked and its DiffID verified.
	LayerApplied(i int)
	// Done: the pull finished.
	Done(r *Result)
}

type nopProgress struct{}

func (nopProgress) Resolved(string, v1.Hash, v1.Hash)    {}
func (nopProgress) LayerStart(int, v1.Hash, int64, bool) {}
func (nopProgress) LayerBytes(int, int64)                {}
func (nopProgress) LayerDownloaded(int)                  {}
func (nopProgress) LayerApplied(int)                     {}
func (nopProgress) Done(*Result)                         {}

// Lines reports progress as plain lines, for logs and non-terminals.
type Lines struct {
	mu     sync.Mutex
	w      io.Writer
	layers map[int]layerInfo
}

type layerInfo struct {
	digest v1.Hash
	size   int64
}

// NewLines returns a Progress writing lines to w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w, layers: map[int]layerInfo{}} }

func (p *Lines) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format, args...)
}

func (p *Lines) Resolved(ref string, digest, manifest v1.Hash) {
	if digest == manifest {
		p.printf("%s: %s\n", ref, digest)
		return
	}
	p.printf("%s: %s (platform manifest %s)\n", ref, digest, manifest)
}

func (p *Lines) LayerStart(i int, d v1.Hash, size int64, cached bool) {
	p.mu.Lock()
	p.layers[i] = layerInfo{d, size}
	p.mu.Unlock()
	if cached {
		p.printf("layer %s: already present (%s)\n", ShortDigest(d), HumanSize(size))
	}
}

func (p *Lines) LayerBytes(int, int64) {}

func (p *Lines) LayerDownloaded(i int) {
	p.mu.Lock()
	l := p.layers[i]
	p.mu.Unlock()
	p.printf("layer %s: downloaded %s\n", ShortDigest(l.digest), HumanSize(l.size))
}

func (p *Lines) LayerApplied(i int) {}

func (p *Lines) Done(r *Result) {
	rec := r.Record
	if r.UpToDate {
		p.printf("%s is up to date (%s)\n", rec.Name, ShortDigest(rec.Digest))
		return
	}
	p.printf("installed %s from %s: %d layers, downloaded %s in %d blobs\n",
		rec.Name, rec.Reference, len(rec.Layers), HumanSize(r.DownloadedBytes), r.Downloaded)
}

// ShortDigest is the first 12 hex digits of d, as docker shows image IDs.
func ShortDigest(d v1.Hash) string {
	if len(d.Hex) < 12 {
		return d.String()
	}
	return d.Hex[:12]
}

// HumanSize formats n bytes in decimal units, as docker does.
func HumanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
