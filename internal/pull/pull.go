// Package pull fetches an OCI image (from a registry or a local OCI image
// layout), verifies every blob, and installs it atomically as a machine root
// filesystem: blobs land in the content-addressed store (internal/store),
// layers are applied in order by internal/layer into a hidden staging
// directory while later layers still download, and only a fully verified
// tree is renamed into the machines directory.
package pull

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/gunzip"
	"github.com/berth-sh/berth/internal/layer"
	"github.com/berth-sh/berth/internal/store"
)

// Errors callers may test with errors.Is.
var (
	// ErrDiffIDMismatch: a layer's uncompressed content does not hash to the
	// DiffID in the image config.
	ErrDiffIDMismatch = errors.New("layer DiffID mismatch")
	// ErrNotBerthMachine: the machine directory exists but berth did not
	// create it, so berth will not replace it.
	ErrNotBerthMachine = errors.New("machine exists and was not installed by berth")
)

// Options configure Pull. Zero values mean the documented defaults.
type Options struct {
	// Ref is the image: a registry reference, oci:PATH[:TAG],
	// oci-archive:PATH[:TAG] or docker-archive:PATH[:TAG].
	Ref string
	// Reference is recorded as where the machine's image came from instead
	// of the normalized Ref (berth import records the file or URL the user
	// named, not the spool file it was read from). Default: Ref, normalized.
	Reference string
	// LayoutTag selects the image of a layout reference given without a
	// tag (oci:PATH) by its org.opencontainers.image.ref.name, which may
	// hold ':' and '/' that the oci:PATH:TAG form cannot carry
	// ("org.example.app:1.0").
	LayoutTag string
	// Name is the machine name. Default: derived from Ref (DefaultName).
	Name string
	// Platform selects from a multi-platform index. Default: the platform
	// berth runs on. When set, a single-platform image must match it.
	Platform *v1.Platform
	// Insecure allows plain HTTP to non-loopback registries.
	Insecure bool
	// Root is the store directory (required).
	Root string
	// MachinesDir is where machine root filesystems live (required).
	MachinesDir string
	// Keychain supplies registry credentials. Default: authn.DefaultKeychain
	// (~/.docker/config.json, $DOCKER_CONFIG, credential helpers).
	Keychain authn.Keychain
	// Transport is the HTTP transport. Default: remote.DefaultTransport.
	Transport http.RoundTripper
	// Jobs is how many layers download at once. Default 3.
	Jobs int
	// NoStream applies a layer only after it is fully downloaded and
	// verified instead of while it arrives. Default false (stream): the
	// staging tree is thrown away on any verification failure, so applying
	// unverified bytes there is safe, and it overlaps network and disk.
	NoStream bool
	// Layer is passed to layer.Apply.
	Layer layer.Options
	// Gunzip picks how gzip layers are inflated: "" pipes them through
	// igzip (ISA-L, about 2.5 times Go's speed) when it is in PATH and
	// inflates in-process otherwise; "builtin" always inflates in-process;
	// anything else is the path of a gzip(1)-compatible program to pipe
	// them through (called with -dc). The output is verified against the
	// DiffID either way.
	Gunzip string
	// Progress receives progress events. Default: none.
	Progress Progress
	// Now is the clock for the record's pull time. Default time.Now.
	Now func() time.Time
	// Running reports whether machine name is running; a running machine's
	// tree is not replaced under it. It is called only when an installed
	// tree is about to be replaced (after the new image resolved and
	// differs), so a caller may stop the machine there. Default: registered
	// with systemd-machined (/run/systemd/machines/NAME exists).
	Running func(name string) bool

	gunzip layer.Gunzip // resolved Gunzip: a program's, or nil for in-process
}

// MachinedRunning reports whether systemd-machined has machine name
// registered, i.e. it is running.
func MachinedRunning(name string) bool {
	_, err := os.Lstat(filepath.Join("/run/systemd/machines", name))
	return err == nil
}

