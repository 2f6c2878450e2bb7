package pull

import (
	"fmt"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ParsePlatform parses os/arch[/variant], e.g. linux/arm64 or linux/arm/v7.
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("parse platform %q: want os/arch[/variant], e.g. linux/amd64", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		if parts[2] == "" {
			return v1.Platform{}, fmt.Errorf("parse platform %q: empty variant", s)
		}
		p.Variant = parts[2]
	}
	return p, nil
}

// HostPlatform is the platform berth runs on. goarm is GOARM for 32-bit arm
// builds (ignored otherwise), passed in so tests need not run on arm.
func HostPlatform(goos, goarch, goarm string) v1.Platform {
	p := v1.Platform{OS: goos, Architecture: goarch}
	if goarch == "arm" && goarm != "" {
		p.Variant = "v" + strings.SplitN(goarm, ",", 2)[0]
	}
	return p
}

func runtimePlatform() v1.Platform {
	return HostPlatform(runtime.GOOS, runtime.GOARCH, goarm())
}

// normVariant fills in the variant an image omits when there is only one
// that matters (arm64 is v8), so "linux/arm64" and "linux/arm64/v8" match.
func normVariant(arch, variant string) string {
	if variant == "" && arch == "arm64" {
		return "v8"
	}
	return variant
}

// SelectManifest picks the image manifest for want from an index. A wanted
// variant must match exactly (after normalization); without one, an entry
// with no or the default variant is preferred over other variants. Entries
// that are not image manifests (attestations, nested indexes) are skipped.
func SelectManifest(idx *v1.IndexManifest, want v1.Platform) (v1.Descriptor, error) {
	var fallback *v1.Descriptor
	var seen []string
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if !isImageManifest(d.MediaType) || d.Platform == nil {
			continue
		}
		p := d.Platform
		seen = append(seen, p.String())
		if p.OS != want.OS || p.Architecture != want.Architecture {
			continue
		}
		got := normVariant(p.Architecture, p.Variant)
		if want.Variant != "" {
			if got == normVariant(want.Architecture, want.Variant) {
				return *d, nil
			}
			continue
		}
		if got == normVariant(p.Architecture, "") {
			return *d, nil
		}
		if fallback == nil {
			fallback = d
		}
	}
	if fallback != nil {
		return *fallback, nil
	}
	return v1.Descriptor{}, fmt.Errorf("select platform: no image for %s in the index (it has: %s); choose one with --platform",
		want.String(), strings.Join(seen, ", "))
}

func isImageManifest(mt types.MediaType) bool {
	return mt == types.OCIManifestSchema1 || mt == types.DockerManifestSchema2
}

func isIndex(mt types.MediaType) bool {
	return mt == types.OCIImageIndex || mt == types.DockerManifestList
}

// RuntimePlatform is the platform berth runs on (HostPlatform of this
// build), the default of Options.Platform and of berth import's images.
func RuntimePlatform() v1.Platform { return runtimePlatform() }
