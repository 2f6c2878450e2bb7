package compose

import (
	"math"
	"net/netip"
	"path"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/compose/hostnet"
)

// Plan is the pure model of a converted project: every name, address, mount
// and dependency decided, nothing rendered yet.
type Plan struct {
	Project  string
	Target   string
	Root     string // berth state root the plan's paths live under
	Dir      string // Root/compose/PROJECT
	Networks []*NetworkPlan
	Volumes  []*VolumePlan
	Services []*ServicePlan
}

// NetworkPlan is one compose network: a bridge.
type NetworkPlan struct {
	Key      string // the compose key (services refer to it)
	Bridge   string
	Unit     string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool
	// External bridges exist already; berth joins them but never creates
	// or removes them.
	External bool
	Labels   map[string]string
	pool     netip.Prefix // where addresses are allocated (ip_range or subnet)
	next     netip.Addr
	taken    map[netip.Addr]bool
}

// VolumePlan is a named volume: a directory under the berth root.
type VolumePlan struct {
	Key      string
	Dir      string
	External bool
	// Shared volumes (name: of their own) live outside the project's
	// directory, like external ones, but are created when missing.
	Shared bool
	Labels map[string]string
}

// ServicePlan is one compose service and its instances.
type ServicePlan struct {
	Name      string
	Image     string
	Instances []*InstancePlan
	// Oneshot is set when a dependent waits for this service to complete
	// successfully: its units are Type=oneshot, started once the machine
	// exited 0.
	Oneshot bool
	Health  *HealthPlan
	Deps    []DepPlan
	Restart RestartPlan
	// NetworkMode is "bridge", "host" or "none".
	NetworkMode string
	Spec        *types.ServiceConfig
}

// InstancePlan is one machine.
type InstancePlan struct {
	Index      int
	Machine    string
	Unit       string
	Hostname   string
	Interfaces []Interface
	Ports      []PortPlan
	Mounts     []Mount
	StateDir   string // Root/compose/P/machines/M: hosts, resolv.conf
}

// Interface is a machine's link into one network.
type Interface struct {
	Network *NetworkPlan
	HostIf  string
	GuestIf string
	Addr    netip.Addr
	Aliases []string
	// GwPriority picks the network of the default route (highest wins).
	GwPriority int
	// NoServiceAlias: use_service_name_alias: false, the service name
	// does not resolve to this interface.
	NoServiceAlias bool
}

// PortPlan publishes one host port on one machine.
type PortPlan struct {
	HostIP   string // "" is every IPv4 address
	HostPort uint16
	Target   uint16
	Proto    string // tcp or udp
	Unit     string // socket unit name without suffix
}

// MountKind says what backs a mount.
type MountKind int

const (
	BindMount MountKind = iota
	TmpfsMount
)

// Mount is one filesystem mounted into a machine.
type Mount struct {
	Kind     MountKind
	Source   string // host path for binds
	Target   string
	ReadOnly bool
	Options  string // tmpfs options (size=, mode=)
	// Create asks `up` to create Source as a directory when missing (named
	// and anonymous volumes, binds with create_host_path).
	Create bool
	// Seed is set for named and anonymous volumes (not nocopy): when `up`
	// creates Source, it first copies the image's content at Target into
	// it, as docker fills a new volume.
	Seed bool
	// File is set for secrets/configs: Source is written by `up`.
	File *SecretFile
}

// SecretFile is a secret or config materialized on the host for a bind
// mount. Its content never goes into a unit; it is written 0700-dir-guarded
// by `up`.
type SecretFile struct {
	Name     string
	HostPath string
	Mode     uint32
	UID, GID string
	// Exactly one of CopyFrom (a host file) and Content is the source.
	CopyFrom string
	Content  string
}

// DepCondition is a depends_on condition.
type DepCondition string

const (
	DepStarted   DepCondition = types.ServiceConditionStarted
	DepHealthy   DepCondition = types.ServiceConditionHealthy
	DepCompleted DepCondition = types.ServiceConditionCompletedSuccessfully
)

// DepPlan is one depends_on entry.
type DepPlan struct {
	Service   string
	Condition DepCondition
	Required  bool
	Restart   bool
}

// RestartPlan is the systemd restart policy.
type RestartPlan struct {
	Restart    string // systemd Restart= value
	MaxRetries uint64 // on-failure:N → StartLimitBurst
	Delay      time.Duration
	Window     time.Duration
}

// HealthPlan is a resolved healthcheck.
type HealthPlan struct {
	// Shell is true for CMD-SHELL: Command[0] is run by /bin/sh -c.
	Shell         bool
	Command       []string
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	Retries       uint64
	FromImage     bool
}

// Docker's healthcheck defaults.
const (
	defaultHealthInterval = 30 * time.Second
	defaultHealthTimeout  = 30 * time.Second
	defaultHealthStartInt = 5 * time.Second
	defaultHealthRetries  = 3
)

// The pool project networks get a /24 from when they name no subnet.
var defaultPool = netip.MustParsePrefix("172.16.0.0/12")

// ImageInfo returns the config of an image (Entrypoint, Cmd, Env,
// Healthcheck, ...), or ok=false when it is not known (not pulled yet).
type ImageInfo func(ref string) (cfg *v1.Config, ok bool)

