// Command pullprof runs one berth pull (the library call `berth pull` makes)
// under the CPU profiler and/or the execution tracer and prints a timeline of
// the pull's progress events, to find where a slow pull spends its time:
//
//	go run ./bench/pullprof -root R -machines-dir M -cpuprofile cpu.out REF
//	go tool pprof -top bin/pullprof cpu.out
//
// The timeline separates resolving, per-layer download and apply, and the
// tail after the last layer (sync, rename into place, store GC), which a CPU
// profile alone does not show because it is mostly waiting.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/pull"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pullprof: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pullprof", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts pull.Options
	var cpuProfile, traceFile string
	fs.StringVar(&opts.Root, "root", "", "berth state directory (required)")
	fs.StringVar(&opts.MachinesDir, "machines-dir", "", "machines directory (required)")
	fs.StringVar(&opts.Name, "name", "", "machine name (default: from REF)")
	fs.BoolVar(&opts.NoStream, "no-stream", false, "apply layers only after they are fully downloaded")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file")
	fs.StringVar(&traceFile, "trace", "", "write an execution trace to this file (go tool trace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || opts.Root == "" || opts.MachinesDir == "" {
		return fmt.Errorf("usage: pullprof -root DIR -machines-dir DIR [-cpuprofile F] [-trace F] REF")
	}
	opts.Ref = fs.Arg(0)
	tl := &timeline{w: stderr, start: time.Now()}
	opts.Progress = tl

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("create CPU profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start CPU profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if traceFile != "" {
		f, err := os.Create(traceFile)
		if err != nil {
			return fmt.Errorf("create trace: %w", err)
		}
		defer f.Close()
		if err := trace.Start(f); err != nil {
			return fmt.Errorf("start trace: %w", err)
		}
		defer trace.Stop()
	}
	res, err := pull.Pull(ctx, opts)
	tl.event("returned")
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "up to date: %v, downloaded %d blobs, %d bytes\n", res.UpToDate, res.Downloaded, res.DownloadedBytes)
	return nil
}

// timeline prints each progress event with the time since the start; byte
// counts are summed, not printed, to keep it readable.
type timeline struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	bytes map[int]int64
}

func (t *timeline) event(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%8.1f ms  %s\n", float64(time.Since(t.start).Microseconds())/1000, fmt.Sprintf(format, args...))
}

func (t *timeline) Resolved(ref string, digest, manifest v1.Hash) {
	t.event("resolved %s -> %s", ref, manifest)
}

func (t *timeline) LayerStart(i int, digest v1.Hash, size int64, cached bool) {
	t.event("layer %d start (%d bytes, cached %v)", i, size, cached)
}

func (t *timeline) LayerBytes(i int, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bytes == nil {
		t.bytes = map[int]int64{}
	}
	t.bytes[i] += n
}

func (t *timeline) LayerDownloaded(i int) {
	t.mu.Lock()
	n := t.bytes[i]
	t.mu.Unlock()
	t.event("layer %d downloaded (%d bytes)", i, n)
}

func (t *timeline) LayerApplied(i int)  { t.event("layer %d applied", i) }
func (t *timeline) Done(r *pull.Result) { t.event("done") }
