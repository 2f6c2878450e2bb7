package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// requireTool finds a system tool; missing, the test is skipped — or fails
// when BERTH_TEST_REQUIRE_TOOLS=1 (CI must not silently skip).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s not found (BERTH_TEST_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// diffLayers are tricky but well-formed layers: both unpackers must agree on
// them, except for the differences listed in docs/layer-semantics.md.
func diffLayers() [][]ent {
	pax := func(kv ...string) func(h *tar.Header) {
		return func(h *tar.Header) {
			h.PAXRecords = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
			}
		}
	}
	own := func(uid, gid int, mode int64) func(h *tar.Header) {
		return func(h *tar.Header) { h.Uid, h.Gid, h.Mode = uid, gid, mode }
	}
	capv2 := string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	long := strings.Repeat("long-directory-name/", 8) + strings.Repeat("f", 120)
	return [][]ent{
		{
			dirE("./etc"), fileE("./etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
			dirE("usr"), dirE("usr/bin"), dirE("usr/lib"),
			fileE("usr/bin/su", "suid").with(own(0, 0, 0o4755)),
			fileE("usr/bin/wall", "sgid").with(own(0, 5, 0o2755)),
			fileE("usr/bin/ping", "caps").with(pax("security.capability", capv2)),
			fileE("usr/lib/data", strings.Repeat("0123456789", 10000)).with(own(1000, 1000, 0o640)),
			fileE("usr/lib/xattr", "x").with(pax("user.mime_type", "text/plain", "trusted.note", "t")),
			dirE("tmp").with(own(0, 0, 0o1777)),
			dirE("home").with(own(0, 0, 0o755)), dirE("home/user").with(own(1000, 1000, 0o700)),
			fileE("home/user/.profile", "p").with(own(1000, 1000, 0o600)),
			symE("bin", "usr/bin"), symE("etc/mtab", "/proc/self/mounts"), symE("abs-etc", "/etc"),
			linkE("usr/bin/su2", "usr/bin/su"), linkE("usr/bin/link-to-symlink", "bin"),
			fifoE("run/initctl"),
			ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime}},
			ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Gid: 6, Devmajor: 8, Devminor: 0, ModTime: testTime}},
			fileE(long, "long").with(func(h *tar.Header) { h.Format = tar.FormatPAX }),
			dirE("wh"), fileE("wh/gone", "g"), fileE("wh/stays", "s"), dirE("wh/dir"), fileE("wh/dir/x", "x"),
			dirE("opq1"), fileE("opq1/old", "o"), dirE("opq2"), fileE("opq2/old", "o"),
			dirE("d2f"), fileE("d2f/x", "x"), fileE("f2d", "f"),
			dirE("swap"), dirE("target"),
			dirE("meta").with(own(0, 0, 0o755)),
		},
		{
			whE("wh", "gone"), whE("wh", "dir"),
			opqE("opq1"), fileE("opq1/new", "n"),
			fileE("opq2/new", "n"), symE("al2", "opq2"), fileE("al2/via-alias", "v"), opqE("opq2"),
			fileE("d2f", "now a file"), dirE("f2d"), fileE("f2d/inner", "i"),
			fileE("abs-etc/hostname", "via abs symlink\n"),
			symE("swap", "/target"),
			dirE("meta").with(own(1, 2, 0o700)),
			fileE("etc/passwd", "root:x:0:0::/root:/bin/bash\n"),
		},
		{
			fileE("swap/f", "through swapped symlink"),
			whE("", "bin"),
		},
	}
}

// writeLayout writes an OCI image layout with the layers as image "test".
func writeLayout(t testing.TB, dir string, layers [][]byte) {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, l := range layers {
		b := l
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
			tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			t.Fatal(err)
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "test"})); err != nil {
		t.Fatal(err)
	}
}

// treeEntry describes one path for the comparison.
func treeEntry(t *testing.T, p string) string {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	d := fmt.Sprintf("type=%o perm=%04o uid=%d gid=%d nlink=%d", st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, st.Nlink)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d += fmt.Sprintf(" size=%d sha256=%x mtime=%d", st.Size, sha256.Sum256(b), st.Mtim.Sec)
	case unix.S_IFLNK:
		l, _ := os.Readlink(p)
		d += " target=" + l + fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
	case unix.S_IFCHR, unix.S_IFBLK:
		d += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	case unix.S_IFDIR:
		d += fmt.Sprintf(" mtime=%d", st.Mtim.Sec)
	}
	buf := make([]byte, 4096)
	n, _ := unix.Llistxattr(p, buf)
	var names []string
	for _, x := range strings.Split(string(buf[:n]), "\x00") {
		if x != "" && DefaultXattrFilter(x) {
			names = append(names, x)
		}
	}
	sort.Strings(names)
	for _, x := range names {
		v := make([]byte, 4096)
		m, _ := unix.Lgetxattr(p, x, v)
		d += fmt.Sprintf(" xattr:%s=%q", x, v[:max(m, 0)])
	}
	return d
}

