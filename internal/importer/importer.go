// Package importer installs machines from tarballs, as machinectl
// import-tar and pull-tar do: a root filesystem tar (uncompressed, gzip,
// xz, zstd or bzip2), an ACI, a `docker save` archive or a tarred OCI image
// layout, read from a file, standard input or an http(s) URL. The format is
// detected from the content, never the name. Downloads are spooled to the
// store's spool directory (resumable), verified (--sha256, SHA256SUMS,
// SHA256SUMS.gpg) before anything is unpacked, and every format becomes a
// v1.Image that the pull package installs: the same safe layer applier,
// staging and atomic commit, and store record as berth pull.
package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

// Options configure Import. Zero values mean the documented defaults.
type Options struct {
	// Source is a file path, "-" for Stdin, or an http(s) URL. A docker or
	// OCI archive's image is chosen with PATH:TAG (when PATH exists and
	// PATH:TAG does not) or URL#TAG.
	Source string
	// Name is the machine name. Default: the archive's tag, else the file
	// or URL base name without its extensions. With a docker archive of
	// several images and no TAG, the image whose repository is Name is
	// chosen.
	Name string
	// Verify checks the source against SHA256SUMS next to it (and its
	// signature). Default: VerifyChecksum for URLs without SHA256,
	// VerifyNo otherwise. Standard input has no "next to it".
	Verify Verify
	// SHA256 is the expected sha256 of the source (hex, as sha256sum prints).
	SHA256 string
	// Keyring is the keyring VerifySignature trusts. Default DefaultKeyring.
	Keyring string
	// Root is the store directory, MachinesDir where machines live (both required).
	Root, MachinesDir string
	// Stdin is read for Source "-".
	Stdin io.Reader
	// Transport fetches URLs. Default http.DefaultTransport.
	Transport http.RoundTripper
	// Runner runs gpgv. Default command.ExecRunner.
	Runner command.Runner
	// Download reports download progress; Progress the install's (pull's).
	// Default: none.
	Download DownloadProgress
	Progress pull.Progress
	// Warn receives warnings: what an ACI manifest holds that berth cannot
	// map, entries an ACI holds outside rootfs/. Default: discarded.
	Warn io.Writer
	// Retries is how often a broken download is resumed within one run.
	// Default 3; negative means none.
	Retries int
	// Running, Gunzip and Now are passed to pull.Options.
	Running func(name string) bool
	Gunzip  string
	Now     func() time.Time
	// Platform is the platform of a root filesystem tarball (an ACI's
	// labels win). Default: pull.RuntimePlatform.
	Platform *v1.Platform

	sleep func(context.Context, time.Duration) error
}

