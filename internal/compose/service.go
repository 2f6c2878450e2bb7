package compose

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/machine"
)

// The planner functions of the service keys, one per key (see ServiceKeys).
// Each reads its key, validates the value as findings and records it; none
// depends on another having run.

// planImage is the planner of image:. The machines resolve the image's
// Entrypoint, Cmd, Env, User, WorkingDir and STOPSIGNAL when they start,
// so a project whose images are not pulled yet converts, as docker compose
// config does; what the files need from the image now (its VOLUMEs, its
// HEALTHCHECK when the service has none) is then missing, and a warning
// says so. berth compose up pulls before it converts.
func (c *svcPlanner) planImage() {
	img := c.svc.Image
	switch {
	case img == "" && c.svc.Build == nil && c.svc.Dockerfile == "":
		c.err("image", "the service has no image:")
	case img == "":
	default:
		if _, known := c.image(img); !known {
			what := "VOLUMEs are"
			if c.svc.HealthCheck == nil {
				what = "VOLUMEs and HEALTHCHECK are"
			}
			c.warn("image", "image %q is not pulled, so its %s not known and not in these files (berth compose up pulls it first)", img, what)
		}
	}
}

// planBuild is the planner of build: berth pulls instead of building.
func (c *svcPlanner) planBuild() {
	if c.svc.Build != nil {
		c.buildFinding("build")
	}
}

// planDockerfile is the planner of dockerfile: (the legacy spelling).
func (c *svcPlanner) planDockerfile() {
	if c.svc.Dockerfile != "" && c.svc.Build == nil {
		c.buildFinding("dockerfile")
	}
}

func (c *svcPlanner) buildFinding(key string) {
	if c.svc.Image == "" {
		c.err(key, "build: is not supported yet (berth cannot build images); set image:")
	} else {
		c.warn(key, "berth cannot build images; build: is ignored and image %q is pulled", c.svc.Image)
	}
}

// planEntrypoint, planCommand, planEnvironment, planUser and
// planWorkingDir override the image's defaults (berth-init applies them
// when the machine starts; see assembleImage).
func (c *svcPlanner) planEntrypoint() {
	if c.svc.Entrypoint != nil {
		c.ov.Entrypoint = []string(c.svc.Entrypoint)
	}
}

func (c *svcPlanner) planCommand() {
	if c.svc.Command != nil {
		c.ov.Cmd = []string(c.svc.Command)
	}
}

func (c *svcPlanner) planEnvironment() {
	for _, k := range sortedKeys(c.svc.Environment) {
		// A variable listed without a value and not set in the
		// environment is left out, as docker does.
		if v := c.svc.Environment[k]; v != nil {
			c.ov.Env = append(c.ov.Env, k+"="+*v)
		}
	}
}

func (c *svcPlanner) planUser() { c.ov.User = c.svc.User }

func (c *svcPlanner) planWorkingDir() { c.ov.WorkingDir = c.svc.WorkingDir }

// planInit is the planner of init: berth-init always runs as PID 1 and
// reaps zombies, so init: true is what every machine has.
func (c *svcPlanner) planInit() {}

// planHostname is the planner of hostname: (Hostname= of the machine and
// a name in every hosts file).
func (c *svcPlanner) planHostname() {
	if h := c.svc.Hostname; h != "" {
		if !machine.ValidHostName(h) {
			c.err("hostname", "%q is not a valid host name", h)
			return
		}
		c.sp.Names.Hostname = h
	}
}

// planContainerName is the planner of container_name: a name other
// services resolve (the machine keeps its project-scoped name).
func (c *svcPlanner) planContainerName() {
	if n := c.svc.ContainerName; n != "" {
		if !machine.ValidHostName(n) {
			c.err("container_name", "%q is not a valid host name", n)
			return
		}
		c.sp.Names.ContainerName = n
	}
}

// planLinks is the planner of links: SERVICE:ALIAS adds ALIAS as a name
// of SERVICE in this service's hosts file.
func (c *svcPlanner) planLinks() {
	for i, l := range c.svc.Links {
		svc, alias, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if !machine.ValidHostName(alias) {
			c.err("links."+strconv.Itoa(i), "link alias %q is not a valid host name", alias)
			continue
		}
		if c.sp.Names.LinkAliases == nil {
			c.sp.Names.LinkAliases = map[string][]string{}
		}
		c.sp.Names.LinkAliases[svc] = append(c.sp.Names.LinkAliases[svc], alias)
	}
}

