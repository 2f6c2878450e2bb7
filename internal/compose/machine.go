package compose

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/unit"
)

// NetnsDir is where the helper creates the named network namespaces that
// machines join (the iproute2 convention, so `ip netns` sees them).
const NetnsDir = "/run/netns"

// machine builds the machine.Spec of one instance, renders it with the
// machine package, and adds what only compose has (dependencies, network
// namespace, health, resource limits, capabilities...) to the unit model.
func (r *renderer) machine(sp *ServicePlan, in *InstancePlan, extra []Mount) (*unit.File, *unit.File, error) {
	svc := sp.Spec
	cfg, ok := lookupImage(r.opts, sp.Image)
	if !ok {
		cfg = &v1.Config{}
	}
	ov := machine.Overrides{User: svc.User, WorkingDir: svc.WorkingDir}
	if svc.Entrypoint != nil {
		ov.Entrypoint = []string(svc.Entrypoint)
	}
	if svc.Command != nil {
		ov.Cmd = []string(svc.Command)
	}
	for _, k := range sortedKeys(svc.Environment) {
		// A variable listed without a value and not set in the
		// environment is left out, as docker does.
		if v := svc.Environment[k]; v != nil {
			ov.Env = append(ov.Env, k+"="+*v)
		}
	}
	spec, err := machine.SpecFromImage(in.Machine, path.Join(r.opts.MachinesDir, in.Machine), *cfg, ov)
	if err != nil {
		return nil, nil, fmt.Errorf("render machine %s: %w", in.Machine, err)
	}
	if len(spec.Argv) == 0 {
		if !ok {
			return nil, nil, fmt.Errorf("render machine %s: image %q is not known (berth pull it first) and service %q sets no entrypoint: or command:", in.Machine, sp.Image, sp.Name)
		}
		return nil, nil, fmt.Errorf("render machine %s: image %q has no Entrypoint or Cmd and service %q sets no command:", in.Machine, sp.Image, sp.Name)
	}
	spec.Image = sp.Image
	spec.InitBinary = r.opts.Init
	if svc.StopSignal != "" {
		sig, err := machine.SignalName(svc.StopSignal)
		if err != nil {
			return nil, nil, fmt.Errorf("render machine %s: stop_signal: %w", in.Machine, err)
		}
		spec.StopSignal = sig
	}
	// Compose machines share the host's users, as docker containers do by
	// default: systemd-nspawn cannot join a network namespace the host
	// made (--network-namespace-path) from inside a private user
	// namespace, and the prepared namespace is what guarantees a
	// configured network before the command starts. docs/compose.md has
	// the trade-off and the way back to private users.
	spec.PrivateUsers = "no"
	covered := map[string]bool{}
	for _, m := range append(append([]Mount(nil), in.Mounts...), extra...) {
		covered[m.Target] = true
		if m.Kind == BindMount {
			spec.Binds = append(spec.Binds, machine.Bind{Source: m.Source, Destination: m.Target, ReadOnly: m.ReadOnly})
		}
	}
	// The image's VOLUMEs not covered by a compose mount get anonymous
	// per-instance directories, as docker gives them.
	var anon, anonTargets []string
	for _, v := range spec.Volumes {
		if covered[v] {
			continue
		}
		src := path.Join(in.StateDir, "anon", hashHex(12, v))
		spec.Binds = append(spec.Binds, machine.Bind{Source: src, Destination: v})
		anon, anonTargets = append(anon, src), append(anonTargets, v)
	}
	for _, d := range svc.Devices {
		if !path.IsAbs(d.Source) || !path.IsAbs(d.Target) {
			return nil, nil, fmt.Errorf("render machine %s: device %s:%s needs absolute paths", in.Machine, d.Source, d.Target)
		}
		spec.Binds = append(spec.Binds, machine.Bind{Source: d.Source, Destination: d.Target})
	}
	spec.Restart = sp.Restart.Restart
	lim := limits(svc)
	spec.Limits = machine.Limits{MemoryMax: lim.memoryMax, CPUQuota: lim.cpuQuota, TasksMax: lim.tasksMax}
	spec.Unit.Description = fmt.Sprintf("berth compose %s/%s (%s, %s)", r.plan.Project, sp.Name, in.Machine, sp.Image)
	spec.Unit.PartOf = []string{r.plan.Target}
	switch sp.NetworkMode {
	case "host":
		spec.Network = machine.Network{Mode: machine.NetworkHost}
	case "none":
		spec.Network = machine.Network{Mode: machine.NetworkNone}
	default:
		// Joined below: the machine runs in a network namespace the
		// helper prepared, so its links are up before its command runs.
		spec.Network = machine.Network{Mode: machine.NetworkHost}
	}
	r.deps(sp, in, &spec)

	nspawn, err := machine.RenderNspawn(&spec)
	if err != nil {
		return nil, nil, err
	}
	service, err := machine.RenderService(&spec)
	if err != nil {
		return nil, nil, err
	}
	for i, a := range anon {
		r.dir(path.Dir(a), 0o700)
		r.dir(a, 0o755)
		r.seed(a, path.Join(r.opts.MachinesDir, in.Machine, anonTargets[i]))
	}
	if err := r.nspawnExtras(sp, in, nspawn, covered); err != nil {
		return nil, nil, err
	}
	if err := r.serviceExtras(sp, in, service, lim); err != nil {
		return nil, nil, err
	}
	return nspawn, service, nil
}

