package pull

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestParseRefAndDefaultName(t *testing.T) {
	for _, tc := range []struct{ in, ref, name string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox"},
		{"docker.io/library/debian:12", "docker.io/library/debian:12", "debian"},
		{"ghcr.io/org/my_app.server:v1", "ghcr.io/org/my_app.server:v1", "my-app-server"},
		{"127.0.0.1:5000/a/b/nginx@sha256:" + hex64, "127.0.0.1:5000/a/b/nginx@sha256:" + hex64, "nginx"},
		{"oci:/srv/images/web:v2", "oci:/srv/images/web:v2", "web"},
		{"oci:/srv/images/web", "oci:/srv/images/web", "web"},
		{"oci:/srv/with:colon/img", "oci:/srv/with:colon/img", "img"},
	} {
		r, err := ParseRef(tc.in, false)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if got := r.String(); got != tc.ref {
			t.Errorf("ParseRef(%q) = %q, want %q", tc.in, got, tc.ref)
		}
		if got, err := DefaultName(r); err != nil || got != tc.name {
			t.Errorf("DefaultName(%q) = %q, %v; want %q", tc.in, got, err, tc.name)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "oci:", "a/b:tag:tag"} {
		if _, err := ParseRef(bad, false); err == nil {
			t.Errorf("ParseRef(%q) succeeded", bad)
		}
	}
	if r, _ := ParseRef("oci:/srv/___", false); r.Layout != "" {
		if _, err := DefaultName(r); err == nil {
			t.Error("DefaultName of an all-symbol name succeeded")
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:5000": true, "127.0.0.1:5000": true, "127.9.9.9": true,
		"[::1]:5000": true, "::1": true,
		"10.0.0.1:5000": false, "192.168.1.1": false, "registry.local:5000": false,
		"localhost.evil.com": false, "0.0.0.0:5000": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSelectManifest(t *testing.T) {
	d := func(digest, os, arch, variant string, mt types.MediaType) v1.Descriptor {
		return v1.Descriptor{MediaType: mt, Digest: v1.Hash{Algorithm: "sha256", Hex: digest},
			Platform: &v1.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	m := types.OCIManifestSchema1
	idx := &v1.IndexManifest{Manifests: []v1.Descriptor{
		d("att", "unknown", "unknown", "", m),
		d("amd64", "linux", "amd64", "", types.DockerManifestSchema2),
		d("armv6", "linux", "arm", "v6", m),
		d("armv7", "linux", "arm", "v7", m),
		d("arm64", "linux", "arm64", "v8", m),
		d("nested", "linux", "riscv64", "", types.OCIImageIndex),
		d("win", "windows", "amd64", "", m),
	}}
	for _, tc := range []struct {
		want, got string
	}{
		{"linux/amd64", "amd64"},
		{"linux/arm64", "arm64"},
		{"linux/arm64/v8", "arm64"},
		{"linux/arm/v7", "armv7"},
		{"linux/arm/v6", "armv6"},
		{"linux/arm", "armv6"}, // no variant asked: the first listed
		{"windows/amd64", "win"},
		{"linux/riscv64", ""}, // only a nested index: not supported
		{"linux/arm/v5", ""},
	} {
		p, err := ParsePlatform(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := SelectManifest(idx, p)
		if tc.got == "" {
			if err == nil {
				t.Errorf("%s: selected %s, want an error", tc.want, got.Digest.Hex)
			}
			continue
		}
		if err != nil || got.Digest.Hex != tc.got {
			t.Errorf("%s: selected %q, %v; want %q", tc.want, got.Digest.Hex, err, tc.got)
		}
	}
}

func TestParsePlatformAndHost(t *testing.T) {
	for _, bad := range []string{"linux", "linux/", "/amd64", "linux/arm/v7/x", "linux/arm/"} {
		if _, err := ParsePlatform(bad); err == nil {
			t.Errorf("ParsePlatform(%q) succeeded", bad)
		}
	}
	if p := HostPlatform("linux", "arm", "7"); p.String() != "linux/arm/v7" {
		t.Errorf("HostPlatform arm GOARM=7 = %s", p)
	}
	if p := HostPlatform("linux", "arm", "6,softfloat"); p.String() != "linux/arm/v6" {
		t.Errorf("HostPlatform arm GOARM=6,softfloat = %s", p)
	}
	if p := HostPlatform("linux", "amd64", ""); p.String() != "linux/amd64" {
		t.Errorf("HostPlatform amd64 = %s", p)
	}
}
