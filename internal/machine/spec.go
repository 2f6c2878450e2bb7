// Package machine describes a berth machine (one container run by
// systemd-nspawn) as a pure Spec, builds Specs from OCI image configs, and
// renders a Spec into a .nspawn settings file and a .service unit through
// the escaping unit model in internal/unit. Nothing here touches the system;
// the CLI and the compose converter write what these functions return.
package machine

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrInvalidSpec is wrapped by every validation error of a Spec.
var ErrInvalidSpec = errors.New("invalid machine spec")

// Defaults for the host side of a machine.
const (
	// DefaultNspawn is the systemd-nspawn binary the service runs.
	DefaultNspawn = "/usr/bin/systemd-nspawn"
	// InitPath is where berth-init appears inside app machines. It lives
	// under a directory of berth's own so it cannot shadow image files.
	InitPath = "/.berth/init"
	// NspawnDir is where privileged .nspawn settings are honoured from
	// (Bind=, Port=, PrivateUsers= are ignored in untrusted locations).
	NspawnDir = "/etc/systemd/nspawn"
	// RuntimeNspawnDir holds settings of transient machines (berth run).
	RuntimeNspawnDir = "/run/systemd/nspawn"
	// UnitDir is where berth installs service units.
	UnitDir = "/etc/systemd/system"
)

// Spec is everything berth needs to run one machine. It is plain data: the
// CLI fills it from flags and an image config, compose fills it from a
// service definition, and the Render functions turn it into files.
type Spec struct {
	// Name is the machine name (also its hostname and the unit's instance
	// part): 1-63 letters, digits and '-', as machinectl requires.
	Name string
	// Directory is the machine's root filesystem on the host.
	Directory string
	// Image is the reference the machine was made from, for descriptions.
	Image string

	// Boot runs the image's own init (systemd) instead of a command.
	Boot bool
	// Ephemeral runs the machine on a throw-away overlay over Directory
	// (nspawn Volatile=overlay): all changes are gone when it stops.
	Ephemeral bool
	// Argv is the command of an app machine (entrypoint + cmd), run by
	// berth-init as PID 1's only child. With Boot, it is the arguments of
	// the image's init (usually empty: the image's Cmd does not apply).
	Argv []string
	// Env are KEY=VALUE assignments, in order; a later key wins.
	Env []string
	// User is the image's USER: "", "uid", "uid:gid", "name", "name:group".
	// Names are resolved by berth-init from the machine's own /etc files.
	User string
	// WorkingDir is the command's working directory ("" = "/").
	WorkingDir string
	// StopSignal is sent to the command to stop it ("" = SIGTERM).
	StopSignal string
	// StopTimeout is how long systemd waits for the machine to stop after
	// the stop signal before it kills it (TimeoutStopSec=); 0 leaves
	// systemd's default.
	StopTimeout time.Duration
	// InitBinary is the host path of berth-init, bind-mounted read-only at
	// InitPath in app machines.
	InitBinary string

	// Binds are host directories or files mounted into the machine.
	Binds []Bind
	// Volumes are the image's anonymous volume mount points, recorded so
	// the caller can back each with a host directory (as Binds).
	Volumes []string
	// ExposedPorts are the image's EXPOSE entries ("80/tcp"), recorded.
	ExposedPorts []string
	// Ports publish container ports on the host; they need Network
	// VirtualEthernet, Zone or Bridge.
	Ports []Port
	// Network is how the machine is connected.
	Network Network

	// PrivateUsers is "pick" (a private 64K UID range, the default when
	// empty), "no" (share the host's users: root inside is root outside),
	// or "identity".
	PrivateUsers string
	// PrivateUsersOwnership is how files get into the picked range:
	// "auto" (default: idmapped mounts where supported, else chown),
	// "map", "chown" or "off".
	PrivateUsersOwnership string

	// Limits are resource limits applied by the service unit.
	Limits Limits
	// Restart is the service's Restart= ("" = "no").
	Restart string
	// Unit lists extra dependencies of the service unit.
	Unit UnitDeps
	// Nspawn is the systemd-nspawn binary ("" = DefaultNspawn).
	Nspawn string
}

