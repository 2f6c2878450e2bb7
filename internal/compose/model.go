package compose

import (
	"net/netip"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/machine"
)

// Plan is the pure model of a converted project: every name, address, mount,
// dependency and machine setting decided, nothing rendered yet. It holds no
// compose types: each key has been turned into plan fields (and, for what a
// machine runs with, machine.Spec fields) by its planner function.
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
	// NetworkMode is "bridge", "host" or "none".
	NetworkMode string
	// Labels and Expose are recorded in the manifest.
	Labels map[string]string
	Expose []string
	// Names other machines know this service by, and its resolver
	// settings: the hosts and resolv.conf files.
	Names NamePlan
	DNS   *DNSPlan
	// Sysctls are net.* settings ("KEY=VALUE") applied in the machine's
	// network namespace.
	Sysctls []string
}

// NamePlan is what a service contributes to hosts files.
type NamePlan struct {
	// Hostname is the service's hostname: ("" = the machine name).
	Hostname string
	// ContainerName resolves to the first instance.
	ContainerName string
	// LinkAliases maps a linked service to the extra names this service
	// knows it by (links: [svc:alias]).
	LinkAliases map[string][]string
	// ExtraHosts are extra_hosts entries, sorted.
	ExtraHosts []HostEntry
}

// HostEntry is one name → address line of a hosts file.
type HostEntry struct {
	Name string
	Addr netip.Addr
}

// DNSPlan is a service's own resolv.conf.
type DNSPlan struct {
	Nameservers []netip.Addr
	Search      []string
	Options     []string
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
	// Spec is the machine as it will run: rendered as is by
	// internal/machine.
	Spec machine.Spec
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
	// anonymous volumes get their Source per instance.
	anonymous bool
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

// Docker's defaults for what a machine runs with.
const (
	// defaultStopGrace is docker's grace period before SIGKILL.
	defaultStopGrace = 10 * time.Second
	// defaultRestartDelay is docker's first restart delay.
	defaultRestartDelay = 100 * time.Millisecond
)

// The pool project networks get a /24 from when they name no subnet.
var defaultPool = netip.MustParsePrefix("172.16.0.0/12")

// ImageInfo returns the config of an image, or ok=false when it is not
// known (not pulled yet). The conversion takes from it only what the files
// need before the machine starts: its VOLUMEs and HEALTHCHECK, and a check
// that a command remains; the machines read the rest when they start.
type ImageInfo func(ref string) (cfg *v1.Config, ok bool)
