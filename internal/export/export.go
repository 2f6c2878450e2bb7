// Package export takes a machine back out of berth: its root filesystem as
// a tar (optionally zstd-compressed) with the container's own UIDs, or the
// image it was installed from, read from berth's content-addressed store,
// as an OCI image layout, an oci-archive, a docker-archive (`docker save`
// format), or pushed to a registry. Image exports copy the stored manifest,
// config and layer blobs byte for byte, so every digest is the pulled one.
//
// Every output is written beside its destination under a hidden temporary
// name and renamed into place at the end: an export that fails or is
// interrupted leaves nothing at the destination.
package export

import (
	"errors"
	"fmt"
	"strings"
)

// Format is an export format.
type Format string

// The formats; see Formats for what each writes.
const (
	Tar           Format = "tar"
	TarZstd       Format = "tar.zst"
	OCI           Format = "oci"
	OCIArchive    Format = "oci-archive"
	DockerArchive Format = "docker-archive"
)

// Formats says what each format writes, in the order `--help` lists them.
var Formats = []struct {
	Format Format
	// Tree: the machine's root filesystem; otherwise its image.
	Tree bool
	// Dir: the output is a directory, never a stream.
	Dir  bool
	What string
}{
	{Tar, true, false, "the machine's root filesystem as a tar, with the container's UIDs"},
	{TarZstd, true, false, "the same tar, zstd-compressed"},
	{OCI, false, true, "the machine's image as an OCI image layout directory"},
	{OCIArchive, false, false, "that layout as a tar (skopeo's oci-archive:)"},
	{DockerArchive, false, false, "the image as `docker save` writes it (docker load, skopeo's docker-archive:)"},
}

// ErrFormat is returned for an unknown format or one the destination
// cannot take.
var ErrFormat = errors.New("export format")

// ParseFormat checks s names a format.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f.Format) == s {
			return f.Format, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f.Format)
	}
	return "", fmt.Errorf("%w: unknown format %q (want %s)", ErrFormat, s, strings.Join(names, ", "))
}

// IsTree says whether f writes the root filesystem rather than the image.
func (f Format) IsTree() bool { return f == Tar || f == TarZstd }

// IsDir says whether f writes a directory.
func (f Format) IsDir() bool { return f == OCI }

// suffixes map the end of an output name to its format; longer suffixes
// come first so "x.oci.tar" is not taken for a plain tar.
var suffixes = []struct {
	suffix string
	format Format
}{
	{".oci.tar", OCIArchive},
	{".docker.tar", DockerArchive},
	{".tar.zst", TarZstd},
	{".tar.zstd", TarZstd},
	{".tzst", TarZstd},
	{".tar", Tar},
}

// DefaultFormat is the format an export to out has when none is given:
// stdout ("" or "-") gets a tar; a name ending in .oci.tar an oci-archive,
// .docker.tar a docker-archive, .tar.zst, .tar.zstd or .tzst a zstd tar,
// .tar a tar; a name ending in "/" or an existing directory (isDir) an OCI
// layout. Anything else is an error rather than a guess.
func DefaultFormat(out string, isDir bool) (Format, error) {
	if out == "" || out == "-" {
		return Tar, nil
	}
	if strings.HasSuffix(out, "/") || isDir {
		return OCI, nil
	}
	lower := strings.ToLower(out)
	for _, s := range suffixes {
		if strings.HasSuffix(lower, s.suffix) {
			return s.format, nil
		}
	}
	return "", fmt.Errorf("%w: cannot tell the format from the name %q: end it in .tar, .tar.zst, .oci.tar or .docker.tar, end a directory with /, or pass --format", ErrFormat, out)
}

// ToStdout says whether out means standard output.
func ToStdout(out string) bool { return out == "" || out == "-" }