// Bind is one bind mount.
type Bind struct {
	Source      string // absolute host path
	Destination string // absolute path in the machine
	ReadOnly    bool
	// Idmap maps the source's owners into the machine's user range
	// (nspawn's "idmap" bind option) instead of showing them as nobody.
	Idmap bool
}

// Port publishes a container port on the host.
type Port struct {
	Protocol      string // "tcp" or "udp"
	HostPort      uint16
	ContainerPort uint16
}

// NetworkMode selects how a machine is connected.
type NetworkMode string

// Network modes.
const (
	// NetworkVeth gives the machine its own network namespace with a
	// virtual Ethernet link to the host (host side ve-NAME), as
	// systemd-nspawn@.service does; systemd-networkd on the host
	// configures it.
	NetworkVeth NetworkMode = "veth"
	// NetworkHost shares the host's network namespace.
	NetworkHost NetworkMode = "host"
	// NetworkNone gives the machine only a loopback device.
	NetworkNone NetworkMode = "none"
	// NetworkZone joins the machine's veth to bridge vz-ZONE (shared by
	// all machines of a zone, e.g. one compose project).
	NetworkZone NetworkMode = "zone"
	// NetworkBridge joins the machine's veth to an existing host bridge.
	NetworkBridge NetworkMode = "bridge"
)

// Network is how a machine is connected.
type Network struct {
	Mode NetworkMode // "" = NetworkVeth
	// Zone or Bridge name for those modes.
	Name string
}

// Limits are cgroup limits for the machine's service.
type Limits struct {
	MemoryMax string // bytes with K/M/G/T suffix, or "" for none
	CPUQuota  string // e.g. "150%"
	TasksMax  string // "" = 16384 as in systemd-nspawn@.service
}

// UnitDeps are extra [Unit] dependencies (unit names).
type UnitDeps struct {
	After, Wants, Requires, BindsTo, PartOf []string
	Description                             string
}

// ServiceName is the unit that runs machine name.
func ServiceName(name string) string { return "berth-" + name + ".service" }

// ValidateName checks a machine name against machinectl's rules.
func ValidateName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("%w: machine name %q must be 1 to 63 characters", ErrInvalidSpec, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("%w: machine name %q: only letters, digits and '-' are allowed", ErrInvalidSpec, name)
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("%w: machine name %q must not start or end with '-'", ErrInvalidSpec, name)
	}
	return nil
}

