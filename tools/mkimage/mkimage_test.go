package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"
)

// startRegistry runs an in-memory registry and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func mkimage(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return strings.TrimSpace(stdout.String()), err
}

func mustMkimage(t *testing.T, args ...string) string {
	t.Helper()
	out, err := mkimage(t, args...)
	if err != nil {
		t.Fatalf("mkimage %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	return img
}

// listing renders a layer's tar entries one per line, in stream order.
func listing(t *testing.T, l v1.Layer) string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return listTar(t, rc)
}

func listTar(t *testing.T, r io.Reader) string {
	t.Helper()
	var b strings.Builder
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%c %s %d:%d %o", h.Typeflag, h.Name, h.Uid, h.Gid, h.Mode)
		switch h.Typeflag {
		case tar.TypeSymlink, tar.TypeLink:
			fmt.Fprintf(&b, " -> %s", h.Linkname)
		case tar.TypeReg:
			fmt.Fprintf(&b, " %q", body)
		case tar.TypeChar:
			fmt.Fprintf(&b, " %d,%d", h.Devmajor, h.Devminor)
		}
		var xattrs []string
		for k, v := range h.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				xattrs = append(xattrs, strings.TrimPrefix(k, "SCHILY.xattr.")+"="+v)
			}
		}
		sort.Strings(xattrs)
		for _, x := range xattrs {
			b.WriteString(" " + x)
		}
		b.WriteString("\n")
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// sampleTree builds a small tree with every entry type a directory layer
// must carry, owned by uid/gid 1000 where we are allowed to chown.
func sampleTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "etc/hostname"), "box\n", 0o644)
	writeFile(t, filepath.Join(root, "bin/tool"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(root, "a.b"), "dot", 0o600)
	writeFile(t, filepath.Join(root, "a/z"), "in a", 0o644)
	writeFile(t, filepath.Join(root, "dev/skipme"), "x", 0o644)
	if err := os.Symlink("../etc/hostname", filepath.Join(root, "bin/link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "bin/tool"), filepath.Join(root, "bin/tool2")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1767225600, 0)
	err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, 1000, 1000); err != nil {
				return err
			}
		}
		return unix.Lutimes(p, []unix.Timeval{unix.NsecToTimeval(mtime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())})
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestDirLayerDeterministicWithMarkers(t *testing.T) {
	reg := startRegistry(t)
	root := sampleTree(t)
	args := []string{"image", "--layer", "dir:" + root + "/", "--exclude", "dev/*", "--chown", "0:0",
		"--whiteout", "/usr/share/doc", "--opaque", "etc", "--push", reg + "/t:1"}
	d1 := mustMkimage(t, args...)
	args[len(args)-1] = reg + "/t:2"
	d2 := mustMkimage(t, args...)
	if d1 != d2 {
		t.Errorf("rebuild changed the digest: %s then %s", d1, d2)
	}
	img := pull(t, reg+"/t:1")
	if got, _ := img.Digest(); got.String() != d1 {
		t.Errorf("printed digest %s, registry has %s", d1, got)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %v", layers, err)
	}
	want := `5 a/ 0:0 755
0 a/z 0:0 644 "in a"
0 a.b 0:0 600 "dot"
5 bin/ 0:0 755
2 bin/link 0:0 777 -> ../etc/hostname
0 bin/tool 0:0 755 "#!/bin/sh\n"
1 bin/tool2 0:0 755 -> bin/tool
5 dev/ 0:0 755
5 etc/ 0:0 755
0 etc/.wh..wh..opq 0:0 644 ""
0 etc/hostname 0:0 644 "box\n"
6 fifo 0:0 640
0 usr/share/.wh.doc 0:0 644 ""
`
	if got := listing(t, layers[0]); got != want {
		t.Errorf("layer entries:\n%s\nwant:\n%s", got, want)
	}
	mt, _ := layers[0].MediaType()
	if mt != types.OCILayer {
		t.Errorf("layer media type %s, want %s", mt, types.OCILayer)
	}
}

func TestDirLayerKeepsOwnersAndMtimes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown the sample tree")
	}
	reg := startRegistry(t)
	root := sampleTree(t)
	mustMkimage(t, "image", "--layer", "dir:"+root, "--push", reg+"/t:owners")
	layers, err := pull(t, reg+"/t:owners").Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		if h.Uid != 1000 || h.Gid != 1000 || h.ModTime.Unix() != 1767225600 {
			t.Errorf("%s: owner %d:%d mtime %d, want 1000:1000 and 1767225600", h.Name, h.Uid, h.Gid, h.ModTime.Unix())
		}
	}
	if n != 12 {
		t.Errorf("got %d entries, want 12", n)
	}
}

