package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Small regular files are created on worker goroutines.
//
// On a layer of many small files the applier spends nearly all its time in
// the kernel creating inodes, one after another, while file creation in
// different directories scales across cores (two `tar -x` of halves of a
// 100k-file tree take 2.0 s together, one takes 3.7 s). So the main goroutine
// keeps reading the tar stream and making every decision about names —
// resolving parents, creating directories, symlinks, links, devices,
// removing what a name replaces, whiteouts — and hands a small regular file
// whose parent it holds open to a worker, with the content copied out of the
// stream. The worker creates it (O_CREAT|O_EXCL|O_NOFOLLOW, in the parent's
// fd: one component, nothing followed) and writes content, owner, mode and
// times; everything it touches is that one name.
//
// The result is exactly the sequential one because the main goroutine waits
// for all workers (a barrier) before anything that could observe or change a
// name a worker owns:
//   - an entry whose path, or one of whose parent paths, was handed to a
//     worker since the last barrier;
//   - whiteouts, opaque markers and hard links (they remove or reach other
//     names), and removing a directory tree;
//   - resolving a path through a symlink (another spelling of a name could
//     be a worker's), and closing directory fds (a worker may hold one).
//
// Names are compared as rootfs paths: an entry is handed out only when its
// parent was reached without following a symlink, so its path is the
// physical one. A worker that finds its name taken unlinks it if it is not a
// directory (the entry replaces a lower layer's file, as the sequential code
// does); a directory in the way goes back to the main goroutine, which
// applies the entry at the next barrier.
const (
	asyncFileMax  = 64 << 10  // larger files are written by the main goroutine
	asyncBatchMax = 256 << 10 // content bytes per batch
	asyncBatchLen = 64        // files per batch
	asyncQueued   = 4         // batches waiting for a worker
	asyncWorkers  = 4         // at most; at least two CPUs are needed
	asyncRedoMax  = 4 << 20   // content held for redo before forcing a barrier
)

// asyncJob is one file for a worker. Everything it needs is computed by the
// main goroutine; the worker reads no applier state.
type asyncJob struct {
	t     target      // t.fd is the parent, owned by the applier's cache
	hdr   *tar.Header // for errors, and a redo by the main goroutine
	data  []byte
	mode  uint32
	chown bool
	chmod bool
	uid   int
	gid   int
	ts    [2]unix.Timespec
}

type asyncBatch struct {
	jobs []asyncJob
	buf  []byte
}

type asyncFiles struct {
	work chan *asyncBatch
	free chan *asyncBatch
	cur  *asyncBatch
	busy sync.WaitGroup // batches sent and not finished
	done sync.WaitGroup // workers

	// pending holds the paths handed out since the last barrier (main
	// goroutine only).
	pending map[string]struct{}

	mu   sync.Mutex
	err  error
	redo []asyncJob
	// Read on every entry by the main goroutine, so without the lock.
	redoBytes atomic.Int64
	hasErr    atomic.Bool
}

// newAsyncFiles starts the workers, or returns nil when there is no second
// CPU to run them on (unless force).
func newAsyncFiles(force bool) *asyncFiles {
	n := min(runtime.GOMAXPROCS(0), asyncWorkers)
	if n < 2 {
		if !force {
			return nil
		}
		n = 2
	}
	f := &asyncFiles{
		work:    make(chan *asyncBatch, asyncQueued),
		free:    make(chan *asyncBatch, asyncQueued+n+1),
		pending: make(map[string]struct{}),
	}
	for range asyncQueued + n + 1 {
		f.free <- &asyncBatch{buf: make([]byte, 0, asyncBatchMax)}
	}
	f.done.Add(n)
	for range n {
		go f.worker()
	}
	return f
}

func (f *asyncFiles) worker() {
	defer f.done.Done()
	for b := range f.work {
		for i := range b.jobs {
			j := &b.jobs[i]
			redo, err := j.run()
			if redo || err != nil {
				f.mu.Lock()
				if err != nil && f.err == nil {
					f.err = fmt.Errorf("entry %q: %w", j.hdr.Name, err)
					f.hasErr.Store(true)
				}
				if redo {
					j.data = bytes.Clone(j.data) // the batch buffer is reused
					f.redo = append(f.redo, *j)
					f.redoBytes.Add(int64(len(j.data)))
				}
				f.mu.Unlock()
			}
		}
		b.jobs = b.jobs[:0]
		b.buf = b.buf[:0]
		f.free <- b
		f.busy.Done()
	}
}