// planExtraHosts is the planner of extra_hosts: lines of the hosts file.
func (c *svcPlanner) planExtraHosts() {
	list := c.svc.ExtraHosts.AsList(" ")
	slices.Sort(list)
	for _, h := range list {
		name, ip, _ := strings.Cut(h, " ")
		addr, err := netip.ParseAddr(strings.Trim(ip, "[]"))
		switch {
		case err != nil:
			c.err("extra_hosts", "%q: %q is not an IP address", h, ip)
		case !machine.ValidHostName(name):
			c.err("extra_hosts", "%q: %q is not a valid host name", h, name)
		default:
			c.sp.Names.ExtraHosts = append(c.sp.Names.ExtraHosts, HostEntry{Name: name, Addr: addr})
		}
	}
}

// planDNS, planDNSSearch and planDNSOpt are the planners of dns:,
// dns_search: and dns_opt:, the lines of the machine's own resolv.conf.
func (c *svcPlanner) planDNS() {
	for i, ns := range c.svc.DNS {
		a, err := netip.ParseAddr(ns)
		if err != nil {
			c.err("dns."+strconv.Itoa(i), "%q is not an IP address", ns)
			continue
		}
		c.dns().Nameservers = append(c.dns().Nameservers, a)
	}
}

func (c *svcPlanner) planDNSSearch() {
	if len(c.svc.DNSSearch) > 0 {
		c.dns().Search = c.resolvWords("dns_search", c.svc.DNSSearch)
	}
}

func (c *svcPlanner) planDNSOpt() {
	if len(c.svc.DNSOpts) > 0 {
		c.dns().Options = c.resolvWords("dns_opt", c.svc.DNSOpts)
	}
}

// dns returns the service's resolv.conf plan, made on first use.
func (c *svcPlanner) dns() *DNSPlan {
	if c.sp.DNS == nil {
		c.sp.DNS = &DNSPlan{}
	}
	return c.sp.DNS
}

// resolvWords checks words for a resolv.conf line: no blanks, no comment
// characters, nothing empty.
func (c *svcPlanner) resolvWords(key string, vs []string) []string {
	var out []string
	for i, v := range vs {
		if v == "" || strings.ContainsAny(v, " \t\r\n#;") {
			c.err(key+"."+strconv.Itoa(i), "%q is empty or contains blanks or comment characters", v)
			continue
		}
		out = append(out, v)
	}
	return out
}

// planExpose and planLabels record what the manifest shows.
func (c *svcPlanner) planExpose() { c.sp.Expose = c.svc.Expose }

func (c *svcPlanner) planLabels() {
	if len(c.svc.Labels) > 0 {
		c.sp.Labels = map[string]string(c.svc.Labels)
	}
}

// planNetworkMode and planNet (its legacy spelling) choose between the
// project's networks (bridge), the host's namespace and none.
func (c *svcPlanner) planNetworkMode() { c.networkMode("network_mode", c.svc.NetworkMode) }

func (c *svcPlanner) planNet() {
	if c.svc.NetworkMode == "" {
		c.networkMode("net", c.svc.Net)
	}
}

func (c *svcPlanner) networkMode(key, nm string) {
	switch nm {
	case "", "bridge", "default":
	case "host", "none":
		c.sp.NetworkMode = nm
	default:
		c.err(key, "network_mode %q is not supported (use host, none or networks:)", nm)
	}
}

// planIPC, planIsolation and planPID accept what nspawn gives every
// machine: private namespaces.
func (c *svcPlanner) planIPC() {
	if ipc := c.svc.Ipc; ipc != "" && ipc != "private" && ipc != "shareable" {
		c.err("ipc", "ipc %q is not supported; machines have a private IPC namespace", ipc)
	}
}

func (c *svcPlanner) planIsolation() {
	if iso := c.svc.Isolation; iso != "" && iso != "default" {
		c.err("isolation", "isolation %q is not supported", iso)
	}
}

func (c *svcPlanner) planPID() {
	if c.svc.Pid != "" {
		c.err("pid", "pid %q is not supported; machines have their own PID namespace", c.svc.Pid)
	}
}

// planLogDriver and planLogging: output always goes to the journal.
func (c *svcPlanner) planLogDriver() { c.logDriver("log_driver", c.svc.LogDriver) }

func (c *svcPlanner) planLogging() {
	if l := c.svc.Logging; l != nil {
		c.logDriver("logging.driver", l.Driver)
		if len(l.Options) > 0 {
			c.warn("logging.options", "log options are ignored; output goes to the journal")
		}
	}
}

func (c *svcPlanner) logDriver(key, drv string) {
	switch drv {
	case "", "journald", "json-file", "local", "none":
	default:
		c.warn(key, "log driver %q is not available; output goes to the journal", drv)
	}
}

// planCapAdd, planCapDrop and planPrivileged decide the capability set;
// privileged: wins over cap_add: (see assemble).
func (c *svcPlanner) planCapAdd() { c.capAdd = c.capabilities("cap_add", c.svc.CapAdd) }

func (c *svcPlanner) planCapDrop() {
	c.m.Security.DropCapabilities = c.capabilities("cap_drop", c.svc.CapDrop)
}