// planner builds a Plan and collects findings.
type planner struct {
	p    *Project
	opts ConvertOptions
	f    *findings
	plan *Plan
	nets map[string]*NetworkPlan
	vols map[string]*VolumePlan
	svcs map[string]*ServicePlan
}

func newPlan(p *Project, opts ConvertOptions) (*Plan, Findings) {
	pl := &planner{
		p:    p,
		opts: opts,
		f:    &findings{src: p.sources},
		nets: map[string]*NetworkPlan{},
		vols: map[string]*VolumePlan{},
		svcs: map[string]*ServicePlan{},
	}
	pl.plan = &Plan{
		Project: p.Name,
		Target:  ProjectTarget(p.Name),
		Root:    opts.Root,
		Dir:     path.Join(opts.Root, "compose", p.Name),
	}
	pl.checkTop()
	pl.planNetworks()
	pl.planVolumes()
	for _, name := range p.ServiceNames() {
		svc := p.Services[name]
		pl.checkServiceKeys(name, &svc)
		sp := pl.planService(name, &svc)
		pl.plan.Services = append(pl.plan.Services, sp)
		pl.svcs[name] = sp
	}
	pl.planDeps()
	pl.allocateAddresses()
	pl.f.list.sort()
	return pl.plan, pl.f.list
}

// checkTop reports top-level keys and object keys berth does not support.
func (pl *planner) checkTop() {
	p := pl.p
	for _, k := range sortedKeys(p.Networks) {
		n := p.Networks[k]
		at := func(key string) []string { return []string{"networks", k, key} }
		if n.Driver != "" && n.Driver != "bridge" {
			pl.f.add(Error, "", at("driver"), "network driver %q is not supported; berth networks are bridges", n.Driver)
		}
		if len(n.DriverOpts) > 0 {
			pl.f.add(Error, "", at("driver_opts"), "bridge driver options are not converted")
		}
		if n.EnableIPv6 != nil && *n.EnableIPv6 {
			pl.f.add(Error, "", at("enable_ipv6"), "IPv6 networks are not supported yet")
		}
		if n.Attachable {
			pl.f.add(Warning, "", at("attachable"), "swarm only; ignored")
		}
		if n.Ipam.Driver != "" && n.Ipam.Driver != "default" {
			pl.f.add(Error, "", at("ipam"), "IPAM driver %q is not supported", n.Ipam.Driver)
		}
		if len(n.Ipam.Options) > 0 {
			pl.f.add(Error, "", at("ipam"), "IPAM options are not supported")
		}
		if len(n.Ipam.Config) > 1 {
			pl.f.add(Error, "", at("ipam"), "only one IPAM pool per network is supported")
		}
	}
	for _, k := range sortedKeys(p.Volumes) {
		v := p.Volumes[k]
		if v.Driver != "" && v.Driver != "local" {
			pl.f.add(Error, "", []string{"volumes", k, "driver"}, "volume driver %q is not supported; berth volumes are local directories", v.Driver)
		}
		if len(v.DriverOpts) > 0 {
			pl.f.add(Error, "", []string{"volumes", k, "driver_opts"}, "volume driver options are not converted")
		}
	}
	for _, k := range sortedKeys(p.Secrets) {
		s := p.Secrets[k]
		if s.External {
			pl.f.add(Error, "", []string{"secrets", k, "external"}, "external secrets exist only in swarm")
		}
		if s.Driver != "" {
			pl.f.add(Error, "", []string{"secrets", k, "driver"}, "secret drivers are swarm only")
		}
		if s.TemplateDriver != "" {
			pl.f.add(Error, "", []string{"secrets", k, "template_driver"}, "secret templates are not supported")
		}
	}
	for _, k := range sortedKeys(p.Configs) {
		c := p.Configs[k]
		if c.External {
			pl.f.add(Error, "", []string{"configs", k, "external"}, "external configs exist only in swarm")
		}
		if c.TemplateDriver != "" {
			pl.f.add(Error, "", []string{"configs", k, "template_driver"}, "config templates are not supported")
		}
	}
	if len(p.Jobs) > 0 {
		pl.f.add(Error, "", []string{"jobs"}, "jobs are not supported yet")
	}
	if len(p.Models) > 0 {
		pl.f.add(Error, "", []string{"models"}, "AI models are not supported")
	}
}

// checkServiceKeys applies the support table to every key the service uses.
// Presence is read from the loaded model (so extends and merged files
// count); the location from the YAML sources.
func (pl *planner) checkServiceKeys(name string, svc *types.ServiceConfig) {
	for _, key := range usedKeys(svc) {
		r, ok := serviceRule(key)
		switch {
		case !ok:
			pl.f.svc(Error, name, key, "unknown key; berth does not know what it does")
		case r.Support == Ignored:
			pl.f.svc(Warning, name, key, "%s", r.How)
		case r.Support == Rejected:
			pl.f.svc(Error, name, key, "%s", r.How)
		}
	}
}

