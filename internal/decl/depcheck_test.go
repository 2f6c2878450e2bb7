package decl

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// The generator runs at every boot and daemon-reload and may have no side
// effects: it runs no program and links no HTTP, registry or D-Bus client
// and no compose loader. Of go-containerregistry only the image model
// (pkg/v1, which machine.ImageConfig is) may come in.
var (
	generatorForbidden = append(append([]string(nil), depcheck.HostPackages...),
		"github.com/compose-spec/compose-go/...",
		"github.com/compose-spec/compose-go/v2/...",
	)
	generatorAllowed = []string{
		"github.com/berth-sh/berth/...",
		"golang.org/x/sys/unix", // atomic writes (fsutil)
		"github.com/google/go-containerregistry/pkg/v1",
		"github.com/google/go-containerregistry/pkg/v1/types",
	}
)

// TestDependencies keeps the conversion pure.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".", generatorForbidden...)
	depcheck.Only(t, ".", generatorAllowed...)
}

// TestGeneratorDependencies: the binary links none of it either.
func TestGeneratorDependencies(t *testing.T) {
	const gen = "github.com/berth-sh/berth/cmd/berth-generator"
	depcheck.Check(t, gen, generatorForbidden...)
	depcheck.Only(t, gen, generatorAllowed...)
}
