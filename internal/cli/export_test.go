package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/store"
)

// capNetRaw is a v2 security.capability value granting CAP_NET_RAW.
var capNetRaw = string([]byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// richLayers are two OCI layers (gzip, zstd) with every kind of entry a
// root filesystem has: owners, setuid, xattrs, hard links, symlinks, a
// device, a FIFO, and a whiteout in the second.
func richLayers(t *testing.T) []v1.Layer {
	t.Helper()
	mtime := time.Unix(1700000000, 123456789)
	layer := func(compress string, hdrs ...any) v1.Layer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := 0; i < len(hdrs); i += 2 {
			h := hdrs[i].(*tar.Header)
			body := hdrs[i+1].(string)
			h.ModTime, h.Format = mtime, tar.FormatPAX
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(body))
		}
		tw.Close()
		opts := []tarball.LayerOption{tarball.WithMediaType(types.OCILayer)}
		if compress == "zstd" {
			opts = []tarball.LayerOption{tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd)}
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil }, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	dir := func(n string, mode int64, id int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeDir, Name: n, Mode: mode, Uid: id, Gid: id}
	}
	reg := func(n string, mode int64, id int, x map[string]string) *tar.Header {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: mode, Uid: id, Gid: id}
		for k, v := range x {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		return h
	}
	return []v1.Layer{
		layer("gzip",
			dir("bin/", 0o755, 0), "",
			dir("etc/", 0o755, 0), "",
			dir("dev/", 0o755, 0), "",
			dir("run/", 0o1777, 0), "",
			dir("home/", 0o755, 0), "",
			dir("home/app/", 0o750, 1000), "",
			reg("bin/tool", 0o755, 0, map[string]string{"security.capability": capNetRaw}), "#!/bin/tool\n",
			reg("bin/su", 0o4755, 0, nil), "su",
			&tar.Header{Typeflag: tar.TypeLink, Name: "bin/tool2", Linkname: "bin/tool"}, "",
			&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/sh", Linkname: "tool"}, "",
			&tar.Header{Typeflag: tar.TypeSymlink, Name: "etc/mtab", Linkname: "/proc/self/mounts"}, "",
			&tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}, "",
			&tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620}, "",
			reg("etc/hosts", 0o644, 0, nil), "127.0.0.1 localhost\n",
			reg("etc/removed", 0o644, 0, nil), "gone in layer 2",
			reg("home/app/data", 0o640, 1000, map[string]string{"user.mime_type": "text/plain"}), "app data\n",
		),
		layer("zstd",
			reg("etc/hosts", 0o644, 0, nil), "127.0.0.1 localhost web\n",
			&tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.removed", Mode: 0o644}, "",
		),
	}
}

// pushRichImage pushes the rich image, with OCI media types, to the
// registry at host.
func pushRichImage(t *testing.T, host, repoTag string) string {
	t.Helper()
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, richLayers(t)...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/bin/tool"}
	img, _ = mutate.ConfigFile(img, cfg)
	ref := host + "/" + repoTag
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	return ref
}

// exportFixture is a registry with the rich image and fresh berth
// directories where it is pulled as machine "web".
type exportFixture struct {
	host string
	ref  string
	dirs map[string]string
	rec  *store.Record
}

func newExportFixture(t *testing.T) *exportFixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: pulls apply owners and devices")
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	f := &exportFixture{host: strings.TrimPrefix(srv.URL, "http://")}
	f.ref = pushRichImage(t, f.host, "apps/web:1")
	d := t.TempDir()
	f.dirs = map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines")}
	f.berthOK(t, "pull", "-q", "--name", "web", f.ref)
	f.rec = f.record(t, "web")
	return f
}

