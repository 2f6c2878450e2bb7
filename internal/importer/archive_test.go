package importer

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-sh/berth/internal/store"
)

// testImage is a one-layer linux/amd64 image holding /id with content id.
func testImage(t *testing.T, id string) v1.Image {
	t.Helper()
	tb := mkTar(t, dir("etc/"), file("id", id))
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/" + id}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func amd64(o *Options) { o.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"} }

// TestImportDockerArchiveFromSkopeo: skopeo writes a docker-archive of an
// OCI layout with two tags; import picks it by either.
func TestImportDockerArchiveFromSkopeo(t *testing.T) {
	requireTool(t, "skopeo")
	d := t.TempDir()
	lp, err := layout.Write(filepath.Join(d, "layout"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(testImage(t, "web")); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(d, "web.tar")
	out, err := exec.Command("skopeo", "--insecure-policy", "copy", "--additional-tag", "example.com/tools/web:2",
		"oci:"+filepath.Join(d, "layout"), "docker-archive:"+archive+":example.com/apps/web:1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	gz := filepath.Join(d, "web-archive.bin")
	os.WriteFile(gz, compress(t, must(os.ReadFile(archive)), compZstd), 0o644)
	e := newEnv(t)
	res := e.mustImport(t, archive+":example.com/tools/web:2", amd64)
	if res.Format != FormatDockerArchive || res.Record.Name != "web" || e.read(t, "web", "id") != "web" {
		t.Errorf("format %s name %s", res.Format, res.Record.Name)
	}
	if res.Record.Reference != archive+":example.com/tools/web:2" {
		t.Errorf("reference %q", res.Record.Reference)
	}
	// Compressed, the only image without a tag.
	res = e.mustImport(t, gz, amd64, func(o *Options) { o.Name = "web-zst" })
	if res.Compression != compZstd || e.read(t, "web-zst", "id") != "web" {
		t.Errorf("compressed docker archive: %+v", res)
	}
	_, cfg, _ := store.LoadMachine(e.root, "web")
	if cfg.Config.Cmd[0] != "/bin/web" {
		t.Errorf("config not kept: %v", cfg.Config)
	}
}

// TestImportDockerArchiveSeveral: a `docker save` of two images needs a
// choice, by TAG or by --name.
func TestImportDockerArchiveSeveral(t *testing.T) {
	d := t.TempDir()
	archive := filepath.Join(d, "both.tar")
	f, _ := os.Create(archive)
	web, _ := name.NewTag("example.com/apps/web:1")
	db, _ := name.NewTag("db:5")
	if err := tarball.MultiWrite(map[name.Tag]v1.Image{web: testImage(t, "web"), db: testImage(t, "db")}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e := newEnv(t)
	_, err := e.run(t, archive, amd64)
	if err == nil || !strings.Contains(err.Error(), "example.com/apps/web:1") || !strings.Contains(err.Error(), "db:5") {
		t.Fatalf("no choice: %v, want an error listing both tags", err)
	}
	if _, err := e.run(t, archive+":nosuch:1", amd64); err == nil || !strings.Contains(err.Error(), "no image tagged") {
		t.Errorf("unknown tag: %v", err)
	}
	e.assertNothingInstalled(t, false)
	res := e.mustImport(t, archive+":docker.io/library/db:5", amd64)
	if res.Record.Name != "db" || e.read(t, "db", "id") != "db" {
		t.Errorf("by tag: %s", res.Record.Name)
	}
	e.mustImport(t, archive, amd64, func(o *Options) { o.Name = "web" })
	if e.read(t, "web", "id") != "web" {
		t.Error("by --name: wrong image")
	}
}

func TestImportOCIArchive(t *testing.T) {
	d := t.TempDir()
	lp, _ := layout.Write(filepath.Join(d, "layout"), empty.Index)
	lp.AppendImage(testImage(t, "one"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"}))
	lp.AppendImage(testImage(t, "two"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v2"}))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	filepath.Walk(filepath.Join(d, "layout"), func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(filepath.Join(d, "layout"), p)
		if rel == "." {
			return nil
		}
		h, _ := tar.FileInfoHeader(fi, "")
		h.Name = rel
		tw.WriteHeader(h)
		if fi.Mode().IsRegular() {
			tw.Write(must(os.ReadFile(p)))
		}
		return nil
	})
	tw.Close()
	archive := filepath.Join(d, "app.oci.tar.xz")
	os.WriteFile(archive, compress(t, buf.Bytes(), compXz), 0o644)
	e := newEnv(t)
	if _, err := e.run(t, archive, amd64); err == nil {
		t.Error("two images without a tag imported")
	}
	res := e.mustImport(t, archive+":v2", amd64)
	if res.Format != FormatOCIArchive || res.Record.Name != "app" || e.read(t, "app", "id") != "two" {
		t.Errorf("format %s name %s", res.Format, res.Record.Name)
	}
	spool, _ := os.ReadDir(filepath.Join(e.root, "spool"))
	if len(spool) != 0 {
		t.Errorf("spool not empty: %v", spool)
	}
}

// TestImportEscapes runs hostile rootfs tarballs (the layer applier's
// escape attempts, also wrapped for the lift and as an ACI) through import:
// whatever they hold, nothing lands outside the machine's tree.
func TestImportEscapes(t *testing.T) {
	for _, tc := range []struct {
		name string
		ents func(out string) []ent
	}{
		{"dotdot names", func(out string) []ent {
			return []ent{file("../../../../pwn", "x"), file("../outside/secret", "pwned"), dir("../../newdir"), sym("../outside/link", "/etc/shadow")}
		}},
		{"absolute names", func(out string) []ent { return []ent{file(out+"/secret", "pwned"), file("/etc/passwd", "pwned")} }},
		{"write through absolute symlink", func(out string) []ent {
			return []ent{sym("l", out), file("l/secret", "pwned"), file("l/new", "pwned")}
		}},
		{"relative symlink up and out", func(out string) []ent {
			return []ent{sym("up", "../../../../.."), file("up/"+strings.TrimPrefix(out, "/")+"/secret", "pwned"), sym("rel", "../outside"), file("rel/x", "pwned")}
		}},
		{"hardlink out of root", func(out string) []ent {
			return []ent{hard("h1", "../outside/secret"), hard("h2", out+"/secret"), hard("h3", "/etc/passwd")}
		}},
		{"hardlink through symlinked dir then write", func(out string) []ent {
			return []ent{sym("l", out), hard("h", "l/secret"), file("h", "replaced")}
		}},
		{"proc magic link", func(out string) []ent {
			return []ent{sym("p", "/proc/self/root"+out), file("p/secret", "pwned")}
		}},
		{"symlink loop", func(out string) []ent { return []ent{sym("x", "y"), sym("y", "x"), file("x/f", "loop")} }},
	} {
		for _, wrap := range []string{"", "lift", "aci"} {
			t.Run(tc.name+"/"+wrap, func(t *testing.T) {
				sandbox := t.TempDir()
				out := filepath.Join(sandbox, "outside")
				os.MkdirAll(out, 0o755)
				os.WriteFile(filepath.Join(out, "secret"), []byte("secret"), 0o600)
				e := env{root: filepath.Join(sandbox, "berth"), machines: filepath.Join(sandbox, "machines")}
				ents := tc.ents(out)
				switch wrap {
				case "lift":
					ents = wrapEnts("wrapped", ents)
				case "aci":
					ents = append([]ent{file("manifest", `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"x"}`)}, wrapEnts("rootfs", ents)...)
				}
				src := filepath.Join(sandbox, "evil.tar")
				os.WriteFile(src, compress(t, mkTar(t, ents...), compGzip), 0o644)
				before := snapshot(t, sandbox, e.machines)
				passwd := must(os.ReadFile("/etc/passwd"))
				e.run(t, src, func(o *Options) { o.Name = "evil" }) //nolint:errcheck // failing is fine; escaping is not
				if after := snapshot(t, sandbox, e.machines); after != before {
					t.Errorf("import touched files outside the machine tree:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				if !bytes.Equal(passwd, must(os.ReadFile("/etc/passwd"))) {
					t.Fatal("/etc/passwd changed")
				}
			})
		}
	}
}

func wrapEnts(top string, ents []ent) []ent {
	out := []ent{dir(top + "/")}
	for _, e := range ents {
		e.name = top + "/" + strings.TrimPrefix(e.name, "/")
		if e.typ == tar.TypeLink && !strings.HasPrefix(e.body, "/") {
			e.body = top + "/" + e.body
		}
		out = append(out, e)
	}
	return out
}

// snapshot lists every file under dir except the machines directory and
// berth's store (which the import may change), with content and mode.
func snapshot(t *testing.T, dir, machines string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if p == machines || p == filepath.Join(dir, "berth") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(p, "evil.tar") {
			return nil
		}
		b.WriteString(p + " " + fi.Mode().String())
		if fi.Mode().IsRegular() {
			b.WriteString(" " + string(must(os.ReadFile(p))))
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