func tree(t *testing.T, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = treeEntry(t, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// unpackBoth unpacks layers with umoci (as an OCI image layout) and with Apply.
func unpackBoth(t *testing.T, umoci string, tars [][]byte) (u map[string]string, uerr error, b map[string]string, berr error) {
	t.Helper()
	base := t.TempDir()
	img := filepath.Join(base, "image")
	writeLayout(t, img, tars)
	umociOut := filepath.Join(base, "umoci")
	if out, err := exec.Command(umoci, "raw", "unpack", "--image", img+":test", umociOut).CombinedOutput(); err != nil {
		uerr = fmt.Errorf("umoci raw unpack: %w\n%s", err, out)
	} else {
		u = tree(t, umociOut)
	}
	berthOut := filepath.Join(base, "berth")
	if err := os.Mkdir(berthOut, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, l := range tars {
		if _, err := Apply(context.Background(), berthOut, bytes.NewReader(l), testOpts()); err != nil {
			berr = fmt.Errorf("layer %d: %w", i, err)
			break
		}
	}
	return u, uerr, tree(t, berthOut), berr
}

func tarsOf(t testing.TB, layers [][]ent) [][]byte {
	var tars [][]byte
	for _, l := range layers {
		tars = append(tars, mkTar(t, l...))
	}
	return tars
}

// testStart is when this test binary started. Every mtime in the test
// layers is far older, so a later one was set by the kernel.
var testStart = time.Now().Unix() - 1

// kernelTimed says whether d describes a directory whose mtime came from the
// clock rather than from a tar header: a parent no entry names, or a
// directory a later layer added children to. Both unpackers leave the time
// of their own writes there, which differs between runs by a second or so.
func kernelTimed(d string) bool {
	if !strings.HasPrefix(d, "type=40000 ") {
		return false
	}
	i := strings.Index(d, " mtime=")
	if i < 0 {
		return false
	}
	var sec int64
	fmt.Sscanf(d[i+len(" mtime="):], "%d", &sec)
	return sec >= testStart
}

// differing lists the paths whose descriptions differ. The rootfs directory's
// own times are not compared: no layer here sets them, and then they are
// whatever the unpacker's directory had (docs/layer-semantics.md).
func differing(u, b map[string]string) map[string]string {
	out := map[string]string{}
	strip := func(s string) string {
		if i := strings.Index(s, " mtime="); i >= 0 {
			return s[:i]
		}
		return s
	}
	for p, ud := range u {
		bd, ok := b[p]
		if p == "." || kernelTimed(ud) && kernelTimed(bd) {
			ud, bd = strip(ud), strip(bd)
		}
		switch {
		case !ok:
			out[p] = "only umoci: " + ud
		case ud != bd:
			out[p] = "umoci: " + ud + "\n  berth: " + bd
		}
	}
	for p, bd := range b {
		if _, ok := u[p]; !ok {
			out[p] = "only berth: " + bd
		}
	}
	return out
}

// TestDifferentialUmoci unpacks the same image with Apply and with
// `umoci raw unpack` and compares the trees entry by entry: type, mode,
// owner, link count, size, content hash, link target, device, xattrs, mtime.
func TestDifferentialUmoci(t *testing.T) {
	requireRoot(t)
	umoci := requireTool(t, "umoci")
	u, uerr, b, berr := unpackBoth(t, umoci, tarsOf(t, diffLayers()))
	if uerr != nil || berr != nil {
		t.Fatalf("umoci: %v\nberth: %v", uerr, berr)
	}
	if d := differing(u, b); len(d) > 0 {
		var lines []string
		for p, v := range d {
			lines = append(lines, p+":\n  "+v)
		}
		sort.Strings(lines)
		t.Errorf("berth and umoci disagree on %d paths:\n%s", len(d), strings.Join(lines, "\n"))
	}
	t.Logf("compared %d paths", len(u))
}

// TestDifferentialUmociDifferences pins the deliberate differences listed in
// docs/layer-semantics.md, so the document stays true.
func TestDifferentialUmociDifferences(t *testing.T) {
	requireRoot(t)
	umoci := requireTool(t, "umoci")
	for _, c := range []struct {
		name       string
		layers     [][]ent
		raw        [][]byte // layers given as bytes instead
		berthErr   string   // substring of berth's error; "" = success
		umociFails bool
		differ     []string // paths that differ when both succeed
	}{
		{
			name:   "root entry drops setuid and setgid",
			layers: [][]ent{{dirE("./").with(func(h *tar.Header) { h.Mode, h.Uid = 0o6700, 5 }), fileE("f", "x")}},
			differ: []string{"."},
		},
		{
			name:     "parent symlink to a missing directory",
			layers:   [][]ent{{symE("a", "/missing/dir"), fileE("a/f", "x")}},
			berthErr: `entry "a/f": parent "a" is a symlink to a missing directory`,
		},
		{
			name: "user xattr on a symlink is skipped",
			layers: [][]ent{{fileE("f", "x"), symE("s", "f").with(func(h *tar.Header) {
				h.PAXRecords = map[string]string{"SCHILY.xattr.user.x": "y"}
			})}},
			umociFails: true,
		},
		{
			name:       "missing end-of-archive marker",
			raw:        [][]byte{mkTar(t, fileE("a", "x"))[:1024]},
			berthErr:   "no end-of-archive marker",
			umociFails: false, // archive/tar calls it a clean end
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tars := c.raw
			if tars == nil {
				tars = tarsOf(t, c.layers)
			}
			u, uerr, b, berr := unpackBoth(t, umoci, tars)
			if c.berthErr != "" {
				if berr == nil || !strings.Contains(berr.Error(), c.berthErr) {
					t.Errorf("berth err = %v, want %q", berr, c.berthErr)
				}
			} else if berr != nil {
				t.Errorf("berth: %v", berr)
			}
			if c.umociFails != (uerr != nil) {
				t.Errorf("umoci err = %v, want failure %v", uerr, c.umociFails)
			}
			if uerr != nil || berr != nil {
				return
			}
			var got []string
			for p := range differing(u, b) {
				got = append(got, p)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(c.differ, ",") {
				t.Errorf("differing paths = %v, want %v\numoci: %v\nberth: %v", got, c.differ, u, b)
			}
		})
	}
}
