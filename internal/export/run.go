package export

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/berth-sh/berth/internal/store"
)

// Options say what Export writes and where.
type Options struct {
	// Format is what to write (required; DefaultFormat picks one from Out).
	Format Format
	// Out is the destination file or directory; "" or "-" is Stdout. It is
	// built beside its destination and renamed into place when complete.
	Out string
	// Stdout receives a streamed export.
	Stdout io.Writer
	// Tree is the machine's root filesystem (tar formats).
	Tree string
	// Store and Record name the machine's image (image formats).
	Store  *store.Store
	Record *store.Record
	// RefName names the image in an image export. Default: RefName(Record).
	RefName string
	// Tree options (tar formats).
	TreeOptions TreeOptions
}

// Result says what Export wrote.
type Result struct {
	Format Format
	// Tree is set for tar formats.
	Tree *TreeStats
	// RefName is the name given to the image (image formats).
	RefName string
}

// Export writes the machine's tree or image as o says. On any error, and
// when ctx is cancelled, nothing is left at o.Out.
func Export(ctx context.Context, o Options) (*Result, error) {
	res := &Result{Format: o.Format}
	var fill func(w io.Writer) error
	if o.Format.IsTree() {
		if o.Tree == "" {
			return nil, errors.New("export: no root filesystem given")
		}
		fill = func(w io.Writer) error {
			st, err := WriteTree(ctx, w, o.Tree, o.TreeOptions)
			res.Tree = &st
			return err
		}
	} else {
		if o.Store == nil || o.Record == nil {
			return nil, errors.New("export: no image given")
		}
		// Shared, as pulls take it: garbage collection (exclusive) cannot
		// delete a blob this export is about to copy.
		unlock, err := o.Store.Lock(ctx, store.Shared)
		if err != nil {
			return nil, err
		}
		defer unlock()
		si, err := loadImage(o.Store, o.Record)
		if err != nil {
			return nil, err
		}
		res.RefName = o.RefName
		if res.RefName == "" {
			res.RefName = RefName(o.Record)
		}
		lo := layoutOptions{refName: res.RefName, docker: o.Format == DockerArchive}
		if o.Format == OCI {
			return res, writeDirLayout(ctx, o.Out, si, lo)
		}
		fill = func(w io.Writer) error {
			ts := &tarSink{tw: tar.NewWriter(w)}
			if err := writeLayout(ctx, ts, si, lo); err != nil {
				return err
			}
			return ts.tw.Close()
		}
	}
	if o.Format == TarZstd {
		inner := fill
		fill = func(w io.Writer) error {
			zw, err := zstd.NewWriter(w)
			if err != nil {
				return err
			}
			if err := inner(zw); err != nil {
				zw.Close()
				return err
			}
			return zw.Close()
		}
	}
	err := writeStream(o.Out, o.Stdout, fill)
	if errors.Is(err, store.ErrDigestMismatch) && o.Record != nil {
		err = fmt.Errorf("%w; `berth pull --name %s %s` restores the store's copy", err, o.Record.Name, o.Record.Reference)
	}
	return res, err
}

// writeStream runs fill on stdout, or on a file that becomes out only
// when fill succeeded.
func writeStream(out string, stdout io.Writer, fill func(io.Writer) error) error {
	if ToStdout(out) {
		if stdout == nil {
			return errors.New("export: no standard output")
		}
		return fill(stdout)
	}
	f, err := createFile(out)
	if err != nil {
		return err
	}
	defer f.abort()
	if err := fill(f); err != nil {
		return err
	}
	return f.commit()
}

func writeDirLayout(ctx context.Context, out string, si *storeImage, lo layoutOptions) error {
	if ToStdout(out) {
		return fmt.Errorf("%w: oci writes a directory, not a stream: give -o DIR, or use --format oci-archive", ErrFormat)
	}
	d, err := createDir(out)
	if err != nil {
		return err
	}
	defer d.abort()
	if err := writeLayout(ctx, dirSink{root: d.tmp}, si, lo); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) {
			err = fmt.Errorf("%w; `berth pull --name %s %s` restores the store's copy", err, si.rec.Name, si.rec.Reference)
		}
		return err
	}
	return d.commit()
}