// deps adds the project's ordering and requirement edges. A healthy
// dependency is its _health unit (ready only once the check passed); a
// completed one is its oneshot machine unit (started only once it exited
// 0); a started one is its machine unit.
func (r *renderer) deps(sp *ServicePlan, in *InstancePlan, spec *machine.Spec) {
	for _, ifc := range in.Interfaces {
		if !ifc.Network.External {
			spec.Unit.Requires = append(spec.Unit.Requires, ifc.Network.Unit)
			spec.Unit.After = append(spec.Unit.After, ifc.Network.Unit)
		}
	}
	if sp.Health != nil {
		spec.Unit.Wants = append(spec.Unit.Wants, HealthUnit(in.Machine))
	}
	for _, d := range sp.Deps {
		dep := r.service(d.Service)
		if dep == nil {
			continue
		}
		for _, di := range dep.Instances {
			u := di.Unit
			if d.Condition == DepHealthy {
				u = HealthUnit(di.Machine)
			}
			if d.Required {
				spec.Unit.Requires = append(spec.Unit.Requires, u)
			} else {
				spec.Unit.Wants = append(spec.Unit.Wants, u)
			}
			spec.Unit.After = append(spec.Unit.After, u)
			if d.Restart {
				// restart: true — restarting the dependency restarts
				// this service too.
				spec.Unit.PartOf = append(spec.Unit.PartOf, di.Unit)
			}
		}
	}
}

func (r *renderer) service(name string) *ServicePlan {
	for _, sp := range r.plan.Services {
		if sp.Name == name {
			return sp
		}
	}
	return nil
}

