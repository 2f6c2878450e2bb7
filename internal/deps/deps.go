//go:build deps

// Package deps pins the project's chosen dependencies while the packages that
// use them are being written, so parallel work does not race on go.mod.
// Remove it once every dependency is imported by real code.
package deps

import (
	_ "github.com/compose-spec/compose-go/v2/cli"
	_ "github.com/coreos/go-systemd/v22/dbus"
	_ "github.com/coreos/go-systemd/v22/unit"
	_ "github.com/cyphar/filepath-securejoin"
	_ "github.com/google/go-containerregistry/pkg/authn"
	_ "github.com/google/go-containerregistry/pkg/registry"
	_ "github.com/google/go-containerregistry/pkg/v1/layout"
	_ "github.com/google/go-containerregistry/pkg/v1/remote"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/klauspost/pgzip"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/rogpeppe/go-internal/testscript"
	_ "github.com/vbauerster/mpb/v8"
	_ "golang.org/x/sys/unix"
	_ "gopkg.in/yaml.v3"
)
