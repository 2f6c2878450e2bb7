package importer

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/cwriter"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/berth-sh/berth/internal/pull"
)

// NewDownloadReporter shows download progress on w: a bar with bytes and
// rate on a terminal, a line at the start and end of each attempt
// otherwise (logs, pipes, CI). As pull.NewReporter decides.
func NewDownloadReporter(w io.Writer) DownloadProgress {
	if f, ok := w.(*os.File); ok && cwriter.IsTerminal(int(f.Fd())) {
		if width, _, err := cwriter.GetSize(int(f.Fd())); err == nil && width > 0 {
			return &downloadBar{w: w}
		}
	}
	return &downloadLines{w: w, now: time.Now}
}

// downloadLines reports a download as plain lines.
type downloadLines struct {
	w     io.Writer
	now   func() time.Time
	mu    sync.Mutex
	start time.Time
	n     int64
}

func (p *downloadLines) DownloadStart(src string, offset, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.n = p.now(), 0
	size := "unknown size"
	if total >= 0 {
		size = pull.HumanSize(total)
	}
	if offset > 0 {
		fmt.Fprintf(p.w, "resuming %s at %s of %s\n", src, pull.HumanSize(offset), size)
		return
	}
	fmt.Fprintf(p.w, "downloading %s (%s)\n", src, size)
}

func (p *downloadLines) DownloadBytes(n int64) {
	p.mu.Lock()
	p.n += n
	p.mu.Unlock()
}

func (p *downloadLines) DownloadDone(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		return // the error is reported by the caller
	}
	d := p.now().Sub(p.start)
	rate := ""
	if s := d.Seconds(); s > 0 {
		rate = fmt.Sprintf(", %s/s", pull.HumanSize(int64(float64(p.n)/s)))
	}
	fmt.Fprintf(p.w, "downloaded %s in %s%s\n", pull.HumanSize(p.n), d.Round(100*time.Millisecond), rate)
}

// downloadBar draws one bar per attempt.
type downloadBar struct {
	w   io.Writer
	mu  sync.Mutex
	p   *mpb.Progress
	bar *mpb.Bar
}

func (b *downloadBar) DownloadStart(src string, offset, total int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stop()
	b.p = mpb.New(mpb.WithOutput(b.w), mpb.WithWidth(40))
	if total < 0 {
		total = 0 // grows as bytes arrive
	}
	b.bar = b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name(pull.StripArchiveExt(src[max(0, len(src)-30):]), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1000(0), "% .1f / % .1f", decor.WCSyncSpace),
			decor.AverageSpeed(decor.SizeB1000(0), "% .1f", decor.WCSyncSpace),
		),
	)
	b.bar.SetCurrent(offset)
}

func (b *downloadBar) DownloadBytes(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.IncrInt64(n)
	}
}

func (b *downloadBar) DownloadDone(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil && err == nil {
		b.bar.SetTotal(-1, true)
	}
	b.stop()
}

// stop ends the current bar (aborted unless complete) and waits for it to
// be drawn, so that the install's bars start below it.
func (b *downloadBar) stop() {
	if b.p == nil {
		return
	}
	if !b.bar.Completed() {
		b.bar.Abort(false)
	}
	b.p.Wait()
	b.p, b.bar = nil, nil
}