func (f *exportFixture) berthOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	out, errOut, code := runBerth(t, f.dirs, args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

func (f *exportFixture) record(t *testing.T, machine string) *store.Record {
	t.Helper()
	rec, err := store.At(f.dirs["BERTH_ROOT"]).Record(machine)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (f *exportFixture) tree(machine string) string {
	return filepath.Join(f.dirs["BERTH_MACHINES_DIR"], machine)
}

// treeEntry is what compareTrees compares of one entry.
type treeEntry struct {
	Mode     fs.FileMode
	UID, GID uint32
	Rdev     uint64
	Content  string // sha256 of a file, target of a symlink
	MTime    int64  // non-directories (the applier dates implicit directories now)
	Xattrs   map[string]string
	LinkTo   string // first name of a hard-linked inode
}

// treeInfo describes every entry of the tree at root.
func treeInfo(t *testing.T, root string) map[string]treeEntry {
	t.Helper()
	out := map[string]treeEntry{}
	first := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi := treeEntry{UID: st.Uid, GID: st.Gid, Rdev: st.Rdev, Xattrs: map[string]string{}}
		info, _ := d.Info()
		fi.Mode = info.Mode()
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			fi.Content = hex.EncodeToString(sum[:])
		case info.Mode()&fs.ModeSymlink != 0:
			fi.Content, _ = os.Readlink(p)
		}
		if !d.IsDir() {
			fi.MTime = st.Mtim.Nano()
			if st.Nlink > 1 {
				if f, ok := first[st.Ino]; ok {
					fi.LinkTo = f
				} else {
					first[st.Ino] = rel
				}
			}
		}
		buf := make([]byte, 4096)
		if n, err := unix.Llistxattr(p, buf); err == nil {
			for _, a := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
				if a == "" {
					continue
				}
				v := make([]byte, 4096)
				if m, err := unix.Lgetxattr(p, a, v); err == nil {
					fi.Xattrs[a] = string(v[:m])
				}
			}
		}
		out[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareTrees(t *testing.T, what, a, b string) {
	t.Helper()
	ta, tb := treeInfo(t, a), treeInfo(t, b)
	for p, fa := range ta {
		fb, ok := tb[p]
		if !ok {
			t.Errorf("%s: %s missing", what, p)
			continue
		}
		ja, _ := json.Marshal(fa)
		jb, _ := json.Marshal(fb)
		if !bytes.Equal(ja, jb) {
			t.Errorf("%s: %s differs:\n%s\n%s", what, p, ja, jb)
		}
	}
	for p := range tb {
		if _, ok := ta[p]; !ok {
			t.Errorf("%s: extra %s", what, p)
		}
	}
	if len(ta) < 4 {
		t.Errorf("%s: only %d entries compared", what, len(ta))
	}
}

// checkRichTree checks the entries of the rich image are what its layers say
// (so a comparison of two trees cannot pass by both being wrong).
func checkRichTree(t *testing.T, root string) {
	t.Helper()
	ti := treeInfo(t, root)
	if ti["bin/su"].Mode != fs.ModeSetuid|0o755 || ti["home/app/data"].UID != 1000 ||
		ti["bin/tool"].Xattrs["security.capability"] != capNetRaw || ti["home/app/data"].Xattrs["user.mime_type"] != "text/plain" ||
		ti["bin/tool2"].LinkTo != "bin/tool" || ti["dev/null"].Rdev != unix.Mkdev(1, 3) || ti["run/fifo"].Mode&fs.ModeNamedPipe == 0 {
		t.Errorf("%s is not the rich image's tree", root)
	}
	if _, ok := ti["etc/removed"]; ok {
		t.Errorf("%s: the whiteout was not applied", root)
	}
}

func requireExportTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("%s not installed (scripts/deps.sh installs it)", tool)
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestExportImageRoundTrips: pull → export as an OCI layout, oci-archive
// and docker-archive → pull again gives the same tree and config (and,
// where the format keeps it, the same manifest).
func TestExportImageRoundTrips(t *testing.T) {
	requireExportTool(t, "skopeo")
	f := newExportFixture(t)
	checkRichTree(t, f.tree("web"))
	d := t.TempDir()

	// OCI layout, --format given.
	layout := filepath.Join(d, "layout")
	out, errOut := f.berthOK(t, "export", "web", "--format", "oci", "-o", layout)
	if out != "" || !strings.Contains(errOut, "exported image "+f.ref+" of web to "+layout) {
		t.Errorf("export oci: stdout %q stderr %q", out, errOut)
	}
	var insp struct{ Digest string }
	if err := json.Unmarshal([]byte(runTool(t, "skopeo", "inspect", "oci:"+layout+":"+f.ref)), &insp); err != nil || insp.Digest != f.rec.Manifest.String() {
		t.Errorf("skopeo inspect oci:%s:%s: digest %q err %v, want %s", layout, f.ref, insp.Digest, err, f.rec.Manifest)
	}
	if _, err := exec.LookPath("umoci"); err == nil {
		if out := runTool(t, "umoci", "stat", "--image", layout+":"+f.ref); !strings.Contains(out, f.rec.Layers[1].Digest.Hex) {
			t.Errorf("umoci stat does not list the second layer %s:\n%s", f.rec.Layers[1].Digest, out)
		}
	}
	f.berthOK(t, "pull", "-q", "--name", "web-oci", "oci:"+layout)
	got := f.record(t, "web-oci")
	if got.Manifest != f.rec.Manifest || got.Config != f.rec.Config {
		t.Errorf("oci round trip: manifest %s config %s, want %s %s", got.Manifest, got.Config, f.rec.Manifest, f.rec.Config)
	}
	compareTrees(t, "oci", f.tree("web"), f.tree("web-oci"))

	// oci-archive, format from the name. skopeo copies it back to a layout
	// (converting the manifest to OCI's media types, so only the config
	// digest is the same).
	oa := filepath.Join(d, "web.oci.tar")
	f.berthOK(t, "export", "web", "-o", oa)
	viaSkopeo := filepath.Join(d, "from-oci-archive")
	runTool(t, "skopeo", "copy", "--quiet", "oci-archive:"+oa+":"+f.ref, "oci:"+viaSkopeo+":web")
	f.berthOK(t, "pull", "-q", "--name", "web-oa", "oci:"+viaSkopeo+":web")
	if got := f.record(t, "web-oa"); got.Config != f.rec.Config {
		t.Errorf("oci-archive round trip: config %s, want %s", got.Config, f.rec.Config)
	}
	compareTrees(t, "oci-archive", f.tree("web"), f.tree("web-oa"))

	// docker-archive: skopeo reads it as docker load would and pushes it to
	// the registry (which, unlike an oci: destination, keeps the Docker
	// manifest skopeo makes of it, so the config is not rewritten).
	da := filepath.Join(d, "web.docker.tar")
	f.berthOK(t, "export", "web", "-o", da)
	viaRegistry := f.host + "/from/docker-archive:1"
	runTool(t, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+da, "docker://"+viaRegistry)
	f.berthOK(t, "pull", "-q", "--name", "web-da", viaRegistry)
	if got := f.record(t, "web-da"); got.Config != f.rec.Config {
		t.Errorf("docker-archive round trip: config %s, want %s", got.Config, f.rec.Config)
	}
	compareTrees(t, "docker-archive", f.tree("web"), f.tree("web-da"))
	b := runTool(t, "tar", "-xOf", da, "manifest.json")
	if !strings.Contains(b, `"RepoTags":["`+f.ref+`"]`) {
		t.Errorf("docker-archive manifest.json does not tag the image %s: %s", f.ref, b)
	}

	// A pull of what berth pull itself reads from archives, when it can.
	for _, c := range []struct{ transport, file, machine string }{{"oci-archive", oa, "web-oa2"}, {"docker-archive", da, "web-da2"}} {
		if _, errOut, code := runBerth(t, f.dirs, "pull", "-q", "--name", c.machine, c.transport+":"+c.file); code != 0 {
			t.Logf("berth pull %s: not supported here (%s); covered through skopeo above", c.transport, strings.TrimSpace(errOut))
			continue
		}
		if got := f.record(t, c.machine); got.Config != f.rec.Config {
			t.Errorf("berth pull %s: config %s, want %s", c.transport, got.Config, f.rec.Config)
		}
		compareTrees(t, "berth pull "+c.transport, f.tree("web"), f.tree(c.machine))
	}
}

// TestExportDockerMediaTypes: an image pulled with Docker's media types
// (much of Docker Hub) keeps them, and so its digest, in the layout.
func TestExportDockerMediaTypes(t *testing.T) {
	requireExportTool(t, "skopeo")
	f := newExportFixture(t)
	ref := pushTestImage(t, f.host, "apps/docker:1", "app", "v1", "etc/conf", "x=1")
	f.berthOK(t, "pull", "-q", "--name", "dk", ref)
	rec := f.record(t, "dk")
	if rec.ManifestMediaType != types.DockerManifestSchema2 {
		t.Fatalf("test image has media type %s", rec.ManifestMediaType)
	}
	layout := filepath.Join(t.TempDir(), "layout")
	f.berthOK(t, "export", "dk", "-o", layout+"/")
	// skopeo 1.9 finds a Docker-typed manifest in a layout only untagged.
	var insp struct{ Digest string }
	if err := json.Unmarshal([]byte(runTool(t, "skopeo", "inspect", "oci:"+layout)), &insp); err != nil || insp.Digest != rec.Manifest.String() {
		t.Errorf("skopeo inspect oci:%s: %q %v, want %s", layout, insp.Digest, err, rec.Manifest)
	}
	f.berthOK(t, "pull", "-q", "--name", "dk-copy", "oci:"+layout)
	if got := f.record(t, "dk-copy"); got.Manifest != rec.Manifest || got.ManifestMediaType != rec.ManifestMediaType {
		t.Errorf("re-pulled %s (%s), want %s", got.Manifest, got.ManifestMediaType, rec.Manifest)
	}
	compareTrees(t, "docker media types", f.tree("dk"), f.tree("dk-copy"))
}

// shiftTree chowns the tree at root into the UID range at base, as
// nspawn's PrivateUsersOwnership=chown does: every owner N becomes base+N;
// setuid bits and file capabilities (which chown clears) are put back.
func shiftTree(t *testing.T, root string, base uint32) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Uid >= base {
			return nil // a second name of a hard-linked inode
		}
		capb := make([]byte, 64)
		n, capErr := unix.Lgetxattr(p, "security.capability", capb)
		if err := unix.Lchown(p, int(base+st.Uid), int(base+st.Gid)); err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
				return err
			}
		}
		if capErr == nil {
			return unix.Lsetxattr(p, "security.capability", capb[:n], 0)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type tarHeader struct {
	Name, Linkname   string
	Type             byte
	Mode             int64
	UID, GID         int
	Size             int64
	MTime            int64
	Major, Minor     int64
	PAX              map[string]string
	Content          string
	Xattr, ZeroXattr bool
}

func tarHeaders(t *testing.T, r io.Reader) []tarHeader {
	t.Helper()
	tr := tar.NewReader(r)
	var out []tarHeader
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, tarHeader{Name: h.Name, Linkname: h.Linkname, Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid,
			Size: h.Size, MTime: h.ModTime.UnixNano(), Major: h.Devmajor, Minor: h.Devminor, PAX: h.PAXRecords, Content: string(b)})
	}
}