func (c *svcPlanner) planPrivileged() {
	c.privileged = c.svc.Privileged
	if c.svc.Privileged && len(c.svc.CapDrop) > 0 {
		c.warn("cap_drop", "cap_drop is applied after privileged: grants every capability")
	}
}

func (c *svcPlanner) capabilities(key string, names []string) []string {
	var out []string
	for i, n := range names {
		cp, err := machine.Capability(n)
		if err != nil {
			c.err(key+"."+strconv.Itoa(i), "%s", machine.Reason(err))
			continue
		}
		out = append(out, cp)
	}
	slices.Sort(out)
	return out
}

// planSecurityOpt is the planner of security_opt: only no-new-privileges.
func (c *svcPlanner) planSecurityOpt() {
	for i, o := range c.svc.SecurityOpt {
		switch o {
		case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
			c.m.Security.NoNewPrivileges = true
		case "no-new-privileges:false", "no-new-privileges=false":
		default:
			c.err("security_opt."+strconv.Itoa(i), "security option %q is not supported (only no-new-privileges)", o)
		}
	}
}

// planOOMScoreAdj is the planner of oom_score_adj: (OOMScoreAdjust=).
func (c *svcPlanner) planOOMScoreAdj() {
	v := c.svc.OomScoreAdj
	if v == 0 {
		return
	}
	if v < -1000 || v > 1000 {
		c.err("oom_score_adj", "%d is outside -1000..1000", v)
		return
	}
	adj := int(v)
	c.m.Security.OOMScoreAdjust = &adj
}

// planUlimits is the planner of ulimits: (Limit*= of the machine).
func (c *svcPlanner) planUlimits() {
	for _, name := range sortedKeys(c.svc.Ulimits) {
		u := c.svc.Ulimits[name]
		r := machine.Rlimit{Name: name, Soft: int64(u.Soft), Hard: int64(u.Hard)}
		if u.Single != 0 {
			r.Soft, r.Hard = int64(u.Single), int64(u.Single)
		}
		if err := r.Validate(); err != nil {
			c.err("ulimits."+name, "%s", machine.Reason(err))
			continue
		}
		c.m.Security.Rlimits = append(c.m.Security.Rlimits, r)
	}
}

// planReadOnly is the planner of read_only: (a read-only root).
func (c *svcPlanner) planReadOnly() { c.m.ReadOnly = c.svc.ReadOnly }

// planShmSize is the planner of shm_size: the size of /dev/shm.
func (c *svcPlanner) planShmSize() {
	if n := c.svc.ShmSize; n > 0 {
		c.shm = &machine.Tmpfs{Target: "/dev/shm", Options: "mode=1777,size=" + strconv.FormatInt(int64(n), 10)}
	}
}

// planDevices is the planner of devices: the node bound in and allowed.
func (c *svcPlanner) planDevices() {
	for i, d := range c.svc.Devices {
		dev := machine.Device{Source: d.Source, Target: d.Target, Permissions: d.Permissions}
		if err := dev.Validate(); err != nil {
			c.err("devices."+strconv.Itoa(i), "%s", machine.Reason(err))
			continue
		}
		c.m.Devices = append(c.m.Devices, dev)
	}
}

// planSysctls is the planner of sysctls: net.* keys are set in the
// machine's network namespace; the others are the host kernel's.
func (c *svcPlanner) planSysctls() {
	for _, k := range sortedKeys(c.svc.Sysctls) {
		at := []string{"services", c.name, "sysctls", k}
		kv := k + "=" + c.svc.Sysctls[k]
		if !strings.HasPrefix(k, "net.") {
			c.f.add(Error, c.name, at, "sysctl %q is not namespaced per machine; only net.* can be set", k)
		} else if _, err := netspec.ParseSysctl(kv); err != nil {
			c.f.add(Error, c.name, at, "%v", err)
		} else {
			c.sp.Sysctls = append(c.sp.Sysctls, kv)
		}
	}
}

// planStopSignal is the planner of stop_signal: (it wins over the
// image's STOPSIGNAL).
func (c *svcPlanner) planStopSignal() {
	if s := c.svc.StopSignal; s != "" {
		sig, err := machine.SignalName(s)
		if err != nil {
			c.err("stop_signal", "%s", machine.Reason(err))
			return
		}
		c.m.StopSignal = sig
	}
}

// planStopGracePeriod is the planner of stop_grace_period: how long
// systemd waits after the stop signal (docker's default 10s; 0 kills at
// once, as docker does).
func (c *svcPlanner) planStopGracePeriod() {
	d := defaultStopGrace
	if g := c.svc.StopGracePeriod; g != nil {
		d = time.Duration(*g)
	}
	if d < 0 {
		c.err("stop_grace_period", "%v is negative", d)
		d = defaultStopGrace
	}
	c.m.StopTimeout = &d
}
