package decl

import (
	"encoding/csv"
	"path"
	"slices"
	"strings"

	"github.com/berth-sh/berth/internal/machine"
)

// volUse is a named volume a container mounts: NAME.volume or a name.
type volUse struct {
	ref    string // NAME.volume or the name
	target string
	ro     bool
	// copy: fill the volume from the image while it is empty (nil: the
	// volume's Copy=, true for a plain name).
	copy *bool
	e    Entry
}

// planVolume reads podman's -v: [SOURCE:]PATH[:OPTIONS]. SOURCE is a host
// path (absolute, or relative to the declaration's directory as in
// quadlet), NAME.volume or a volume name; PATH alone is an anonymous
// volume, which under berth is just part of the machine's tree.
func (k *ctr) planVolume(e Entry) {
	parts := strings.Split(e.Value, ":")
	if len(parts) > 3 || parts[0] == "" {
		k.err(containerGroup, e, "%q is not [SOURCE:]PATH[:OPTIONS]", e.Value)
		return
	}
	if len(parts) == 1 {
		k.checkTarget(e, parts[0])
		return // anonymous: the image's directory in the machine's tree
	}
	src, target := parts[0], parts[1]
	var opts []string
	if len(parts) == 3 {
		opts = strings.Split(parts[2], ",")
	}
	var ro bool
	var copy *bool
	for _, o := range opts {
		switch o {
		case "ro":
			ro = true
		case "rw", "z", "Z", "rbind":
		case "copy", "nocopy":
			b := o == "copy"
			copy = &b
		default:
			k.err(containerGroup, e, "volume option %q is not supported (ro, rw, z, Z, copy, nocopy, rbind)", o)
			return
		}
	}
	k.mountSource(e, src, target, ro, copy)
}

// mountSource records a bind of a host path or a named volume.
func (k *ctr) mountSource(e Entry, src, target string, ro bool, copy *bool) {
	if !k.checkTarget(e, target) {
		return
	}
	switch {
	case strings.HasPrefix(src, "/") || strings.HasPrefix(src, "."):
		if copy != nil {
			k.err(containerGroup, e, "copy and nocopy are for named volumes, not host paths")
			return
		}
		k.spec.Binds = append(k.spec.Binds, machine.Bind{Source: k.relPath(src), Destination: path.Clean(target), ReadOnly: ro, Idmap: true})
	case strings.HasSuffix(src, ".volume") || validVolumeName(src):
		k.links.vols = append(k.links.vols, volUse{ref: src, target: path.Clean(target), ro: ro, copy: copy, e: e})
	default:
		k.err(containerGroup, e, "%q is neither a path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]* or NAME.volume)", src)
	}
}

func (k *ctr) checkTarget(e Entry, target string) bool {
	if !path.IsAbs(target) || path.Clean(target) == "/" {
		k.err(containerGroup, e, "%q is not an absolute path other than /", target)
		return false
	}
	return true
}

// planMount reads podman's --mount: comma-separated KEY=VALUE (CSV, so a
// value may be quoted) of type=bind, volume or tmpfs.
func (k *ctr) planMount(e Entry) {
	rec, err := csv.NewReader(strings.NewReader(e.Value)).Read()
	if err != nil {
		k.err(containerGroup, e, "%q is not a list of KEY=VALUE", e.Value)
		return
	}
	kv := map[string]string{}
	for _, f := range rec {
		key, v, has := strings.Cut(f, "=")
		switch key {
		case "src":
			key = "source"
		case "dst", "target":
			key = "destination"
		case "readonly":
			key = "ro"
		}
		if !has && key == "ro" {
			v = "true"
		}
		kv[key] = v
	}
	typ, target := kv["type"], kv["destination"]
	delete(kv, "type")
	delete(kv, "destination")
	allowed := map[string][]string{"bind": {"source", "ro"}, "volume": {"source", "ro", "volume-nocopy"}, "tmpfs": {"tmpfs-size", "tmpfs-mode"}}
	keys, ok := allowed[typ]
	if !ok {
		k.err(containerGroup, e, "mount type %q is not supported (bind, volume, tmpfs)", typ)
		return
	}
	for key := range kv {
		if !slices.Contains(keys, key) {
			k.err(containerGroup, e, "mount option %q is not supported for type=%s (%s)", key, typ, strings.Join(keys, ", "))
			return
		}
	}
	ro := false
	if v, ok := kv["ro"]; ok {
		b, okb := k.boolean(Entry{Key: e.Key, Value: v, Path: e.Path, Line: e.Line})
		if !okb {
			return
		}
		ro = b
	}
	switch typ {
	case "tmpfs":
		var opts []string
		if v := kv["tmpfs-size"]; v != "" {
			opts = append(opts, "size="+v)
		}
		if v := kv["tmpfs-mode"]; v != "" {
			opts = append(opts, "mode="+v)
		}
		t := machine.Tmpfs{Target: target, Options: strings.Join(opts, ",")}
		if err := t.Validate(); err != nil {
			k.err(containerGroup, e, "%s", machine.Reason(err))
			return
		}
		k.spec.Tmpfs = append(k.spec.Tmpfs, t)
	case "volume":
		if kv["source"] == "" {
			k.checkTarget(e, target) // anonymous: part of the machine's tree
			return
		}
		var copy *bool
		if _, ok := kv["volume-nocopy"]; ok {
			b := false
			copy = &b
		}
		k.mountSource(e, kv["source"], target, ro, copy)
	default:
		if !strings.HasPrefix(kv["source"], "/") && !strings.HasPrefix(kv["source"], ".") {
			k.err(containerGroup, e, "a bind needs source=HOST-PATH")
			return
		}
		k.mountSource(e, kv["source"], target, ro, nil)
	}
}

// linkVolumes binds the named volumes: a NAME.volume's unit must have
// made it (Requires=, After=); a plain name is made here. Either is
// filled from the image at the mount point while empty, by an
// ExecStartPre= after the pull.
func (k *ctr) linkVolumes() {
	s := &k.spec
	for _, v := range k.links.vols {
		name, seed := v.ref, true
		declared := strings.HasSuffix(v.ref, ".volume")
		var helper []string
		if declared {
			d := k.reg.volumes[v.ref]
			switch {
			case d == nil:
				k.err(containerGroup, v.e, "%s is not declared", v.ref)
				continue
			case d.failed:
				k.err(containerGroup, v.e, "volume %s has errors (see its findings)", d.c.in.File.Path)
				continue
			}
			name, seed, helper = d.name, d.copy, d.helper()
			requireUnit(&s.Unit, d.service)
		} else {
			helper = []string{k.opts.Berth, "_volume", "--dir", k.volumeDir(name)}
		}
		if v.copy != nil {
			seed = *v.copy
		}
		if seed {
			helper = append(helper, "--seed-from", path.Join(k.opts.MachinesDir, s.Name), "--seed-path", v.target)
		}
		if seed || !declared {
			s.Hooks.StartPre = append(s.Hooks.StartPre, helper)
		}
		s.Binds = append(s.Binds, machine.Bind{Source: k.volumeDir(name), Destination: v.target, ReadOnly: v.ro, Idmap: true})
	}
}