func TestConfigFlags(t *testing.T) {
	reg := startRegistry(t)
	mustMkimage(t, "image", "--layer", "empty", "--push", reg+"/cfg:1",
		"--entrypoint", `["/bin/tini","--"]`, "--cmd", "echo hi",
		"--env", "A=1", "--env", "B=x=y", "--workdir", "/srv", "--user", "1000:1000",
		"--stop-signal", "SIGINT", "--expose", "80", "--expose", "53/udp",
		"--volume", "/data", "--label", "k=v", "--health-cmd", "curl -f localhost",
		"--health-interval", "5s", "--health-retries", "3", "--platform", "linux/arm64/v8")
	cf, err := pull(t, reg+"/cfg:1").ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint:   []string{"/bin/tini", "--"},
		Cmd:          []string{"/bin/sh", "-c", "echo hi"},
		Env:          []string{"A=1", "B=x=y"},
		WorkingDir:   "/srv",
		User:         "1000:1000",
		StopSignal:   "SIGINT",
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"k": "v"},
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Retries: 3},
	}
	if !reflect.DeepEqual(cf.Config, want) {
		t.Errorf("config:\n%+v\nwant:\n%+v", cf.Config, want)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("platform %s/%s/%s, want linux/arm64/v8", cf.OS, cf.Architecture, cf.Variant)
	}
	if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 {
		t.Errorf("rootfs %v history %v: want one layer each", cf.RootFS.DiffIDs, cf.History)
	}
}

func TestCompressions(t *testing.T) {
	reg := startRegistry(t)
	root := sampleTree(t)
	for _, tc := range []struct {
		compression string
		docker      bool
		want        types.MediaType
		manifest    types.MediaType
	}{
		{"gzip", false, types.OCILayer, types.OCIManifestSchema1},
		{"zstd", false, types.OCILayerZStd, types.OCIManifestSchema1},
		{"none", false, types.OCIUncompressedLayer, types.OCIManifestSchema1},
		{"gzip", true, types.DockerLayer, types.DockerManifestSchema2},
	} {
		ref := fmt.Sprintf("%s/c:%s-%v", reg, tc.compression, tc.docker)
		args := []string{"image", "--layer", "dir:" + root, "--chown", "0:0", "--compression", tc.compression, "--push", ref}
		if tc.docker {
			args = append(args, "--docker")
		}
		mustMkimage(t, args...)
		img := pull(t, ref)
		if mt, _ := img.MediaType(); mt != tc.manifest {
			t.Errorf("%s: manifest media type %s, want %s", ref, mt, tc.manifest)
		}
		layers, _ := img.Layers()
		if mt, _ := layers[0].MediaType(); mt != tc.want {
			t.Errorf("%s: layer media type %s, want %s", ref, mt, tc.want)
		}
		// The registry serves exactly the blob whose digest the manifest
		// names; decompressing it must give the diff ID's tar.
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		blob, _ := io.ReadAll(rc)
		rc.Close()
		tmp := filepath.Join(t.TempDir(), "blob")
		if err := os.WriteFile(tmp, blob, 0o644); err != nil {
			t.Fatal(err)
		}
		plain, err := openMaybeCompressed(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if got := listTar(t, plain); !strings.Contains(got, "bin/tool2 0:0 755 -> bin/tool") {
			t.Errorf("%s: blob does not hold the tree:\n%s", ref, got)
		}
		plain.Close()
	}
	if _, err := mkimage(t, "image", "--layer", "dir:"+root, "--compression", "zstd", "--docker", "--push", reg+"/c:bad"); err == nil {
		t.Error("zstd with Docker media types was accepted")
	}
}

// rawTar builds a tar by hand, including an entry a tidy writer would never
// produce, so passthrough must keep it byte for byte.
func rawTar(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeReg, Name: "../escape", Mode: 0o644, Size: 4},
		{Typeflag: tar.TypeSymlink, Name: "zz", Linkname: "/etc"},
		{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o644, Size: 4},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("data"))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestTarSource(t *testing.T) {
	reg := startRegistry(t)
	raw := rawTar(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	src := filepath.Join(t.TempDir(), "in.tar.gz")
	if err := os.WriteFile(src, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}

	mustMkimage(t, "image", "--layer", "tar:"+src, "--compression", "zstd", "--push", reg+"/tar:raw")
	layers, _ := pull(t, reg+"/tar:raw").Layers()
	rc, _ := layers[0].Uncompressed()
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, raw) {
		t.Errorf("passthrough changed the tar: %d bytes in, %d out", len(raw), len(got))
	}

	mustMkimage(t, "image", "--layer", "tar:"+src, "--exclude", "d", "--whiteout", "old", "--push", reg+"/tar:edited")
	layers, _ = pull(t, reg+"/tar:edited").Layers()
	// Source order stays (zz before the marker), which sorting would change.
	want := `0 ../escape 0:0 644 "data"
2 zz 0:0 0 -> /etc
0 .wh.old 0:0 644 ""
`
	if got := listing(t, layers[0]); got != want {
		t.Errorf("edited tar:\n%s\nwant:\n%s", got, want)
	}
}