// nspawnExtras adds the compose settings the machine Spec has no field for.
func (r *renderer) nspawnExtras(sp *ServicePlan, in *InstancePlan, f *unit.File, covered map[string]bool) error {
	svc := sp.Spec
	exec := f.Section("Exec")
	if in.Hostname != in.Machine || svc.Hostname != "" {
		if !validHostName(in.Hostname) {
			return fmt.Errorf("render %s.nspawn: hostname %q is not a valid host name", in.Machine, in.Hostname)
		}
	}
	exec.Add("Hostname", in.Hostname)
	// nspawn reads Capability= words without unquoting them, so each
	// (validated) name goes on a line of its own as plain text.
	if svc.Privileged {
		exec.Add("Capability", "all")
	} else if len(svc.CapAdd) > 0 {
		caps, err := capNames(svc.CapAdd)
		if err != nil {
			return fmt.Errorf("render %s.nspawn: cap_add: %w", in.Machine, err)
		}
		for _, c := range caps {
			exec.Add("Capability", c)
		}
	}
	if len(svc.CapDrop) > 0 {
		caps, err := capNames(svc.CapDrop)
		if err != nil {
			return fmt.Errorf("render %s.nspawn: cap_drop: %w", in.Machine, err)
		}
		for _, c := range caps {
			exec.Add("DropCapability", c)
		}
	}
	for _, o := range svc.SecurityOpt {
		if strings.HasPrefix(o, "no-new-privileges") && !strings.HasSuffix(o, "false") {
			exec.Add("NoNewPrivileges", "yes")
		}
	}
	if svc.OomScoreAdj != 0 {
		exec.Add("OOMScoreAdjust", strconv.FormatInt(svc.OomScoreAdj, 10))
	}
	for _, name := range sortedKeys(svc.Ulimits) {
		key, ok := ulimitKeys[name]
		if !ok {
			return fmt.Errorf("render %s.nspawn: ulimits: %q is not a limit systemd-nspawn knows", in.Machine, name)
		}
		u := svc.Ulimits[name]
		soft, hard := u.Soft, u.Hard
		if u.Single != 0 {
			soft, hard = u.Single, u.Single
		}
		exec.Add(key, limitValue(soft)+":"+limitValue(hard))
	}
	if covered["/etc/resolv.conf"] {
		exec.Add("ResolvConf", "off")
	}
	files := f.Section("Files")
	if svc.ReadOnly {
		files.Add("ReadOnly", "yes")
	}
	// TemporaryFileSystem= takes its value verbatim (no unquoting), split
	// at the first ':': the target may not contain one, and neither may
	// carry blanks or quotes.
	for _, m := range in.Mounts {
		if m.Kind != TmpfsMount {
			continue
		}
		v := m.Target
		if m.Options != "" {
			v += ":" + m.Options
		}
		if strings.ContainsAny(m.Target, ":") || strings.ContainsAny(v, " \t\"'\\") {
			return fmt.Errorf("render %s.nspawn: tmpfs %q contains characters TemporaryFileSystem= cannot carry", in.Machine, v)
		}
		files.Add("TemporaryFileSystem", v)
	}
	if svc.ShmSize > 0 {
		files.Add("TemporaryFileSystem", "/dev/shm:mode=1777,size="+strconv.FormatInt(int64(svc.ShmSize), 10))
	}
	if sp.NetworkMode == "bridge" {
		// The machine joins the prepared namespace (a command line
		// option; .nspawn files cannot name one): no network settings
		// here, nspawn must not add links of its own.
		net := f.Section("Network")
		net.Entries = nil
	}
	return nil
}

