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
	"slices"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/paths"
)

// ErrInvalidSpec is wrapped by every validation error of a Spec.
var ErrInvalidSpec = errors.New("invalid machine spec")

// Defaults for the host side of a machine.
const (
	// DefaultNspawn is the systemd-nspawn binary the service runs.
	DefaultNspawn = paths.Nspawn
	// InitPath is where berth-init appears inside app machines. It lives
	// under a directory of berth's own so it cannot shadow image files.
	InitPath = "/.berth/init"
	// ImageConfigPath is where the image config appears inside machines
	// that resolve their image when they start (Spec.ImageConfig).
	ImageConfigPath = "/.berth/image.json"
	// NspawnDir is where privileged .nspawn settings are honoured from
	// (Bind=, Port=, PrivateUsers= are ignored in untrusted locations).
	NspawnDir = paths.NspawnDir
	// RuntimeNspawnDir holds settings of transient machines (berth run).
	RuntimeNspawnDir = paths.RuntimeNspawnDir
	// UnitDir is where berth installs service units.
	UnitDir = paths.UnitDir
)

// Spec is everything berth needs to run one machine. It is plain data: the
// CLI fills it from flags and an image config, compose and the generator
// fill it from their declarations, and the Render functions turn it into
// files. Every setting a machine can have is a field here, so each input
// key has one route to the unit files: key → planner → Spec → Render.
type Spec struct {
	// Name is the machine name (also the unit's instance part): 1-63
	// letters, digits and '-', as machinectl requires.
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
	// ImageConfig is the host path of the image config kept with the
	// machine (store.ConfigPath). When set, the machine resolves its
	// image when it starts: berth-init reads the config (bound read-only
	// at ImageConfigPath) and applies Overrides with docker's rules, so
	// the units do not depend on the image's contents and a new image
	// needs no new units. Argv, Env, User and WorkingDir are then unset,
	// and StopSignal is only an explicit one (the image's otherwise).
	ImageConfig string
	// Overrides are the machine's changes to the image's defaults, kept
	// as given for berth-init to apply (only with ImageConfig; ApplyImage
	// applies them at once otherwise).
	Overrides Overrides
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
	// Hostname is the machine's host name ("" = nspawn's default, the
	// machine name).
	Hostname string
	// StopSignal is sent to the command to stop it ("" = SIGTERM, or
	// the image's STOPSIGNAL with ImageConfig).
	StopSignal string
	// StopTimeout is how long systemd waits for the machine to stop after
	// the stop signal before it kills it (TimeoutStopSec=). nil leaves
	// systemd's default; 0 kills at once, as docker reads a grace period
	// of 0 (systemd would read TimeoutStopSec=0 as "wait forever").
	StopTimeout *time.Duration
	// InitBinary is the host path of berth-init, bind-mounted read-only at
	// InitPath in app machines.
	InitBinary string

	// Binds are host directories or files mounted into the machine.
	Binds []Bind
	// Tmpfs are temporary file systems mounted into the machine, in order.
	Tmpfs []Tmpfs
	// Devices are host device nodes bound into the machine and allowed by
	// the service's device policy.
	Devices []Device
	// ReadOnly mounts the root file system read-only.
	ReadOnly bool
	// ResolvConf is nspawn's ResolvConf= ("" = nspawn's default; "off"
	// when the caller mounts its own /etc/resolv.conf).
	ResolvConf string
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
	// Security is the machine's privileges.
	Security Security

	// Limits are resource limits applied by the service unit.
	Limits Limits
	// Restart is the service's restart policy.
	Restart Restart
	// Oneshot makes the service "started" only once the machine exited
	// successfully (Type=oneshot, RemainAfterExit=yes): what a dependent
	// waiting for completion needs.
	Oneshot bool
	// Hooks are commands the service runs around the machine, on the host.
	Hooks Hooks
	// Unit lists extra dependencies of the service unit.
	Unit UnitDeps
	// Nspawn is the systemd-nspawn binary ("" = DefaultNspawn).
	Nspawn string
	// Inline puts every setting on the service's systemd-nspawn command
	// line (CommandLine) instead of in NAME.nspawn, which is then not
	// needed: for units made where no settings file can be written.
	Inline bool

	// Start-time settings of machines made from declarations
	// (berth-generator; decl.go has what they render to).
	Decl DeclSettings
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

// Tmpfs is one temporary file system (TemporaryFileSystem=).
type Tmpfs struct {
	Target string // absolute path in the machine, without ':'
	// Options are mount options ("size=64m,mode=1777"), no blanks.
	Options string
}

// Device is a host device node made available in the machine.
type Device struct {
	Source string // host path (/dev/fuse)
	Target string // path in the machine ("" = Source)
	// Permissions are DeviceAllow='s: a combination of r, w, m ("" = rwm).
	Permissions string
}

// Security is what the machine's processes may do.
type Security struct {
	// Capabilities are added to nspawn's default set: CAP_* names, or
	// "all".
	Capabilities []string
	// DropCapabilities are removed from the set: CAP_* names or "all".
	DropCapabilities []string
	// NoNewPrivileges forbids gaining privileges through execve().
	NoNewPrivileges bool
	// OOMScoreAdjust is the machine's OOM score adjustment, -1000..1000
	// (nil leaves the default).
	OOMScoreAdjust *int
	// Rlimits are resource limits of the machine's processes.
	Rlimits []Rlimit
}

// Rlimit is one process resource limit (setrlimit(2)).
type Rlimit struct {
	// Name is the lower-case resource name without RLIMIT_ (nofile).
	Name string
	// Soft and Hard are the limits; a negative value is "infinity".
	Soft, Hard int64
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
	// NetworkNamespace joins an existing network namespace, Name being
	// its path (/run/netns/NAME), typically prepared by a StartPre hook
	// so the command's first instruction sees a configured network.
	NetworkNamespace NetworkMode = "netns"
)

// Network is how a machine is connected.
type Network struct {
	Mode NetworkMode // "" = NetworkVeth
	// Zone or Bridge name, or the namespace path, for those modes.
	Name string
}

// Limits are cgroup limits for the machine's service. Values are in
// systemd's syntax; the constructors (CPUQuota, ...) make them from
// docker's units.
type Limits struct {
	MemoryMax     string // bytes with K/M/G/T suffix, or "" for none
	MemoryLow     string // memory protection (docker's reservation)
	MemorySwapMax string // swap on top of MemoryMax
	CPUQuota      string // e.g. "150%", at most two decimals
	CPUWeight     string // 1..10000
	AllowedCPUs   string // CPU list, "0-3,6"
	TasksMax      string // "" = 16384 as in systemd-nspawn@.service
}

// Restart is the service's restart policy.
type Restart struct {
	// Policy is systemd's Restart= ("" = "no").
	Policy string
	// Delay is RestartSec= (0 = systemd's default, 100ms).
	Delay time.Duration
	// Burst > 0 allows that many starts within Interval
	// (StartLimitBurst=); Interval 0 is infinity: Burst-1 restarts in all.
	Burst    uint64
	Interval time.Duration
}

// Hooks are host commands run by the service around the machine.
type Hooks struct {
	// Condition run first (ExecCondition=): exiting 1-254 skips the start
	// without failing the unit (and so without an automatic restart),
	// 255 or a signal fails it.
	Condition [][]string
	// StartPre run before nspawn starts; a failure fails the start.
	StartPre [][]string
	// StopPost run after the machine stopped; failures are ignored, so
	// a half-done start never blocks a stop.
	StopPost [][]string
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
	if why := NameProblem(name); why != "" {
		return fmt.Errorf("%w: machine name %q: %s", ErrInvalidSpec, name, why)
	}
	return nil
}

// NameProblem says what is wrong with a machine name ("" when nothing):
// machinectl's rules. The store checks names with it too.
func NameProblem(name string) string {
	if name == "" || len(name) > 63 {
		return "must be 1 to 63 characters"
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "only letters, digits and '-' are allowed"
		}
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return "must not start or end with '-'"
	}
	return ""
}

