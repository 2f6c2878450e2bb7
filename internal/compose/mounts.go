package compose

import (
	"cmp"
	"path"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-sh/berth/internal/machine"
)

func (pl *planner) planVolumes() {
	for _, k := range sortedKeys(pl.p.Volumes) {
		v := pl.p.Volumes[k]
		vp := &VolumePlan{Key: k, External: bool(v.External), Labels: v.Labels}
		if vp.External {
			name := v.Name
			if name == "" {
				name = k
			}
			// External volumes are shared between projects: they live
			// outside any project's directory.
			vp.Dir = path.Join(pl.opts.Root, "volumes", pathSafe(name))
		} else if v.Name != "" && v.Name != pl.p.Name+"_"+k {
			// A volume with a name of its own is shared by every project
			// that names it, as under docker: it lives with the external
			// ones, but berth creates it when missing.
			vp.Dir = path.Join(pl.opts.Root, "volumes", pathSafe(v.Name))
			vp.Shared = true
		} else {
			vp.Dir = path.Join(pl.plan.Dir, "volumes", pathSafe(k))
		}
		pl.vols[k] = vp
		pl.plan.Volumes = append(pl.plan.Volumes, vp)
	}
}

// pathSafe makes a compose name usable as one path element: names that are
// plain stay as they are, anything else gets a hash so it can never escape
// or collide.
func pathSafe(name string) string {
	ok := name != "" && name != "." && name != ".."
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			ok = false
		}
	}
	if ok {
		return name
	}
	return label(name) + "-h" + hashHex(7, name)
}

// planServiceVolumes is the planner of volumes: binds, named and anonymous
// volumes and tmpfs mounts, in order.
func (c *svcPlanner) planServiceVolumes() {
	for i, v := range c.svc.Volumes {
		at := "volumes." + strconv.Itoa(i)
		if v.Bind != nil && v.Bind.Propagation != "" && v.Bind.Propagation != "rprivate" && v.Bind.Propagation != "private" {
			c.err(at, "bind propagation %q is not supported", v.Bind.Propagation)
		}
		if v.Bind != nil && v.Bind.Recursive != "" && v.Bind.Recursive != "enabled" {
			c.err(at, "bind recursive %q is not supported (nspawn binds are recursive)", v.Bind.Recursive)
		}
		if v.Bind != nil && v.Bind.SELinux != "" {
			c.warn(at, "SELinux relabelling (:z/:Z) is not done; label the host directory yourself")
		}
		if v.Volume != nil && v.Volume.Subpath != "" {
			c.err(at, "volume subpath is not supported")
		}
		if !path.IsAbs(v.Target) {
			c.err(at, "target %q is not an absolute path", v.Target)
			continue
		}
		m := Mount{Target: path.Clean(v.Target), ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeBind:
			m.Kind = BindMount
			m.Source = v.Source
			if !path.IsAbs(m.Source) {
				c.err(at, "bind source %q is not absolute after resolving", v.Source)
				continue
			}
			m.Create = v.Bind == nil || bool(v.Bind.CreateHostPath)
		case types.VolumeTypeVolume:
			m.Kind = BindMount
			m.Create = true
			m.Seed = v.Volume == nil || !v.Volume.NoCopy
			if v.Source == "" {
				m.anonymous = true // its directory is per instance
			} else if vp, ok := c.vols[v.Source]; ok {
				m.Source = vp.Dir
				m.Create = !vp.External
			} else {
				c.err(at, "volume %q is not declared under top-level volumes:", v.Source)
				continue
			}
		case types.VolumeTypeTmpfs:
			m.Kind = TmpfsMount
			m.Options = tmpfsOptions(v.Tmpfs)
			if !c.validTmpfs(at, m.Target, m.Options) {
				continue
			}
		default:
			c.err(at, "volume type %q is not supported", v.Type)
			continue
		}
		c.mounts.volumes = append(c.mounts.volumes, m)
	}
}

