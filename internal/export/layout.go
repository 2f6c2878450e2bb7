package export

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/store"
)

// Annotations on the exported index.json entry.
const (
	annotationRefName = "org.opencontainers.image.ref.name"
	// containerd's name for the full reference (`ctr image import` reads it).
	annotationImageName = "io.containerd.image.name"
)

// sink receives the files of an image layout: a directory or a tar stream.
type sink interface {
	// add writes file name (slash-separated, relative) of size bytes from r.
	add(name string, size int64, r io.Reader) error
}

// dirSink writes into a directory.
type dirSink struct{ root string }

func (d dirSink) add(name string, size int64, r io.Reader) error {
	p := filepath.Join(d.root, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("write %s: %d bytes, want %d", name, n, size)
	}
	return err
}

// tarSink writes into a tar stream, with the directories each file needs
// and a fixed time, so the same image always gives the same archive.
type tarSink struct {
	tw   *tar.Writer
	dirs map[string]bool
}

// archiveTime is the mtime of every archive entry: the content is
// addressed by digest, a clock would only make archives differ.
var archiveTime = time.Unix(0, 0)

func (t *tarSink) add(name string, size int64, r io.Reader) error {
	if t.dirs == nil {
		t.dirs = map[string]bool{}
	}
	var parents []string
	for d := path.Dir(name); d != "." && !t.dirs[d]; d = path.Dir(d) {
		parents = append(parents, d)
	}
	for i := len(parents) - 1; i >= 0; i-- {
		t.dirs[parents[i]] = true
		if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: parents[i] + "/", Mode: 0o755, ModTime: archiveTime, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: archiveTime, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err == nil && n != size {
		err = fmt.Errorf("write %s: %d bytes, want %d", name, n, size)
	}
	return err
}

// layoutOptions say what writeLayout adds around the blobs.
type layoutOptions struct {
	refName string
	// docker adds manifest.json, which makes the layout a docker-archive
	// too (as `docker save` writes since Docker 25).
	docker bool
}

// writeLayout writes si as an OCI image layout into s: oci-layout, the
// blobs (config and layers copied from the store and checked against
// their digests as they go; manifest and config are the verified stored
// bytes), then index.json (and manifest.json) naming the image.
func writeLayout(ctx context.Context, s sink, si *storeImage, o layoutOptions) error {
	layoutMarker := []byte(`{"imageLayoutVersion":"1.0.0"}` + "\n")
	if err := s.add("oci-layout", int64(len(layoutMarker)), bytes.NewReader(layoutMarker)); err != nil {
		return fmt.Errorf("write oci-layout: %w", err)
	}
	blobName := func(d v1.Hash) string { return "blobs/" + d.Algorithm + "/" + d.Hex }
	if err := s.add(blobName(si.rec.Config), int64(len(si.config)), bytes.NewReader(si.config)); err != nil {
		return fmt.Errorf("write config %s: %w", si.rec.Config, err)
	}
	var layerNames []string
	written := map[v1.Hash]bool{}
	for i, l := range si.m.Layers {
		layerNames = append(layerNames, blobName(l.Digest))
		if written[l.Digest] {
			continue // the same layer twice (an empty one, say) is one blob
		}
		written[l.Digest] = true
		if err := copyBlob(ctx, s, si.st, blobName(l.Digest), l); err != nil {
			return fmt.Errorf("write layer %d: %w", i+1, err)
		}
	}
	if err := s.add(blobName(si.rec.Manifest), int64(len(si.manifest)), bytes.NewReader(si.manifest)); err != nil {
		return fmt.Errorf("write manifest %s: %w", si.rec.Manifest, err)
	}

	desc := v1.Descriptor{
		MediaType:   si.rec.ManifestMediaType,
		Size:        int64(len(si.manifest)),
		Digest:      si.rec.Manifest,
		Annotations: map[string]string{annotationRefName: o.refName, store.AnnotationReference: si.rec.Reference},
	}
	if si.rec.Platform.OS != "" {
		p := si.rec.Platform
		desc.Platform = &p
	}
	if _, ok := repoTag(si.rec.Reference); ok {
		desc.Annotations[annotationImageName] = si.rec.Reference
	}
	idx, err := json.MarshalIndent(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{desc}}, "", "  ")
	if err != nil {
		return err
	}
	idx = append(idx, '\n')
	if err := s.add("index.json", int64(len(idx)), bytes.NewReader(idx)); err != nil {
		return fmt.Errorf("write index.json: %w", err)
	}
	if !o.docker {
		return nil
	}
	// docker load's manifest.json: config and layers by path; a tag only
	// when the name can be one.
	entry := struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{Config: blobName(si.rec.Config), RepoTags: []string{}, Layers: layerNames}
	if t, ok := repoTag(o.refName); ok {
		entry.RepoTags = []string{t}
	}
	dm, err := json.Marshal([]any{entry})
	if err != nil {
		return err
	}
	dm = append(dm, '\n')
	if err := s.add("manifest.json", int64(len(dm)), bytes.NewReader(dm)); err != nil {
		return fmt.Errorf("write manifest.json: %w", err)
	}
	return nil
}

// copyBlob copies layer blob l from the store into s, hashing as it goes:
// a store copy that no longer matches its digest fails the export rather
// than producing a layout that lies about its content.
func copyBlob(ctx context.Context, s sink, st *store.Store, name string, l v1.Descriptor) error {
	f, err := st.OpenBlob(l.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if err := s.add(name, l.Size, io.TeeReader(ctxReader{ctx, f}, h)); err != nil {
		return fmt.Errorf("copy blob %s: %w", l.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.Digest.Hex {
		return fmt.Errorf("copy blob %s: store copy hashes to sha256:%s: %w", l.Digest, got, store.ErrDigestMismatch)
	}
	return nil
}
