package pull

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestReadAheadHashesEverything(t *testing.T) {
	data := make([]byte, 5*aheadBufSize+12345)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rnd.UintN(256))
	}
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(data),
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
	} {
		t.Run(name, func(t *testing.T) {
			a := newReadAhead(src, sha256.New())
			var got bytes.Buffer
			buf := make([]byte, 7000) // not a divisor of the buffer size
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{a}, buf); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("read %d bytes, not the %d written", got.Len(), len(data))
			}
			if want := sha256.Sum256(data); !bytes.Equal(a.Sum(), want[:]) {
				t.Error("hash differs from sha256 of the stream")
			}
		})
	}
}

func TestReadAheadError(t *testing.T) {
	boom := errors.New("boom")
	a := newReadAhead(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), sha256.New())
	got, err := io.ReadAll(a)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v; want the bytes before the error, then the error", got, err)
	}
	a.Close()
	a.Close() // idempotent
}

func TestReadAheadCloseEarly(t *testing.T) {
	// Closing before the end stops the goroutine once its source returns.
	a := newReadAhead(bytes.NewReader(make([]byte, 20*aheadBufSize)), sha256.New())
	if _, err := io.ReadFull(a, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	select {
	case <-a.done:
	default:
		t.Fatal("goroutine still running after Close")
	}
}