// usedKeys returns the yaml keys of the service's non-zero fields.
func usedKeys(svc *types.ServiceConfig) []string {
	var keys []string
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				visit(v.Field(i))
				continue
			}
			if name == "" || name == "-" || strings.HasPrefix(name, "#") || !f.IsExported() {
				continue
			}
			if !v.Field(i).IsZero() {
				keys = append(keys, name)
			}
		}
	}
	visit(reflect.ValueOf(svc).Elem())
	sort.Strings(keys)
	return keys
}

// allServiceKeys lists every yaml key of a compose service (for the table
// completeness test and docs).
func allServiceKeys() []string {
	var keys []string
	var visit func(t reflect.Type)
	visit = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				visit(f.Type)
				continue
			}
			if name == "" || name == "-" || strings.HasPrefix(name, "#") || !f.IsExported() {
				continue
			}
			keys = append(keys, name)
		}
	}
	visit(reflect.TypeOf(types.ServiceConfig{}))
	sort.Strings(keys)
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (pl *planner) planNetworks() {
	p := pl.p
	used := map[netip.Prefix]string{}
	var auto []*NetworkPlan
	for _, k := range sortedKeys(p.Networks) {
		n := p.Networks[k]
		np := &NetworkPlan{Key: k, Internal: n.Internal, External: bool(n.External), Labels: n.Labels, taken: map[netip.Addr]bool{}}
		if np.External {
			np.Bridge = n.Name
			if n.Name == "" {
				np.Bridge = k
			}
			if !validIfName(np.Bridge) {
				pl.f.add(Error, "", []string{"networks", k, "name"}, "external network %q is not a valid host interface name (1-15 bytes, no '/', ':' or spaces)", np.Bridge)
			}
		} else {
			np.Bridge = BridgeName(p.Name, k)
			if n.Name != "" && n.Name != p.Name+"_"+k {
				// docker shares a network with a name of its own across
				// projects; two projects would then own one bridge unit.
				pl.f.add(Error, "", []string{"networks", k, "name"}, "network name %q would share the network across projects, which berth does not do yet; drop name: or declare the network external", n.Name)
			}
		}
		if n.EnableIPv4 != nil && !*n.EnableIPv4 {
			pl.f.add(Error, "", []string{"networks", k, "enable_ipv4"}, "networks without IPv4 are not supported")
		}
		np.Unit = NetworkUnit(np.Bridge)
		if len(n.Ipam.Config) > 0 && n.Ipam.Config[0].Subnet != "" {
			pool := n.Ipam.Config[0]
			sub, err := netip.ParsePrefix(pool.Subnet)
			if err != nil || !sub.Addr().Is4() || sub.Bits() > 30 {
				pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "subnet"}, "subnet %q is not an IPv4 prefix of /30 or larger", pool.Subnet)
				sub = netip.MustParsePrefix("192.0.2.0/24")
			}
			np.Subnet = sub.Masked()
			if other, dup := used[np.Subnet]; dup {
				pl.f.add(Error, "", []string{"networks", k, "ipam"}, "subnet %s is also used by network %q", np.Subnet, other)
			}
			used[np.Subnet] = k
			np.Gateway = np.Subnet.Addr().Next()
			if pool.Gateway != "" {
				gw, err := netip.ParseAddr(pool.Gateway)
				if err != nil || !np.Subnet.Contains(gw) {
					pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "gateway"}, "gateway %q is not an address in %s", pool.Gateway, np.Subnet)
				} else {
					np.Gateway = gw
				}
			}
			np.pool = np.Subnet
			if pool.IPRange != "" {
				r, err := netip.ParsePrefix(pool.IPRange)
				if err != nil || !np.Subnet.Contains(r.Addr()) || r.Bits() < np.Subnet.Bits() {
					pl.f.add(Error, "", []string{"networks", k, "ipam", "config", "0", "ip_range"}, "ip_range %q is not inside %s", pool.IPRange, np.Subnet)
				} else {
					np.pool = r.Masked()
				}
			}
			for _, aux := range sortedKeys(pool.AuxiliaryAddresses) {
				if a, err := netip.ParseAddr(pool.AuxiliaryAddresses[aux]); err == nil {
					np.taken[a] = true
				}
			}
		} else if !np.External {
			auto = append(auto, np)
		}
		pl.nets[k] = np
		pl.plan.Networks = append(pl.plan.Networks, np)
	}
	// Automatic subnets: a /24 of 172.16.0.0/12 chosen by hashing the
	// project and network names, probing on past those already taken in
	// this project. Stable across runs; `up` must check it against the
	// host's routes.
	for _, np := range auto {
		start, _ := strconv.ParseUint(hashHex(6, pl.p.Name, np.Key), 16, 32)
		const slots = 1 << 12
		for i := uint64(0); i < slots; i++ {
			slot := (start + i) % slots
			base := defaultPool.Addr().As4()
			v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(slot)<<8
			sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
			if overlapsAny(sub, used) {
				continue
			}
			np.Subnet, np.pool = sub, sub
			np.Gateway = sub.Addr().Next()
			used[sub] = np.Key
			break
		}
	}
	for _, np := range pl.plan.Networks {
		if np.Gateway.IsValid() {
			np.taken[np.Gateway] = true
		}
	}
}

func overlapsAny(p netip.Prefix, used map[netip.Prefix]string) bool {
	for u := range used {
		if u.Overlaps(p) {
			return true
		}
	}
	return false
}

