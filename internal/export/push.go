package export

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

// PushOptions say how Push reaches the registry. Zero values are the
// documented defaults.
type PushOptions struct {
	// Insecure allows plain HTTP to a non-loopback registry (loopback ones
	// always may use it), as for pull.
	Insecure bool
	// Keychain supplies credentials. Default: authn.DefaultKeychain, as
	// pull uses.
	Keychain authn.Keychain
	// Transport is the HTTP transport under pull's plain-HTTP policy.
	// Default: remote.DefaultTransport.
	Transport http.RoundTripper
	// Progress, if set, receives remote.Write's progress updates.
	Progress chan<- v1.Update
}

// Push uploads the image of record rec from st to ref (a registry
// reference; an oci: layout is refused: use Export) and returns the
// digest the registry now serves, which is the stored manifest's: its
// bytes are pushed unchanged.
func Push(ctx context.Context, st *store.Store, rec *store.Record, ref string, o PushOptions) (name.Digest, error) {
	r, err := pull.ParseRef(ref, o.Insecure)
	if err != nil {
		return name.Digest{}, err
	}
	if r.Remote == nil {
		return name.Digest{}, fmt.Errorf("push %s to %s: not a registry reference (write an OCI layout with `berth export --format oci`)", rec.Name, ref)
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	unlock, err := st.Lock(ctx, store.Shared)
	if err != nil {
		return name.Digest{}, err
	}
	defer unlock()
	img, err := Image(st, rec)
	if err != nil {
		return name.Digest{}, err
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(o.Keychain),
		remote.WithTransport(pull.PolicyTransport(o.Transport, o.Insecure)),
		remote.WithUserAgent("berth"),
	}
	if o.Progress != nil {
		opts = append(opts, remote.WithProgress(o.Progress))
	}
	if err := remote.Write(r.Remote, img, opts...); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) {
			err = fmt.Errorf("%w; `berth pull --name %s %s` restores the store's copy", err, rec.Name, rec.Reference)
		}
		return name.Digest{}, fmt.Errorf("push %s to %s: %w", rec.Name, r.String(), err)
	}
	// What the registry now serves under ref must be what was pushed (a
	// registry that rewrites manifests would change the digest).
	d, err := remote.Head(r.Remote, opts...)
	if err != nil {
		return name.Digest{}, fmt.Errorf("push %s to %s: check the pushed manifest: %w", rec.Name, r.String(), err)
	}
	if d.Digest != rec.Manifest {
		return name.Digest{}, fmt.Errorf("push %s to %s: the registry serves %s, not the pushed %s", rec.Name, r.String(), d.Digest, rec.Manifest)
	}
	return r.Remote.Context().Digest(rec.Manifest.String()), nil
}
