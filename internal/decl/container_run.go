package decl

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-sh/berth/internal/machine"
)

// Planners of the keys that shape how the machine runs: devices, /dev/shm,
// users, temporary file systems, reload, labels.

func (k *ctr) planAddDevice(e Entry) {
	v := e.Value
	if strings.HasPrefix(v, "-") {
		// quadlet looks for an optional device when it generates; at
		// boot generators run before udev made the nodes, and nspawn
		// fails a start whose bind source is missing.
		k.err(containerGroup, e, "%q: optional devices (-PATH) are not supported: the device's presence is not known when units are made; drop the '-' to require it", v)
		return
	}
	parts := strings.Split(v, ":")
	d := machine.Device{Source: parts[0]}
	switch len(parts) {
	case 1:
	case 2:
		if strings.Trim(parts[1], "rwm") == "" {
			d.Permissions = parts[1]
		} else {
			d.Target = parts[1]
		}
	case 3:
		d.Target, d.Permissions = parts[1], parts[2]
	default:
		k.err(containerGroup, e, "%q is not HOST-PATH[:PATH][:PERMISSIONS]", v)
		return
	}
	if !strings.HasPrefix(d.Source, "/") {
		k.err(containerGroup, e, "%q is not a device path (CDI device names are not supported)", v)
		return
	}
	if err := d.Validate(); err != nil {
		k.err(containerGroup, e, "%s", machine.Reason(err))
		return
	}
	k.spec.Devices = append(k.spec.Devices, d)
}