func validIfName(s string) bool {
	return s != "" && len(s) <= 15 && s != "." && s != ".." && !strings.ContainsAny(s, "/: \t\n%")
}

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

func (pl *planner) planService(name string, svc *types.ServiceConfig) *ServicePlan {
	sp := &ServicePlan{Name: name, Image: svc.Image, Spec: svc}
	if svc.Build != nil || svc.Dockerfile != "" {
		if svc.Image == "" {
			pl.f.svc(Error, name, "build", "build: is not supported yet (berth cannot build images); set image:")
		} else {
			pl.f.svc(Warning, name, "build", "berth cannot build images; build: is ignored and image %q is pulled", svc.Image)
		}
	} else if svc.Image == "" {
		pl.f.svc(Error, name, "image", "the service has no image:")
	}
	if _, known := pl.image(svc.Image); svc.Image != "" && !known && svc.Entrypoint == nil && svc.Command == nil {
		pl.f.svc(Error, name, "image", "image %q is not pulled, so its Entrypoint and Cmd are not known; berth pull it first (or set command:)", svc.Image)
	}
	replicas := 1
	if svc.Deploy != nil && svc.Deploy.Replicas != nil {
		replicas = *svc.Deploy.Replicas
	}
	if svc.Scale != nil {
		replicas = *svc.Scale
	}
	if replicas < 0 {
		pl.f.svc(Error, name, "scale", "negative replica count %d", replicas)
		replicas = 0
	}
	pl.checkValues(name, svc)
	sp.NetworkMode = "bridge"
	switch nm := firstNonEmpty(svc.NetworkMode, svc.Net); {
	case nm == "" || nm == "bridge" || nm == "default":
	case nm == "host" || nm == "none":
		sp.NetworkMode = nm
	default:
		pl.f.svc(Error, name, "network_mode", "network_mode %q is not supported (use host, none or networks:)", nm)
	}
	sp.Restart = pl.restart(name, svc)
	sp.Health = pl.health(name, svc)
	for i := 1; i <= replicas; i++ {
		m := MachineName(pl.p.Name, name, i)
		in := &InstancePlan{
			Index:    i,
			Machine:  m,
			Unit:     MachineUnit(m),
			StateDir: path.Join(pl.plan.Dir, "machines", m),
		}
		in.Hostname = svc.Hostname
		if in.Hostname == "" {
			in.Hostname = m
		}
		if sp.NetworkMode == "bridge" {
			pl.planInterfaces(name, svc, in, replicas)
		}
		pl.planMounts(name, svc, in)
		sp.Instances = append(sp.Instances, in)
	}
	pl.planPorts(name, svc, sp)
	return sp
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// checkValues reports unsupported values of partially supported keys.
func (pl *planner) checkValues(name string, svc *types.ServiceConfig) {
	if svc.Ipc != "" && svc.Ipc != "private" && svc.Ipc != "shareable" {
		pl.f.svc(Error, name, "ipc", "ipc %q is not supported; machines have a private IPC namespace", svc.Ipc)
	}
	if svc.Isolation != "" && svc.Isolation != "default" {
		pl.f.svc(Error, name, "isolation", "isolation %q is not supported", svc.Isolation)
	}
	if svc.Pid != "" {
		pl.f.svc(Error, name, "pid", "pid %q is not supported; machines have their own PID namespace", svc.Pid)
	}
	for i, o := range svc.SecurityOpt {
		if o != "no-new-privileges" && o != "no-new-privileges:true" && o != "no-new-privileges=true" && o != "no-new-privileges:false" && o != "no-new-privileges=false" {
			pl.f.svc(Error, name, "security_opt."+strconv.Itoa(i), "security option %q is not supported (only no-new-privileges)", o)
		}
	}
	for _, k := range sortedKeys(svc.Sysctls) {
		if !strings.HasPrefix(k, "net.") {
			pl.f.add(Error, name, []string{"services", name, "sysctls", k}, "sysctl %q is not namespaced per machine; only net.* can be set", k)
		} else if _, err := hostnet.ParseSysctl(k + "=" + svc.Sysctls[k]); err != nil {
			pl.f.add(Error, name, []string{"services", name, "sysctls", k}, "%v", err)
		}
	}
	if svc.Hostname != "" && !validHostName(svc.Hostname) {
		pl.f.svc(Error, name, "hostname", "%q is not a valid host name", svc.Hostname)
	}
	drv := svc.LogDriver
	if svc.Logging != nil && svc.Logging.Driver != "" {
		drv = svc.Logging.Driver
	}
	switch drv {
	case "", "journald", "json-file", "local", "none":
	default:
		pl.f.svc(Warning, name, "logging.driver", "log driver %q is not available; output goes to the journal", drv)
	}
	if svc.Logging != nil && len(svc.Logging.Options) > 0 {
		pl.f.svc(Warning, name, "logging.options", "log options are ignored; output goes to the journal")
	}
	if d := svc.Deploy; d != nil {
		if d.Mode != "" && d.Mode != "replicated" {
			pl.f.svc(Error, name, "deploy.mode", "deploy mode %q is not supported", d.Mode)
		}
		for _, r := range []*types.Resource{d.Resources.Limits, d.Resources.Reservations} {
			if r != nil && (len(r.Devices) > 0 || len(r.GenericResources) > 0) {
				pl.f.svc(Error, name, "deploy.resources", "device and generic resource requests are not supported")
			}
		}
		if d.Resources.Reservations != nil && (d.Resources.Reservations.NanoCPUs != 0 || d.Resources.Reservations.Pids != 0) {
			pl.f.svc(Warning, name, "deploy.resources.reservations", "CPU and pids reservations are not enforced by systemd; only memory is (MemoryLow=)")
		}
		if d.UpdateConfig != nil || d.RollbackConfig != nil || d.EndpointMode != "" || len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas > 0 {
			pl.f.svc(Warning, name, "deploy", "placement, update_config, rollback_config and endpoint_mode are swarm only; ignored")
		}
	}
	for i, v := range svc.Volumes {
		at := "volumes." + strconv.Itoa(i)
		switch v.Type {
		case types.VolumeTypeBind, types.VolumeTypeVolume, types.VolumeTypeTmpfs:
		default:
			pl.f.svc(Error, name, at, "volume type %q is not supported", v.Type)
		}
		if v.Bind != nil && v.Bind.Propagation != "" && v.Bind.Propagation != "rprivate" && v.Bind.Propagation != "private" {
			pl.f.svc(Error, name, at, "bind propagation %q is not supported", v.Bind.Propagation)
		}
		if v.Bind != nil && v.Bind.Recursive != "" && v.Bind.Recursive != "enabled" {
			pl.f.svc(Error, name, at, "bind recursive %q is not supported (nspawn binds are recursive)", v.Bind.Recursive)
		}
		if v.Bind != nil && v.Bind.SELinux != "" {
			pl.f.svc(Warning, name, at, "SELinux relabelling (:z/:Z) is not done; label the host directory yourself")
		}
		if v.Volume != nil && v.Volume.Subpath != "" {
			pl.f.svc(Error, name, at, "volume subpath is not supported")
		}
	}
	for k, nc := range svc.Networks {
		if nc == nil {
			continue
		}
		at := "networks." + k
		if nc.Ipv6Address != "" {
			pl.f.svc(Error, name, at+".ipv6_address", "IPv6 addresses are not supported yet")
		}
		if len(nc.LinkLocalIPs) > 0 {
			pl.f.svc(Error, name, at+".link_local_ips", "link-local addresses are not supported")
		}
		if nc.MacAddress != "" {
			pl.f.svc(Error, name, at+".mac_address", "fixed MAC addresses are not supported")
		}
		if len(nc.DriverOpts) > 0 {
			pl.f.svc(Error, name, at+".driver_opts", "network driver options are not supported")
		}
	}
	if svc.Privileged && len(svc.CapDrop) > 0 {
		pl.f.svc(Warning, name, "cap_drop", "cap_drop is applied after privileged: grants every capability")
	}
}

func (pl *planner) restart(name string, svc *types.ServiceConfig) RestartPlan {
	var r RestartPlan
	policy := svc.Restart
	if d := svc.Deploy; d != nil && d.RestartPolicy != nil {
		rp := d.RestartPolicy
		switch rp.Condition {
		case "", "any":
			policy = "always"
		case "on-failure":
			policy = "on-failure"
		case "none":
			policy = "no"
		}
		if rp.MaxAttempts != nil {
			r.MaxRetries = *rp.MaxAttempts
		}
		if rp.Delay != nil {
			r.Delay = time.Duration(*rp.Delay)
		}
		if rp.Window != nil {
			r.Window = time.Duration(*rp.Window)
		}
	}
	switch {
	case policy == "" || policy == "no":
		r.Restart = "no"
	case policy == "always" || policy == "unless-stopped":
		// unless-stopped differs from always only across a docker daemon
		// restart; a stopped unit stays stopped under systemd either way.
		r.Restart = "always"
	case policy == "on-failure":
		r.Restart = "on-failure"
	case strings.HasPrefix(policy, "on-failure:"):
		n, err := strconv.ParseUint(strings.TrimPrefix(policy, "on-failure:"), 10, 32)
		if err != nil {
			pl.f.svc(Error, name, "restart", "restart %q: the retry count is not a number", policy)
		}
		r.Restart = "on-failure"
		r.MaxRetries = n
	default:
		pl.f.svc(Error, name, "restart", "restart policy %q is not one of no, always, on-failure[:N], unless-stopped", policy)
		r.Restart = "no"
	}
	return r
}

func durOr(d *types.Duration, def time.Duration) time.Duration {
	if d == nil || *d == 0 {
		return def
	}
	return time.Duration(*d)
}

func (pl *planner) health(name string, svc *types.ServiceConfig) *HealthPlan {
	hc := svc.HealthCheck
	var img *v1.HealthConfig
	if cfg, ok := pl.image(svc.Image); ok && cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 {
		img = cfg.Healthcheck
	}
	if hc == nil {
		if img == nil {
			return nil
		}
		h := &HealthPlan{
			FromImage:     true,
			Interval:      orDur(img.Interval, defaultHealthInterval),
			Timeout:       orDur(img.Timeout, defaultHealthTimeout),
			StartPeriod:   img.StartPeriod,
			StartInterval: defaultHealthStartInt,
			Retries:       defaultHealthRetries,
		}
		if img.Retries > 0 {
			h.Retries = uint64(img.Retries)
		}
		if !pl.healthTest(name, h, img.Test) {
			return nil
		}
		return h
	}
	if hc.Disable {
		return nil
	}
	h := &HealthPlan{
		Interval:      durOr(hc.Interval, defaultHealthInterval),
		Timeout:       durOr(hc.Timeout, defaultHealthTimeout),
		StartPeriod:   durOr(hc.StartPeriod, 0),
		StartInterval: durOr(hc.StartInterval, defaultHealthStartInt),
		Retries:       defaultHealthRetries,
	}
	if hc.Retries != nil {
		h.Retries = *hc.Retries
	}
	if len(hc.Test) == 0 {
		// A healthcheck that only tunes timing applies to the image's test.
		if img != nil {
			h.FromImage = true
			if pl.healthTest(name, h, img.Test) {
				return h
			}
			return nil
		}
		pl.f.svc(Warning, name, "healthcheck", "healthcheck has no test and the image's HEALTHCHECK is not known; no check is run")
		return nil
	}
	if !pl.healthTest(name, h, hc.Test) {
		return nil
	}
	return h
}

// image returns the config of ref if the caller knows it.
func (pl *planner) image(ref string) (*v1.Config, bool) { return lookupImage(pl.opts, ref) }

// lookupImage asks opts.Images about ref; nil or unknown is ok=false.
func lookupImage(opts ConvertOptions, ref string) (*v1.Config, bool) {
	if opts.Images == nil || ref == "" {
		return nil, false
	}
	cfg, ok := opts.Images(ref)
	return cfg, ok && cfg != nil
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// healthTest fills h from a docker test array; false means no check.
func (pl *planner) healthTest(name string, h *HealthPlan, test []string) bool {
	switch test[0] {
	case "NONE":
		return false
	case "CMD":
		if len(test) < 2 {
			pl.f.svc(Error, name, "healthcheck.test", "CMD names no command")
			return false
		}
		h.Command = append([]string(nil), test[1:]...)
	case "CMD-SHELL":
		if len(test) == 2 && test[1] == "NONE" {
			// test: NONE written as a string: compose-go makes it a shell
			// command, but it can only mean "disabled".
			return false
		}
		if len(test) != 2 {
			pl.f.svc(Error, name, "healthcheck.test", "CMD-SHELL takes exactly one command string")
			return false
		}
		h.Shell = true
		h.Command = []string{test[1]}
	default:
		// compose-go turns a plain string into CMD-SHELL; anything else is
		// malformed.
		pl.f.svc(Error, name, "healthcheck.test", "test must start with CMD, CMD-SHELL or NONE, not %q", test[0])
		return false
	}
	if h.Interval <= 0 || h.Timeout <= 0 {
		pl.f.svc(Error, name, "healthcheck", "interval and timeout must be positive")
	}
	return true
}

func (pl *planner) planInterfaces(name string, svc *types.ServiceConfig, in *InstancePlan, replicas int) {
	type att struct {
		key string
		cfg *types.ServiceNetworkConfig
	}
	var atts []att
	for k, c := range svc.Networks {
		atts = append(atts, att{k, c})
	}
	// Docker orders a container's networks by priority (highest first),
	// then by name; the first one carries the default route.
	sort.Slice(atts, func(i, j int) bool {
		pi, pj := 0, 0
		if atts[i].cfg != nil {
			pi = atts[i].cfg.Priority
		}
		if atts[j].cfg != nil {
			pj = atts[j].cfg.Priority
		}
		if pi != pj {
			return pi > pj
		}
		return atts[i].key < atts[j].key
	})
	for i, a := range atts {
		np, ok := pl.nets[a.key]
		if !ok {
			pl.f.svc(Error, name, "networks."+a.key, "network %q is not declared", a.key)
			continue
		}
		ifc := Interface{
			Network: np,
			HostIf:  VethName(in.Machine, a.key),
			GuestIf: "eth" + strconv.Itoa(i),
		}
		if a.cfg != nil {
			if a.cfg.InterfaceName != "" {
				if !validIfName(a.cfg.InterfaceName) {
					pl.f.svc(Error, name, "networks."+a.key+".interface_name", "%q is not a valid interface name", a.cfg.InterfaceName)
				} else {
					ifc.GuestIf = a.cfg.InterfaceName
				}
			}
			ifc.Aliases = append(ifc.Aliases, a.cfg.Aliases...)
			ifc.GwPriority = a.cfg.GatewayPriority
			ifc.NoServiceAlias = a.cfg.UseServiceNameAlias != nil && !*a.cfg.UseServiceNameAlias
			if a.cfg.Ipv4Address != "" {
				addr, err := netip.ParseAddr(a.cfg.Ipv4Address)
				switch {
				case replicas > 1:
					pl.f.svc(Error, name, "networks."+a.key+".ipv4_address", "a fixed address cannot be shared by %d replicas", replicas)
				case err != nil || !addr.Is4():
					pl.f.svc(Error, name, "networks."+a.key+".ipv4_address", "%q is not an IPv4 address", a.cfg.Ipv4Address)
				case np.Subnet.IsValid() && !np.Subnet.Contains(addr):
					pl.f.svc(Error, name, "networks."+a.key+".ipv4_address", "%s is not in the network's subnet %s", addr, np.Subnet)
				case np.taken[addr]:
					pl.f.svc(Error, name, "networks."+a.key+".ipv4_address", "%s is already taken (gateway or another service)", addr)
				default:
					ifc.Addr = addr
					np.taken[addr] = true
				}
			}
		}
		in.Interfaces = append(in.Interfaces, ifc)
	}
}

// allocateAddresses gives every interface without a fixed address the next
// free one of its network, walking services and instances in sorted order
// so the result is deterministic.
func (pl *planner) allocateAddresses() {
	for _, sp := range pl.plan.Services {
		for _, in := range sp.Instances {
			for i := range in.Interfaces {
				ifc := &in.Interfaces[i]
				if ifc.Addr.IsValid() || ifc.Network.External && !ifc.Network.Subnet.IsValid() {
					if !ifc.Addr.IsValid() {
						pl.f.svc(Error, sp.Name, "networks."+ifc.Network.Key, "external network %q needs ipam.config[].subnet so berth can give addresses", ifc.Network.Key)
					}
					continue
				}
				a, ok := ifc.Network.nextFree()
				if !ok {
					pl.f.svc(Error, sp.Name, "networks."+ifc.Network.Key, "network %q (%s) has no free address left", ifc.Network.Key, ifc.Network.pool)
					continue
				}
				ifc.Addr = a
			}
		}
	}
}

func (np *NetworkPlan) nextFree() (netip.Addr, bool) {
	if !np.pool.IsValid() {
		return netip.Addr{}, false
	}
	a := np.next
	if !a.IsValid() {
		a = np.pool.Addr().Next() // skip the network address
	}
	last := lastAddr(np.pool)
	for ; np.pool.Contains(a) && a != last; a = a.Next() {
		if !np.taken[a] && np.Subnet.Contains(a) {
			np.taken[a] = true
			np.next = a.Next()
			return a, true
		}
	}
	return netip.Addr{}, false
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= math.MaxUint32 >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func (pl *planner) planDeps() {
	for _, sp := range pl.plan.Services {
		svc := sp.Spec
		for _, dep := range sortedKeys(svc.DependsOn) {
			d := svc.DependsOn[dep]
			cond := DepCondition(d.Condition)
			if cond == "" {
				cond = DepStarted
			}
			target, ok := pl.svcs[dep]
			if !ok {
				// compose-go drops optional dependencies on disabled
				// services; a required one missing is its error already.
				continue
			}
			switch cond {
			case DepStarted:
			case DepHealthy:
				if target.Health == nil {
					pl.f.svc(Error, sp.Name, "depends_on."+dep+".condition", "service_healthy, but %q has no healthcheck berth knows (define healthcheck: on it)", dep)
				}
			case DepCompleted:
				target.Oneshot = true
				if target.Restart.Restart == "always" {
					pl.f.svc(Error, sp.Name, "depends_on."+dep+".condition", "service_completed_successfully, but %q restarts always and so never completes", dep)
				}
			default:
				pl.f.svc(Error, sp.Name, "depends_on."+dep+".condition", "unknown condition %q", d.Condition)
			}
			sp.Deps = append(sp.Deps, DepPlan{Service: dep, Condition: cond, Required: d.Required, Restart: d.Restart})
		}
	}
}

func (pl *planner) planMounts(name string, svc *types.ServiceConfig, in *InstancePlan) {
	for i, v := range svc.Volumes {
		at := "volumes." + strconv.Itoa(i)
		target := path.Clean(v.Target)
		if !path.IsAbs(v.Target) {
			pl.f.svc(Error, name, at, "target %q is not an absolute path", v.Target)
			continue
		}
		m := Mount{Target: target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeBind:
			m.Kind = BindMount
			m.Source = v.Source
			if !path.IsAbs(m.Source) {
				pl.f.svc(Error, name, at, "bind source %q is not absolute after resolving", v.Source)
				continue
			}
			m.Create = v.Bind == nil || bool(v.Bind.CreateHostPath)
		case types.VolumeTypeVolume:
			m.Kind = BindMount
			m.Create = true
			m.Seed = v.Volume == nil || !v.Volume.NoCopy
			if v.Source == "" {
				// Anonymous volumes belong to the instance.
				m.Source = path.Join(in.StateDir, "anon", hashHex(12, target))
			} else if vp, ok := pl.vols[v.Source]; ok {
				m.Source = vp.Dir
				m.Create = !vp.External
			} else {
				pl.f.svc(Error, name, at, "volume %q is not declared under top-level volumes:", v.Source)
				continue
			}
		case types.VolumeTypeTmpfs:
			m.Kind = TmpfsMount
			m.Options = tmpfsOptions(v.Tmpfs)
		default:
			continue
		}
		in.Mounts = append(in.Mounts, m)
	}
	for _, t := range svc.Tmpfs {
		target, opts, _ := strings.Cut(t, ":")
		if !path.IsAbs(target) {
			pl.f.svc(Error, name, "tmpfs", "target %q is not an absolute path", target)
			continue
		}
		in.Mounts = append(in.Mounts, Mount{Kind: TmpfsMount, Target: path.Clean(target), Options: opts})
	}
	secretDir := path.Join(pl.plan.Dir, "secrets")
	for i, s := range svc.Secrets {
		def, ok := pl.p.Secrets[s.Source]
		if !ok {
			pl.f.svc(Error, name, "secrets."+strconv.Itoa(i), "secret %q is not declared", s.Source)
			continue
		}
		target := s.Target
		if target == "" {
			target = s.Source
		}
		if !path.IsAbs(target) {
			target = path.Join("/run/secrets", target)
		}
		pl.addFileMount(in, secretDir, "secrets", name, i, s.Source, target, types.FileReferenceConfig(s), types.FileObjectConfig(def), 0o444)
	}
	configDir := path.Join(pl.plan.Dir, "configs")
	for i, c := range svc.Configs {
		def, ok := pl.p.Configs[c.Source]
		if !ok {
			pl.f.svc(Error, name, "configs."+strconv.Itoa(i), "config %q is not declared", c.Source)
			continue
		}
		target := c.Target
		if target == "" {
			target = "/" + c.Source
		}
		pl.addFileMount(in, configDir, "configs", name, i, c.Source, target, types.FileReferenceConfig(c), types.FileObjectConfig(def), 0o444)
	}
}

// addFileMount plans a secret or config: a host copy per (service, index)
// because mode and owner are per reference, bind-mounted read-only.
func (pl *planner) addFileMount(in *InstancePlan, dir, kind, svcName string, i int, source, target string, ref types.FileReferenceConfig, def types.FileObjectConfig, defMode uint32) {
	at := kind + "." + strconv.Itoa(i)
	if !path.IsAbs(target) {
		pl.f.svc(Error, svcName, at, "target %q is not an absolute path", target)
		return
	}
	sf := &SecretFile{
		Name:     source,
		HostPath: path.Join(dir, pathSafe(svcName)+"."+strconv.Itoa(i)+"."+pathSafe(source)),
		Mode:     defMode,
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
		pl.f.svc(Error, svcName, at, "%s %q has no file, environment or content source", strings.TrimSuffix(kind, "s"), source)
		return
	}
	in.Mounts = append(in.Mounts, Mount{Kind: BindMount, Source: sf.HostPath, Target: path.Clean(target), ReadOnly: true, File: sf})
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

func (pl *planner) planPorts(name string, svc *types.ServiceConfig, sp *ServicePlan) {
	if len(svc.Ports) == 0 {
		return
	}
	if sp.NetworkMode == "host" {
		pl.f.svc(Warning, name, "ports", "ports are ignored with network_mode: host; the service listens on the host directly")
		return
	}
	if sp.NetworkMode == "none" {
		pl.f.svc(Error, name, "ports", "ports cannot be published with network_mode: none")
		return
	}
	if len(sp.Instances) > 1 {
		pl.f.svc(Error, name, "ports", "a published port cannot be shared by %d replicas", len(sp.Instances))
		return
	}
	if len(sp.Instances) == 0 {
		return
	}
	in := sp.Instances[0]
	for i, p := range svc.Ports {
		at := "ports." + strconv.Itoa(i)
		proto := p.Protocol
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			pl.f.svc(Error, name, at, "protocol %q is not supported (tcp, udp)", proto)
			continue
		}
		if p.Mode == "host" {
			pl.f.svc(Warning, name, at, "mode: host is swarm only; the port is published like mode: ingress")
		}
		if p.Published == "" {
			pl.f.svc(Error, name, at, "port %d has no host port; berth publishes only fixed ports (write HOST:%d)", p.Target, p.Target)
			continue
		}
		hostIP := p.HostIP
		if hostIP == "0.0.0.0" {
			hostIP = ""
		}
		if hostIP != "" {
			if a, err := netip.ParseAddr(hostIP); err != nil {
				pl.f.svc(Error, name, at, "host_ip %q is not an IP address", p.HostIP)
				continue
			} else {
				hostIP = a.String()
			}
		}
		port, err := strconv.ParseUint(p.Published, 10, 16)
		if err != nil || port == 0 {
			pl.f.svc(Error, name, at, "published port %q is not a port number", p.Published)
			continue
		}
		if len(in.Interfaces) == 0 {
			continue // no network to reach; reported with network_mode
		}
		pp := PortPlan{HostIP: hostIP, HostPort: uint16(port), Target: uint16(p.Target), Proto: proto}
		pp.Unit = PortUnit(in.Machine, proto, hostIP, pp.HostPort)
		in.Ports = append(in.Ports, pp)
	}
	sort.SliceStable(in.Ports, func(i, j int) bool { return in.Ports[i].Unit < in.Ports[j].Unit })
	for i := 1; i < len(in.Ports); i++ {
		if in.Ports[i].Unit == in.Ports[i-1].Unit {
			pl.f.svc(Error, name, "ports", "host port %d/%s is published twice", in.Ports[i].HostPort, in.Ports[i].Proto)
		}
	}
}
