package decl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// layoutNames are image names as layouts have them: reverse-DNS names
// with tags, paths, every separator the ref grammar allows, and strings
// that differ only where escaping could merge them.
var layoutNames = []string{
	"org.example.app:1.0", "org.example.app:1.0.1", "org.example/app:1.0", "org.example-app:1.0",
	"library/nginx", "library-nginx", "library\\x2dnginx", "a--b", "a-/b", "a/-b", "v1", "V1",
	".hidden", "1.0", "name@sha", "a+b", "a b", "ä", "x:y:z", "_under", "a.-b",
}

// TestEscapeUnitNameRoundTrip: every name comes back unchanged, and no two
// escape alike.
func TestEscapeUnitNameRoundTrip(t *testing.T) {
	seen := map[string]string{}
	for _, layout := range []string{"apps", "my-apps", "a.b"} {
		for _, ref := range layoutNames {
			u := LayoutUnit(layout, ref)
			if !validUnitName(u) {
				t.Errorf("LayoutUnit(%q, %q) = %q: not a valid unit name", layout, ref, u)
			}
			l, r, ok := ParseLayoutUnit(u)
			if !ok || l != layout || r != ref {
				t.Errorf("ParseLayoutUnit(%q) = %q, %q, %v; want %q, %q", u, l, r, ok, layout, ref)
			}
			if o, dup := seen[u]; dup {
				t.Errorf("%s/%s and %s share unit %s", layout, ref, o, u)
			}
			seen[u] = layout + "/" + ref
		}
	}
	for _, bad := range []string{"berth-oci@x\\x2.service", "berth-oci@x\\q00.service", "other@x.service", "berth-oci@x"} {
		if _, _, ok := ParseLayoutUnit(bad); ok {
			t.Errorf("ParseLayoutUnit(%q) accepted", bad)
		}
	}
}

// TestEscapeUnitNameMatchesSystemd: the escaping is systemd's own, so
// `systemd-escape -u --instance` gives layout and name back.
func TestEscapeUnitNameMatchesSystemd(t *testing.T) {
	tool, err := exec.LookPath("systemd-escape")
	if err != nil {
		t.Skip("systemd-escape not installed")
	}
	for _, ref := range layoutNames {
		s := "apps/" + ref
		out, err := exec.Command(tool, "--", s).Output()
		if err != nil {
			t.Fatalf("systemd-escape %q: %v", s, err)
		}
		if got, want := EscapeUnitName(s), strings.TrimSuffix(string(out), "\n"); got != want {
			t.Errorf("EscapeUnitName(%q) = %q, systemd-escape says %q", s, got, want)
		}
		u := LayoutUnit("apps", ref)
		out, err = exec.Command(tool, "-u", "--instance", u).Output()
		if err != nil || strings.TrimSuffix(string(out), "\n") != s {
			t.Errorf("systemd-escape -u --instance %s = %q, %v; want %q", u, out, err, s)
		}
	}
}

// TestLoadLayouts: each layout directory's index.json is read (the first
// search directory holding a name wins), unnamed manifests are skipped,
// a directory without index.json is not a layout, a broken index is a
// finding.
func TestLoadLayouts(t *testing.T) {
	idx := func(names ...string) *fstest.MapFile {
		var ms []string
		for _, n := range names {
			ms = append(ms, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,"annotations":{"org.opencontainers.image.ref.name":"`+n+`"}}`)
		}
		ms = append(ms, `{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:01","size":1}`)
		return &fstest.MapFile{Data: []byte(`{"schemaVersion":2,"manifests":[` + strings.Join(ms, ",") + `]}`)}
	}
	fsys := fstest.MapFS{
		"first/apps/index.json":    idx("org.example.app:1.0", "org.example.app:1.1"),
		"second/apps/index.json":   idx("shadowed"),
		"second/tools/index.json":  idx("tool"),
		"second/notes/README":      {Data: []byte("not a layout")},
		"second/broken/index.json": {Data: []byte("{")},
	}
	layouts, fnd := LoadLayouts([]string{"first", "second", "missing"}, mapDir{fsys})
	if len(layouts) != 2 || layouts[0].Name != "apps" || len(layouts[0].Refs) != 2 || layouts[1].Name != "tools" || layouts[1].Refs[0] != "tool" {
		t.Errorf("layouts = %+v", layouts)
	}
	if len(fnd) != 1 || !strings.Contains(fnd[0].String(), "second/broken/index.json") {
		t.Errorf("findings = %v", fnd)
	}
}

// mapDir is a Dir over an fstest.MapFS.
type mapDir struct{ fsys fstest.MapFS }

func (d mapDir) ReadDir(name string) ([]os.DirEntry, error) { return d.fsys.ReadDir(name) }
func (d mapDir) ReadFile(name string) ([]byte, error)       { return d.fsys.ReadFile(name) }

// TestLayoutUnits: one machine per image name, named so that layout and
// name come back from the unit; a name listed twice is refused, the
// others still get their units.
func TestLayoutUnits(t *testing.T) {
	g := &gen{inputs: map[string]Input{}}
	g.opts.fill()
	g.layout(Layout{Name: "apps", Dir: "/var/lib/berth/layouts/apps", Refs: []string{"org.example.app:1.0", "library/app", "twice", "twice"}})
	g.layout(Layout{Name: "bad:name", Dir: "/srv/bad:name", Refs: []string{"x"}})
	machines := map[string]bool{}
	for _, k := range g.reg.containers {
		layout, ref, ok := ParseLayoutUnit(k.service)
		if !ok || layout != "apps" || g.reg.layoutTags[k.in.Name] != ref {
			t.Errorf("unit %s: %q %q %v, tag %q", k.service, layout, ref, ok, g.reg.layoutTags[k.in.Name])
		}
		if machines[k.spec.Name] || !strings.HasPrefix(k.spec.Name, "oci-apps-") || len(k.spec.Name) > 63 {
			t.Errorf("machine %q", k.spec.Name)
		}
		machines[k.spec.Name] = true
		if k.image != "oci:/var/lib/berth/layouts/apps" || k.links.pull.policy != "always" {
			t.Errorf("%s: image %q, pull %q", k.service, k.image, k.links.pull.policy)
		}
	}
	if len(g.reg.containers) != 2 {
		t.Errorf("%d units, want 2 (twice is refused)", len(g.reg.containers))
	}
	var msgs []string
	for _, f := range g.findings {
		msgs = append(msgs, f.String())
	}
	if all := strings.Join(msgs, "\n"); !strings.Contains(all, `"twice" is in the index 2 times`) || !strings.Contains(all, "path has ':'") {
		t.Errorf("findings:\n%s", all)
	}
}

// TestLayoutPath: $BERTH_LAYOUT_DIRS replaces the default, as
// $BERTH_UNIT_DIRS does for declarations.
func TestLayoutPath(t *testing.T) {
	env := map[string]string{"BERTH_LAYOUT_DIRS": "/a:/b"}
	if got := LayoutPath(func(k string) string { return env[k] }); len(got) != 2 || got[1] != "/b" {
		t.Errorf("LayoutPath = %v", got)
	}
	if got := LayoutPath(func(string) string { return "" }); got[0] != filepath.Join("/var/lib/berth", "layouts") {
		t.Errorf("default LayoutPath = %v", got)
	}
}