// sizeRE is podman's (docker's go-units RAMInBytes) size syntax: binary
// multiples, an optional "i" and "b". Compiled on first use: few
// declarations set a size, and the generator starts at every boot.
var sizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+)\s?([kKmMgGtT]?)[iI]?[bB]?$`) })

func (k *ctr) planShmSize(e Entry) {
	n, ok := parseSize(e.Value)
	if !ok {
		k.err(containerGroup, e, "%q is not a size (64m, 1g, bytes)", e.Value)
		return
	}
	// nspawn mounts /dev/shm as a tmpfs of its own size; this one is
	// mounted over it, with the options docker gives it.
	k.spec.Tmpfs = append(k.spec.Tmpfs, machine.Tmpfs{Target: "/dev/shm", Options: "size=" + strconv.FormatUint(n, 10) + ",mode=1777,nosuid,nodev,noexec"})
}

// parseSize reads a positive size in bytes.
func parseSize(v string) (uint64, bool) {
	m := sizeRE().FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[strings.ToLower(m[2])]
	if err != nil || n == 0 || n > (1<<63)>>shift {
		return 0, false
	}
	return n << shift, true
}

func (k *ctr) planUserNS(e Entry) {
	mode, opts, _ := strings.Cut(e.Value, ":")
	switch {
	case mode == "" || mode == "private" || mode == "auto" && (opts == "" || opts == "size=65536"):
		// nspawn picks a free 64K range, as podman's auto does.
		k.spec.PrivateUsers, k.more.privateUsers = "pick", &e
	case mode == "auto":
		k.err(containerGroup, e, "%q: nspawn picks a 64K range by itself; auto options other than size=65536 are not supported", e.Value)
	case mode == "host":
		k.spec.PrivateUsers, k.more.privateUsers = "no", nil
	case mode == "keep-id":
		k.err(containerGroup, e, "keep-id maps the user who runs podman into the container; a system service has no such user (use host to share the host's IDs)")
	default:
		k.err(containerGroup, e, "%q is not supported (auto, private or host)", e.Value)
	}
}

// finishUserNS drops the ID mapping of binds when the machine shares the
// host's users: there is no range to map into.
func (k *ctr) finishUserNS() {
	if k.spec.PrivateUsers != "no" {
		return
	}
	if e := k.more.privateUsers; e != nil {
		k.err(containerGroup, *e, "%q: this machine's network makes it share the host's users (Network=none or host keeps a private range)", e.Value)
	}
	for i := range k.spec.Binds {
		k.spec.Binds[i].Idmap = false
	}
}

func (k *ctr) planReadOnlyTmpfs(e Entry) {
	if b, ok := k.boolean(e); ok {
		k.more.readOnlyTmpfs, k.more.readOnlyTmpfsEntry = b, &e
	}
}

// finishReadOnlyTmpfs gives a read-only machine podman's writable tmpfs
// directories (podman's default): nspawn mounts /run, /tmp and /dev/shm
// as tmpfs in every machine, so /var/tmp is what is left.
func (k *ctr) finishReadOnlyTmpfs() {
	e := k.more.readOnlyTmpfsEntry
	switch {
	case !k.spec.ReadOnly:
	case e == nil || k.more.readOnlyTmpfs:
		k.spec.Tmpfs = append(k.spec.Tmpfs, machine.Tmpfs{Target: "/var/tmp", Options: "mode=1777"})
	default:
		k.warn(containerGroup, *e, "/run, /tmp and /dev/shm stay writable: nspawn mounts a tmpfs there in every machine")
	}
}

func (k *ctr) planVolatileTmp(e Entry) {
	if b, ok := k.boolean(e); ok && !b {
		k.warn(containerGroup, e, "/tmp is a tmpfs in every nspawn machine")
	}
}

func (k *ctr) planCgroupsMode(e Entry) {
	switch e.Value {
	case "split", "enabled":
	default:
		k.err(containerGroup, e, "%q: nspawn machines always get a delegated cgroup of the unit (split or enabled)", e.Value)
	}
}

func (k *ctr) planHTTPProxy(e Entry) {
	if b, ok := k.boolean(e); ok && b {
		k.warn(containerGroup, e, "berth passes no proxy variables from the host; set them with Environment=")
	}
}

func (k *ctr) planReloadCmd(e Entry) {
	argv, ok := k.words(e)
	switch {
	case !ok:
	case len(argv) == 0:
		k.err(containerGroup, e, "names no command")
	case k.reloadTaken(e):
	default:
		k.more.reloadCmd, k.more.reloadEntry = argv, &e
	}
}

func (k *ctr) planReloadSignal(e Entry) {
	sig, err := machine.SignalName(e.Value)
	switch {
	case err != nil:
		k.err(containerGroup, e, "%s", machine.Reason(err))
	case k.reloadTaken(e):
	default:
		k.more.reloadSignal, k.more.reloadEntry = sig, &e
	}
}

// reloadTaken reports (as a finding) a second way to reload.
func (k *ctr) reloadTaken(e Entry) bool {
	p := k.more.reloadEntry
	if p != nil && p.Key != e.Key {
		k.err(containerGroup, e, "ReloadCmd= and ReloadSignal= exclude each other (%s:%d)", p.Path, p.Line)
		return true
	}
	return false
}

// reload is ExecReload=, or nil.
func (k *ctr) reload() []string {
	switch {
	case k.more.reloadCmd != nil:
		// `berth exec` runs it in the machine as the machine's user.
		return append([]string{k.opts.Berth, "exec", k.spec.Name}, k.more.reloadCmd...)
	case k.more.reloadSignal != "":
		// The machine's leader is berth-init, which forwards the
		// signal to the command.
		return []string{k.opts.Machinectl, "kill", "--kill-whom=leader", "--signal=" + k.more.reloadSignal, k.spec.Name}
	}
	return nil
}

func (k *ctr) planLabel(e Entry) {
	words, ok := k.words(e)
	if !ok {
		return
	}
	for _, kv := range words {
		if name, _, found := strings.Cut(kv, "="); !found || name == "" {
			k.err(containerGroup, e, "%q is not KEY=VALUE", kv)
			continue
		}
		k.more.labels = append(k.more.labels, kv)
	}
}
