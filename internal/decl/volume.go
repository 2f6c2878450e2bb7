package decl

import (
	"path"
	"strconv"
)

// Volumes are directories under berth's root, ROOT/volumes/NAME, shared by
// every machine that names them (as podman's named volumes, and compose's
// volumes with a name: of their own). A NAME.volume declaration is a
// oneshot unit that creates the directory (berth _volume) with its owner;
// a container binds it and fills it from its image at the mount point
// while it is empty (Copy=, podman's copy-up).

const volumeGroup = "Volume"

// VolumeKeys is the support table of the [Volume] group: every key of
// quadlet's.
var VolumeKeys = []Rule[*volDecl]{
	{"ContainersConfModule", Rejected, "containers.conf modules are podman configuration", nil},
	{"Copy", Supported, "fill the volume from the image at the mount point while it is empty, when a container starts (default true)", (*volDecl).planCopy},
	{"Device", Rejected, "berth volumes are directories; mount the device on the host (a .mount unit) and bind it with Volume=HOST-PATH:PATH", nil},
	{"Driver", Partial, "local (the default) only; image volumes and plugins are errors", (*volDecl).planDriver},
	{"GID", Supported, "the group of the volume's top directory (a number), set at every start", (*volDecl).planGID},
	{"GlobalArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"Group", Supported, "the group of the volume's top directory (a number), set at every start", (*volDecl).planGID},
	{"Image", Rejected, "image volumes (Driver=image) are not supported", nil},
	{"Label", Ignored, "labels are podman metadata", nil},
	{"Options", Rejected, "berth volumes are directories, not mounts; mount on the host (a .mount unit) and bind it with Volume=HOST-PATH:PATH", nil},
	{"PodmanArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"ServiceName", Supported, "the generated unit's name (default: NAME-volume.service)", (*volDecl).planServiceName},
	{"Type", Rejected, "berth volumes are directories, not mounts; mount on the host (a .mount unit) and bind it with Volume=HOST-PATH:PATH", nil},
	{"UID", Supported, "the owner of the volume's top directory (a number), set at every start", (*volDecl).planUID},
	{"User", Supported, "the owner of the volume's top directory (a number), set at every start", (*volDecl).planUID},
	{"VolumeName", Supported, "the directory ROOT/volumes/NAME (default systemd-NAME, the name quadlet gives the volume)", (*volDecl).planVolumeName},
}

// volDecl is a NAME.volume declaration.
type volDecl struct {
	c            *conv
	name         string
	service      string
	serviceEntry *Entry
	uid, gid     int
	copy         bool
	failed       bool
}

// volumeDir is where a named volume lives.
func (c *conv) volumeDir(name string) string { return path.Join(c.opts.Root, "volumes", name) }

// validVolumeName is podman's rule for volume names, which also keeps a
// name one path element: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
func validVolumeName(n string) bool {
	if n == "" || len(n) > 255 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

func (c *conv) volume() ([]Unit, error) {
	d := &volDecl{c: c, name: "systemd-" + c.base, uid: -1, gid: -1, copy: true}
	if c.reg.volumes == nil {
		c.reg.volumes = map[string]*volDecl{}
	}
	c.reg.volumes[c.in.Name] = d
	if !c.noTemplate() {
		d.failed = true
		return nil, nil
	}
	if sec := c.in.File.Section(volumeGroup); sec != nil {
		planGroup(c, volumeGroup, sec, VolumeKeys, d)
	}
	d.service = serviceName(c.base, "-volume", d.serviceEntry)
	if d.failed = c.failed; d.failed {
		return nil, nil
	}
	u, err := oneshot{
		c:           c,
		name:        d.service,
		description: "berth volume " + d.name,
		start:       d.helper(),
		mounts:      []string{c.opts.Root},
	}.render()
	return []Unit{u}, err
}

// helper is the berth _volume command that creates the volume with its
// owner; seed adds the image to fill it from.
func (d *volDecl) helper() []string {
	argv := []string{d.c.opts.Berth, "_volume", "--dir", d.c.volumeDir(d.name)}
	if d.uid >= 0 {
		argv = append(argv, "--uid", strconv.Itoa(d.uid))
	}
	if d.gid >= 0 {
		argv = append(argv, "--gid", strconv.Itoa(d.gid))
	}
	return argv
}

func (d *volDecl) planCopy(e Entry) {
	if b, ok := d.c.boolean(volumeGroup, e); ok {
		d.copy = b
	}
}

func (d *volDecl) planDriver(e Entry) {
	if e.Value != "local" {
		d.c.err(volumeGroup, e, "volume driver %q is not supported; berth volumes are local directories", e.Value)
	}
}

func (d *volDecl) planUID(e Entry) { d.id(e, &d.uid) }
func (d *volDecl) planGID(e Entry) { d.id(e, &d.gid) }

func (d *volDecl) id(e Entry, dst *int) {
	n, err := strconv.ParseUint(e.Value, 10, 31)
	if err != nil {
		d.c.err(volumeGroup, e, "%q is not a numeric ID (names of the machine's users are not known on the host)", e.Value)
		return
	}
	*dst = int(n)
}

func (d *volDecl) planVolumeName(e Entry) {
	if !validVolumeName(e.Value) {
		d.c.err(volumeGroup, e, "%q is not a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", e.Value)
		return
	}
	d.name = e.Value
}

func (d *volDecl) planServiceName(e Entry) {
	d.serviceEntry, _ = d.c.planServiceName(volumeGroup, e)
}
