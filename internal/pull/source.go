package pull

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/store"
)

// source is where an image comes from: a registry or an OCI layout.
type source interface {
	// resolve returns the descriptor the reference points at, its raw bytes
	// verified against its digest.
	resolve(ctx context.Context) (resolved, error)
}

type resolved struct {
	v1.Descriptor
	index v1.ImageIndex // set if the reference names an index
	image v1.Image      // set if it names an image
}

type remoteSource struct {
	ref  Ref
	opts []remote.Option
}

type layoutSource struct {
	ref Ref
	p   layout.Path
}

func openSource(ctx context.Context, ref Ref, o *Options) (source, error) {
	switch ref.ArchiveKind {
	case dockerArchiveKind:
		return &dockerArchiveSource{ref: ref}, nil
	case ociArchiveKind:
		return openOCIArchive(ref, o)
	}
	if ref.Remote == nil {
		p, err := layout.FromPath(ref.Layout)
		if err != nil {
			return nil, fmt.Errorf("open OCI layout %s: %w", ref.Layout, err)
		}
		return &layoutSource{ref: ref, p: p}, nil
	}
	return &remoteSource{ref: ref, opts: []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithTransport(&policyTransport{base: o.Transport, insecure: o.Insecure}),
		remote.WithUserAgent("berth"),
	}}, nil
}

func (s *remoteSource) resolve(ctx context.Context) (resolved, error) {
	d, err := remote.Get(s.ref.Remote, s.opts...)
	if err != nil {
		return resolved{}, fmt.Errorf("fetch manifest: %w", err)
	}
	// remote.Get verifies the body against a digest reference; for a tag the
	// digest is computed from the body, which is then the image's identity.
	r := resolved{Descriptor: d.Descriptor}
	if err := verifyBytes("manifest", d.Manifest, d.Digest); err != nil {
		return resolved{}, err
	}
	switch {
	case isIndex(d.MediaType):
		r.index, err = d.ImageIndex()
	case isImageManifest(d.MediaType):
		r.image, err = d.Image()
	default:
		err = fmt.Errorf("unsupported manifest media type %q", d.MediaType)
	}
	return r, err
}

func (s *layoutSource) resolve(ctx context.Context) (resolved, error) {
	idx, err := s.p.ImageIndex()
	if err != nil {
		return resolved{}, fmt.Errorf("read OCI layout %s: %w", s.ref.Layout, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return resolved{}, fmt.Errorf("read OCI layout %s: %w", s.ref.Layout, err)
	}
	var found []v1.Descriptor
	for _, d := range im.Manifests {
		if s.ref.Tag == "" || d.Annotations["org.opencontainers.image.ref.name"] == s.ref.Tag {
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 0:
		return resolved{}, fmt.Errorf("OCI layout %s has no image tagged %q", s.ref.Layout, s.ref.Tag)
	case len(found) > 1 && s.ref.Tag == "" && allPlatformed(found):
		// An untagged index.json of per-platform manifests is itself the
		// multi-platform index.
		d, err := idx.Digest()
		if err != nil {
			return resolved{}, fmt.Errorf("read OCI layout %s: %w", s.ref.Layout, err)
		}
		return resolved{Descriptor: v1.Descriptor{MediaType: types.OCIImageIndex, Digest: d}, index: idx}, nil
	case len(found) > 1 && s.ref.Tag == "":
		return resolved{}, fmt.Errorf("OCI layout %s has %d images; name one as oci:PATH:TAG", s.ref.Layout, len(found))
	case len(found) > 1:
		return resolved{}, fmt.Errorf("OCI layout %s has %d images tagged %q", s.ref.Layout, len(found), s.ref.Tag)
	}
	d := found[0]
	r := resolved{Descriptor: d}
	switch {
	case isIndex(d.MediaType):
		r.index, err = idx.ImageIndex(d.Digest)
		if err == nil {
			err = verifyRaw("index", r.index.RawManifest, d.Digest)
		}
	case isImageManifest(d.MediaType):
		r.image, err = idx.Image(d.Digest)
	default:
		err = fmt.Errorf("unsupported manifest media type %q in OCI layout %s", d.MediaType, s.ref.Layout)
	}
	return r, err
}

func allPlatformed(ds []v1.Descriptor) bool {
	for _, d := range ds {
		if d.Platform == nil || d.Annotations["org.opencontainers.image.ref.name"] != "" {
			return false
		}
	}
	return true
}

// selectImage returns the image to install and its manifest descriptor.
func selectImage(top resolved, want v1.Platform) (v1.Image, v1.Descriptor, error) {
	if top.image != nil {
		return top.image, top.Descriptor, nil
	}
	im, err := top.index.IndexManifest()
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("read index: %w", err)
	}
	d, err := SelectManifest(im, want)
	if err != nil {
		return nil, v1.Descriptor{}, err
	}
	img, err := top.index.Image(d.Digest)
	if err != nil {
		return nil, v1.Descriptor{}, fmt.Errorf("fetch manifest %s: %w", d.Digest, err)
	}
	return img, d, nil
}

func verifyRaw(what string, raw func() ([]byte, error), want v1.Hash) error {
	b, err := raw()
	if err != nil {
		return fmt.Errorf("fetch %s %s: %w", what, want, err)
	}
	return verifyBytes(what, b, want)
}

func verifyBytes(what string, b []byte, want v1.Hash) error {
	sum := sha256.Sum256(b)
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if got != want {
		return fmt.Errorf("verify %s: expected %s, got %s: %w", what, want, got, store.ErrDigestMismatch)
	}
	return nil
}