// planTmpfs is the planner of tmpfs: (TARGET[:OPTIONS] entries).
func (c *svcPlanner) planTmpfs() {
	for i, t := range c.svc.Tmpfs {
		at := "tmpfs." + strconv.Itoa(i)
		target, opts, _ := strings.Cut(t, ":")
		if !path.IsAbs(target) {
			c.err(at, "target %q is not an absolute path", target)
			continue
		}
		if !c.validTmpfs(at, path.Clean(target), opts) {
			continue
		}
		c.mounts.tmpfs = append(c.mounts.tmpfs, Mount{Kind: TmpfsMount, Target: path.Clean(target), Options: opts})
	}
}

// validTmpfs reports a tmpfs mount nspawn cannot express.
func (c *svcPlanner) validTmpfs(at, target, opts string) bool {
	if err := (machine.Tmpfs{Target: target, Options: opts}).Validate(); err != nil {
		c.err(at, "%s", machine.Reason(err))
		return false
	}
	return true
}

// planSecrets is the planner of secrets: (a root-only host copy per
// reference, bind-mounted read-only, at /run/secrets/NAME by default).
func (c *svcPlanner) planSecrets() {
	dir := path.Join(c.plan.Dir, "secrets")
	for i, s := range c.svc.Secrets {
		def, ok := c.p.Secrets[s.Source]
		if !ok {
			c.err("secrets."+strconv.Itoa(i), "secret %q is not declared", s.Source)
			continue
		}
		target := cmp.Or(s.Target, s.Source)
		if !path.IsAbs(target) {
			target = path.Join("/run/secrets", target)
		}
		c.addFileMount(&c.mounts.secrets, dir, "secrets", i, s.Source, target, types.FileReferenceConfig(s), types.FileObjectConfig(def))
	}
}

// planConfigs is the planner of configs: (as secrets, at /NAME by default).
func (c *svcPlanner) planConfigs() {
	dir := path.Join(c.plan.Dir, "configs")
	for i, cf := range c.svc.Configs {
		def, ok := c.p.Configs[cf.Source]
		if !ok {
			c.err("configs."+strconv.Itoa(i), "config %q is not declared", cf.Source)
			continue
		}
		target := cmp.Or(cf.Target, "/"+cf.Source)
		c.addFileMount(&c.mounts.configs, dir, "configs", i, cf.Source, target, types.FileReferenceConfig(cf), types.FileObjectConfig(def))
	}
}

// addFileMount plans a secret or config: a host copy per (service, index)
// because mode and owner are per reference, bind-mounted read-only.
func (c *svcPlanner) addFileMount(to *[]Mount, dir, kind string, i int, source, target string, ref types.FileReferenceConfig, def types.FileObjectConfig) {
	at := kind + "." + strconv.Itoa(i)
	if !path.IsAbs(target) {
		c.err(at, "target %q is not an absolute path", target)
		return
	}
	sf := &SecretFile{
		Name:     source,
		HostPath: path.Join(dir, pathSafe(c.name)+"."+strconv.Itoa(i)+"."+pathSafe(source)),
		Mode:     0o444,
		UID:      ref.UID,
		GID:      ref.GID,
	}
	if ref.Mode != nil {
		sf.Mode = uint32(*ref.Mode)
	}
	switch {
	case def.File != "":
		sf.CopyFrom = def.File
	case def.Environment != "" || def.Content != "":
		sf.Content = def.Content
	case bool(def.External):
		return // reported at the top level
	default:
		c.err(at, "%s %q has no file, environment or content source", strings.TrimSuffix(kind, "s"), source)
		return
	}
	*to = append(*to, Mount{Kind: BindMount, Source: sf.HostPath, Target: path.Clean(target), ReadOnly: true, File: sf})
}

func tmpfsOptions(t *types.ServiceVolumeTmpfs) string {
	if t == nil {
		return ""
	}
	var o []string
	if t.Size > 0 {
		o = append(o, "size="+strconv.FormatInt(int64(t.Size), 10))
	}
	if t.Mode != 0 {
		o = append(o, "mode="+strconv.FormatUint(uint64(t.Mode), 8))
	}
	return strings.Join(o, ",")
}
