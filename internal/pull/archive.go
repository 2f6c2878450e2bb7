package pull

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Archive transports, as skopeo names them. Both read an uncompressed tar
// file (berth import also takes compressed ones and URLs).
const (
	dockerArchiveKind = "docker-archive"
	ociArchiveKind    = "oci-archive"
)

// parseArchiveRef parses docker-archive:PATH[:TAG] and
// oci-archive:PATH[:TAG]; ok is false for other references. As in skopeo
// the path ends at the first ':', so a docker reference with a registry
// port (docker-archive:a.tar:host:5000/app:1) survives whole.
func parseArchiveRef(s string) (r Ref, ok bool, err error) {
	kind, rest, found := strings.Cut(s, ":")
	if !found || (kind != dockerArchiveKind && kind != ociArchiveKind) {
		return Ref{}, false, nil
	}
	p, tag, _ := strings.Cut(rest, ":")
	if p == "" {
		return Ref{}, true, fmt.Errorf("parse reference %q: empty archive path", s)
	}
	if kind == dockerArchiveKind && tag != "" {
		if _, err := name.NewTag(tag); err != nil {
			return Ref{}, true, fmt.Errorf("parse reference %q: %w", s, err)
		}
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Ref{}, true, fmt.Errorf("parse reference %q: %w", s, err)
	}
	return Ref{Archive: abs, ArchiveKind: kind, Tag: tag}, true, nil
}

// archiveBaseName is what an archive reference's machine name is made of:
// the repository of a docker archive's tag, else the file name without
// its archive extensions.
func archiveBaseName(r Ref) string {
	if r.ArchiveKind == dockerArchiveKind && r.Tag != "" {
		if t, err := name.NewTag(r.Tag); err == nil {
			repo := t.RepositoryStr()
			return repo[strings.LastIndexByte(repo, '/')+1:]
		}
	}
	return StripArchiveExt(filepath.Base(r.Archive))
}

// archiveExts are the file name extensions StripArchiveExt removes.
var archiveExts = []string{".tar", ".gz", ".tgz", ".xz", ".txz", ".zst", ".zstd", ".tzst", ".bz2", ".tbz", ".tbz2", ".aci", ".oci", ".docker"}

// StripArchiveExt removes archive and compression extensions from a file
// name: "debian-12.tar.xz" is "debian-12". A name that is nothing but
// extensions is returned as it is.
func StripArchiveExt(base string) string {
	for {
		trimmed := false
		for _, ext := range archiveExts {
			if len(base) > len(ext) && strings.EqualFold(base[len(base)-len(ext):], ext) {
				base, trimmed = base[:len(base)-len(ext)], true
			}
		}
		if !trimmed {
			return base
		}
	}
}

// imageSource is an image built in memory (berth import's root filesystem
// tarballs and ACIs).
type imageSource struct{ img v1.Image }

func (s imageSource) resolve(context.Context) (resolved, error) {
	d, err := imageDescriptor(s.img)
	if err != nil {
		return resolved{}, err
	}
	return resolved{Descriptor: d, image: s.img}, nil
}

func imageDescriptor(img v1.Image) (v1.Descriptor, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read manifest: %w", err)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: int64(len(raw))}, nil
}

// dockerArchiveSource is a `docker save` tarball: manifest.json lists the
// images with their RepoTags.
type dockerArchiveSource struct{ ref Ref }

