package pull

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
)

// spool lets a layer be applied while it downloads. The downloader writes
// the blob to its temporary file in the store and advances the spool; the
// applier reads the same file through its own descriptor, waiting when it
// has caught up. The reader reports EOF only after the download finished and
// its digest verified, so a layer is never accepted on unverified bytes. The
// downloader never waits for the applier (no backpressure through memory).
type spool struct {
	mu   sync.Mutex
	cond *sync.Cond
	f    *os.File // read side, opened before the first byte is written
	n    int64    // bytes written so far
	done bool
	err  error
}

func newSpool() *spool {
	s := &spool{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// attach opens the downloader's temporary file for reading. It is opened
// before Commit renames it, and the descriptor survives the rename.
func (s *spool) attach(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
	s.cond.Broadcast()
	return nil
}

func (s *spool) advance(n int64) {
	s.mu.Lock()
	s.n += n
	s.mu.Unlock()
	s.cond.Broadcast()
}

// finish records the download's outcome: nil means written and verified.
func (s *spool) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.mu.Unlock()
	s.cond.Broadcast()
}

// finished reports whether the download has ended (either way).
func (s *spool) finished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// wait blocks until the download finished and returns its error.
func (s *spool) wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, s.cond.Broadcast)
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.done {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.cond.Wait()
	}
	return s.err
}

// release closes the read side; idempotent.
func (s *spool) release() {
	s.mu.Lock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.mu.Unlock()
}

func (s *spool) reader(ctx context.Context) *spoolReader {
	return &spoolReader{s: s, ctx: ctx}
}

type spoolReader struct {
	s   *spool
	ctx context.Context
	pos int64
}

func (r *spoolReader) Read(p []byte) (int, error) {
	s := r.s
	stop := context.AfterFunc(r.ctx, s.cond.Broadcast)
	defer stop()
	s.mu.Lock()
	for {
		if s.f != nil && r.pos < s.n {
			f, avail := s.f, s.n-r.pos
			s.mu.Unlock()
			if int64(len(p)) > avail {
				p = p[:avail]
			}
			n, err := f.ReadAt(p, r.pos)
			r.pos += int64(n)
			if errors.Is(err, io.EOF) && n > 0 {
				err = nil
			}
			return n, err
		}
		if s.done {
			err := s.err
			s.mu.Unlock()
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		if err := r.ctx.Err(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
		s.cond.Wait()
	}
}

func (r *spoolReader) Close() error {
	r.s.release()
	return nil
}
