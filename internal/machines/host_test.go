package machines

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
)

func testHost(t *testing.T, r command.Runner) Host {
	d := t.TempDir()
	return Host{
		Runner:           r,
		NspawnDir:        filepath.Join(d, "etc/systemd/nspawn"),
		RuntimeNspawnDir: filepath.Join(d, "run/systemd/nspawn"),
		UnitDir:          filepath.Join(d, "etc/systemd/system"),
		StateDir:         filepath.Join(d, "state"),
		MachinesDir:      filepath.Join(d, "machines"),
		Now:              func() time.Time { return time.Unix(0, 0) },
	}
}

func mustWrite(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// createApp creates machine name from a one-binary image of that name, as
// the lifecycle tests start.
func createApp(t *testing.T, h Host, name string) {
	t.Helper()
	img := filepath.Join(h.MachinesDir, name)
	mustWrite(t, filepath.Join(img, "bin/app"), "")
	s, err := machine.SpecFromImage(name, img, machine.ImageConfig{Cmd: []string{"/bin/app"}}, machine.Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	s.InitBinary = "/usr/lib/berth/berth-init"
	if _, err := h.Create(context.Background(), s, CreateOptions{Image: name}); err != nil {
		t.Fatal(err)
	}
}
