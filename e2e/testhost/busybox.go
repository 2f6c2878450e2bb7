package testhost

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// staticBusybox returns the path of a statically linked busybox on this
// machine (Debian's busybox-static installs one as /bin/busybox); a dynamic
// one would not run in a rootfs without libc.
func staticBusybox() (string, error) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("find busybox: %w (apt-get install busybox-static)", err)
	}
	f, err := elf.Open(p)
	if err != nil {
		return "", fmt.Errorf("inspect %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked; install busybox-static", p)
		}
	}
	return p, nil
}

// BusyboxTree builds a minimal rootfs on this machine: a static busybox
// with a symlink per applet in /bin, root and user 1000 in /etc/passwd, and
// an os-release, enough for systemd-nspawn to run it as a machine. It
// returns the tree's directory (removed when t ends).
func BusyboxTree(t testing.TB) string {
	t.Helper()
	RequireTools(t, "busybox")
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := writeBusyboxTree(root); err != nil {
		t.Fatal(err)
	}
	return root
}

func writeBusyboxTree(root string) error {
	bb, err := staticBusybox()
	if err != nil {
		return err
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("list busybox applets: %w", err)
	}
	var errs []error
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "tmp", "root", "home/user", "var/tmp"} {
		errs = append(errs, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	errs = append(errs,
		os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky),
		os.Chmod(filepath.Join(root, "root"), 0o700),
		os.Chown(filepath.Join(root, "home/user"), 1000, 1000),
		copyFile(bb, filepath.Join(root, "bin/busybox"), 0o755),
		os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"), 0o644),
		os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nuser:x:1000:\n"), 0o644),
		os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=BusyBox\nID=busybox\n"), 0o644),
	)
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		errs = append(errs, os.Symlink("busybox", filepath.Join(root, "bin", applet)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("build busybox tree %s: %w", root, err)
	}
	return nil
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BusyboxImage builds a one-layer OCI image of BusyboxTree with entrypoint
// /bin/sh, for tests that need some real image in a registry without
// depending on tools/mkimage.
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	tree := BusyboxTree(t)
	var buf bytes.Buffer
	if err := writeTree(&buf, tree, "."); err != nil {
		t.Fatalf("testhost: tar busybox tree: %v", err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("testhost: busybox layer: %v", err)
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		t.Fatalf("testhost: busybox image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatalf("testhost: busybox image config: %v", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint = []string{"/bin/sh"}
	cf.Config.Env = []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatalf("testhost: busybox image config: %v", err)
	}
	return img
}
