// Package paths names berth's default locations on a host, in one place.
// Every package that needs a default reads it from here; options structs
// and flags override them (tests point them into temporary directories).
package paths

const (
	// Root is berth's state directory: the image store, machine records,
	// compose projects, named volumes.
	Root = "/var/lib/berth"
	// Machines holds the machines' root filesystems (machinectl's place).
	Machines = "/var/lib/machines"
	// UnitDir is where berth installs unit files.
	UnitDir = "/etc/systemd/system"
	// NspawnDir is where privileged .nspawn settings are honoured from
	// (Bind=, Port=, PrivateUsers= are ignored in untrusted locations).
	NspawnDir = "/etc/systemd/nspawn"
	// RuntimeNspawnDir holds settings of transient machines (berth run).
	RuntimeNspawnDir = "/run/systemd/nspawn"
	// DefaultBerth and DefaultInit are where scripts/install.sh puts
	// berth and berth-init with its default prefix, /usr/local.
	DefaultBerth = "/usr/local/bin/berth"
	DefaultInit  = "/usr/local/lib/berth/berth-init"
	// Nspawn is the systemd-nspawn binary machine services run.
	Nspawn = "/usr/bin/systemd-nspawn"
	// SocketProxyd forwards published ports to machines.
	SocketProxyd = "/usr/lib/systemd/systemd-socket-proxyd"
	// Netns is where named network namespaces live (iproute2's place, so
	// `ip netns` sees them).
	Netns = "/run/netns"
)

// Berth and Init are the defaults of the programs units run: the berth
// binary that helper commands in units run, and the host path of the init
// bind-mounted into app machines. They start as DefaultBerth and
// DefaultInit; cmd/berth points them at the running installation when it
// starts (see Locate), so a berth installed anywhere renders units that
// run itself. Options structs still override them.
var (
	Berth = DefaultBerth
	Init  = DefaultInit
)
