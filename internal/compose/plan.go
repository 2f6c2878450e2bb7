package compose

import (
	"net/netip"
	"path"
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/paths"
	"github.com/berth-sh/berth/internal/store"
)

// planner builds a Plan and collects findings. Every compose key reaches
// the plan through one planner function, named in its ServiceKeys row;
// the functions read their key, validate its value (a finding with
// file:line when it is wrong) and record it in the service's draft or
// straight in the machine template. assemble then builds each instance's
// machine.Spec from the draft, applying docker's precedence rules.
type planner struct {
	p    *Project
	opts ConvertOptions
	f    *findings
	plan *Plan
	nets map[string]*NetworkPlan
	vols map[string]*VolumePlan
	svcs map[string]*ServicePlan
	// drafts keeps each service's planner state until the machines are
	// finished (dependencies and addresses need every service).
	drafts map[string]*svcPlanner
}

func newPlan(p *Project, opts ConvertOptions) (*Plan, Findings) {
	pl := &planner{
		p:      p,
		opts:   opts,
		f:      &findings{src: p.sources},
		nets:   map[string]*NetworkPlan{},
		vols:   map[string]*VolumePlan{},
		svcs:   map[string]*ServicePlan{},
		drafts: map[string]*svcPlanner{},
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
		c := pl.planService(name, &svc)
		pl.plan.Services = append(pl.plan.Services, c.sp)
		pl.svcs[name] = c.sp
		pl.drafts[name] = c
	}
	pl.planDeps()
	pl.allocateAddresses()
	for _, sp := range pl.plan.Services {
		pl.finishMachines(pl.drafts[sp.Name])
	}
	pl.f.list.sort()
	return pl.plan, pl.f.list
}

// svcPlanner is the state of one service while its keys are planned.
type svcPlanner struct {
	*planner
	name string
	svc  *types.ServiceConfig
	sp   *ServicePlan
	// m is the machine template every instance starts from.
	m machine.Spec
	// ov are the overrides of the image's defaults.
	ov machine.Overrides
	// Values that several keys decide together (see assemble).
	replicas, scale *int
	privileged      bool
	capAdd          []string
	res, deployRes  resources
	restart         string
	deployRestart   *types.RestartPolicy
	shm             *machine.Tmpfs
	mounts          mountDraft
	attach          []attachment
	ports           []PortPlan
	// n is the number of instances.
	n int
}

// mountDraft are a service's mounts by key, assembled in docker's order.
type mountDraft struct{ volumes, tmpfs, secrets, configs []Mount }

// err and warn record a finding at a key path below the service.
func (c *svcPlanner) err(key, format string, args ...any) {
	c.f.svc(Error, c.name, key, format, args...)
}

func (c *svcPlanner) warn(key, format string, args ...any) {
	c.f.svc(Warning, c.name, key, format, args...)
}

// planService runs the planner function of every key in the support table
// (each handles its key being absent), then assembles the service.
func (pl *planner) planService(name string, svc *types.ServiceConfig) *svcPlanner {
	c := &svcPlanner{
		planner: pl,
		name:    name,
		svc:     svc,
		sp:      &ServicePlan{Name: name, Image: svc.Image, NetworkMode: "bridge"},
	}
	for _, r := range ServiceKeys {
		if r.plan != nil {
			r.plan(c)
		}
	}
	c.assemble()
	return c
}

// assemble applies the rules that span keys: the image's defaults under
// the overrides, deploy: over the service-level keys, privileged: over
// cap_add:, and the replica count.
func (c *svcPlanner) assemble() {
	c.assembleImage()
	if c.privileged {
		c.m.Security.Capabilities = []string{"all"}
	} else {
		c.m.Security.Capabilities = c.capAdd
	}
	c.assembleLimits()
	c.assembleRestart()
	if c.shm != nil {
		c.m.Tmpfs = append(c.m.Tmpfs, *c.shm)
	}
	c.n = 1
	if c.replicas != nil {
		c.n = *c.replicas
	}
	if c.scale != nil {
		c.n = *c.scale
	}
	for _, a := range c.attach {
		if a.addr.IsValid() && c.n > 1 {
			c.err("networks."+a.key+".ipv4_address", "a fixed address cannot be shared by %d replicas", c.n)
		}
	}
	for i := 1; i <= c.n; i++ {
		c.sp.Instances = append(c.sp.Instances, c.instance(i))
	}
	c.checkPorts()
}

