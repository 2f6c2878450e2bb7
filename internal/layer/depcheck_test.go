package layer

import (
	"testing"

	"github.com/berth-sh/berth/internal/depcheck"
)

// TestDependencies keeps the layer applier off the network and D-Bus: it
// reads a stream and writes a tree. It does run one program, an external
// gunzip (gunzip.go, igzip as nobody), so os/exec is allowed here.
func TestDependencies(t *testing.T) {
	depcheck.Check(t, ".", "net/http", "github.com/coreos/go-systemd/v22/dbus", "github.com/godbus/dbus/...")
	depcheck.Check(t, ".", "github.com/berth-sh/berth/internal/command")
}