func (o *Options) fill() error {
	if o.Root == "" || o.MachinesDir == "" {
		return errors.New("import: Root and MachinesDir are required")
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	if o.Runner == nil {
		o.Runner = command.ExecRunner{}
	}
	if o.Download == nil {
		o.Download = nopDownload{}
	}
	if o.Warn == nil {
		o.Warn = io.Discard
	}
	if o.Keyring == "" {
		o.Keyring = DefaultKeyring
	}
	if o.Retries == 0 {
		o.Retries = 3
	}
	if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Stdin == nil {
		o.Stdin = os.Stdin
	}
	if o.sleep == nil {
		o.sleep = func(ctx context.Context, d time.Duration) error {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// source is the parsed Options.Source.
type source struct {
	url   *url.URL // for http(s)
	path  string   // absolute, for a file
	stdin bool
	tag   string // archive image selection
	shown string // as recorded and shown: URL (redacted), absolute path or "-"
}

func parseSource(s string) (source, error) {
	switch {
	case s == "":
		return source{}, errors.New("no source: give a file, - for standard input, or a URL")
	case s == "-":
		return source{stdin: true, shown: "-"}, nil
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		u, err := url.Parse(s)
		if err != nil {
			return source{}, fmt.Errorf("parse URL %q: %w", s, err)
		}
		if u.Host == "" || path.Base(u.Path) == "/" || path.Base(u.Path) == "." {
			return source{}, fmt.Errorf("URL %q names no file", s)
		}
		tag := u.Fragment
		u.Fragment, u.RawFragment = "", ""
		return source{url: u, tag: tag, shown: u.Redacted()}, nil
	}
	p, tag := s, ""
	if _, err := os.Stat(s); err != nil {
		// PATH:TAG, PATH being the longest existing file before a ':'.
		for i := strings.LastIndexByte(s, ':'); i > 0; i = strings.LastIndexByte(s[:i], ':') {
			if fi, err := os.Stat(s[:i]); err == nil && fi.Mode().IsRegular() {
				p, tag = s[:i], s[i+1:]
				break
			}
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return source{}, err
	}
	return source{path: abs, tag: tag, shown: abs}, nil
}

// baseName is the file name the default machine name is made from.
func (s source) baseName() string {
	switch {
	case s.url != nil:
		return path.Base(s.url.Path)
	case s.path != "":
		return filepath.Base(s.path)
	}
	return ""
}

// Result is a finished import.
type Result struct {
	*pull.Result
	Format Format
	// Compression is the source file's ("none", "gzip", "xz", "zstd", "bzip2").
	Compression string
	// Lifted is the single top-level directory of a rootfs tar that became the root.
	Lifted string
}

// Import installs Options.Source as a machine. Nothing is installed when
// the source fails verification, is corrupt or truncated, or cannot be
// unpacked.
func Import(ctx context.Context, opts Options) (res *Result, err error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	src, err := parseSource(opts.Source)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("import %s: %w", src.shown, err)
		}
	}()
	if opts.Name != "" {
		if err := store.ValidateName(opts.Name); err != nil {
			return nil, err
		}
	}
	verify := opts.Verify
	switch verify {
	case "":
		verify = VerifyNo
		if src.url != nil && opts.SHA256 == "" {
			verify = VerifyChecksum
		}
	case VerifyNo, VerifyChecksum, VerifySignature:
	default:
		return nil, fmt.Errorf("--verify=%s: want no, checksum or signature", verify)
	}
	if src.stdin && verify != VerifyNo {
		return nil, fmt.Errorf("--verify=%s needs a %s next to the file, and standard input has none; pass --sha256", verify, sumsName)
	}
	var want []v1.Hash
	if opts.SHA256 != "" {
		h, err := parseDigest(opts.SHA256)
		if err != nil {
			return nil, err
		}
		want = append(want, h)
	}
	spool := pull.SpoolDir(opts.Root)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, err
	}
	if verify != VerifyNo {
		h, err := expectedSum(ctx, src, verify, &opts, spool)
		if err != nil {
			return nil, err
		}
		want = append(want, h)
	}

	// Get the source as a local file, hashed on the way where it streams.
	var (
		f       *os.File
		sum     v1.Hash // zero: compute in the scan
		created time.Time
	)
	switch {
	case src.url != nil:
		fe := &fetcher{client: &http.Client{Transport: opts.Transport}, progress: opts.Download, retries: opts.Retries, sleep: opts.sleep}
		d, err := fe.get(ctx, src.url, spool, len(want) > 0)
		if err != nil {
			return nil, err
		}
		// Gone after the install; after a failed check too, or a rerun
		// would resume onto bytes already known bad.
		defer d.discard()
		f, sum, created = d.f, d.sum, d.lastModified
	case src.stdin:
		t, s, err := spoolStdin(opts.Stdin, spool)
		if err != nil {
			return nil, err
		}
		defer func() { t.Close(); os.Remove(t.Name()) }()
		f, sum = t, s
	default:
		if f, err = os.Open(src.path); err != nil {
			return nil, err
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			created = fi.ModTime().UTC().Truncate(time.Second)
		}
	}
	if sum != (v1.Hash{}) {
		for _, w := range want {
			if err := verifyFile(src.shown, sum, w); err != nil {
				return nil, err
			}
		}
	}

	sc, err := scanTar(f)
	if err != nil {
		return nil, err
	}
	if sum == (v1.Hash{}) {
		for _, w := range want {
			if err := verifyFile(src.shown, sc.fileDigest, w); err != nil {
				return nil, err
			}
		}
	} else if sum != sc.fileDigest {
		return nil, fmt.Errorf("%w: %s changed while it was read", ErrChecksum, src.shown)
	}
	res = &Result{Format: sc.format, Compression: sc.compression, Lifted: sc.lift}
	switch sc.format {
	case FormatDockerArchive, FormatOCIArchive:
		res.Result, err = installArchive(ctx, f, sc, src, &opts, spool)
	default:
		res.Result, err = installRootfs(ctx, f, sc, src, created, &opts, spool)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// expectedSum reads SHA256SUMS next to the source (verifying its signature
// first for VerifySignature) and returns the source's line.
func expectedSum(ctx context.Context, src source, verify Verify, o *Options, spool string) (v1.Hash, error) {
	read := func(name string) ([]byte, error) {
		if src.url != nil {
			fe := &fetcher{client: &http.Client{Transport: o.Transport}}
			return fe.small(ctx, src.url.ResolveReference(&url.URL{Path: name}))
		}
		b, err := os.ReadFile(filepath.Join(filepath.Dir(src.path), name))
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("%s: %w", filepath.Join(filepath.Dir(src.path), name), errNotFound)
		}
		return b, err
	}
	sums, err := read(sumsName)
	if errors.Is(err, errNotFound) {
		return v1.Hash{}, fmt.Errorf("%w: %w; pass --sha256 HEX, or --verify=no to import unchecked", ErrNoChecksum, err)
	}
	if err != nil {
		return v1.Hash{}, err
	}
	if verify == VerifySignature {
		sig, err := read(sigName)
		if errors.Is(err, errNotFound) {
			return v1.Hash{}, fmt.Errorf("%w: %w; import with --verify=checksum to trust %s unsigned", ErrSignature, err, sumsName)
		}
		if err != nil {
			return v1.Hash{}, err
		}
		dir, err := os.MkdirTemp(spool, ".verify-")
		if err != nil {
			return v1.Hash{}, err
		}
		defer os.RemoveAll(dir)
		sp, gp := filepath.Join(dir, sumsName), filepath.Join(dir, sigName)
		if err := os.WriteFile(sp, sums, 0o600); err != nil {
			return v1.Hash{}, err
		}
		if err := os.WriteFile(gp, sig, 0o600); err != nil {
			return v1.Hash{}, err
		}
		if err := checkSignature(ctx, o.Runner, o.Keyring, sp, gp, dir); err != nil {
			return v1.Hash{}, err
		}
	}
	base := src.baseName()
	if src.url != nil {
		if b, err := url.PathUnescape(base); err == nil {
			base = b
		}
	}
	return lookupSum(sums, base)
}

// spoolStdin copies r to a temporary file in dir, hashing it.
func spoolStdin(r io.Reader, dir string) (*os.File, v1.Hash, error) {
	f, err := os.CreateTemp(dir, ".stdin-")
	if err != nil {
		return nil, v1.Hash{}, err
	}
	sum, _, err := v1.SHA256(io.TeeReader(r, f))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, v1.Hash{}, fmt.Errorf("read standard input: %w", err)
	}
	return f, sum, nil
}

// defaultName is the machine name when none is given.
func defaultName(o *Options, src source, candidates ...string) (string, error) {
	if o.Name != "" {
		return o.Name, nil
	}
	for _, c := range append(candidates, pull.StripArchiveExt(src.baseName())) {
		if n := pull.MachineName(c); n != "" {
			return n, nil
		}
	}
	return "", errors.New("no machine name can be derived from the source; pass --name")
}

// installRootfs installs a root filesystem tar or an ACI as a one-layer image.
func installRootfs(ctx context.Context, f *os.File, sc *scan, src source, created time.Time, o *Options, spool string) (*pull.Result, error) {
	platform := pull.RuntimePlatform()
	if o.Platform != nil {
		platform = *o.Platform
	}
	var cfg v1.Config
	if sc.format == FormatACI {
		aci, err := ConvertACI(sc.aciManifest)
		if err != nil {
			return nil, err
		}
		for _, w := range aci.Warnings {
			fmt.Fprintf(o.Warn, "warning: %s\n", w)
		}
		cfg = aci.Config
		if aci.Platform.OS != "" {
			platform.OS = aci.Platform.OS
		}
		if aci.Platform.Architecture != "" {
			platform.Architecture, platform.Variant = aci.Platform.Architecture, aci.Platform.Variant
		}
		if !aci.Created.IsZero() {
			created = aci.Created
		}
	}
	name, err := defaultName(o, src)
	if err != nil {
		return nil, err
	}

	var l *fileLayer
	prefix := sc.lift
	if sc.format == FormatACI {
		prefix = "rootfs"
	}
	if mt := layerMediaType(sc.compression); mt != "" && prefix == "" {
		// The file is a layer blob as it is: no copy before the install.
		l = &fileLayer{path: f.Name(), digest: sc.fileDigest, diffID: sc.diffID, size: sc.fileSize, mt: mt}
	} else {
		if l, err = recompress(f, prefix, spool, sc.format, o.Warn); err != nil {
			return nil, err
		}
		defer os.Remove(l.path)
	}

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{Layer: l})
	if err != nil {
		return nil, err
	}
	cf := &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Variant:      platform.Variant,
		Created:      v1.Time{Time: created},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{l.diffID}},
		History:      []v1.History{{Created: v1.Time{Time: created}, CreatedBy: "berth import " + src.shown}},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	po := o.pullOptions(name)
	return pull.InstallImage(ctx, img, src.shown, po)
}

