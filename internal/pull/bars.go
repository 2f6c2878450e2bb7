package pull

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"
)

// Reporter is a Progress that must be closed after Pull returns.
type Reporter interface {
	Progress
	// Close finishes the output (stops bars after a failure).
	Close()
}

// NewReporter picks how to show progress on w: bars on a terminal that
// reports its size, plain lines otherwise (logs, pipes, CI).
func NewReporter(w io.Writer) Reporter {
	if f, ok := w.(*os.File); ok && cwriter.IsTerminal(int(f.Fd())) {
		if width, _, err := cwriter.GetSize(int(f.Fd())); err == nil && width > 0 {
			return NewBars(w)
		}
	}
	return NewLines(w)
}

// Close implements Reporter; lines need no finishing.
func (p *Lines) Close() {}

// Layer states shown after a bar.
const (
	stateQueued int32 = iota
	stateDownloading
	stateApplying // downloaded (or cached), being unpacked
	stateApplied
)

// Bars reports progress as one bar per layer, for terminals.
type Bars struct {
	w    io.Writer
	p    *mpb.Progress
	mu   sync.Mutex
	bars map[int]*layerBar
	done *Result
}

type layerBar struct {
	bar   *mpb.Bar
	state atomic.Int32
}

// NewBars returns a Progress drawing bars on w, which must be a terminal.
func NewBars(w io.Writer) *Bars {
	return &Bars{w: w, p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(40)), bars: map[int]*layerBar{}}
}

func (b *Bars) Resolved(ref string, digest, manifest v1.Hash) {
	fmt.Fprintf(b.p, "%s: %s\n", ref, digest)
}

func (b *Bars) LayerStart(i int, d v1.Hash, size int64, cached bool) {
	lb := &layerBar{}
	counters := decor.Counters(decor.SizeB1000(0), "% .1f / % .1f")
	status := decor.Any(func(s decor.Statistics) string {
		switch lb.state.Load() {
		case stateQueued:
			return "waiting"
		case stateApplying:
			if cached {
				return "in store, applying"
			}
			return "applying"
		case stateApplied:
			return "applied"
		}
		str, _ := counters.Decor(s)
		return str
	}, decor.WCSyncSpace)
	// Created with total 0 so reaching the size does not complete the bar:
	// it completes when the layer is applied, not when it is downloaded.
	lb.bar = b.p.AddBar(0,
		mpb.PrependDecorators(decor.Name(ShortDigest(d), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(status),
	)
	lb.bar.SetTotal(size, false)
	if cached {
		lb.bar.SetCurrent(size)
		lb.state.Store(stateApplying)
	}
	b.mu.Lock()
	b.bars[i] = lb
	b.mu.Unlock()
}

func (b *Bars) bar(i int) *layerBar {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bars[i]
}

func (b *Bars) LayerBytes(i int, n int64) {
	if lb := b.bar(i); lb != nil {
		lb.state.CompareAndSwap(stateQueued, stateDownloading)
		lb.bar.IncrInt64(n)
	}
}

func (b *Bars) LayerDownloaded(i int) {
	if lb := b.bar(i); lb != nil {
		lb.state.Store(stateApplying)
	}
}

func (b *Bars) LayerApplied(i int) {
	if lb := b.bar(i); lb != nil {
		lb.state.Store(stateApplied)
		lb.bar.SetTotal(-1, true)
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
	for _, lb := range b.bars {
		if !lb.bar.Completed() {
			lb.bar.Abort(false)
		}
	}
	r := b.done
	b.mu.Unlock()
	b.p.Wait()
	if r != nil {
		NewLines(b.w).Done(r)
	}
}
