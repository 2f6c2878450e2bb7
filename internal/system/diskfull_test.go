package system

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-sh/berth/internal/pull"
)

// smallFS mounts a fresh ext4 file system of size MiB on a loop device and
// returns its mount point; unmounted when the test ends.
func smallFS(t *testing.T, mib int) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a loop file system")
	}
	d := t.TempDir()
	img := filepath.Join(d, "fs.img")
	mnt := filepath.Join(d, "mnt")
	os.Mkdir(mnt, 0o755)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(mib) << 20)
	f.Close()
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") != "" {
			t.Fatalf("mount a loop file system: %v\n%s", err, out)
		}
		t.Skipf("cannot mount a loop file system here: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	return mnt
}

func freeBytes(t *testing.T, dir string) int64 {
	// ext4 counts freed blocks once the journal commits them.
	syscall.Sync()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// TestPullFillsTheDisk pulls an image larger than the file system it goes
// to: the error says the disk is full, where, and about how much the image
// needs; nothing of it is left (no tree, record, staging or blob), the
// space is given back, and check finds the state consistent.
func TestPullFillsTheDisk(t *testing.T) {
	mnt := smallFS(t, 24)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	small, _ := crashImage(t, host, "disk/small:1", "small", 1, 4, 64<<10)
	big, _ := crashImage(t, host, "disk/big:1", "big", 3, 40, 256<<10)
	h := Host{Root: filepath.Join(mnt, "berth"), MachinesDir: filepath.Join(mnt, "machines")}
	opts := func(ref, name string) pull.Options {
		return pull.Options{Ref: ref, Name: name, Root: h.Root, MachinesDir: h.MachinesDir, Gunzip: "builtin", Running: func(string) bool { return false }}
	}
	if _, err := pull.Pull(context.Background(), opts(small, "small")); err != nil {
		t.Fatal(err)
	}
	before := freeBytes(t, mnt)
	_, err := pull.Pull(context.Background(), opts(big, "big"))
	if err == nil {
		t.Fatal("a 30 MB image fit on a 24 MiB file system")
	}
	msg := err.Error()
	t.Logf("the error: %s", msg)
	for _, want := range []string{"no space left on", mnt, "needs about", "berth system prune"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if _, err := os.Lstat(filepath.Join(h.MachinesDir, "big")); err == nil {
		t.Errorf("a tree of the image that did not fit is visible")
	}
	// The space comes back once the last descriptor of the removed files
	// closes; give it a moment.
	after := freeBytes(t, mnt)
	for end := time.Now().Add(10 * time.Second); before-after > 256<<10 && time.Now().Before(end); after = freeBytes(t, mnt) {
		time.Sleep(100 * time.Millisecond)
	}
	if before-after > 256<<10 {
		out, _ := exec.Command("sh", "-c", "cd "+mnt+" && du -a | sort -n | tail -8").CombinedOutput()
		t.Errorf("the failed pull kept %d bytes of the disk:\n%s", before-after, out)
	}

	if found, err := h.Check(context.Background(), CheckOptions{}); err != nil || len(found) != 0 {
		t.Errorf("check after the failed pull: %v %+v", err, found)
	}
	// The machine that was there still works.
	if _, err := os.Stat(filepath.Join(h.MachinesDir, "small", "usr/share/l0/f000")); err != nil {
		t.Errorf("the installed machine lost a file: %v", err)
	}
}