// run creates the file. redo reports a directory in the way: the main
// goroutine must apply this entry.
func (j *asyncJob) run() (redo bool, err error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(j.t.fd, j.t.base, flags, j.mode&0o777)
	if err == unix.EEXIST {
		// A lower layer's entry: unlink it, never truncate (hard links to
		// the old inode keep their content), as applier.create does.
		switch uerr := unix.Unlinkat(j.t.fd, j.t.base, 0); uerr {
		case nil, unix.ENOENT:
		case unix.EISDIR:
			return true, nil
		default:
			return false, fmt.Errorf("remove %q: %w", j.t.path, uerr)
		}
		fd, err = unix.Openat(j.t.fd, j.t.base, flags, j.mode&0o777)
	}
	if err != nil {
		return false, fmt.Errorf("create file: %w", err)
	}
	defer unix.Close(fd)
	for off := 0; off < len(j.data); {
		n, err := unix.Write(fd, j.data[off:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("write content: %w", err)
		}
		off += n
	}
	if err := ownerMode(fd, j.chown, j.uid, j.gid, j.chmod, j.mode); err != nil {
		return false, err
	}
	if err := utimensatFD(fd, &j.ts); err != nil {
		return false, fmt.Errorf("set times: %w", err)
	}
	return false, nil
}

// eligible reports whether entry hdr, landing in t, may go to a worker.
func (f *asyncFiles) eligible(t target, hdr *tar.Header) bool {
	if f == nil || !t.cached || hdr.Size > asyncFileMax || hdr.Size < 0 {
		return false
	}
	if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeRegA {
		return false
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			return false // xattrs stay with the main goroutine (filter, Skipped counts)
		}
	}
	return true
}

// conflicts reports whether path p or one of its parents was handed to a
// worker since the last barrier.
func (f *asyncFiles) conflicts(p string) bool {
	if f == nil || len(f.pending) == 0 {
		return false
	}
	for {
		if _, ok := f.pending[p]; ok {
			return true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return false
		}
		p = p[:i]
	}
}

// addAsync hands the file to a worker, reading its content from data.
func (a *applier) addAsync(t target, hdr *tar.Header, data io.Reader) error {
	f := a.async
	size := int(hdr.Size)
	if f.cur != nil && (len(f.cur.jobs) == asyncBatchLen || len(f.cur.buf)+size > cap(f.cur.buf)) {
		f.send()
	}
	if f.cur == nil {
		f.cur = <-f.free
	}
	b := f.cur
	start := len(b.buf)
	b.buf = b.buf[:start+size]
	if _, err := io.ReadFull(data, b.buf[start:]); err != nil {
		b.buf = b.buf[:start]
		return fmt.Errorf("read content: %w", err)
	}
	mode := uint32(hdr.Mode) & 0o7777
	b.jobs = append(b.jobs, asyncJob{
		t:     t,
		hdr:   hdr,
		data:  b.buf[start : start+size : start+size],
		mode:  mode,
		chown: a.needChown(t, hdr),
		chmod: a.needChmod(mode),
		uid:   hdr.Uid,
		gid:   hdr.Gid,
		ts:    times(hdr),
	})
	f.pending[t.path] = struct{}{}
	a.stats.Files++
	a.stats.Bytes += int64(size)
	if f.redoBytes.Load() > asyncRedoMax {
		a.barrier()
	}
	return nil
}

func (f *asyncFiles) send() {
	if f.cur == nil {
		return
	}
	if len(f.cur.jobs) == 0 {
		f.free <- f.cur
	} else {
		f.busy.Add(1)
		f.work <- f.cur
	}
	f.cur = nil
}

// failed returns the first error of a worker or of a redo.
func (f *asyncFiles) failed() error {
	if f == nil || !f.hasErr.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// barrier waits until every file handed out is done, then applies the
// entries that came back, in their order. Afterwards no name is pending.
func (a *applier) barrier() {
	f := a.async
	if f == nil || (len(f.pending) == 0 && f.cur == nil) {
		return
	}
	f.send()
	f.busy.Wait()
	clear(f.pending)
	f.mu.Lock()
	redo := f.redo
	f.redo = nil
	f.redoBytes.Store(0)
	failed := f.err != nil
	f.mu.Unlock()
	if failed {
		return
	}
	for _, j := range redo {
		if err := a.file(j.t, j.hdr, bytes.NewReader(j.data)); err != nil {
			f.mu.Lock()
			if f.err == nil {
				f.err = fmt.Errorf("entry %q: %w", j.hdr.Name, err)
				f.hasErr.Store(true)
			}
			f.mu.Unlock()
			return
		}
		a.stats.Files-- // a.file counted it again
		a.stats.Bytes -= int64(len(j.data))
	}
}

// stop waits for the workers to finish and ends them; the applier is done.
func (f *asyncFiles) stop() {
	if f == nil {
		return
	}
	f.send()
	f.busy.Wait()
	close(f.work)
	f.done.Wait()
}