func (s *dockerArchiveSource) resolve(context.Context) (resolved, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(s.ref.Archive) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return resolved{}, fmt.Errorf("read docker archive %s: %w", s.ref.Archive, err)
	}
	var tag *name.Tag
	switch {
	case s.ref.Tag != "":
		t, err := name.NewTag(s.ref.Tag)
		if err != nil {
			return resolved{}, err
		}
		tag = &t
		if !DockerArchiveHas(m, t) {
			return resolved{}, fmt.Errorf("docker archive %s has no image tagged %s (it has: %s)", s.ref.Archive, s.ref.Tag, strings.Join(DockerArchiveTags(m), ", "))
		}
	case len(m) == 0:
		return resolved{}, fmt.Errorf("docker archive %s holds no image", s.ref.Archive)
	case len(m) > 1:
		return resolved{}, fmt.Errorf("docker archive %s holds %d images; choose one as docker-archive:PATH:TAG (it has: %s)", s.ref.Archive, len(m), strings.Join(DockerArchiveTags(m), ", "))
	}
	img, err := tarball.Image(opener, tag)
	if err != nil {
		return resolved{}, fmt.Errorf("read docker archive %s: %w", s.ref.Archive, err)
	}
	d, err := imageDescriptor(img)
	if err != nil {
		return resolved{}, fmt.Errorf("read docker archive %s: %w", s.ref.Archive, err)
	}
	return resolved{Descriptor: d, image: img}, nil
}

// DockerArchiveTags lists the RepoTags of every image in a docker archive's
// manifest.json; an untagged image shows as its config file name.
func DockerArchiveTags(m tarball.Manifest) []string {
	var out []string
	for _, d := range m {
		if len(d.RepoTags) == 0 {
			out = append(out, "(untagged "+d.Config+")")
		}
		out = append(out, d.RepoTags...)
	}
	return out
}

// DockerArchiveHas reports whether an image in m is tagged t ("app:1" and
// "docker.io/library/app:1" are the same tag).
func DockerArchiveHas(m tarball.Manifest, t name.Tag) bool {
	for _, d := range m {
		for _, s := range d.RepoTags {
			if rt, err := name.NewTag(s); err == nil && rt.Name() == t.Name() {
				return true
			}
		}
	}
	return false
}

// SpoolDir is where berth keeps files it unpacks or downloads before
// installing them (a tarred OCI layout, berth import's downloads), under
// the store root so it is on the store's filesystem.
func SpoolDir(root string) string { return filepath.Join(root, "spool") }

// ociArchiveSource is an OCI image layout unpacked from a tar into a
// temporary directory, removed when the pull ends.
type ociArchiveSource struct {
	*layoutSource
	dir string
}

func (s *ociArchiveSource) close() { os.RemoveAll(s.dir) }

func openOCIArchive(ref Ref, o *Options) (source, error) {
	if err := os.MkdirAll(SpoolDir(o.Root), 0o700); err != nil {
		return nil, fmt.Errorf("open OCI archive %s: %w", ref.Archive, err)
	}
	dir, err := os.MkdirTemp(SpoolDir(o.Root), ".oci-archive-")
	if err != nil {
		return nil, fmt.Errorf("open OCI archive %s: %w", ref.Archive, err)
	}
	f, err := os.Open(ref.Archive)
	if err == nil {
		err = UnpackLayout(f, dir)
		f.Close()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open OCI archive %s: %w", ref.Archive, err)
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open OCI archive %s: %w", ref.Archive, err)
	}
	lref := ref
	lref.Layout = ref.Archive // names the archive in errors
	return &ociArchiveSource{layoutSource: &layoutSource{ref: lref, p: p}, dir: dir}, nil
}

// layoutEntry matches the files of an OCI image layout that berth reads;
// nothing else in an archive is unpacked, so no name can leave dir.
var layoutEntry = regexp.MustCompile(`^(oci-layout|index\.json|blobs/[a-z0-9]+/[a-zA-Z0-9=_-]+)$`)

// ErrNotLayout: a tar holds no OCI image layout.
var ErrNotLayout = errors.New("not an OCI image layout (no oci-layout and index.json)")

// UnpackLayout unpacks the OCI image layout in the uncompressed tar r into
// the empty directory dir. Only oci-layout, index.json and blobs/ALG/HEX
// regular files are written; every other entry is skipped. Blob digests are
// verified when they are read, as for a layout directory.
func UnpackLayout(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if h.Typeflag != tar.TypeReg || !layoutEntry.MatchString(p) {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if seen[p] {
			return fmt.Errorf("tar holds %s twice", p)
		}
		seen[p] = true
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("unpack %s: %w", p, err)
		}
	}
	if !seen["oci-layout"] || !seen["index.json"] {
		return ErrNotLayout
	}
	return nil
}
