package paths

import (
	"slices"
	"testing"
)

func TestForGenerator(t *testing.T) {
	for exe, want := range map[string]Installation{
		"/usr/lib/systemd/system-generators/berth-generator":       {"/usr/bin/berth", "/usr/lib/berth/berth-init"},
		"/usr/local/lib/systemd/system-generators/berth-generator": {"/usr/local/bin/berth", "/usr/local/lib/berth/berth-init"},
		"/opt/berth/lib/systemd/system-generators/berth-generator": {"/opt/berth/bin/berth", "/opt/berth/lib/berth/berth-init"},
		"/lib/systemd/system-generators/berth-generator":           {"/bin/berth", "/lib/berth/berth-init"},
		"/usr/lib/systemd/system-generators//berth-generator":      {"/usr/bin/berth", "/usr/lib/berth/berth-init"},
		// Not an installed generator: the defaults.
		"/usr/local/bin/berth-generator":                     {DefaultBerth, DefaultInit},
		"/tmp/go-build123/b001/exe/berth-generator":          {DefaultBerth, DefaultInit},
		"/usr/lib/systemd/system-generators/other-generator": {DefaultBerth, DefaultInit},
		"lib/systemd/system-generators/berth-generator":      {DefaultBerth, DefaultInit},
		"": {DefaultBerth, DefaultInit},
		"/usr/lib/systemd/system-generators/berth-generator.bk": {DefaultBerth, DefaultInit},
	} {
		if got := ForGenerator(exe); got != want {
			t.Errorf("ForGenerator(%q) = %+v, want %+v", exe, got, want)
		}
	}
}

func TestInitCandidates(t *testing.T) {
	for _, tt := range []struct {
		exe  string
		want []string
	}{
		// The .deb.
		{"/usr/bin/berth", []string{"/usr/bin/berth-init", "/usr/lib/berth/berth-init", DefaultInit}},
		// scripts/install.sh's default prefix.
		{"/usr/local/bin/berth", []string{"/usr/local/bin/berth-init", DefaultInit, "/usr/lib/berth/berth-init"}},
		// go build -o bin/ ./cmd/...
		{"/work/berth/bin/berth", []string{"/work/berth/bin/berth-init", "/work/berth/lib/berth/berth-init", DefaultInit, "/usr/lib/berth/berth-init"}},
		// go install: nothing beside it.
		{"/root/go/bin/berth", []string{"/root/go/bin/berth-init", "/root/go/lib/berth/berth-init", DefaultInit, "/usr/lib/berth/berth-init"}},
		{"", []string{DefaultInit, "/usr/lib/berth/berth-init"}},
	} {
		if got := InitCandidates(tt.exe); !slices.Equal(got, tt.want) {
			t.Errorf("InitCandidates(%q) = %q, want %q", tt.exe, got, tt.want)
		}
	}
}