// recompress writes the tar in f, decompressed and with its entries under
// prefix lifted to the root, to a gzip layer in spool.
func recompress(f *os.File, prefix, spool string, format Format, warn io.Writer) (*fileLayer, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	zr, _, err := decompress(f)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := os.CreateTemp(spool, ".layer-")
	if err != nil {
		return nil, err
	}
	l, dropped, err := rewriteLayer(zr, prefix, out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out.Name())
		return nil, err
	}
	l.path = out.Name()
	if format == FormatACI {
		for _, p := range dropped {
			if p != "manifest" {
				fmt.Fprintf(warn, "warning: ACI entry %s is outside rootfs/; ignored\n", p)
			}
		}
	}
	return l, nil
}

func (o *Options) pullOptions(name string) pull.Options {
	return pull.Options{
		Name:        name,
		Root:        o.Root,
		MachinesDir: o.MachinesDir,
		Progress:    o.Progress,
		Running:     o.Running,
		Gunzip:      o.Gunzip,
		Now:         o.Now,
	}
}

// installArchive installs the chosen image of a docker or OCI archive
// through pull's archive transports, which read an uncompressed tar.
func installArchive(ctx context.Context, f *os.File, sc *scan, src source, o *Options, spool string) (*pull.Result, error) {
	p := f.Name()
	if sc.compression != compNone {
		t, err := os.CreateTemp(spool, ".archive-")
		if err != nil {
			return nil, err
		}
		defer func() { t.Close(); os.Remove(t.Name()) }()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		zr, _, err := decompress(f)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(t, zr)
		zr.Close()
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
		p = t.Name()
	}
	tag, candidates, err := chooseImage(sc, src, o)
	if err != nil {
		return nil, err
	}
	name, err := defaultName(o, src, candidates...)
	if err != nil {
		return nil, err
	}
	po := o.pullOptions(name)
	po.Ref = string(sc.format) + ":" + p
	po.LayoutTag = tag
	po.Reference = src.shown
	if tag != "" {
		po.Reference += ":" + tag
		if src.url != nil {
			po.Reference = src.shown + "#" + tag
		}
	}
	if o.Platform != nil {
		po.Platform = o.Platform
	}
	return pull.Pull(ctx, po)
}