// Validate checks s for everything the renderers rely on. Callers that
// read user input (compose, the generator, flags) validate each value
// where they can name its file and line; this is the last line of
// defence, so that no value reaches a unit file unchecked.
func (s *Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if !isCleanAbs(s.Directory) {
		return fmt.Errorf("%w: machine directory %q must be an absolute clean path", ErrInvalidSpec, s.Directory)
	}
	if err := s.validateImage(); err != nil {
		return err
	}
	if !s.Boot && !isCleanAbs(s.InitBinary) {
		return fmt.Errorf("%w: berth-init binary %q must be an absolute clean path", ErrInvalidSpec, s.InitBinary)
	}
	if s.WorkingDir != "" && !path.IsAbs(s.WorkingDir) {
		return fmt.Errorf("%w: working directory %q is not absolute", ErrInvalidSpec, s.WorkingDir)
	}
	if s.Hostname != "" && !ValidHostName(s.Hostname) {
		return fmt.Errorf("%w: host name %q (want letters, digits, '-', '_' and '.')", ErrInvalidSpec, s.Hostname)
	}
	if _, err := SignalName(s.StopSignal); err != nil {
		return err
	}
	if s.StopTimeout != nil && *s.StopTimeout < 0 {
		return fmt.Errorf("%w: stop timeout %v is negative", ErrInvalidSpec, *s.StopTimeout)
	}
	for _, check := range []func() error{s.validateMounts, s.validateNetwork, s.validateUsers, s.Security.validate, s.Limits.Validate, s.Restart.validate, s.validateHooks, s.Decl.validate} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// validateImage checks the command an app machine runs: resolved now
// (Argv), or at start from ImageConfig with Overrides.
func (s *Spec) validateImage() error {
	o := s.Overrides
	if s.ImageConfig == "" {
		if o.Entrypoint != nil || o.Cmd != nil || o.Env != nil || o.User != "" || o.WorkingDir != "" {
			return fmt.Errorf("%w: machine %s has Overrides but no ImageConfig to apply them to (ApplyImage applies them now)", ErrInvalidSpec, s.Name)
		}
		if !s.Boot && len(s.Argv) == 0 {
			return fmt.Errorf("%w: machine %s has no command: the image sets no Entrypoint or Cmd, give one", ErrInvalidSpec, s.Name)
		}
		return nil
	}
	switch {
	case s.Boot:
		return fmt.Errorf("%w: machine %s boots the image's init, which reads no image config", ErrInvalidSpec, s.Name)
	case !isCleanAbs(s.ImageConfig):
		return fmt.Errorf("%w: image config %q must be an absolute clean path", ErrInvalidSpec, s.ImageConfig)
	case len(s.Argv) > 0 || len(s.Env) > 0 || s.User != "" || s.WorkingDir != "":
		return fmt.Errorf("%w: machine %s resolves its image at start: give its command, environment, user and working directory as Overrides", ErrInvalidSpec, s.Name)
	case o.Entrypoint != nil && len(o.Entrypoint)+len(o.Cmd) == 0:
		return fmt.Errorf("%w: machine %s has no command: the entrypoint is cleared and no command is given", ErrInvalidSpec, s.Name)
	}
	if _, err := MergeEnv(nil, o.Env); err != nil {
		return err
	}
	return nil
}

func (s *Spec) validateMounts() error {
	for _, b := range s.Binds {
		if !path.IsAbs(b.Source) || !path.IsAbs(b.Destination) {
			return fmt.Errorf("%w: bind %s:%s needs absolute paths", ErrInvalidSpec, b.Source, b.Destination)
		}
		if path.Clean(b.Destination) == "/" {
			return fmt.Errorf("%w: bind %s:%s would cover the root directory", ErrInvalidSpec, b.Source, b.Destination)
		}
	}
	for _, t := range s.Tmpfs {
		if err := t.Validate(); err != nil {
			return err
		}
	}
	for _, d := range s.Devices {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	switch s.ResolvConf {
	case "", "off", "copy-host", "copy-static", "copy-uplink", "copy-stub", "replace-host", "replace-static", "replace-uplink", "replace-stub", "bind-host", "bind-static", "bind-uplink", "bind-stub", "delete", "auto":
	default:
		return fmt.Errorf("%w: ResolvConf=%q is not a mode systemd-nspawn knows", ErrInvalidSpec, s.ResolvConf)
	}
	return nil
}

// Validate checks a tmpfs mount: TemporaryFileSystem= takes its value
// verbatim (no unquoting), split at the first ':', so the target may not
// contain one and neither part may carry blanks or quotes.
func (t Tmpfs) Validate() error {
	v := t.Target + ":" + t.Options
	if !path.IsAbs(t.Target) || path.Clean(t.Target) == "/" {
		return fmt.Errorf("%w: tmpfs target %q must be an absolute path other than /", ErrInvalidSpec, t.Target)
	}
	if strings.Contains(t.Target, ":") || strings.ContainsAny(v, " \t\n\"'\\") {
		return fmt.Errorf("%w: tmpfs %q contains characters TemporaryFileSystem= cannot carry (':' in the target, blanks, quotes, backslashes)", ErrInvalidSpec, v)
	}
	return nil
}

// Validate checks a device: absolute paths without blanks (DeviceAllow=
// splits at them) and permissions made of r, w and m.
func (d Device) Validate() error {
	if !path.IsAbs(d.Source) || d.Target != "" && !path.IsAbs(d.Target) {
		return fmt.Errorf("%w: device %s:%s needs absolute paths", ErrInvalidSpec, d.Source, d.Target)
	}
	if strings.ContainsAny(d.Source, " \t\n") {
		return fmt.Errorf("%w: device path %q contains blanks", ErrInvalidSpec, d.Source)
	}
	if strings.Trim(d.Permissions, "rwm") != "" {
		return fmt.Errorf("%w: device %s permissions %q (want a combination of r, w and m)", ErrInvalidSpec, d.Source, d.Permissions)
	}
	return nil
}

func (s *Spec) validateNetwork() error {
	switch s.Network.Mode {
	case "", NetworkVeth, NetworkHost, NetworkNone:
	case NetworkZone, NetworkBridge:
		if s.Network.Name == "" {
			return fmt.Errorf("%w: network mode %s needs a name", ErrInvalidSpec, s.Network.Mode)
		}
	case NetworkNamespace:
		if !isCleanAbs(s.Network.Name) {
			return fmt.Errorf("%w: network namespace %q must be an absolute clean path", ErrInvalidSpec, s.Network.Name)
		}
	default:
		return fmt.Errorf("%w: unknown network mode %q (want veth, host, none, zone, bridge or netns)", ErrInvalidSpec, s.Network.Mode)
	}
	if len(s.Ports) > 0 && (s.Network.Mode == NetworkHost || s.Network.Mode == NetworkNone || s.Network.Mode == NetworkNamespace) {
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
	return nil
}

func (s *Spec) validateUsers() error {
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
	return nil
}

func (s *Spec) validateHooks() error {
	for _, h := range slices.Concat(s.Hooks.Condition, s.Hooks.StartPre, s.Hooks.StopPost) {
		if len(h) == 0 || !path.IsAbs(h[0]) {
			return fmt.Errorf("%w: hook %q must start with an absolute program path", ErrInvalidSpec, h)
		}
	}
	return nil
}

func (r Restart) validate() error {
	switch r.Policy {
	case "", "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always":
	default:
		return fmt.Errorf("%w: restart policy %q (want no, always, on-success, on-failure, on-abnormal, on-abort or on-watchdog)", ErrInvalidSpec, r.Policy)
	}
	if r.Delay < 0 || r.Interval < 0 {
		return fmt.Errorf("%w: restart delay %v and interval %v must not be negative", ErrInvalidSpec, r.Delay, r.Interval)
	}
	return nil
}

func isCleanAbs(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }

// ValidHostName accepts what a host name (and a hosts file entry) can
// carry: letters, digits, '-', '_' and '.', no dot or dash at the start,
// no dot at the end, at most 253 bytes. It keeps values from injecting
// lines or fields into /etc/hosts or the .nspawn file.
func ValidHostName(n string) bool {
	if n == "" || len(n) > 253 || n[0] == '.' || n[0] == '-' || n[len(n)-1] == '.' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Reason is a validation error's message without the ErrInvalidSpec
// prefix: what is wrong with the value, for callers that report it as a
// finding at the key's file:line (compose, the generator).
func Reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalidSpec.Error()+": ")
}
