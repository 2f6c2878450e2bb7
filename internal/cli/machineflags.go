package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/store"
)

// machineHost is the system the machine verbs drive: env.Machines's, or
// the real one.
func machineHost(env Env, g *Globals) machines.Host {
	if env.Machines != nil {
		return env.Machines(g.Root, g.MachinesDir)
	}
	return machines.NewHost(g.Root, g.MachinesDir)
}

// machineFlags are the docker-run-style flags shared by create and run.
type machineFlags struct {
	env          []string
	volumes      []string
	publish      []string
	user         string
	workdir      string
	entrypoint   string
	network      string
	privateUsers string
	ownership    string
	boot         bool
}

func (f *machineFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable, KEY=VALUE or KEY to copy berth's (repeatable)")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount an absolute host path, SRC:DST[:ro|:rw][,noidmap] (repeatable; idmapped unless --private-users=no or noidmap)")
	fl.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port, HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable; needs a veth, zone or bridge network)")
	fl.StringVarP(&f.user, "user", "u", "", "user to run the command as: name, uid, uid:gid or name:group (default: the image's USER)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory of the command (default: the image's WORKDIR)")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's ENTRYPOINT (and drop its CMD); \"\" clears it")
	fl.StringVar(&f.network, "network", "veth", "network: veth, host, none, zone:NAME or bridge:NAME")
	fl.StringVar(&f.privateUsers, "private-users", "pick", "user namespace: pick (private UID range), identity, or no (root inside is root outside)")
	fl.StringVar(&f.ownership, "private-users-ownership", "auto", "how files get into the UID range: auto, map (idmapped mounts), chown or off")
	fl.BoolVar(&f.boot, "boot", false, "boot the image's init (systemd) instead of running a command")
}

// spec builds the Spec of machine name from image (a pulled machine) and
// the flags; cmdArgs replace the image's CMD when given. With configPath,
// the machine resolves the image's defaults when it starts, from the
// config kept there (machine.Spec.ResolveAtStart); without, they are
// resolved now.
func (f *machineFlags) spec(cmd *cobra.Command, env Env, g *Globals, name, image, dir string, cmdArgs []string, configPath string) (machine.Spec, error) {
	_, cfg, err := store.LoadMachine(g.Root, image)
	if err != nil {
		return machine.Spec{}, fmt.Errorf("load image %s: %w (pull it with `berth pull`)", image, err)
	}
	ov := machine.Overrides{User: f.user, WorkingDir: f.workdir}
	if cmd.Flags().Changed("entrypoint") {
		ov.Entrypoint = []string{}
		if f.entrypoint != "" {
			ov.Entrypoint = []string{f.entrypoint}
		}
	}
	if len(cmdArgs) > 0 {
		ov.Cmd = cmdArgs
	}
	for _, e := range f.env {
		if strings.Contains(e, "=") {
			ov.Env = append(ov.Env, e)
		} else if v, ok := lookupEnv(env, e); ok {
			ov.Env = append(ov.Env, e+"="+v)
		}
	}
	s, err := machine.SpecFromImage(name, dir, cfg.Config, ov)
	if err != nil {
		return machine.Spec{}, err
	}
	s.Image = image
	s.Boot = f.boot
	if s.Boot {
		// The image's init runs, not its command; arguments given
		// after IMAGE go to init (e.g. systemd.unit=rescue.target).
		s.Argv = cmdArgs
	}
	s.PrivateUsers = f.privateUsers
	s.PrivateUsersOwnership = f.ownership
	if s.Network, err = parseNetwork(f.network); err != nil {
		return machine.Spec{}, err
	}
	for _, v := range f.volumes {
		b, err := parseVolume(v, s.PrivateUsers != "no")
		if err != nil {
			return machine.Spec{}, err
		}
		s.Binds = append(s.Binds, b)
	}
	for _, p := range f.publish {
		port, err := parsePublish(p)
		if err != nil {
			return machine.Spec{}, err
		}
		s.Ports = append(s.Ports, port)
	}
	if !s.Boot {
		exe, _ := os.Executable()
		if s.InitBinary, err = machines.FindInit(env.Getenv, exe); err != nil {
			return machine.Spec{}, err
		}
	}
	// Checked resolved: an image without a command fails here, not
	// when the machine starts.
	if err := s.Validate(); err != nil || configPath == "" || s.Boot {
		return s, err
	}
	s.ResolveAtStart(configPath, ov)
	s.StopSignal = "" // the image's, read at start too
	return s, s.Validate()
}

