package hostprep

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

// TestEnsureVolume: created once, seeded only while empty, from inside the
// machine's tree whatever the image's links say.
func TestEnsureVolume(t *testing.T) {
	d := t.TempDir()
	rootfs := filepath.Join(d, "machines", "web")
	for _, p := range []string{"srv/data", "etc"} {
		if err := os.MkdirAll(filepath.Join(rootfs, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link out of the tree: must resolve to rootfs/etc, not /etc.
	if err := os.Symlink("/etc", filepath.Join(rootfs, "escape")); err != nil {
		t.Fatal(err)
	}
	vol := filepath.Join(d, "root", "volumes", "data")
	r := &command.RecordingRunner{}
	v := Volume{Dir: vol, UID: -1, GID: -1, SeedFrom: rootfs, SeedPath: "/srv/data"}
	if err := EnsureVolume(context.Background(), r, v); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Dir(vol))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("volumes directory: %v, %v", fi, err)
	}
	want := "cp -a --reflink=auto -T -- " + filepath.Join(rootfs, "srv/data") + " " + vol
	if got := r.Commands(); strings.TrimSpace(got) != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}

	for _, seed := range []string{"/escape", "/../../../etc", "/missing"} {
		r := &command.RecordingRunner{}
		v := Volume{Dir: filepath.Join(d, "root", "volumes", "v"+strings.ReplaceAll(seed, "/", "_")), UID: -1, GID: -1, SeedFrom: rootfs, SeedPath: seed}
		if err := EnsureVolume(context.Background(), r, v); err != nil {
			t.Fatal(err)
		}
		if got := r.Commands(); got != "" && !strings.Contains(got, " "+filepath.Join(rootfs, "etc")+" ") {
			t.Errorf("seed %s copied from outside the tree: %s", seed, got)
		}
	}

	// Not empty any more: no second copy.
	if err := os.WriteFile(filepath.Join(vol, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = &command.RecordingRunner{}
	if err := EnsureVolume(context.Background(), r, v); err != nil || r.Commands() != "" {
		t.Errorf("second start: %v, commands %q", err, r.Commands())
	}
	if err := EnsureVolume(context.Background(), r, Volume{Dir: "rel/x", UID: -1, GID: -1}); err == nil {
		t.Error("a relative volume path was accepted")
	}
}

func TestEnsureVolumeOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	vol := filepath.Join(t.TempDir(), "volumes", "owned")
	if err := EnsureVolume(context.Background(), &command.RecordingRunner{}, Volume{Dir: vol, UID: 1234, GID: 5678}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(vol)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1234 || st.Gid != 5678 {
		t.Errorf("owner %d:%d, want 1234:5678", st.Uid, st.Gid)
	}
}