func TestOverlaySource(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for 0:0 character devices and trusted.* xattrs")
	}
	reg := startRegistry(t)
	up := t.TempDir()
	writeFile(t, filepath.Join(up, "etc/new"), "n", 0o644)
	if err := unix.Mknod(filepath.Join(up, "etc/gone"), unix.S_IFCHR|0o000, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(up, "opq"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(up, "opq"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("filesystem of %s lacks trusted xattrs: %v", up, err)
	}
	if err := unix.Setxattr(filepath.Join(up, "etc/new"), "user.note", []byte("kept"), 0); err != nil {
		t.Skipf("filesystem of %s lacks user xattrs: %v", up, err)
	}
	mustMkimage(t, "image", "--layer", "overlay:"+up, "--chown", "0:0", "--push", reg+"/ovl:1")
	layers, _ := pull(t, reg+"/ovl:1").Layers()
	want := `5 etc/ 0:0 755
0 etc/.wh.gone 0:0 644 ""
0 etc/new 0:0 644 "n" user.note=kept
5 opq/ 0:0 755
0 opq/.wh..wh..opq 0:0 644 ""
`
	if got := listing(t, layers[0]); got != want {
		t.Errorf("overlay layer:\n%s\nwant:\n%s", got, want)
	}

	// As a plain directory the same tree keeps the device: only the
	// overlay kind gives 0:0 devices whiteout meaning.
	mustMkimage(t, "image", "--layer", "dir:"+up, "--chown", "0:0", "--push", reg+"/ovl:dir")
	layers, _ = pull(t, reg+"/ovl:dir").Layers()
	if got := listing(t, layers[0]); !strings.Contains(got, "3 etc/gone 0:0 0 0,0") || strings.Contains(got, ".wh.") {
		t.Errorf("dir layer of an overlay tree:\n%s", got)
	}
}

func TestIndexAndLayout(t *testing.T) {
	reg := startRegistry(t)
	for _, p := range []string{"linux/amd64", "linux/arm64/v8"} {
		mustMkimage(t, "image", "--layer", "empty", "--whiteout", "x", "--platform", p, "--push", reg+"/multi:"+strings.ReplaceAll(p, "/", "-"))
	}
	dir := t.TempDir() + "/layout"
	digest := mustMkimage(t, "index", "--image", reg+"/multi:linux-amd64", "--image", reg+"/multi:linux-arm64-v8",
		"--push", reg+"/multi:latest", "--layout", dir)
	ref, _ := name.ParseReference(reg+"/multi:latest", name.Insecure)
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := idx.Digest(); d.String() != digest {
		t.Errorf("printed digest %s, registry has %s", digest, d)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var plats []string
	for _, m := range im.Manifests {
		plats = append(plats, m.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64/v8"}; !reflect.DeepEqual(plats, want) {
		t.Errorf("index platforms %v, want %v", plats, want)
	}

	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := lp.ImageIndex()
	tm, _ := top.IndexManifest()
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest.String() != digest || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "latest" {
		t.Errorf("layout index.json: %+v", tm.Manifests)
	}
}

func TestFlagErrors(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "--whiteout", "x", "--layer", "empty", "--push", reg + "/e:1"}, "give a --layer before it"},
		{[]string{"image", "--layer", "dir:" + dir, "--expose", "http", "--push", reg + "/e:1"}, `parse --expose "http"`},
		{[]string{"image", "--layer", "tar:" + dir, "--push", reg + "/e:1"}, "is not a tar source"},
		{[]string{"image", "--layer", "empty", "--opaque", "/", "--push", reg + "/e:1"}, "names the image root"},
		{[]string{"image", "--layer", "empty"}, "nothing to do"},
		{[]string{"image", "--layer", "empty", "--cmd", "[oops", "--push", reg + "/e:1"}, "not a JSON array"},
		{[]string{"frob"}, `unknown subcommand "frob"`},
	} {
		_, err := mkimage(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mkimage %v: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestSortEntries(t *testing.T) {
	names := []string{"a.b", "a/z", "a/", "a/.wh..wh..opq", "a/-x", "b", "a/y/", "a/y/k"}
	var entries []tarEntry
	for _, n := range names {
		entries = append(entries, tarEntry{hdr: &tar.Header{Name: n}})
	}
	sortEntries(entries)
	var got []string
	for _, e := range entries {
		got = append(got, e.hdr.Name)
	}
	want := []string{"a/", "a/.wh..wh..opq", "a/-x", "a/y/", "a/y/k", "a/z", "a.b", "b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}
