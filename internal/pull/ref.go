package pull

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// ErrInsecure is returned when a pull would use plain HTTP to a registry that
// is neither on a loopback address nor explicitly allowed with Insecure.
var ErrInsecure = errors.New("refusing plain HTTP to a non-loopback registry (use --insecure to allow it)")

// layoutPrefix marks a local OCI image layout reference: oci:PATH[:TAG].
const layoutPrefix = "oci:"

// Ref is a parsed image reference: either a registry reference or a local
// OCI image layout.
type Ref struct {
	// Remote is set for registry references.
	Remote name.Reference
	// Layout is the directory of an OCI image layout (oci:PATH[:TAG]).
	Layout string
	// Archive is the tar file of an oci-archive:PATH[:TAG] (a tarred OCI
	// image layout) or docker-archive:PATH[:TAG] (`docker save`) reference,
	// and ArchiveKind its transport: ociArchivePrefix or dockerArchivePrefix
	// without the colon.
	Archive     string
	ArchiveKind string
	// Tag selects the image in a layout or OCI archive by its
	// org.opencontainers.image.ref.name annotation, or in a docker archive
	// by its RepoTags; empty means the only one.
	Tag string
}

// ParseRef parses s. Registry references follow docker's defaults ("busybox"
// is docker.io/library/busybox:latest). insecure marks the registry as
// reachable over plain HTTP; loopback registries always are.
func ParseRef(s string, insecure bool) (Ref, error) {
	if r, ok, err := parseArchiveRef(s); ok {
		return r, err
	}
	if rest, ok := strings.CutPrefix(s, layoutPrefix); ok {
		path, tag := rest, ""
		// The tag follows the last ':' after the last '/', so paths may not
		// end in a colon-containing element without a tag — as skopeo's oci: transport.
		if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
			path, tag = rest[:i], rest[i+1:]
		}
		if path == "" {
			return Ref{}, fmt.Errorf("parse reference %q: empty layout path", s)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return Ref{}, fmt.Errorf("parse reference %q: %w", s, err)
		}
		return Ref{Layout: abs, Tag: tag}, nil
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return Ref{}, fmt.Errorf("parse reference %q: %w", s, err)
	}
	// ggcr lets plain HTTP through for 127.0.0.1, localhost and private
	// (RFC 1918) addresses; berth allows it only for loopback or on request.
	// The transport enforces this (policyTransport); marking the name
	// insecure only lets ggcr try http at all.
	if insecure || isLoopback(ref.Context().RegistryStr()) {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return Ref{}, fmt.Errorf("parse reference %q: %w", s, err)
		}
	}
	return Ref{Remote: ref}, nil
}

// WithLayoutTag is r selecting tag in its layout (Options.LayoutTag); an
// empty tag leaves r as it is.
func (r Ref) WithLayoutTag(tag string) (Ref, error) {
	switch {
	case tag == "":
		return r, nil
	case r.Layout == "" && r.Archive == "" || r.Tag != "":
		return Ref{}, fmt.Errorf("select %q in %s: a layout tag needs an oci:PATH (or archive) reference without one", tag, r)
	}
	r.Tag = tag
	return r, nil
}

// String is the normalized reference, as recorded.
func (r Ref) String() string {
	if r.Archive != "" {
		s := r.ArchiveKind + ":" + r.Archive
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		return s
	}
	if r.Remote == nil {
		s := layoutPrefix + r.Layout
		if r.Tag != "" {
			s += ":" + r.Tag
		}
		return s
	}
	s := r.Remote.Name()
	if rest, ok := strings.CutPrefix(s, name.DefaultRegistry+"/"); ok {
		s = "docker.io/" + rest
	}
	return s
}

// DefaultName derives a machine name from the last path element of the
// repository (or layout directory): lower-cased, with characters machinectl
// refuses replaced by '-'.
func DefaultName(r Ref) (string, error) {
	var base string
	switch {
	case r.Remote != nil:
		repo := r.Remote.Context().RepositoryStr()
		base = repo[strings.LastIndexByte(repo, '/')+1:]
	case r.Archive != "":
		base = archiveBaseName(r)
	default:
		base = filepath.Base(r.Layout)
	}
	if n := MachineName(base); n != "" {
		return n, nil
	}
	return "", fmt.Errorf("derive machine name from %q: nothing usable; pass --name", r.String())
}

// MachineName makes s a machine name machinectl accepts: lower-cased, with
// every other character than a-z and 0-9 replaced by '-', trimmed to 63
// bytes. It is "" when nothing usable is left.
func MachineName(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	n := strings.Trim(b.String(), "-")
	if len(n) > 63 {
		n = strings.TrimRight(n[:63], "-")
	}
	return n
}

// isLoopback reports whether host (optionally with :port) is localhost or
// a loopback address (127.0.0.0/8, ::1).
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// policyTransport refuses plain-HTTP requests to non-loopback hosts unless
// insecure is set. It sits under ggcr's transport, so it also covers
// redirects (blob downloads are often redirected to another host) and ggcr's
// own http fallback for RFC 1918 addresses.
type policyTransport struct {
	base     http.RoundTripper
	insecure bool
}

func (t *policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !t.insecure && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), ErrInsecure)
	}
	return t.base.RoundTrip(req)
}