// chooseImage picks the image of an archive: the source's TAG, else with
// several images the one whose repository is the machine name. It returns
// the names the default machine name may be made from, best first.
func chooseImage(sc *scan, src source, o *Options) (tag string, candidates []string, err error) {
	if sc.format == FormatOCIArchive {
		return src.tag, nil, nil
	}
	m := sc.dockerManifest
	repoOf := func(s string) string {
		t, err := name.NewTag(s)
		if err != nil {
			return ""
		}
		r := t.RepositoryStr()
		return r[strings.LastIndexByte(r, '/')+1:]
	}
	if src.tag != "" {
		t, err := name.NewTag(src.tag)
		if err != nil {
			return "", nil, err
		}
		if !pull.DockerArchiveHas(m, t) {
			return "", nil, fmt.Errorf("the docker archive has no image tagged %s (it has: %s)", src.tag, strings.Join(pull.DockerArchiveTags(m), ", "))
		}
		return src.tag, []string{repoOf(src.tag)}, nil
	}
	if len(m) == 1 {
		for _, rt := range m[0].RepoTags {
			candidates = append(candidates, repoOf(rt))
		}
		return "", candidates, nil
	}
	if o.Name != "" {
		var found []string
		for _, d := range m {
			for _, rt := range d.RepoTags {
				if pull.MachineName(repoOf(rt)) == o.Name {
					found = append(found, rt)
					break
				}
			}
		}
		if len(found) == 1 {
			return found[0], nil, nil
		}
	}
	return "", nil, fmt.Errorf("the docker archive holds %d images; choose one as PATH:TAG or URL#TAG (it has: %s)", len(m), strings.Join(pull.DockerArchiveTags(m), ", "))
}
