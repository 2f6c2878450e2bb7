package pull

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestParseArchiveRefs(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct{ in, ref, name string }{
		{"docker-archive:/srv/a.tar", "docker-archive:/srv/a.tar", "a"},
		{"docker-archive:/srv/all.tar.gz:example.com:5000/team/web:1", "docker-archive:/srv/all.tar.gz:example.com:5000/team/web:1", "web"},
		{"oci-archive:/srv/My_App.oci.tar:v2", "oci-archive:/srv/My_App.oci.tar:v2", "my-app"},
		{"oci-archive:rel.tar", "oci-archive:" + filepath.Join(wd, "rel.tar"), "rel"},
	} {
		r, err := ParseRef(tc.in, false)
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tc.in, err)
			continue
		}
		if r.String() != tc.ref {
			t.Errorf("ParseRef(%q) = %q, want %q", tc.in, r.String(), tc.ref)
		}
		if n, err := DefaultName(r); err != nil || n != tc.name {
			t.Errorf("DefaultName(%q) = %q, %v; want %q", tc.in, n, err, tc.name)
		}
	}
	for _, bad := range []string{"docker-archive:", "oci-archive::v1", "docker-archive:/a.tar:Bad Tag"} {
		if _, err := ParseRef(bad, false); err == nil {
			t.Errorf("ParseRef(%q) succeeded", bad)
		}
	}
}

func TestPullArchiveTransports(t *testing.T) {
	d := t.TempDir()
	one := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "id", "one"), "gzip"))
	two := imageOf(t, "linux/amd64", layerOf(t, tarOf(t, "id", "two"), "none"))

	// docker-archive: two images, chosen by tag.
	da := filepath.Join(d, "both.tar")
	f, _ := os.Create(da)
	t1, _ := name.NewTag("example.com/one:1")
	t2, _ := name.NewTag("two:latest")
	if err := tarball.MultiWrite(map[name.Tag]v1.Image{t1: one, t2: two}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e := newEnv(t)
	if _, err := Pull(t.Context(), e.opts("docker-archive:"+da)); err == nil || !strings.Contains(err.Error(), "two:latest") {
		t.Errorf("untagged pull of a two-image archive: %v", err)
	}
	res := e.pull(t, "docker-archive:"+da+":two")
	if res.Record.Name != "two" || readFile(t, filepath.Join(e.machines, "two", "id")) != "two" {
		t.Errorf("docker-archive: %+v", res.Record)
	}

	// oci-archive: a tarred layout.
	lp, _ := layout.Write(filepath.Join(d, "layout"), empty.Index)
	lp.AppendImage(one, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"}))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	filepath.Walk(filepath.Join(d, "layout"), func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(filepath.Join(d, "layout"), p)
		if rel == "." {
			return nil
		}
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = "./" + rel
		tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	// Entries that are not part of a layout are never unpacked.
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "../../escape", Size: 1, Mode: 0o644})
	tw.Write([]byte("x"))
	tw.Close()
	oa := filepath.Join(d, "app.tar")
	os.WriteFile(oa, buf.Bytes(), 0o644)
	res = e.pull(t, "oci-archive:"+oa+":v1")
	if res.Record.Name != "app" || readFile(t, filepath.Join(e.machines, "app", "id")) != "one" || res.Record.Reference != "oci-archive:"+oa+":v1" {
		t.Errorf("oci-archive: %+v", res.Record)
	}
	if _, err := os.Stat(filepath.Join(d, "escape")); err == nil {
		t.Error("an archive entry escaped")
	}
	if ents, _ := os.ReadDir(SpoolDir(e.root)); len(ents) != 0 {
		t.Errorf("unpacked layout left in the spool: %v", ents)
	}
	// Pulling it again is up to date.
	if again := e.pull(t, "oci-archive:"+oa+":v1"); !again.UpToDate {
		t.Error("re-pull of the same archive was not up to date")
	}
	if _, err := Pull(t.Context(), e.opts("oci-archive:"+da)); err == nil {
		t.Error("a docker archive pulled as oci-archive")
	}
}