// assembleImage checks what the machines will run. They resolve the
// image's defaults under the overrides when they start (finishMachines),
// but what can be known now is checked now, with the same rules: a
// command must remain (known without the image when the entrypoint is
// replaced), and the image's values must be valid. The image's VOLUMEs
// are taken when it is known: they become anonymous volumes.
func (c *svcPlanner) assembleImage() {
	cfg, known := c.image(c.svc.Image)
	if cfg == nil {
		cfg = &machine.ImageConfig{}
	}
	probe := c.m
	if err := probe.ApplyImage(*cfg, c.ov); err != nil {
		c.err("image", "%s", machine.Reason(err))
	}
	if len(probe.Argv) == 0 && (known || c.ov.Entrypoint != nil) {
		key := "image"
		if c.ov.Cmd != nil {
			key = "command"
		} else if c.ov.Entrypoint != nil {
			key = "entrypoint"
		}
		c.err(key, "the machine has no command: neither image %q nor the service gives an entrypoint or command", c.svc.Image)
	}
	if known {
		c.m.Volumes, c.m.ExposedPorts = probe.Volumes, probe.ExposedPorts
	}
}

// instance lays out machine i of the service: names, state directory,
// mounts and interfaces. Its Spec is finished once every service is
// planned (finishMachines).
func (c *svcPlanner) instance(i int) *InstancePlan {
	m := MachineName(c.p.Name, c.name, i)
	in := &InstancePlan{
		Index:    i,
		Machine:  m,
		Unit:     MachineUnit(m),
		StateDir: path.Join(c.plan.Dir, "machines", m),
		Hostname: c.sp.Names.Hostname,
	}
	if in.Hostname == "" {
		in.Hostname = m
	}
	for _, list := range [][]Mount{c.mounts.volumes, c.mounts.tmpfs, c.mounts.secrets, c.mounts.configs} {
		for _, mt := range list {
			if mt.anonymous {
				// Anonymous volumes belong to the instance.
				mt.Source = path.Join(in.StateDir, "anon", hashHex(12, mt.Target))
			}
			in.Mounts = append(in.Mounts, mt)
		}
	}
	if c.sp.NetworkMode == "bridge" {
		c.interfaces(in)
	}
	return in
}

// finishMachines builds each instance's machine.Spec: the template, the
// instance's names and mounts, its network namespace and the project's
// dependencies.
func (pl *planner) finishMachines(c *svcPlanner) {
	sp := c.sp
	for _, in := range sp.Instances {
		s := c.m
		s.Name = in.Machine
		s.Directory = path.Join(pl.opts.MachinesDir, in.Machine)
		s.Image = sp.Image
		s.InitBinary = pl.opts.Init
		// The machine reads its image's defaults from the config kept
		// with it when it starts: the units stay right when `compose
		// pull` or `up` installs a new image.
		s.ResolveAtStart(store.ConfigPath(pl.opts.MachinesDir, in.Machine), c.ov)
		s.Hostname = in.Hostname
		// Compose machines share the host's users, as docker containers
		// do by default: systemd-nspawn cannot join a network namespace
		// the host made (--network-namespace-path) from inside a private
		// user namespace, and the prepared namespace is what guarantees a
		// configured network before the command starts. docs/compose.md
		// has the trade-off and the way back to private users.
		s.PrivateUsers = "no"
		s.Unit = machine.UnitDeps{
			Description: "berth compose " + pl.plan.Project + "/" + sp.Name + " (" + in.Machine + ", " + sp.Image + ")",
			PartOf:      []string{pl.plan.Target},
		}
		pl.machineMounts(sp, in, &s)
		pl.machineNetwork(sp, in, &s)
		pl.machineDeps(sp, in, &s)
		if sp.Oneshot {
			s.Oneshot = true
		}
		in.Spec = s
	}
}

// machineMounts turns the instance's mounts into binds and tmpfs mounts,
// adds the generated hosts and resolv.conf files, and backs the image's
// VOLUMEs that no mount covers with anonymous per-instance directories,
// as docker does.
func (pl *planner) machineMounts(sp *ServicePlan, in *InstancePlan, s *machine.Spec) {
	shm := s.Tmpfs // the template's: shm_size, mounted last
	s.Binds, s.Tmpfs = nil, nil
	covered := map[string]bool{}
	for _, m := range in.Mounts {
		covered[m.Target] = true
		switch m.Kind {
		case BindMount:
			s.Binds = append(s.Binds, machine.Bind{Source: m.Source, Destination: m.Target, ReadOnly: m.ReadOnly})
		case TmpfsMount:
			s.Tmpfs = append(s.Tmpfs, machine.Tmpfs{Target: m.Target, Options: m.Options})
		}
	}
	s.Tmpfs = append(s.Tmpfs, shm...)
	for _, f := range []struct {
		name, target string
		want         bool
	}{
		{"hosts", "/etc/hosts", sp.NetworkMode != "host"},
		{"resolv.conf", "/etc/resolv.conf", sp.DNS != nil},
	} {
		if f.want {
			covered[f.target] = true
			s.Binds = append(s.Binds, machine.Bind{Source: path.Join(in.StateDir, f.name), Destination: f.target, ReadOnly: true})
		}
	}
	if covered["/etc/resolv.conf"] {
		s.ResolvConf = "off"
	}
	for _, v := range s.Volumes {
		if covered[v] {
			continue
		}
		src := path.Join(in.StateDir, "anon", hashHex(12, v))
		s.Binds = append(s.Binds, machine.Bind{Source: src, Destination: v})
		in.Mounts = append(in.Mounts, Mount{Kind: BindMount, Source: src, Target: v, Create: true, Seed: true, anonymous: true})
	}
}