func (o *Options) fill() error {
	if o.Root == "" || o.MachinesDir == "" {
		return errors.New("pull: Root and MachinesDir are required")
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.Jobs <= 0 {
		o.Jobs = 3
	}
	if o.Progress == nil {
		o.Progress = nopProgress{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Running == nil {
		o.Running = MachinedRunning
	}
	switch prog := o.Gunzip; prog {
	case "builtin":
	case "":
		if prog = gunzip.Find(); prog != "" {
			o.gunzip = gunzip.New(prog)
		}
	default:
		o.gunzip = gunzip.New(prog)
	}
	return nil
}

// Result describes a finished pull.
type Result struct {
	Record *store.Record
	// UpToDate is true when the machine already had this image and nothing
	// was downloaded or unpacked.
	UpToDate bool
	// Downloaded is the number of blobs fetched (not already in the store),
	// DownloadedBytes their total size.
	Downloaded      int
	DownloadedBytes int64
}

// Pull fetches opts.Ref and installs it as machine opts.Name.
func Pull(ctx context.Context, opts Options) (res *Result, err error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	ref, err := ParseRef(opts.Ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	if ref, err = ref.WithLayoutTag(opts.LayoutTag); err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		if name, err = DefaultName(ref); err != nil {
			return nil, err
		}
	}
	if err := store.ValidateName(name); err != nil {
		return nil, fmt.Errorf("pull %s: %w", opts.Ref, err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("pull %s: %w", ref.String(), err)
		}
	}()
	reference := ref.String()
	if opts.Reference != "" {
		reference = opts.Reference
	}
	return installFrom(ctx, &opts, name, reference, func() (source, error) { return openSource(ctx, ref, &opts) })
}

// InstallImage installs img as machine opts.Name (required) through the
// same verified, atomic path as Pull: blobs into the store, layers through
// the safe applier into a staging tree, commit, record. reference is
// recorded as where the image came from; opts.Ref, LayoutTag and the
// registry options are not used. berth import hands it the images it builds
// from root filesystem tarballs and ACIs.
func InstallImage(ctx context.Context, img v1.Image, reference string, opts Options) (res *Result, err error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := store.ValidateName(opts.Name); err != nil {
		return nil, fmt.Errorf("install %s: %w", reference, err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("install %s: %w", reference, err)
		}
	}()
	return installFrom(ctx, &opts, opts.Name, reference, func() (source, error) { return imageSource{img}, nil })
}

// installFrom is Pull after the reference is parsed: it takes the locks,
// resolves the source open returns, and installs unless up to date.
func installFrom(ctx context.Context, o *Options, name, reference string, open func() (source, error)) (res *Result, err error) {
	opts := *o

	st, err := store.Open(opts.Root)
	if err != nil {
		return nil, err
	}
	unlockStore, err := st.Lock(ctx, store.Shared)
	if err != nil {
		return nil, err
	}
	storeLocked := true
	defer func() {
		if storeLocked {
			unlockStore()
		}
	}()
	unlockName, err := st.LockName(ctx, name)
	if err != nil {
		return nil, err
	}
	defer unlockName()
	if err := store.CleanStaging(opts.MachinesDir); err != nil {
		return nil, err
	}

	prev, err := st.Record(name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	rootfs := filepath.Join(opts.MachinesDir, name)
	_, statErr := os.Lstat(rootfs)
	rootfsExists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return nil, fmt.Errorf("check machine %s: %w", name, statErr)
	}
	if prev == nil && rootfsExists {
		return nil, fmt.Errorf("%w: %s; remove it or pull with --name", ErrNotBerthMachine, rootfs)
	}

	want := runtimePlatform()
	if opts.Platform != nil {
		want = *opts.Platform
	}
	src, err := open()
	if err != nil {
		return nil, err
	}
	if c, ok := src.(interface{ close() }); ok {
		defer c.close()
	}
	top, err := src.resolve(ctx)
	if err != nil {
		return nil, err
	}
	img, mdesc, err := selectImage(top, want)
	if err != nil {
		return nil, err
	}
	opts.Progress.Resolved(reference, top.Digest, mdesc.Digest)

	if prev != nil && rootfsExists && prev.Digest == top.Digest && prev.Manifest == mdesc.Digest && haveBlobs(st, prev) {
		if top.image != nil && opts.Platform != nil && !platformMatches(want, prev.Platform) {
			return nil, fmt.Errorf("image is for %s, not the requested %s", prev.Platform.String(), want.String())
		}
		if err := refreshUpToDate(st, prev, reference, &opts); err != nil {
			return nil, err
		}
		res := &Result{Record: prev, UpToDate: true}
		opts.Progress.Done(res)
		return res, nil
	}
	if rootfsExists && opts.Running(name) {
		return nil, fmt.Errorf("machine %s is running; stop it before replacing its image", name)
	}

	res, err = install(ctx, st, img, mdesc, top, reference, name, want, &opts)
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			// The layers this pull stored are what filled the disk:
			// give their space back (other failures keep them for the
			// next try), if no other pull holds the store.
			unlockStore()
			storeLocked = false
			if unlock, ok := st.TryLock(store.Exclusive); ok {
				st.GC()
				unlock()
			}
		}
		return nil, explainDiskFull(err, img, &opts)
	}
	// The tag may have moved: blobs of the replaced image are garbage now.
	// Collect only if no other pull holds the store (never wait for one).
	unlockStore()
	storeLocked = false
	if unlock, ok := st.TryLock(store.Exclusive); ok {
		// The machine is installed; a failed collection only leaves
		// garbage for the next pull or rmi, so it does not fail the pull.
		st.GC()
		unlock()
	}
	opts.Progress.Done(res)
	return res, nil
}

// haveBlobs says whether the store still holds every blob of r: a blob
// that went missing (removed by `system check --repair` as corrupt) makes
// the same image's pull install it again rather than call it up to date.
func haveBlobs(st *store.Store, r *store.Record) bool {
	for _, d := range r.Blobs() {
		if _, ok := st.Has(d); !ok {
			return false
		}
	}
	return true
}

// refreshUpToDate fixes what may have drifted on an installed, unchanged
// image: the reference it was pulled by, a deleted .oci-config.
func refreshUpToDate(st *store.Store, prev *store.Record, reference string, o *Options) error {
	if _, err := os.Stat(store.ConfigPath(o.MachinesDir, prev.Name)); errors.Is(err, fs.ErrNotExist) {
		if err := st.WriteConfig(o.MachinesDir, prev.Name, prev.Config); err != nil {
			return err
		}
	}
	if prev.Reference != reference {
		prev.Reference = reference
		return st.SaveRecord(prev)
	}
	// A command killed between saving a record and rebuilding index.json
	// leaves the index behind the records; an up-to-date pull catches it
	// up (it is small, and rebuilt from the records under its own lock).
	return st.WriteIndex()
}

// platformMatches reports whether an image for got satisfies want (a
// variant is compared only when want names one).
func platformMatches(want, got v1.Platform) bool {
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return false
	}
	return want.Variant == "" || normVariant(want.Architecture, want.Variant) == normVariant(got.Architecture, got.Variant)
}

