package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

// ErrBlobMissing is returned when a blob of the machine's image is not in
// the store (removed by hand, or a store copied without its blobs).
var ErrBlobMissing = errors.New("blob missing from the store")

// storeImage is the image a record names, served from the store. Manifest
// and config are the stored bytes (verified against their digests when
// read); layers are opened by digest and verified by whoever copies them.
type storeImage struct {
	st       *store.Store
	rec      *store.Record
	manifest []byte
	m        v1.Manifest
	config   []byte
	diffIDs  map[v1.Hash]v1.Hash
}

// Image returns the image of record rec from st, a v1.Image whose manifest,
// config and layers are exactly the stored blobs. Every blob must be there:
// the error for missing ones names each (ErrBlobMissing) and says which
// `berth pull` restores them.
func Image(st *store.Store, rec *store.Record) (v1.Image, error) {
	si, err := loadImage(st, rec)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(si)
}

func loadImage(st *store.Store, rec *store.Record) (*storeImage, error) {
	if err := checkBlobs(st, rec); err != nil {
		return nil, err
	}
	mb, err := st.ReadBlob(rec.Manifest)
	if err != nil {
		return nil, fmt.Errorf("read image of %s: %w", rec.Name, err)
	}
	si := &storeImage{st: st, rec: rec, manifest: mb, diffIDs: map[v1.Hash]v1.Hash{}}
	if err := json.Unmarshal(mb, &si.m); err != nil {
		return nil, fmt.Errorf("read image of %s: manifest %s: %w", rec.Name, rec.Manifest, err)
	}
	if si.m.Config.Digest != rec.Config || len(si.m.Layers) != len(rec.Layers) {
		return nil, fmt.Errorf("read image of %s: manifest %s does not match the machine's record", rec.Name, rec.Manifest)
	}
	if si.config, err = st.ReadBlob(rec.Config); err != nil {
		return nil, fmt.Errorf("read image of %s: %w", rec.Name, err)
	}
	for i, l := range rec.Layers {
		if si.m.Layers[i].Digest != l.Digest {
			return nil, fmt.Errorf("read image of %s: manifest %s does not match the machine's record", rec.Name, rec.Manifest)
		}
		si.diffIDs[l.Digest] = l.DiffID
	}
	return si, nil
}

// checkBlobs names every blob of rec the store lacks.
func checkBlobs(st *store.Store, rec *store.Record) error {
	var missing []string
	check := func(what string, d v1.Hash) {
		if _, ok := st.Has(d); !ok {
			missing = append(missing, fmt.Sprintf("%s %s", what, d))
		}
	}
	check("manifest", rec.Manifest)
	check("config", rec.Config)
	for i, l := range rec.Layers {
		check(fmt.Sprintf("layer %d", i+1), l.Digest)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("image of %s: %w (%s): %s; `berth pull --name %s %s` restores it",
		rec.Name, ErrBlobMissing, st.Root(), strings.Join(missing, ", "), rec.Name, rec.Reference)
}

func (si *storeImage) RawConfigFile() ([]byte, error)      { return si.config, nil }
func (si *storeImage) RawManifest() ([]byte, error)        { return si.manifest, nil }
func (si *storeImage) MediaType() (types.MediaType, error) { return si.rec.ManifestMediaType, nil }
func (si *storeImage) Digest() (v1.Hash, error)            { return si.rec.Manifest, nil }
func (si *storeImage) Manifest() (*v1.Manifest, error)     { return si.m.DeepCopy(), nil }
func (si *storeImage) ConfigName() (v1.Hash, error)        { return si.rec.Config, nil }
func (si *storeImage) Size() (int64, error)                { return int64(len(si.manifest)), nil }

// LayerByDigest implements partial.CompressedImageCore.
func (si *storeImage) LayerByDigest(d v1.Hash) (partial.CompressedLayer, error) {
	if d == si.rec.Config {
		return partial.ConfigLayer(si)
	}
	for _, l := range si.m.Layers {
		if l.Digest == d {
			return &storeLayer{st: si.st, desc: l, diffID: si.diffIDs[d]}, nil
		}
	}
	return nil, fmt.Errorf("image of %s has no layer %s", si.rec.Name, d)
}

// storeLayer is one layer blob in the store.
type storeLayer struct {
	st     *store.Store
	desc   v1.Descriptor
	diffID v1.Hash
}

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	f, err := l.st.OpenBlob(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// RefName is the name an image export gives the machine's image when the
// user names none: the reference it was pulled by as recorded
// ("docker.io/library/busybox:latest", "registry:5000/app@sha256:…"), or,
// for an image pulled from an OCI layout, that layout's tag, else the
// machine's name.
func RefName(rec *store.Record) string {
	r, err := pull.ParseRef(rec.Reference, false)
	if err != nil {
		return rec.Name
	}
	if r.Remote == nil {
		if r.Tag != "" {
			return r.Tag
		}
		return rec.Name
	}
	return rec.Reference
}

// repoTag is refName as a docker-archive RepoTags entry: only a reference
// with a tag can be one (docker load keeps a digest-only image untagged).
func repoTag(refName string) (string, bool) {
	if _, err := name.NewTag(refName, name.StrictValidation); err != nil {
		return "", false
	}
	return refName, true
}