// TestExportTreeShifted: the tar of a machine whose tree nspawn chowned
// into a UID range has the container's owners — exactly the tar of the
// same tree before the shift.
func TestExportTreeShifted(t *testing.T) {
	f := newExportFixture(t)
	// A socket is skipped, with a warning naming it.
	if err := unix.Mknod(filepath.Join(f.tree("web"), "run/app.sock"), unix.S_IFSOCK|0o755, 0); err != nil {
		t.Fatal(err)
	}
	before, errOut := f.berthOK(t, "export", "web")
	if !strings.Contains(errOut, "berth: warning: skipping socket /run/app.sock") {
		t.Errorf("no warning about the socket: %q", errOut)
	}
	want := tarHeaders(t, strings.NewReader(before))
	byName := map[string]tarHeader{}
	for _, h := range want {
		byName[h.Name] = h
	}
	if h := byName["home/app/data"]; h.UID != 1000 || h.GID != 1000 || h.Content != "app data\n" || h.PAX["SCHILY.xattr.user.mime_type"] != "text/plain" {
		t.Errorf("home/app/data: %+v", h)
	}
	if h := byName["bin/tool2"]; h.Type != tar.TypeLink || h.Linkname != "bin/tool" {
		t.Errorf("bin/tool2: %+v", h)
	}
	if h := byName["bin/su"]; h.Mode != 0o4755 || h.UID != 0 {
		t.Errorf("bin/su: %+v", h)
	}
	if h := byName["bin/tool"]; h.PAX["SCHILY.xattr.security.capability"] != capNetRaw {
		t.Errorf("bin/tool lost its capability: %+v", h)
	}
	if h := byName["dev/null"]; h.Type != tar.TypeChar || h.Major != 1 || h.Minor != 3 {
		t.Errorf("dev/null: %+v", h)
	}
	if h := byName["run/fifo"]; h.Type != tar.TypeFifo || h.Mode != 0o620 {
		t.Errorf("run/fifo: %+v", h)
	}
	if _, ok := byName["run/app.sock"]; ok {
		t.Error("the socket was archived")
	}

	const base = 0x5E0000 // a range nspawn could pick
	shiftTree(t, f.tree("web"), base)
	var st unix.Stat_t
	unix.Lstat(filepath.Join(f.tree("web"), "home/app/data"), &st)
	if st.Uid != base+1000 {
		t.Fatalf("tree not shifted: data owned by %d", st.Uid)
	}
	zst := filepath.Join(t.TempDir(), "web.tar.zst")
	f.berthOK(t, "export", "web", "-o", zst)
	fh, err := os.Open(zst)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	zr, err := zstd.NewReader(fh)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := tarHeaders(t, zr)
	if len(got) != len(want) {
		t.Fatalf("%d entries after the shift, %d before", len(got), len(want))
	}
	for i := range want {
		jw, _ := json.Marshal(want[i])
		jg, _ := json.Marshal(got[i])
		if !bytes.Equal(jw, jg) {
			t.Errorf("entry %d differs after the shift:\nbefore %s\nafter  %s", i, jw, jg)
		}
	}
}