// serviceExtras adds the compose settings of the machine's service unit.
func (r *renderer) serviceExtras(sp *ServicePlan, in *InstancePlan, f *unit.File, lim limitSet) error {
	s := f.Section("Service")
	if sp.NetworkMode == "bridge" {
		netns := path.Join(NetnsDir, "berth-"+in.Machine)
		execStart := f.Lookup("Service", "ExecStart")
		if len(execStart) != 1 {
			return fmt.Errorf("render %s: the machine unit has %d ExecStart= lines, want 1", in.Unit, len(execStart))
		}
		setEntry(f, "Service", "ExecStart", unit.Entry{Key: "ExecStart", Kind: unit.Command,
			Values: append(append([]string(nil), execStart[0].Values...), "--network-namespace-path="+netns)})
		up := []string{r.opts.Berth, "compose", "_netns-up", "--netns", path.Base(netns)}
		// The default route goes through the network with the highest
		// gw_priority, then the first (by priority, then name) that
		// reaches the outside, as docker picks it.
		gw := -1
		for i, ifc := range in.Interfaces {
			if !ifc.Network.Internal && !ifc.Network.External && (gw < 0 || ifc.GwPriority > in.Interfaces[gw].GwPriority) {
				gw = i
			}
		}
		for i, ifc := range in.Interfaces {
			link := fmt.Sprintf("%s,%s,%s,%s/%d", ifc.HostIf, ifc.Network.Bridge, ifc.GuestIf, ifc.Addr, ifc.Network.Subnet.Bits())
			if i == gw {
				link += "," + ifc.Network.Gateway.String()
			}
			up = append(up, "--link", link)
		}
		down := []string{r.opts.Berth, "compose", "_netns-down", "--netns", path.Base(netns)}
		down = append(down, up[5:]...)
		for _, k := range sortedKeys(sp.Spec.Sysctls) {
			up = append(up, "--sysctl", k+"="+sp.Spec.Sysctls[k])
		}
		// "+" is not needed (the unit runs as root); "-" on the cleanup
		// so a half-made namespace never blocks a stop.
		s.AddCommand("ExecStartPre", "", up...)
		s.AddCommand("ExecStopPost", "-", down...)
	}
	if sp.Oneshot {
		// A dependent waits for this service to finish with exit 0:
		// "started" means "exited successfully".
		setEntry(f, "Service", "Type", unit.Entry{Key: "Type", Kind: unit.Text, Values: []string{"oneshot"}})
		s.Add("RemainAfterExit", "yes")
		s.Add("TimeoutStartSec", "infinity")
		dropEntries(f, "Service", "WatchdogSec")
		// A oneshot cannot be force-restarted on nspawn's "reboot" status.
		dropEntries(f, "Service", "RestartForceExitStatus")
	}
	rp := sp.Restart
	if rp.Restart != "no" {
		delay := rp.Delay
		if delay == 0 {
			delay = defaultRestartDelay
		}
		s.Add("RestartSec", seconds(delay))
	}
	u := f.Section("Unit")
	if rp.MaxRetries > 0 {
		// on-failure:N allows N restarts after the first start.
		u.Add("StartLimitBurst", strconv.FormatUint(rp.MaxRetries+1, 10))
		win := "infinity"
		if rp.Window > 0 {
			win = seconds(rp.Window)
		}
		u.Add("StartLimitIntervalSec", win)
	}
	if sp.Spec.StopGracePeriod != nil {
		s.Add("TimeoutStopSec", seconds(durOr(sp.Spec.StopGracePeriod, 0)))
	} else {
		// Docker's default grace period before SIGKILL.
		s.Add("TimeoutStopSec", "10s")
	}
	if lim.memoryLow != "" {
		s.Add("MemoryLow", lim.memoryLow)
	}
	if lim.memorySwapMax != "" {
		s.Add("MemorySwapMax", lim.memorySwapMax)
	}
	if lim.cpuWeight != "" {
		s.Add("CPUWeight", lim.cpuWeight)
	}
	if lim.allowedCPUs != "" {
		s.Add("AllowedCPUs", lim.allowedCPUs)
	}
	for _, d := range sp.Spec.Devices {
		perm := d.Permissions
		if perm == "" {
			perm = "rwm"
		}
		if strings.Trim(perm, "rwm") != "" {
			return fmt.Errorf("render %s: device %s permissions %q (want r, w, m)", in.Unit, d.Source, perm)
		}
		if strings.ContainsAny(d.Source, " \t") {
			return fmt.Errorf("render %s: device path %q contains blanks", in.Unit, d.Source)
		}
		s.Add("DeviceAllow", d.Source+" "+perm)
	}
	return nil
}

// defaultRestartDelay is docker's first restart delay.
const defaultRestartDelay = 100 * time.Millisecond

func setEntry(f *unit.File, section, key string, e unit.Entry) {
	s := f.Section(section)
	for i, old := range s.Entries {
		if old.Key == key {
			s.Entries[i] = e
			dropAfter(s, key, i)
			return
		}
	}
	s.Entries = append(s.Entries, e)
}