// install fetches the image's blobs and builds and commits the rootfs.
func install(ctx context.Context, st *store.Store, img v1.Image, mdesc v1.Descriptor, top resolved, reference string, name string, want v1.Platform, o *Options) (*Result, error) {
	res := &Result{}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("fetch manifest %s: %w", mdesc.Digest, err)
	}
	if err := verifyBytes("manifest", rawManifest, mdesc.Digest); err != nil {
		return nil, err
	}
	var m v1.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", mdesc.Digest, err)
	}
	if err := storeBlob(st, res, mdesc.Digest, rawManifest); err != nil {
		return nil, err
	}

	if m.Config.Size > maxConfigSize {
		return nil, fmt.Errorf("image config %s is %d bytes, more than berth accepts (%d)", m.Config.Digest, m.Config.Size, maxConfigSize)
	}
	rawConfig, err := fetchConfig(ctx, st, res, img, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return nil, fmt.Errorf("parse config %s: %w", m.Config.Digest, err)
	}
	platform := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if platform.Variant == "" && mdesc.Platform != nil && mdesc.Platform.Architecture == platform.Architecture {
		// Many configs omit the variant the index states (arm/v7).
		platform.Variant = mdesc.Platform.Variant
	}
	if top.image != nil && o.Platform != nil && !platformMatches(want, platform) {
		return nil, fmt.Errorf("image is for %s, not the requested %s", platform.String(), want.String())
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image config %s lists %d layer DiffIDs but manifest %s has %d layers",
			m.Config.Digest, len(cfg.RootFS.DiffIDs), mdesc.Digest, len(m.Layers))
	}

	rec := &store.Record{
		Name:              name,
		Reference:         reference,
		Digest:            top.Digest,
		Manifest:          mdesc.Digest,
		ManifestMediaType: mdesc.MediaType,
		ManifestSize:      int64(len(rawManifest)),
		Config:            m.Config.Digest,
		Platform:          platform,
		Created:           cfg.Created.Time,
		Pulled:            o.Now().UTC(),
	}
	for i, l := range m.Layers {
		if !isLayer(l.MediaType) {
			return nil, fmt.Errorf("layer %d (%s): unsupported media type %q", i+1, l.Digest, l.MediaType)
		}
		rec.Layers = append(rec.Layers, store.LayerRecord{Digest: l.Digest, DiffID: cfg.RootFS.DiffIDs[i], MediaType: l.MediaType, Size: l.Size})
		rec.Size += l.Size
	}

	stg, err := store.NewStaging(o.MachinesDir, name)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			stg.Discard()
		}
	}()
	stopWriteback := stg.StartWriteback(writebackInterval)
	err = fetchAndApply(ctx, st, img, rec.Layers, stg.Dir, res, o)
	stopWriteback()
	if err != nil {
		return nil, err
	}
	if err := ensureUsr(stg.Dir); err != nil {
		return nil, err
	}
	record := func() error {
		if err := store.WriteFileAtomic(store.ConfigPath(o.MachinesDir, name), rawConfig, 0o644); err != nil {
			return fmt.Errorf("install machine %s: %w", name, err)
		}
		return st.SaveRecord(rec)
	}
	// A first install writes the config and the record before its tree
	// appears: killed in between, it leaves a record without a tree,
	// which the next pull installs again (a tree without a record would
	// be refused as not berth's). A replacement writes them after the
	// swap: killed in between, the record still names the old image, so
	// the next pull redoes this one. Either way no tree is ever visible
	// without a record naming it.
	_, statErr := os.Lstat(filepath.Join(o.MachinesDir, name))
	first := errors.Is(statErr, fs.ErrNotExist)
	if first {
		if err := record(); err != nil {
			return nil, err
		}
	}
	if err := stg.Commit(); err != nil {
		if first {
			os.Remove(store.ConfigPath(o.MachinesDir, name))
			st.RemoveRecord(name)
		}
		return nil, err
	}
	committed = true
	if !first {
		if err := record(); err != nil {
			return nil, err
		}
	}
	res.Record = rec
	return res, nil
}

