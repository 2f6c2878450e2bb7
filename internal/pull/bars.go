package pull

import (
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Bars reports progress as one bar per layer, for terminals. Call Close
// after Pull returns (whatever its outcome) to stop drawing.
type Bars struct {
	w    io.Writer
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[int]*mpb.Bar
	done *Result
}

// NewBars returns a Progress drawing bars on w, which should be a terminal.
func NewBars(w io.Writer) *Bars {
	return &Bars{w: w, p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40)), bars: map[int]*mpb.Bar{}}
}

func (b *Bars) Resolved(ref string, digest, manifest v1.Hash) {
	fmt.Fprintf(b.p, "%s: %s\n", ref, digest)
}

func (b *Bars) LayerStart(i int, d v1.Hash, size int64, cached bool) {
	// Created with total 0 so reaching the size does not complete the bar:
	// it completes when the layer is applied, not when it is downloaded.
	bar := b.p.AddBar(0,
		mpb.BarPriority(i),
		mpb.PrependDecorators(decor.Name(ShortDigest(d)+" ", decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.OnComplete(
			decor.Counters(decor.SizeB1000(0), "% .1f / % .1f", decor.WCSyncSpace), "applied")),
	)
	bar.SetTotal(size, false)
	if cached {
		bar.SetCurrent(size)
	}
	b.mu.Lock()
	b.bars[i] = bar
	b.mu.Unlock()
}

func (b *Bars) bar(i int) *mpb.Bar {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bars[i]
}

func (b *Bars) LayerBytes(i int, n int64) {
	if bar := b.bar(i); bar != nil {
		bar.IncrInt64(n)
	}
}

func (b *Bars) LayerDownloaded(i int) {}

func (b *Bars) LayerApplied(i int) {
	if bar := b.bar(i); bar != nil {
		bar.SetTotal(-1, true)
	}
}

func (b *Bars) Done(r *Result) {
	b.mu.Lock()
	b.done = r
	b.mu.Unlock()
}

// Close stops the bars (aborting unfinished ones after a failure) and prints
// the summary line.
func (b *Bars) Close() {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	r := b.done
	b.mu.Unlock()
	b.p.Wait()
	if r != nil {
		l := NewLines(b.w)
		l.Done(r)
	}
}