// lookupEnv reads KEY for "-e KEY". Env offers Getenv only, so an empty
// variable counts as unset and is not passed (docker would pass KEY=).
func lookupEnv(env Env, key string) (string, bool) {
	v := env.Getenv(key)
	return v, v != ""
}

func parseNetwork(s string) (machine.Network, error) {
	mode, name, _ := strings.Cut(s, ":")
	n := machine.Network{Mode: machine.NetworkMode(mode), Name: name}
	switch n.Mode {
	case machine.NetworkZone, machine.NetworkBridge:
		if name == "" {
			return n, fmt.Errorf("parse --network %q: %s needs a name, as %s:NAME", s, mode, mode)
		}
	case machine.NetworkVeth, machine.NetworkHost, machine.NetworkNone:
		if name != "" {
			return n, fmt.Errorf("parse --network %q: %s takes no name", s, mode)
		}
	default:
		return n, fmt.Errorf("parse --network %q: want veth, host, none, zone:NAME or bridge:NAME", s)
	}
	return n, nil
}

// parseVolume parses docker's -v SRC:DST[:OPTIONS]. idmap is the default
// for the machine's user namespace (false when it shares the host's).
func parseVolume(v string, idmap bool) (machine.Bind, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return machine.Bind{}, fmt.Errorf("parse --volume %q: want SRC:DST[:ro|:rw][,noidmap]", v)
	}
	// Idmapped by default: root in the machine then owns what host root
	// owns, as with docker; without it the files show up as nobody.
	b := machine.Bind{Source: parts[0], Destination: parts[1], Idmap: idmap}
	if !filepath.IsAbs(b.Source) {
		return machine.Bind{}, fmt.Errorf("parse --volume %q: source must be an absolute host path (named volumes are not supported)", v)
	}
	if !filepath.IsAbs(b.Destination) {
		return machine.Bind{}, fmt.Errorf("parse --volume %q: destination must be an absolute path", v)
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				b.ReadOnly = true
			case "rw":
			case "idmap":
				b.Idmap = idmap
			case "noidmap":
				b.Idmap = false
			default:
				return machine.Bind{}, fmt.Errorf("parse --volume %q: unknown option %q (want ro, rw, idmap or noidmap)", v, o)
			}
		}
	}
	return b, nil
}

func parsePublish(p string) (machine.Port, error) {
	spec, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	parts := strings.Split(spec, ":")
	if len(parts) != 2 {
		return machine.Port{}, fmt.Errorf("parse --publish %q: want HOSTPORT:CONTAINERPORT[/PROTO] (host addresses and random ports are not supported by nspawn)", p)
	}
	h, err1 := strconv.ParseUint(parts[0], 10, 16)
	c, err2 := strconv.ParseUint(parts[1], 10, 16)
	if err1 != nil || err2 != nil || h == 0 || c == 0 {
		return machine.Port{}, fmt.Errorf("parse --publish %q: ports must be 1-65535", p)
	}
	if proto != "tcp" && proto != "udp" {
		return machine.Port{}, fmt.Errorf("parse --publish %q: protocol must be tcp or udp", p)
	}
	return machine.Port{Protocol: proto, HostPort: uint16(h), ContainerPort: uint16(c)}, nil
}

// isTTY says whether v is a terminal, for choosing nspawn's console.
func isTTY(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