// maxConfigSize bounds the image config, which is read into memory. Real
// configs are a few KiB; history-heavy ones reach a few hundred.
const maxConfigSize = 8 << 20

func isLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer:
		return true
	}
	return false
}

func storeBlob(st *store.Store, res *Result, d v1.Hash, b []byte) error {
	if _, ok := st.Has(d); ok {
		return nil
	}
	if err := st.PutBlob(d, b); err != nil {
		return err
	}
	res.Downloaded++
	res.DownloadedBytes += int64(len(b))
	return nil
}

// fetchConfig returns the raw config, from the store when present (a warm
// store saves a request), verified against its digest either way, and
// stores it. It holds the blob's lock meanwhile, so pulls running side by
// side fetch it once.
func fetchConfig(ctx context.Context, st *store.Store, res *Result, img v1.Image, d v1.Hash) ([]byte, error) {
	unlock, err := st.LockBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, ok := st.Has(d); ok {
		if b, err := st.ReadBlob(d); err == nil {
			return b, nil
		}
		// A corrupt store copy: fetch it again.
		if err := st.RemoveBlob(d); err != nil {
			return nil, err
		}
	}
	b, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("fetch config %s: %w", d, err)
	}
	if err := verifyBytes("config", b, d); err != nil {
		return nil, err
	}
	if err := storeBlob(st, res, d, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ensureUsr gives an image without /usr an empty one: systemd-nspawn refuses
// to boot a tree without it.
func ensureUsr(root string) error {
	err := os.Mkdir(filepath.Join(root, "usr"), 0o755)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	return fmt.Errorf("create /usr in %s: %w", root, err)
}

// writebackInterval is how often the tree being unpacked is synced in the
// background (store.Staging.StartWriteback). Short enough that the disk keeps
// up with the applier, long enough that each sync has a batch to write.
const writebackInterval = 250 * time.Millisecond
