package decl

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
)

// OCI image layouts (the seed oci-systemd-generator's role): every layout
// directory under /var/lib/berth/layouts gets one unit per image name
// (org.opencontainers.image.ref.name) in its index.json. The unit is a
// container of that image with every default (the default network, a
// private user range... everything a .container without keys gets), which
// pulls oci:LAYOUT with that name when it starts (always: resolving a local
// layout is a file read, so an updated layout is picked up by a restart).
// The generator only reads index.json: no blob, no unpacking.
//
// The unit is berth-oci@ESCAPED.service, ESCAPED being "LAYOUT/NAME" in
// systemd's unit name escaping (systemd-escape): reversible, so
// `systemd-escape -u --instance berth-oci@….service` gives layout and
// image name back, and two images never share a unit. The machine is
// oci-READABLE-HASH (machine names allow only letters, digits and '-').
// Units are not started at boot: a layout often holds several versions of
// one image; `systemctl add-wants multi-user.target berth-oci@….service`
// starts one at boot.

// DefaultLayoutDirs is where OCI image layouts are looked for.
var DefaultLayoutDirs = []string{"/var/lib/berth/layouts"}

// LayoutPath is $BERTH_LAYOUT_DIRS (colon-separated) or DefaultLayoutDirs.
func LayoutPath(getenv func(string) string) []string {
	if v := getenv("BERTH_LAYOUT_DIRS"); v != "" {
		return strings.FieldsFunc(v, func(r rune) bool { return r == ':' })
	}
	return DefaultLayoutDirs
}

// refNameAnnotation names an image in a layout's index.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Layout is one OCI image layout found on the host.
type Layout struct {
	// Name is the layout's directory name; Dir its path.
	Name, Dir string
	// Refs are the image names in index.json, in its order (a name
	// listed twice is kept twice, to be reported).
	Refs []string
}

// LoadLayouts reads the index.json of every layout directory in dirs (the
// first dir holding a name wins). A directory without index.json is not a
// layout and is skipped; an unreadable index is a finding.
func LoadLayouts(dirs []string, d Dir) ([]Layout, Findings) {
	var out []Layout
	var fnd Findings
	seen := map[string]bool{}
	for _, dir := range dirs {
		ents, err := d.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				fnd = append(fnd, Finding{Severity: Error, Path: dir, Msg: err.Error()})
			}
			continue
		}
		for _, e := range ents {
			if seen[e.Name()] {
				continue
			}
			p := filepath.Join(dir, e.Name(), "index.json")
			b, err := d.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) {
				continue
			}
			seen[e.Name()] = true
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err == nil {
				err = json.Unmarshal(b, &idx)
			}
			if err != nil {
				fnd = append(fnd, Finding{Severity: Error, Path: p, Msg: "read OCI layout index: " + err.Error()})
				continue
			}
			l := Layout{Name: e.Name(), Dir: filepath.Join(dir, e.Name())}
			for _, m := range idx.Manifests {
				if r := m.Annotations[refNameAnnotation]; r != "" {
					l.Refs = append(l.Refs, r)
				}
			}
			out = append(out, l)
		}
	}
	return out, fnd
}

// LayoutUnit is the unit of image ref in layout: berth-oci@ESCAPED.service.
func LayoutUnit(layout, ref string) string {
	return "berth-oci@" + EscapeUnitName(layout+"/"+ref) + ".service"
}

// ParseLayoutUnit is LayoutUnit reversed.
func ParseLayoutUnit(name string) (layout, ref string, ok bool) {
	inst, found := strings.CutPrefix(name, "berth-oci@")
	inst, found2 := strings.CutSuffix(inst, ".service")
	if !found || !found2 {
		return "", "", false
	}
	s, err := UnescapeUnitName(inst)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(s, "/")
}

// layout makes the units of one layout: each image name becomes a
// container declaration of its own, converted as any other.
func (g *gen) layout(l Layout) {
	index := filepath.Join(l.Dir, "index.json")
	count := map[string]int{}
	for _, r := range l.Refs {
		count[r]++
	}
	done := map[string]bool{}
	for _, ref := range l.Refs {
		if done[ref] {
			continue
		}
		done[ref] = true
		name := LayoutUnit(l.Name, ref)
		in := Input{Name: "layout/" + strings.TrimSuffix(name, ".service") + ".container", File: &File{Path: index}}
		c := &conv{gen: g, in: in, base: strings.TrimSuffix(in.Name, ".container")}
		switch {
		case strings.ContainsAny(l.Dir, ":\n"):
			c.fileErr("layout %s: berth pull cannot name a layout whose path has ':'", l.Dir)
		case count[ref] > 1:
			c.fileErr("image name %q is in the index %d times; berth pull would refuse it", ref, count[ref])
		case !validUnitName(name):
			c.fileErr("image name %q: its unit name would be longer than systemd allows", ref)
		}
		if c.failed {
			continue
		}
		machine := "oci-" + label(l.Name+"-"+ref, 50) + "-" + hashHex(8, l.Name, ref)
		in.File.Sections = []*Section{{Name: containerGroup, Entries: []Entry{
			{Key: "Image", Value: "oci:" + l.Dir, Path: index},
			{Key: "ContainerName", Value: machine, Path: index},
			{Key: "ServiceName", Value: strings.TrimSuffix(name, ".service"), Path: index},
			{Key: "Pull", Value: "always", Path: index},
		}}}
		if g.reg.layoutTags == nil {
			g.reg.layoutTags = map[string]string{}
		}
		g.reg.layoutTags[in.Name] = ref
		c.keep(c.container())
	}
}

// label lowercases s and replaces every run of bytes outside [a-z0-9] by
// one '-', trimmed, at most n bytes.
func label(s string, n int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	out := b.String()
	if len(out) > n {
		out = strings.TrimRight(out[:n], "-")
	}
	return cmpOr(out, "image")
}
