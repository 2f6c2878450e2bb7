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
	// Berth is the berth binary that helper commands in units run.
	Berth = "/usr/local/bin/berth"
	// Init is the host path of berth-init, bind-mounted into app machines.
	Init = "/usr/local/lib/berth/berth-init"
	// Nspawn is the systemd-nspawn binary machine services run.
	Nspawn = "/usr/bin/systemd-nspawn"
	// SocketProxyd forwards published ports to machines.
	SocketProxyd = "/usr/lib/systemd/systemd-socket-proxyd"
	// Netns is where named network namespaces live (iproute2's place, so
	// `ip netns` sees them).
	Netns = "/run/netns"
)
