package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OCI whiteout markers (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// markerTime is the mtime of synthetic entries (whiteouts, opaque markers):
// fixed so that rebuilding an image yields the same digests.
var markerTime = time.Unix(0, 0).UTC()

// LayerSpec says what goes into one layer's tar stream.
type LayerSpec struct {
	// Kind is "dir", "overlay", "tar" or "empty".
	Kind string
	// Path is the source directory or tar file; empty for Kind "empty".
	Path string
	// Whiteouts are paths (relative to the image root) that this layer
	// deletes from the layers below it.
	Whiteouts []string
	// Opaque are directories whose lower-layer contents this layer hides.
	Opaque []string
	// Exclude are path.Match patterns on the slash-separated relative
	// path; a matching entry is left out together with its subtree. Lets a
	// debootstrap tree become a layer without its /dev nodes or apt caches.
	Exclude []string
	// Owner forces every entry's uid:gid when set; otherwise the numeric
	// owners on disk are kept (dir and overlay sources).
	Owner *[2]int
}

// tarEntry is one header plus where its content comes from.
type tarEntry struct {
	hdr *tar.Header
	src string // file to copy the content from (regular files only)
}

// writeLayerTar writes the uncompressed tar stream of spec to w; tmp is a
// scratch directory for re-encoding tar sources.
func writeLayerTar(w io.Writer, spec LayerSpec, tmp string) error {
	if spec.Kind == "tar" && len(spec.Whiteouts) == 0 && len(spec.Opaque) == 0 && spec.Owner == nil && len(spec.Exclude) == 0 {
		// Byte-exact passthrough: tests feed hand-made (even malformed) tars
		// and must get exactly those bytes in the layer.
		rc, err := openMaybeCompressed(spec.Path)
		if err != nil {
			return err
		}
		defer rc.Close()
		if _, err := io.Copy(w, rc); err != nil {
			return fmt.Errorf("copy tar %s: %w", spec.Path, err)
		}
		return nil
	}

	var entries []tarEntry
	var err error
	switch spec.Kind {
	case "dir", "overlay":
		entries, err = walkDir(spec.Path, spec.Kind == "overlay", spec.Exclude)
	case "tar":
		entries, err = readTarEntries(spec.Path, spec.Exclude, tmp)
	case "empty":
	default:
		return fmt.Errorf("write layer: unknown source kind %q (want dir, overlay, tar or empty)", spec.Kind)
	}
	if err != nil {
		return err
	}
	markers, err := markerEntries(spec.Whiteouts, spec.Opaque)
	if err != nil {
		return err
	}
	entries = append(entries, markers...)
	// A tar source keeps its order: in hand-made test tars the order is the
	// point (a symlink, then a file written through it); markers go last.
	if spec.Kind != "tar" {
		sortEntries(entries)
	}

	tw := tar.NewWriter(w)
	for _, e := range entries {
		if spec.Owner != nil {
			e.hdr.Uid, e.hdr.Gid = spec.Owner[0], spec.Owner[1]
		}
		if err := writeEntry(tw, e); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write layer tar: %w", err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, e tarEntry) error {
	if err := tw.WriteHeader(e.hdr); err != nil {
		return fmt.Errorf("write tar header %s: %w", e.hdr.Name, err)
	}
	if e.hdr.Typeflag != tar.TypeReg || e.hdr.Size == 0 {
		return nil
	}
	if e.src == "" {
		return fmt.Errorf("write tar entry %s: no content source", e.hdr.Name)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return fmt.Errorf("write tar entry %s: %w", e.hdr.Name, err)
	}
	defer f.Close()
	n, err := io.Copy(tw, io.LimitReader(f, e.hdr.Size))
	if err != nil {
		return fmt.Errorf("write tar entry %s: %w", e.hdr.Name, err)
	}
	if n != e.hdr.Size {
		return fmt.Errorf("write tar entry %s: file shrank from %d to %d bytes while archiving", e.hdr.Name, e.hdr.Size, n)
	}
	return nil
}

// sortEntries orders entries by path so the stream is deterministic and every
// directory precedes its contents; an opaque marker comes right after its
// directory because some appliers only honour it before the siblings.
func sortEntries(entries []tarEntry) {
	key := func(name string) string {
		name = strings.TrimSuffix(name, "/")
		if path.Base(name) == opaqueMarker {
			// "\x00" sorts before every real name in the same directory.
			return path.Dir(name) + "/\x00"
		}
		return name
	}
	sort.SliceStable(entries, func(i, j int) bool {
		return compareComponents(key(entries[i].hdr.Name), key(entries[j].hdr.Name)) < 0
	})
}

// compareComponents compares slash-separated paths component by component, so
// "a/b" sorts right after "a" and before "a.b" (plain string order would put
// "a.b" between "a" and "a/b").
func compareComponents(a, b string) int {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := strings.Compare(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

func markerEntries(whiteouts, opaque []string) ([]tarEntry, error) {
	var out []tarEntry
	add := func(name string) {
		out = append(out, tarEntry{hdr: &tar.Header{
			Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: markerTime, Format: tar.FormatPAX,
		}})
	}
	for _, p := range whiteouts {
		rel, err := cleanRel(p)
		if err != nil {
			return nil, fmt.Errorf("whiteout %q: %w", p, err)
		}
		dir, base := path.Split(rel)
		add(dir + whiteoutPrefix + base)
	}
	for _, p := range opaque {
		rel, err := cleanRel(p)
		if err != nil {
			return nil, fmt.Errorf("opaque %q: %w", p, err)
		}
		add(rel + "/" + opaqueMarker)
	}
	return out, nil
}

// cleanRel turns an image path ("/etc/motd", "etc/motd") into the relative
// form used in layer tars and refuses the image root itself.
func cleanRel(p string) (string, error) {
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		return "", errors.New("path names the image root")
	}
	return rel, nil
}

func excluded(rel string, patterns []string) (bool, error) {
	for _, pat := range patterns {
		ok, err := path.Match(strings.TrimPrefix(pat, "/"), rel)
		if err != nil {
			return false, fmt.Errorf("exclude pattern %q: %w", pat, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

type inode struct{ dev, ino uint64 }

// walkDir lists root's tree as tar entries. With overlay set, overlayfs upper
// directory conventions become OCI markers: a 0:0 character device is a
// whiteout and a directory with the overlay opaque xattr gets an opaque marker.
func walkDir(root string, overlay bool, exclude []string) ([]tarEntry, error) {
	// WalkDir hands out cleaned paths; a root with a trailing slash would
	// otherwise not be a prefix of them.
	root = filepath.Clean(root)
	var entries []tarEntry
	seen := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if skip, err := excluded(rel, exclude); err != nil {
			return err
		} else if skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		hdr := &tar.Header{
			Name:    rel,
			Mode:    int64(st.Mode & 0o7777),
			Uid:     int(st.Uid),
			Gid:     int(st.Gid),
			ModTime: time.Unix(st.Mtim.Sec, 0).UTC(),
			Format:  tar.FormatPAX,
		}
		e := tarEntry{hdr: hdr}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if overlay && isOverlayOpaque(p) {
				entries = append(entries, tarEntry{hdr: &tar.Header{
					Typeflag: tar.TypeReg, Name: rel + "/" + opaqueMarker, Mode: 0o644, ModTime: markerTime, Format: tar.FormatPAX,
				}})
			}
		case unix.S_IFREG:
			key := inode{uint64(st.Dev), st.Ino}
			if first, ok := seen[key]; ok && st.Nlink > 1 {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
			} else {
				hdr.Typeflag = tar.TypeReg
				hdr.Size = st.Size
				e.src = p
				if st.Nlink > 1 {
					seen[key] = rel
				}
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("readlink %s: %w", p, err)
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
		case unix.S_IFCHR, unix.S_IFBLK:
			if overlay && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
				dir, base := path.Split(rel)
				entries = append(entries, tarEntry{hdr: &tar.Header{
					Typeflag: tar.TypeReg, Name: dir + whiteoutPrefix + base, Mode: 0o644, ModTime: markerTime, Format: tar.FormatPAX,
				}})
				return nil
			}
			hdr.Typeflag = tar.TypeChar
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor = int64(unix.Major(st.Rdev))
			hdr.Devminor = int64(unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			hdr.Typeflag = tar.TypeFifo
		default:
			// Sockets cannot be archived; they are runtime state anyway.
			return nil
		}
		if overlay {
			if name, ok := overlayIndirection(p); ok {
				return fmt.Errorf("overlay upper dir entry %s has %s: its content lives elsewhere; build the upper dir with metacopy=off,redirect_dir=off", p, name)
			}
		}
		xattrs, err := readXattrs(p)
		if err != nil {
			return err
		}
		if len(xattrs) > 0 {
			hdr.PAXRecords = xattrs
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

func isOverlayOpaque(p string) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(p, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// overlayIndirection reports an overlayfs xattr meaning the upper entry is
// not self-contained (metadata-only copy-up, or a renamed directory whose
// lower contents are found through a redirect): tarring it would lose data.
func overlayIndirection(p string) (string, bool) {
	for _, name := range []string{"trusted.overlay.metacopy", "trusted.overlay.redirect", "user.overlay.metacopy", "user.overlay.redirect"} {
		if _, err := unix.Lgetxattr(p, name, nil); err == nil {
			return name, true
		}
	}
	return "", false
}

// readXattrs returns the extended attributes worth carrying into an image
// (file capabilities, user attributes) as PAX records. Overlay bookkeeping and
// SELinux labels describe the build host, not the image, and are dropped.
func readXattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	var out map[string]string
	for _, name := range bytes.Split(buf[:size], []byte{0}) {
		n := string(name)
		if n == "" || strings.HasPrefix(n, "trusted.") || n == "security.selinux" || strings.HasPrefix(n, "user.overlay.") {
			continue
		}
		vsize, err := unix.Lgetxattr(p, n, nil)
		if err != nil {
			return nil, fmt.Errorf("read xattr %s of %s: %w", n, p, err)
		}
		val := make([]byte, vsize)
		vsize, err = unix.Lgetxattr(p, n, val)
		if err != nil {
			return nil, fmt.Errorf("read xattr %s of %s: %w", n, p, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out["SCHILY.xattr."+n] = string(val[:vsize])
	}
	return out, nil
}

// readTarEntries loads an existing tar's headers so whiteouts, owners or
// excludes can be applied; regular file content is spooled under tmp.
func readTarEntries(p string, exclude []string, tmp string) ([]tarEntry, error) {
	rc, err := openMaybeCompressed(p)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	spool, err := os.MkdirTemp(tmp, "spool-")
	if err != nil {
		return nil, fmt.Errorf("read tar %s: %w", p, err)
	}
	tr := tar.NewReader(rc)
	var entries []tarEntry
	for i := 0; ; i++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read tar %s: %w", p, err)
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		if skip, err := excluded(rel, exclude); err != nil {
			return nil, err
		} else if skip || hasExcludedParent(rel, exclude) {
			continue
		}
		e := tarEntry{hdr: hdr}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			e.src = filepath.Join(spool, fmt.Sprint(i))
			if err := spoolTo(e.src, tr); err != nil {
				return nil, fmt.Errorf("read tar %s: entry %s: %w", p, hdr.Name, err)
			}
		}
		entries = append(entries, e)
	}
}

func hasExcludedParent(rel string, exclude []string) bool {
	for dir := path.Dir(rel); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if skip, _ := excluded(dir, exclude); skip {
			return true
		}
	}
	return false
}

func spoolTo(dst string, r io.Reader) error {
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
