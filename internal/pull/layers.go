package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/layer"
	"github.com/berth-sh/berth/internal/store"
)

// fetchAndApply downloads missing layer blobs into the store (at most o.Jobs
// at a time) and applies all layers in order into root, each as soon as its
// bytes are available. Every download is digest-verified before its blob is
// committed, and every layer's uncompressed stream is hashed and compared
// with its DiffID.
func fetchAndApply(ctx context.Context, st *store.Store, img v1.Image, layers []store.LayerRecord, root string, res *Result, o *Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	spools := make([]*spool, len(layers))
	var wg sync.WaitGroup
	// Wait for every download goroutine before returning, so none writes to
	// the store after Pull has returned.
	defer func() {
		wg.Wait()
		for _, sp := range spools {
			if sp != nil {
				sp.release()
			}
		}
	}()
	var todo []int
	for i, l := range layers {
		size, ok := st.Has(l.Digest)
		cached := ok && size == l.Size
		if !cached {
			spools[i] = newSpool()
			todo = append(todo, i)
		}
		o.Progress.LayerStart(i, l.Digest, l.Size, cached)
	}
	// Start downloads in layer order, o.Jobs at a time, so the layer the
	// applier needs next is never queued behind later ones.
	sem := make(chan struct{}, o.Jobs)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k, i := range todo {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				for _, j := range todo[k:] {
					spools[j].finish(ctx.Err())
				}
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				spools[i].finish(download(ctx, st, img, i, layers[i], spools[i], o))
			}()
		}
	}()

	for i, l := range layers {
		if err := applyOne(ctx, st, spools[i], i, l, root, o); err != nil {
			cancel()
			return err
		}
		if spools[i] != nil {
			res.Downloaded++
			res.DownloadedBytes += l.Size
		}
		o.Progress.LayerApplied(i)
	}
	return nil
}

func download(ctx context.Context, st *store.Store, img v1.Image, i int, l store.LayerRecord, sp *spool, o *Options) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("download: %w", err)
		}
	}()
	// One pull fetches a blob at a time; pulls running side by side wait
	// here and then find it in the store.
	unlock, err := st.LockBlob(ctx, l.Digest)
	if err != nil {
		return err
	}
	defer unlock()
	if size, ok := st.Has(l.Digest); ok && size == l.Size {
		if err := sp.attach(st.BlobPath(l.Digest)); err != nil {
			return err
		}
		sp.advance(l.Size)
		o.Progress.LayerBytes(i, l.Size)
		o.Progress.LayerDownloaded(i)
		return nil
	}
	bl, err := img.LayerByDigest(l.Digest)
	if err != nil {
		return err
	}
	rc, err := bl.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := st.NewBlobWriter(l.Digest, l.Size)
	if err != nil {
		return err
	}
	if err := sp.attach(w.TempPath()); err != nil {
		w.Abort()
		return err
	}
	buf := make([]byte, 128<<10)
	for {
		if err := ctx.Err(); err != nil {
			w.Abort()
			return err
		}
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				w.Abort()
				return err
			}
			sp.advance(int64(n))
			o.Progress.LayerBytes(i, int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if w.Written() == l.Size {
				// Every declared byte arrived and the transport still
				// complains (ggcr verifies digests too): let the store's
				// verification name both digests.
				if err := w.Commit(); err != nil {
					return err
				}
			}
			w.Abort()
			return rerr
		}
	}
	if err := w.Commit(); err != nil {
		return err
	}
	o.Progress.LayerDownloaded(i)
	return nil
}

// applyOne applies layer i from the store or, while it downloads, from its
// spool. It checks the DiffID and that the download itself verified.
func applyOne(ctx context.Context, st *store.Store, sp *spool, i int, l store.LayerRecord, root string, o *Options) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
	}()
	// rctx bounds the reads of the blob: stopping early (an error) cancels
	// it first, so that goroutines reading ahead (the decompressor's, the
	// read-ahead's) return from a read that waits for the download, and
	// can be waited for.
	rctx, rcancel := context.WithCancel(ctx)
	defer rcancel()
	var r io.Reader
	// stored hashes a blob that was already in the store: cheap insurance
	// that a corrupted store copy is found (and dropped) rather than blamed
	// on the image's DiffIDs forever.
	var stored hash.Hash
	switch {
	case sp == nil:
		f, oerr := st.OpenBlob(l.Digest)
		if oerr != nil {
			return oerr
		}
		defer f.Close()
		stored = sha256.New()
		r = io.TeeReader(f, stored)
		defer func() {
			// As with a download: corruption usually breaks decompression
			// first; the digest names the real cause.
			if err != nil && !errors.Is(err, store.ErrDigestMismatch) {
				if _, cerr := io.Copy(io.Discard, r); cerr == nil {
					if derr := checkStored(st, stored, l.Digest); derr != nil {
						err = derr
					}
				}
			}
		}()
	case o.NoStream || sp.finished():
		// Downloaded and verified already (or asked to wait for that): read
		// the stored blob, which an external decompressor reads directly.
		if err := sp.wait(ctx); err != nil {
			return err
		}
		f, err := st.OpenBlob(l.Digest)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	default:
		sr := sp.reader(rctx)
		defer sr.Close()
		r = sr
		defer func() {
			// Corrupt bytes usually fail decompression before the digest
			// check at the end of the download; the download's verdict
			// names the real cause.
			if err != nil {
				if derr := sp.wait(ctx); derr != nil {
					err = derr
				}
			}
		}()
	}
	dec, _, err := layer.Decompress(r, o.gunzip)
	if err != nil {
		return err
	}
	defer dec.Close()
	h := newReadAhead(dec, sha256.New())
	defer func() {
		rcancel()
		h.Close()
	}()
	if _, err := layer.Apply(ctx, root, h, o.Layer); err != nil {
		return err
	}
	// Drain what the decompressor left (trailing padding): the stored blob
	// must be read to its end so a streamed download has been verified.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	if stored != nil {
		if err := checkStored(st, stored, l.Digest); err != nil {
			return err
		}
	}
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum())}
	if got != l.DiffID {
		return fmt.Errorf("%w: config says %s, content is %s", ErrDiffIDMismatch, l.DiffID, got)
	}
	return nil
}

// checkStored compares the hash of a store blob read in full with its
// digest, dropping a corrupt copy so the next pull fetches it again.
func checkStored(st *store.Store, h hash.Hash, want v1.Hash) error {
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	if got == want {
		return nil
	}
	st.RemoveBlob(want)
	return fmt.Errorf("stored copy hashes to %s (removed it from the store; pull again): %w", got, store.ErrDigestMismatch)
}