// machineNetwork joins bridge-mode machines to the network namespace their
// unit prepares, so the links are up before the command runs.
func (pl *planner) machineNetwork(sp *ServicePlan, in *InstancePlan, s *machine.Spec) {
	switch sp.NetworkMode {
	case "host":
		s.Network = machine.Network{Mode: machine.NetworkHost}
		return
	case "none":
		s.Network = machine.Network{Mode: machine.NetworkNone}
		return
	}
	netns := "berth-" + in.Machine
	s.Network = machine.Network{Mode: machine.NetworkNamespace, Name: path.Join(paths.Netns, netns)}
	up := []string{pl.opts.Berth, "compose", "_netns-up", "--netns", netns}
	down := []string{pl.opts.Berth, "compose", "_netns-down", "--netns", netns}
	// The default route goes through the network with the highest
	// gw_priority, then the first (by priority, then name) that reaches
	// the outside, as docker picks it.
	gw := -1
	for i, ifc := range in.Interfaces {
		if !ifc.Network.Internal && !ifc.Network.External && (gw < 0 || ifc.GwPriority > in.Interfaces[gw].GwPriority) {
			gw = i
		}
	}
	for i, ifc := range in.Interfaces {
		link := netspec.Link{Host: ifc.HostIf, Bridge: ifc.Network.Bridge, Guest: ifc.GuestIf, Address: netip.PrefixFrom(ifc.Addr, ifc.Network.Subnet.Bits())}
		if i == gw {
			link.Gateway = ifc.Network.Gateway
		}
		up = append(up, "--link", link.String())
		down = append(down, "--link", link.String())
	}
	for _, kv := range sp.Sysctls {
		up = append(up, "--sysctl", kv)
	}
	s.Hooks = machine.Hooks{StartPre: [][]string{up}, StopPost: [][]string{down}}
}

// machineDeps adds the project's ordering and requirement edges. A healthy
// dependency is its _health unit (ready only once the check passed); a
// completed one is its oneshot machine unit (started only once it exited
// 0). Dependencies are pulled in with Wants= and ordered with After=, never
// Requires=: systemd 252 restarts a Requires= (or Requisite=) dependent
// with every automatic restart of its dependency, and docker compose
// leaves dependents alone when a dependency crashes. A required
// dependency (the default) is checked instead, before the machine starts
// (ExecCondition=berth _require-active), so a dependent of a failed
// dependency is not started (and not restarted in a loop: a condition
// that fails leaves the unit inactive, not failed). restart: true adds PartOf=: stopping or restarting the
// dependency, and its automatic restarts, restart the dependent too.
func (pl *planner) machineDeps(sp *ServicePlan, in *InstancePlan, s *machine.Spec) {
	for _, ifc := range in.Interfaces {
		if !ifc.Network.External {
			s.Unit.Requires = append(s.Unit.Requires, ifc.Network.Unit)
			s.Unit.After = append(s.Unit.After, ifc.Network.Unit)
		}
	}
	if sp.Health != nil {
		s.Unit.Wants = append(s.Unit.Wants, HealthUnit(in.Machine))
	}
	var required []string
	for _, d := range sp.Deps {
		dep := pl.svcs[d.Service]
		if dep == nil {
			continue
		}
		for _, di := range dep.Instances {
			u := di.Unit
			if d.Condition == DepHealthy {
				u = HealthUnit(di.Machine)
			}
			s.Unit.Wants = append(s.Unit.Wants, u)
			s.Unit.After = append(s.Unit.After, u)
			if d.Required {
				required = append(required, u)
			}
			if d.Restart {
				s.Unit.PartOf = append(s.Unit.PartOf, di.Unit)
			}
		}
	}
	if len(required) > 0 {
		s.Hooks.Condition = append(s.Hooks.Condition, append([]string{pl.opts.Berth, "_require-active", "--for", sp.Name}, required...))
	}
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
