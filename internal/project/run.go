package project

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/compose/hostnet"
	"github.com/berth-sh/berth/internal/compose/netspec"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/paths"
	"github.com/berth-sh/berth/internal/store"
)

// RunOptions say how `berth compose run` runs a one-off machine.
type RunOptions struct {
	// Convert and Images are as for Up.
	Convert compose.ConvertOptions
	Images  Images
	// Name is the one-off machine's name. Default P-S-run-RANDOM.
	Name string
	// Argv replaces the service's command; nil keeps it.
	Argv []string
	// Entrypoint replaces the service's entrypoint; nil keeps it.
	Entrypoint []string
	// Env adds KEY=VALUE assignments; User and WorkDir override the
	// service's.
	Env     []string
	User    string
	WorkDir string
	// NoDeps starts none of the service's dependencies.
	NoDeps bool
	// Timeout bounds the wait for the dependencies. Default 5 minutes.
	Timeout time.Duration
	// TTY runs the machine on berth's terminal (nspawn
	// --console=interactive); otherwise stdin, stdout and stderr are
	// passed as they are (--console=pipe) and the exit code is exact.
	TTY    bool
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Run runs a one-off machine of service, as docker compose run runs a
// one-off container: the service's settings (volumes, secrets, networks,
// environment, user) with the command, entrypoint, environment, user and
// working directory of o, after the service's dependencies are up (unless
// o.NoDeps). It returns the command's exit code.
//
// The one-off runs in the foreground on a copy of the first instance's
// root filesystem (the instance's own tree may be in use by its machine)
// with an address of its own on each of the service's networks. The copy,
// the address and the network namespace are removed when it exits: a
// one-off machine is never kept (docker's --rm). Published ports are not
// (docker's default without --service-ports). The project is installed
// first (units, no start) when it is not yet.
func (h *Host) Run(ctx context.Context, p *compose.Project, service string, o RunOptions) (int, error) {
	h.fill()
	if o.Images == nil {
		return 0, errors.New("run: no image source")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	co := h.convertOptions(o.Convert, o.Images)
	plan, err := firstPlan(p, co)
	if plan == nil {
		return 0, err
	}
	var sp *compose.ServicePlan
	for _, s := range plan.Services {
		if s.Name == service {
			sp = s
		}
	}
	if sp == nil {
		return 0, fmt.Errorf("run in %s: select service %q: %w", p.Name, service, ErrNoService)
	}
	if len(sp.Instances) == 0 {
		return 0, fmt.Errorf("run in %s: service %s has no instances (scale: 0)", p.Name, service)
	}
	if _, err := h.Manifest(p.Name); errors.Is(err, ErrNotInstalled) {
		fmt.Fprintf(h.Stderr, "berth: installing project %s (nothing started)\n", p.Name)
		if _, err := h.Up(ctx, p, UpOptions{Convert: o.Convert, Images: o.Images, NoStart: true}); err != nil {
			return 0, err
		}
	}
	m, err := h.Manifest(p.Name)
	if err != nil {
		return 0, err
	}
	if !o.NoDeps {
		sel, err := withDependencies(plan, []string{service})
		if err != nil {
			return 0, err
		}
		delete(sel, service)
		var names []string
		for n := range sel {
			names = append(names, n)
		}
		if len(names) > 0 {
			if err := h.start(ctx, plan, sel, UpOptions{Services: names, Timeout: o.Timeout}); err != nil {
				return 0, fmt.Errorf("run in %s: start the dependencies of %s: %w", p.Name, service, err)
			}
		}
	}
	in := sp.Instances[0]
	if _, ok := o.Images.Installed(in.Machine, sp.Image); !ok {
		fmt.Fprintf(h.Stderr, "berth: pulling %s for %s\n", sp.Image, in.Machine)
		stop := func() error { return h.systemctl(ctx, "stop", "--", in.Unit) }
		if _, err := o.Images.Pull(ctx, sp.Image, in.Machine, stop); err != nil {
			return 0, fmt.Errorf("run in %s: service %s: %w", p.Name, service, err)
		}
	}
	name := o.Name
	if name == "" {
		name = oneoffName(p.Name, service)
	}
	if err := machine.ValidateName(name); err != nil {
		return 0, fmt.Errorf("run in %s: --name: %w", p.Name, err)
	}
	cleanup := context.WithoutCancel(ctx)
	if _, err := o.Images.Clone(ctx, in.Machine, name, nil); err != nil {
		return 0, fmt.Errorf("run in %s: %w", p.Name, err)
	}
	defer func() {
		if err := o.Images.Remove(cleanup, name); err != nil {
			fmt.Fprintf(h.Stderr, "berth: remove one-off machine %s: %v\n", name, err)
		}
	}()
	s, err := h.oneoffSpec(in.Spec, name, o)
	if err != nil {
		return 0, fmt.Errorf("run in %s: %w", p.Name, err)
	}
	if s.Network.Mode == machine.NetworkNamespace {
		ns, release, err := h.oneoffNetwork(ctx, m, in.Spec, name)
		if err != nil {
			return 0, fmt.Errorf("run in %s: %w", p.Name, err)
		}
		defer release()
		s.Network.Name = filepath.Join(paths.Netns, ns)
	}
	argv, err := machine.CommandLine(&s)
	if err != nil {
		return 0, fmt.Errorf("run in %s: %w", p.Name, err)
	}
	argv = foregroundArgs(argv, o.TTY)
	err = h.Runner.Run(ctx, command.Command{Args: argv, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, OwnProcessGroup: !o.TTY && !isTerminalReader(o.Stdin)})
	if code := command.ExitCode(err); code > 0 {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("run in %s: %w", p.Name, err)
	}
	return 0, nil
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminal(f)
}

// oneoffName is docker's one-off container name, P-S-run-HEX, shortened
// to a valid machine name when the project and service names are long.
func oneoffName(project, service string) string {
	var b [6]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	n := project + "-" + service + "-run-" + id
	if machine.ValidateName(n) == nil {
		return n
	}
	return "berth-run-" + id
}

// oneoffSpec is the instance's machine with the one-off's name, tree and
// overrides. Unit-only settings (hooks, dependencies, restart) do not
// apply to a machine run in the foreground.
func (h *Host) oneoffSpec(base machine.Spec, name string, o RunOptions) (machine.Spec, error) {
	s := base
	s.Name = name
	s.Directory = filepath.Join(h.MachinesDir, name)
	s.Hostname = ""
	ov := base.Overrides
	if o.Entrypoint != nil {
		ov.Entrypoint = o.Entrypoint
	}
	if o.Argv != nil {
		ov.Cmd = o.Argv
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, fmt.Errorf("environment %q is not KEY=VALUE", kv)
		}
	}
	ov.Env = append(slices.Clone(ov.Env), o.Env...)
	if o.User != "" {
		ov.User = o.User
	}
	if o.WorkDir != "" {
		ov.WorkingDir = o.WorkDir
	}
	s.ResolveAtStart(store.ConfigPath(h.MachinesDir, name), ov)
	s.Hooks, s.Unit, s.Restart, s.Oneshot = machine.Hooks{}, machine.UnitDeps{}, machine.Restart{}, false
	return s, nil
}

// foregroundArgs turns a unit's nspawn command line into one for the
// foreground: nspawn registers a scope of its own instead of keeping the
// caller's unit, and a terminal run gets an interactive console.
func foregroundArgs(argv []string, tty bool) []string {
	out := make([]string, 0, len(argv))
	for i, a := range argv {
		if a == "--" {
			return append(out, argv[i:]...)
		}
		switch {
		case a == "--keep-unit":
			continue
		case a == "--console=pipe" && tty:
			a = "--console=interactive"
		}
		out = append(out, a)
	}
	return out
}

// oneoffNetwork creates the one-off's network namespace: a link into
// each bridge the instance is on, with a free address of its own (the
// instance's default route and sysctls). The release function removes
// it. The bridges are started first: a one-off with --no-deps may be the
// only machine of its networks.
func (h *Host) oneoffNetwork(ctx context.Context, m *Manifest, base machine.Spec, name string) (string, func(), error) {
	var links []netspec.Link
	var sysctls []hostnet.Sysctl
	for _, hook := range base.Hooks.StartPre {
		if len(hook) < 3 || hook[2] != "_netns-up" {
			continue
		}
		for i := 3; i+1 < len(hook); i++ {
			switch hook[i] {
			case "--link":
				l, err := netspec.ParseLink(hook[i+1])
				if err != nil {
					return "", nil, err
				}
				links = append(links, l)
			case "--sysctl":
				sc, err := netspec.ParseSysctl(hook[i+1])
				if err != nil {
					return "", nil, err
				}
				sysctls = append(sysctls, sc)
			}
		}
	}
	var bridges []string
	for _, l := range links {
		for _, n := range m.Networks {
			if n.Bridge == l.Bridge && n.Unit != "" {
				bridges = append(bridges, n.Unit)
			}
		}
	}
	if len(bridges) > 0 {
		if err := h.systemctl(ctx, append([]string{"start", "--"}, bridges...)...); err != nil {
			return "", nil, fmt.Errorf("start the project's bridges: %w", err)
		}
	}
	unlock, err := h.lock(ctx, m.Project)
	if err != nil {
		return "", nil, err
	}
	defer unlock()
	runs := filepath.Join(h.Dir(m.Project), "runs")
	used := h.usedAddresses(m, runs)
	for _, l := range links {
		if l.Gateway.IsValid() {
			used[l.Gateway] = true
		}
	}
	var mine []string
	for i := range links {
		a, err := freeAddress(links[i].Address.Masked(), used)
		if err != nil {
			return "", nil, fmt.Errorf("address for one-off %s on bridge %s: %w", name, links[i].Bridge, err)
		}
		used[a] = true
		mine = append(mine, a.String())
		links[i].Address = netip.PrefixFrom(a, links[i].Address.Bits())
		links[i].Host = compose.VethName(name, links[i].Bridge)
	}
	if err := os.MkdirAll(runs, 0o700); err != nil {
		return "", nil, err
	}
	rec := filepath.Join(runs, name+".json")
	b, _ := json.Marshal(mine)
	if err := os.WriteFile(rec, b, 0o600); err != nil {
		return "", nil, err
	}
	ns := hostnet.Namespace{Name: "berth-" + name, Links: links, Sysctls: sysctls}
	release := func() {
		if err := hostnet.NamespaceDown(context.WithoutCancel(ctx), h.Runner, ns); err != nil {
			fmt.Fprintf(h.Stderr, "berth: %v\n", err)
		}
		os.Remove(rec)
	}
	if err := hostnet.NamespaceUp(ctx, h.Runner, ns); err != nil {
		release()
		return "", nil, err
	}
	return ns.Name, release, nil
}

// usedAddresses are the project's machines' addresses, the gateways, and
// those of one-offs still running (recorded in runs/).
func (h *Host) usedAddresses(m *Manifest, runs string) map[netip.Addr]bool {
	used := map[netip.Addr]bool{}
	for _, s := range m.Services {
		for _, in := range s.Instances {
			for _, a := range in.Addresses {
				if ad, err := netip.ParseAddr(a); err == nil {
					used[ad] = true
				}
			}
		}
	}
	for _, n := range m.Networks {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			// The gateway is the first address when the planner
			// picks it; an explicit one is in the links, which the
			// caller marks.
			used[p.Addr().Next()] = true
		}
	}
	ents, _ := os.ReadDir(runs)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(runs, e.Name()))
		if err != nil {
			continue
		}
		var as []string
		json.Unmarshal(b, &as)
		for _, a := range as {
			if ad, err := netip.ParseAddr(a); err == nil {
				used[ad] = true
			}
		}
	}
	return used
}

// freeAddress picks the highest free host address of subnet: the planner
// hands out addresses from the bottom, so one-offs rarely meet a machine
// added by a later up.
func freeAddress(subnet netip.Prefix, used map[netip.Addr]bool) (netip.Addr, error) {
	if !subnet.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("subnet %s: only IPv4 subnets are supported", subnet)
	}
	b := subnet.Addr().As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	size := uint32(1) << (32 - subnet.Bits())
	for i := size - 2; i >= 1; i-- {
		v := n + i
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("no free address")
}