func dropAfter(s *unit.Section, key string, i int) {
	out := s.Entries[:i+1]
	for _, e := range s.Entries[i+1:] {
		if e.Key != key {
			out = append(out, e)
		}
	}
	s.Entries = out
}

func dropEntries(f *unit.File, section, key string) {
	s := f.Section(section)
	out := s.Entries[:0]
	for _, e := range s.Entries {
		if e.Key != key {
			out = append(out, e)
		}
	}
	s.Entries = out
}

type limitSet struct {
	memoryMax, memoryLow, memorySwapMax, cpuQuota, cpuWeight, allowedCPUs, tasksMax string
}

// limits maps compose's resource keys; deploy.resources.limits wins over
// the service-level keys, as in docker compose.
func limits(svc *types.ServiceConfig) limitSet {
	var l limitSet
	mem := int64(svc.MemLimit)
	cpus := float64(svc.CPUS)
	pids := svc.PidsLimit
	low := int64(svc.MemReservation)
	if d := svc.Deploy; d != nil {
		if lim := d.Resources.Limits; lim != nil {
			if lim.MemoryBytes > 0 {
				mem = int64(lim.MemoryBytes)
			}
			if lim.NanoCPUs > 0 {
				cpus = float64(lim.NanoCPUs)
			}
			if lim.Pids > 0 {
				pids = lim.Pids
			}
		}
		if res := d.Resources.Reservations; res != nil && res.MemoryBytes > 0 {
			low = int64(res.MemoryBytes)
		}
	}
	if mem > 0 {
		l.memoryMax = strconv.FormatInt(mem, 10)
	}
	if low > 0 {
		l.memoryLow = strconv.FormatInt(low, 10)
	}
	switch sw := int64(svc.MemSwapLimit); {
	case sw == -1:
		l.memorySwapMax = "infinity"
	case sw > 0 && mem > 0 && sw >= mem:
		l.memorySwapMax = strconv.FormatInt(sw-mem, 10)
	}
	if cpus > 0 {
		l.cpuQuota = strconv.FormatInt(int64(cpus*100+0.5), 10) + "%"
	}
	if pids > 0 {
		l.tasksMax = strconv.FormatInt(pids, 10)
	} else if pids < 0 {
		l.tasksMax = "infinity"
	}
	if svc.CPUShares > 0 {
		w := svc.CPUShares * 100 / 1024
		l.cpuWeight = strconv.FormatInt(min(max(w, 1), 10000), 10)
	}
	if svc.CPUSet != "" && strings.Trim(svc.CPUSet, "0123456789,-") == "" {
		l.allowedCPUs = svc.CPUSet
	}
	return l
}

var ulimitKeys = map[string]string{
	"core": "LimitCORE", "cpu": "LimitCPU", "data": "LimitDATA", "fsize": "LimitFSIZE",
	"locks": "LimitLOCKS", "memlock": "LimitMEMLOCK", "msgqueue": "LimitMSGQUEUE",
	"nice": "LimitNICE", "nofile": "LimitNOFILE", "nproc": "LimitNPROC", "rss": "LimitRSS",
	"rtprio": "LimitRTPRIO", "rttime": "LimitRTTIME", "sigpending": "LimitSIGPENDING",
	"stack": "LimitSTACK", "as": "LimitAS",
}

func limitValue(v int) string {
	if v < 0 {
		return "infinity"
	}
	return strconv.Itoa(v)
}

// capNames turns docker capability names (NET_ADMIN, CAP_NET_ADMIN, ALL)
// into nspawn's (CAP_NET_ADMIN, all).
func capNames(in []string) ([]string, error) {
	var out []string
	for _, c := range in {
		u := strings.ToUpper(c)
		if u == "ALL" {
			out = append(out, "all")
			continue
		}
		if !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		for _, r := range u {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
				return nil, fmt.Errorf("%q is not a capability name", c)
			}
		}
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}
