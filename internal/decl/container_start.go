package decl

import (
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-sh/berth/internal/machine"
)

// Planners of keys settled when the machine starts (machine.DeclSettings):
// env files, supplementary groups and sysctls go to berth-init, the time
// zone and masked paths to nspawn.

func (k *ctr) planEnvironmentFile(e Entry) {
	words, ok := k.words(e)
	if !ok {
		return
	}
	for _, p := range words {
		if !path.IsAbs(p) {
			// quadlet: relative to the declaration's directory.
			p = path.Join(filepath.Dir(k.in.File.Path), p)
		}
		p = path.Clean(p)
		if strings.ContainsAny(p, ":\n") {
			k.err(containerGroup, e, "%q: a path with ':' cannot be bound into the machine", p)
			continue
		}
		k.spec.Decl.EnvFiles = append(k.spec.Decl.EnvFiles, p)
	}
}

func (k *ctr) planGroupAdd(e Entry) {
	words, ok := k.words(e)
	if !ok {
		return
	}
	for _, g := range words {
		switch {
		case g == "keep-groups":
			k.err(containerGroup, e, "keep-groups keeps the groups of the user who runs podman; a system service has none to keep")
		case strings.ContainsAny(g, ":") || g == "":
			k.err(containerGroup, e, "%q is not a group name or ID", g)
		default:
			k.spec.Decl.GroupAdd = append(k.spec.Decl.GroupAdd, g)
		}
	}
}

func (k *ctr) planSysctl(e Entry) {
	words, ok := k.words(e)
	if !ok {
		return
	}
	for _, kv := range words {
		name, _, found := strings.Cut(kv, "=")
		switch {
		case !found || name == "" || strings.ContainsAny(kv, "/") || strings.Contains(name, ".."):
			k.err(containerGroup, e, "%q is not NAME=VALUE", kv)
		case !strings.HasPrefix(name, "net."):
			k.err(containerGroup, e, "%s: nspawn mounts /proc/sys read-only but for net.*; only net.* sysctls can be set", name)
		default:
			k.spec.Decl.Sysctls = append(k.spec.Decl.Sysctls, kv)
			k.more.sysctl = &e
		}
	}
}

// finishSysctl: net.* sysctls are the machine's own only with its own
// network namespace.
func (k *ctr) finishSysctl() {
	if e := k.more.sysctl; e != nil && k.spec.Network.Mode == machine.NetworkHost {
		k.err(containerGroup, *e, "net.* sysctls need the machine's own network; with Network=host they would change the host's")
	}
}

func (k *ctr) planTimezone(e Entry) {
	d := &k.spec.Decl
	switch {
	case e.Value == "" || e.Value == "local":
		// "" resets, as an empty value does in systemd.
		d.Timezone = "" // nspawn's auto: the host's zone
		k.more.timezone = ""
	case validZone(e.Value):
		// The host's zone file, as podman copies it: nspawn leaves
		// /etc/localtime alone and berth binds the file over it.
		d.Timezone = "off"
		k.more.timezone = e.Value
	default:
		k.err(containerGroup, e, "%q is not a time zone name (Europe/Berlin, UTC) or local", e.Value)
	}
}

// validZone accepts tz database names: letters, digits, '/', '_', '-',
// '+', not absolute, no "..".
func validZone(z string) bool {
	if z == "" || z[0] == '/' || strings.Contains(z, "..") {
		return false
	}
	for _, c := range z {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/_-+", c)) {
			return false
		}
	}
	return true
}

// finishTimezone binds the zone file (after every entry: the last
// Timezone= wins).
func (k *ctr) finishTimezone() {
	if z := k.more.timezone; z != "" {
		k.spec.Binds = append(k.spec.Binds, machine.Bind{Source: path.Join("/usr/share/zoneinfo", z), Destination: "/etc/localtime", ReadOnly: true})
	}
}

func (k *ctr) planMask(e Entry) {
	for _, p := range strings.Split(e.Value, ":") {
		if p == "" {
			continue
		}
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, " \t\"'\\") {
			k.err(containerGroup, e, "%q is not an absolute clean path other than / (without blanks or quotes)", p)
			continue
		}
		k.spec.Decl.Inaccessible = append(k.spec.Decl.Inaccessible, p)
	}
}