// Validate checks s for everything the renderers rely on.
func (s *Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if !isCleanAbs(s.Directory) {
		return fmt.Errorf("%w: machine directory %q must be an absolute clean path", ErrInvalidSpec, s.Directory)
	}
	if !s.Boot {
		if len(s.Argv) == 0 {
			return fmt.Errorf("%w: machine %s has no command: the image sets no Entrypoint or Cmd, give one", ErrInvalidSpec, s.Name)
		}
		if !isCleanAbs(s.InitBinary) {
			return fmt.Errorf("%w: berth-init binary %q must be an absolute clean path", ErrInvalidSpec, s.InitBinary)
		}
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		return fmt.Errorf("%w: working directory %q is not absolute", ErrInvalidSpec, s.WorkingDir)
	}
	if _, err := SignalName(s.StopSignal); err != nil {
		return err
	}
	if s.StopTimeout < 0 {
		return fmt.Errorf("%w: stop timeout %v is negative", ErrInvalidSpec, s.StopTimeout)
	}
	for _, b := range s.Binds {
		if !path.IsAbs(b.Source) || !path.IsAbs(b.Destination) {
			return fmt.Errorf("%w: bind %s:%s needs absolute paths", ErrInvalidSpec, b.Source, b.Destination)
		}
		if path.Clean(b.Destination) == "/" {
			return fmt.Errorf("%w: bind %s:%s would cover the root directory", ErrInvalidSpec, b.Source, b.Destination)
		}
	}
	switch s.Network.Mode {
	case "", NetworkVeth, NetworkHost, NetworkNone:
	case NetworkZone, NetworkBridge:
		if s.Network.Name == "" {
			return fmt.Errorf("%w: network mode %s needs a name", ErrInvalidSpec, s.Network.Mode)
		}
	default:
		return fmt.Errorf("%w: unknown network mode %q (want veth, host, none, zone or bridge)", ErrInvalidSpec, s.Network.Mode)
	}
	if len(s.Ports) > 0 && (s.Network.Mode == NetworkHost || s.Network.Mode == NetworkNone) {
		return fmt.Errorf("%w: publishing ports needs a virtual Ethernet link, not network mode %s", ErrInvalidSpec, s.Network.Mode)
	}
	for _, p := range s.Ports {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return fmt.Errorf("%w: port protocol %q (want tcp or udp)", ErrInvalidSpec, p.Protocol)
		}
		if p.HostPort == 0 || p.ContainerPort == 0 {
			return fmt.Errorf("%w: port %d:%d: ports must be 1-65535", ErrInvalidSpec, p.HostPort, p.ContainerPort)
		}
	}
	switch s.PrivateUsers {
	case "", "pick", "no", "identity":
	default:
		return fmt.Errorf("%w: private users %q (want pick, no or identity)", ErrInvalidSpec, s.PrivateUsers)
	}
	switch s.PrivateUsersOwnership {
	case "", "auto", "map", "chown", "off":
	default:
		return fmt.Errorf("%w: private users ownership %q (want auto, map, chown or off)", ErrInvalidSpec, s.PrivateUsersOwnership)
	}
	for _, l := range []struct {
		key, v string
		re     *regexp.Regexp
	}{
		{"memory limit", s.Limits.MemoryMax, memoryRe},
		{"CPU quota", s.Limits.CPUQuota, cpuQuotaRe},
		{"tasks limit", s.Limits.TasksMax, tasksRe},
	} {
		if l.v != "" && !l.re.MatchString(l.v) {
			return fmt.Errorf("%w: %s %q (want %s)", ErrInvalidSpec, l.key, l.v, l.re)
		}
	}
	switch s.Restart {
	case "", "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always":
	default:
		return fmt.Errorf("%w: restart policy %q (want no, always, on-success, on-failure, on-abnormal, on-abort or on-watchdog)", ErrInvalidSpec, s.Restart)
	}
	return nil
}

// Limit syntaxes systemd accepts (systemd.resource-control(5)).
var (
	memoryRe   = regexp.MustCompile(`^([0-9]+[KMGT]?|[0-9]+(\.[0-9]+)?%|infinity)$`)
	cpuQuotaRe = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?%$`)
	tasksRe    = regexp.MustCompile(`^([0-9]+|[0-9]+(\.[0-9]+)?%|infinity)$`)
)

func isCleanAbs(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }

// signals are the names systemd's signal_from_string() accepts for
// KillSignal= (without the SIG prefix), with their Linux numbers.
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
	"URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"PWR": 30, "SYS": 31,
}

// SignalName normalizes an image's StopSignal ("SIGTERM", "TERM", "15",
// "SIGRTMIN+3") to the "SIGxxx" form systemd reads. "" means SIGTERM.
func SignalName(s string) (string, error) {
	if s == "" {
		return "SIGTERM", nil
	}
	up := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if _, ok := signals[up]; ok {
		return "SIG" + up, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		for name, num := range signals {
			if num == n {
				return "SIG" + name, nil
			}
		}
		if n >= 34 && n <= 64 {
			return fmt.Sprintf("SIGRTMIN+%d", n-34), nil
		}
	}
	if rest, ok := strings.CutPrefix(up, "RTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return "SIGRTMIN+" + rest, nil
		}
	}
	if up == "RTMIN" {
		return "SIGRTMIN", nil
	}
	return "", fmt.Errorf("%w: unknown stop signal %q", ErrInvalidSpec, s)
}