// TestExportTarReimports: the tar of a shifted machine, imported again
// with `berth import`, gives the tree the image had before nspawn's chown.
func TestExportTarReimports(t *testing.T) {
	f := newExportFixture(t)
	f.berthOK(t, "pull", "-q", "--name", "shifted", f.ref)
	shiftTree(t, f.tree("shifted"), 0x7FFE0000)
	for _, file := range []string{"web.tar", "web.tar.zst"} {
		out := filepath.Join(t.TempDir(), file)
		f.berthOK(t, "export", "shifted", "-o", out)
		machine := "imp-" + strings.ReplaceAll(file, ".", "-")
		if _, errOut, code := runBerth(t, f.dirs, "import", "-q", "--name", machine, out); code != 0 {
			if strings.Contains(errOut, "unknown command") {
				t.Skipf("no berth import here: %s", errOut)
			}
			t.Fatalf("berth import %s: %s", file, errOut)
		}
		compareTrees(t, "export "+file+" | import", f.tree("web"), f.tree(machine))
	}
}

// TestExportCreatedMachine: a machine made by `berth create NAME IMAGE`
// exports its own tree, and IMAGE's image.
func TestExportCreatedMachine(t *testing.T) {
	f := newExportFixture(t)
	initBin := filepath.Join(t.TempDir(), "berth-init")
	if err := os.WriteFile(initBin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.dirs["BERTH_INIT"] = initBin
	sys := fakeHost(t, f.dirs, false)
	sys.realCommands = true // the copy of the tree
	if _, errOut, code := sys.berth(t, "create", "web-1", "web"); code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	if err := os.WriteFile(filepath.Join(f.tree("web-1"), "etc/only-in-web-1"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := sys.berth(t, "export", "web-1")
	if code != 0 {
		t.Fatalf("export web-1: %d %s", code, errOut)
	}
	if !strings.Contains(tarNames(t, out), "etc/only-in-web-1\n") {
		t.Error("the export of web-1 is not web-1's tree")
	}
	layout := filepath.Join(t.TempDir(), "l")
	if _, errOut, code := sys.berth(t, "export", "web-1", "-o", layout+"/"); code != 0 {
		t.Fatalf("export web-1 -o DIR/: %d %s", code, errOut)
	}
	idx, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	if !strings.Contains(string(idx), f.rec.Manifest.String()) {
		t.Errorf("the layout of web-1 is not web's image: %s", idx)
	}
}

func tarNames(t *testing.T, tarball string) string {
	var b strings.Builder
	for _, h := range tarHeaders(t, strings.NewReader(tarball)) {
		b.WriteString(h.Name + "\n")
	}
	return b.String()
}

// openTestPTY returns the two ends of a new pseudo-terminal.
func openTestPTY(t *testing.T) *os.File {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestExportRefusals(t *testing.T) {
	f := newExportFixture(t)
	d := t.TempDir()
	tty := openTestPTY(t)
	for _, args := range [][]string{{"export", "web"}, {"export", "web", "-o", "-"}, {"export", "web", "--format", "docker-archive"}} {
		var errb bytes.Buffer
		code := Main(context.Background(), Env{Args: args, Stdout: tty, Stderr: &errb, Getenv: func(k string) string { return f.dirs[k] }})
		if code == 0 || !strings.Contains(errb.String(), "refusing to write") || !strings.Contains(errb.String(), "terminal") {
			t.Errorf("berth %v to a terminal: exit %d %q", args, code, errb.String())
		}
	}

	full := filepath.Join(d, "full")
	os.Mkdir(full, 0o755)
	os.WriteFile(filepath.Join(full, "keep"), []byte("mine"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "web", "--format", "oci"}, "oci writes a directory"},
		{[]string{"export", "web", "-o", filepath.Join(d, "image")}, "pass --format"},
		{[]string{"export", "web", "--format", "zip", "-o", filepath.Join(d, "x.zip")}, `unknown format "zip"`},
		{[]string{"export", "web", "-o", full}, "not empty"},
		{[]string{"export", "web", "--format", "tar", "-o", full}, "is a directory"},
		{[]string{"export", "nope", "-o", filepath.Join(d, "nope.tar")}, "no such machine"},
		{[]string{"push", "nope", f.host + "/x:1"}, "no such machine"},
		{[]string{"push", "web", "oci:" + filepath.Join(d, "l")}, "not a registry reference"},
	} {
		if out, errOut, code := runBerth(t, f.dirs, c.args...); code == 0 || out != "" || !strings.Contains(errOut, c.want) {
			t.Errorf("berth %v: exit %d stdout %q stderr %q, want an error containing %q", c.args, code, out, errOut, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(full, "keep")); string(b) != "mine" {
		t.Error("the refused export touched the directory")
	}
	if ents, _ := os.ReadDir(d); len(ents) != 1 {
		t.Errorf("refused exports left files: %v", ents)
	}

	// A blob gone from the store: the error names it and the fix.
	gone := f.rec.Layers[1].Digest
	if err := os.Remove(store.At(f.dirs["BERTH_ROOT"]).BlobPath(gone)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"export", "web", "-o", filepath.Join(d, "web.oci.tar")}, {"push", "web", f.host + "/apps/copy:1"}} {
		_, errOut, code := runBerth(t, f.dirs, args...)
		if code == 0 || !strings.Contains(errOut, "layer 2 "+gone.String()) || !strings.Contains(errOut, "`berth pull --name web "+f.ref+"` restores it") {
			t.Errorf("berth %v with a missing blob: exit %d %q", args, code, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(d, "web.oci.tar")); err == nil {
		t.Error("a failed export left its output")
	}
}

// TestPushRoundTrip: push to a registry, pull the pushed reference: the
// same manifest digest, printed by push.
func TestPushRoundTrip(t *testing.T) {
	f := newExportFixture(t)
	ref := f.host + "/mirror/web:copy"
	out, errOut := f.berthOK(t, "push", "web", ref)
	want := f.host + "/mirror/web@" + f.rec.Manifest.String()
	if strings.TrimSpace(out) != want || !strings.Contains(errOut, "pushed web to "+ref) {
		t.Errorf("push: stdout %q stderr %q, want %s", out, errOut, want)
	}
	f.berthOK(t, "pull", "-q", "--name", "pushed", ref)
	if got := f.record(t, "pushed"); got.Manifest != f.rec.Manifest || got.Config != f.rec.Config {
		t.Errorf("pulled back %s, pushed %s", got.Manifest, f.rec.Manifest)
	}
	compareTrees(t, "push", f.tree("web"), f.tree("pushed"))
	// By the digest push printed, too.
	f.berthOK(t, "pull", "-q", "--name", "by-digest", strings.TrimSpace(out))
	if got := f.record(t, "by-digest"); got.Manifest != f.rec.Manifest {
		t.Errorf("pull by digest: %s", got.Manifest)
	}
}

// TestExportInterrupted: ^C during an export leaves neither the output nor
// a temporary file. It runs the real binary, which turns SIGINT into a
// cancelled context as the CLI does.
func TestExportInterrupted(t *testing.T) {
	f := newExportFixture(t)
	bin := filepath.Join(t.TempDir(), "berth")
	if b, err := exec.Command("go", "build", "-o", bin, "../../cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, b)
	}
	// A large sparse file keeps the export busy for seconds.
	big, err := os.Create(filepath.Join(f.tree("web"), "big"))
	if err != nil {
		t.Fatal(err)
	}
	big.Truncate(16 << 30)
	big.Close()
	d := t.TempDir()
	out := filepath.Join(d, "web.tar.zst")
	cmd := exec.Command(bin, "export", "web", "-o", out)
	cmd.Env = append(os.Environ(), "BERTH_ROOT="+f.dirs["BERTH_ROOT"], "BERTH_MACHINES_DIR="+f.dirs["BERTH_MACHINES_DIR"])
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the temporary output exists and has grown.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(d)
		if len(ents) == 1 {
			if fi, err := ents[0].Info(); err == nil && fi.Size() > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the export never started writing: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err = cmd.Wait()
	if err == nil {
		t.Fatalf("the export finished despite SIGINT (make the sparse file bigger): %s", errb.String())
	}
	if !strings.Contains(errb.String(), "context canceled") {
		t.Errorf("stderr %q", errb.String())
	}
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Errorf("an interrupted export left %s", ents[0].Name())
	}
}
