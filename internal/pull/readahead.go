package pull

import (
	"errors"
	"hash"
	"io"
	"sync"
)

// readAhead reads a layer's uncompressed stream on a goroutine of its own,
// hashes it there (for the DiffID) and hands it to the applier through a few
// buffers. The decompressor then never waits for the applier, nor the
// applier for hashing: an external decompressor in particular stops
// inflating while its write to the pipe blocks, so without a reader that
// keeps the pipe drained, inflating and writing files would take turns
// instead of overlapping (measured: igzip | tar took as long as both alone).
//
// A caller that stops reading early must make src return (cancel what it
// reads from) before Close, which waits for the goroutine.
type readAhead struct {
	full chan []byte // read and hashed, in stream order
	free chan []byte
	stop chan struct{}
	done chan struct{}
	h    hash.Hash
	err  error // why the goroutine stopped; read after done is closed

	buf, cur []byte // the buffer being consumed and its unread rest
	once     sync.Once
}

const (
	aheadBufSize = 512 << 10
	aheadBufs    = 8
)

func newReadAhead(src io.Reader, h hash.Hash) *readAhead {
	a := &readAhead{
		full: make(chan []byte, aheadBufs),
		free: make(chan []byte, aheadBufs),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		h:    h,
	}
	for range aheadBufs {
		a.free <- make([]byte, aheadBufSize)
	}
	go a.run(src)
	return a
}

func (a *readAhead) run(src io.Reader) {
	defer close(a.done)
	defer close(a.full)
	for {
		var b []byte
		select {
		case b = <-a.free:
		case <-a.stop:
			a.err = errors.New("read-ahead closed")
			return
		}
		n, err := io.ReadFull(src, b[:cap(b)])
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF // a short last buffer
		}
		a.h.Write(b[:n])
		if n > 0 {
			select {
			case a.full <- b[:n]:
			case <-a.stop:
				a.err = errors.New("read-ahead closed")
				return
			}
		}
		if err != nil {
			a.err = err
			return
		}
	}
}

func (a *readAhead) Read(p []byte) (int, error) {
	if len(a.cur) == 0 {
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		b, ok := <-a.full
		if !ok {
			<-a.done
			return 0, a.err
		}
		a.buf, a.cur = b, b
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// Sum returns the hash of the whole stream: call it after Read returned
// io.EOF. Earlier, it stops the reading and returns the hash of a prefix.
func (a *readAhead) Sum() []byte {
	a.Close()
	return a.h.Sum(nil)
}

// Close stops the goroutine and waits for it; idempotent.
func (a *readAhead) Close() {
	a.once.Do(func() { close(a.stop) })
	<-a.done
}
