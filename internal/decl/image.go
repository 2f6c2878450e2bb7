package decl

import (
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Images: a unit whose machine does not have its image yet gets it when it
// starts, never when the units are made. The machine unit runs `berth pull
// --policy P` as its first ExecStartPre= (podman's pull policies; missing
// by default, as podman run), with a start timeout sized for a pull, and is
// ordered after network-online.target only when the image comes from a
// registry. A NAME.image declaration is a oneshot unit that pulls into a
// machine tree of its own (NAME-image, never run); a container with
// Image=NAME.image requires that unit and copies its tree (--from) instead
// of pulling.

const imageGroup = "Image"

// ImageKeys is the support table of the [Image] group: every key of
// quadlet's.
var ImageKeys = []Rule[*imgDecl]{
	{"AllTags", Rejected, "berth installs one image per unit; name each tag in a declaration of its own", nil},
	{"Arch", Supported, "the platform's architecture, for a multi-platform image (default: the host's)", (*imgDecl).planArch},
	{"AuthFile", Rejected, "credentials come from $DOCKER_CONFIG/config.json; set Environment=DOCKER_CONFIG=DIR in [Service]", nil},
	{"CertDir", Rejected, "registries are verified with the host's CA certificates", nil},
	{"ContainersConfModule", Rejected, "containers.conf modules are podman configuration", nil},
	{"Creds", Rejected, "credentials in a unit file are readable by every user; use $DOCKER_CONFIG/config.json", nil},
	{"DecryptionKey", Rejected, "encrypted images are not supported", nil},
	{"GlobalArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"Image", Supported, "the image: a registry reference or oci:PATH[:TAG]", (*imgDecl).planImage},
	{"ImageTag", Ignored, "containers name the image as NAME.image; berth keeps images per machine, not by tag", nil},
	{"OS", Supported, "the platform's operating system (default linux)", (*imgDecl).planOS},
	{"PodmanArgs", Rejected, "podman command-line arguments have no meaning for berth", nil},
	{"Policy", Supported, "when to pull: always (default), missing, newer or never", (*imgDecl).planPolicy},
	{"Retry", Supported, "how many times a failed pull is tried again (default 3)", (*imgDecl).planRetry},
	{"RetryDelay", Supported, "the pause between tries (default 2s, doubling)", (*imgDecl).planRetryDelay},
	{"ServiceName", Supported, "the generated unit's name (default: NAME-image.service)", (*imgDecl).planServiceName},
	{"TLSVerify", Supported, "false allows plain HTTP to the registry (berth pull --insecure)", (*imgDecl).planTLSVerify},
	{"Variant", Supported, "the platform's variant (arm: v7)", (*imgDecl).planVariant},
}

// pullPlan is how a unit gets its image: the pull command's options.
type pullPlan struct {
	policy string
	// retry is how many times a failed pull is tried again; retrySet
	// says Retry= gave it (else podman's default).
	retry    int
	retrySet bool
	delay    time.Duration
	insecure bool
	platform struct{ os, arch, variant string }
	// hook: the unit runs the pull (and gets pullTimeout).
	hook bool
}

// args are berth pull's options for p (before the reference).
func (p pullPlan) args() []string {
	a := []string{"--policy", p.policy, "--retry", strconv.Itoa(p.retry)}
	if p.delay > 0 {
		a = append(a, "--retry-delay", p.delay.String())
	}
	if p.insecure {
		a = append(a, "--insecure")
	}
	if pl := p.platform; pl.arch != "" || pl.os != "" || pl.variant != "" {
		v := cmpOr(pl.os, "linux") + "/" + cmpOr(pl.arch, runtime.GOARCH)
		if pl.variant != "" {
			v += "/" + pl.variant
		}
		a = append(a, "--platform", v)
	}
	return a
}

// podman's defaults: --retry 3.
const defaultRetry = 3

// isRegistry says whether an image reference needs the network: anything
// but a local OCI layout.
func isRegistry(ref string) bool { return !strings.HasPrefix(ref, "oci:") }

// policy, retries and delay are shared by [Image] and [Container].
func (c *conv) planPolicy(group string, p *pullPlan, e Entry) {
	switch e.Value {
	case "always", "missing", "newer", "never":
		p.policy = e.Value
	default:
		c.err(group, e, "pull policy %q (want always, missing, newer or never)", e.Value)
	}
}

func (c *conv) planRetry(group string, p *pullPlan, e Entry) {
	n, err := strconv.ParseUint(e.Value, 10, 16)
	if err != nil {
		c.err(group, e, "%q is not a number of retries", e.Value)
		return
	}
	p.retry, p.retrySet = int(n), true
}

func (c *conv) planRetryDelay(group string, p *pullPlan, e Entry) {
	d, err := time.ParseDuration(e.Value)
	if err != nil || d <= 0 {
		c.err(group, e, "%q is not a duration (like 5s)", e.Value)
		return
	}
	p.delay = d
}

// checkRef checks an image reference as far as the generator can without
// a registry client: one word, printable.
func (c *conv) checkRef(group string, e Entry) bool {
	if e.Value == "" || strings.IndexFunc(e.Value, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		c.err(group, e, "%q is not an image reference", e.Value)
		return false
	}
	return true
}

// imgDecl is a NAME.image declaration.
type imgDecl struct {
	c            *conv
	ref          string
	machine      string
	service      string
	serviceEntry *Entry
	pull         pullPlan
	// given: an Image= entry was there (a bad one is its own finding).
	given  bool
	failed bool
}

func (c *conv) image() ([]Unit, error) {
	d := &imgDecl{c: c, machine: c.base + "-image", pull: pullPlan{policy: "always", retry: defaultRetry}}
	if c.reg.images == nil {
		c.reg.images = map[string]*imgDecl{}
	}
	c.reg.images[c.in.Name] = d
	sec := c.in.File.Section(imageGroup)
	if !c.noTemplate() || sec == nil {
		if sec == nil {
			c.fileErr("no [Image] section")
		}
		d.failed = true
		return nil, nil
	}
	planGroup(c, imageGroup, sec, ImageKeys, d)
	if d.ref == "" && !d.given {
		c.add(Error, c.in.File.Path, sec.Line, imageGroup, "Image", "an image declaration needs Image=")
	}
	d.service = serviceName(c.base, "-image", d.serviceEntry)
	d.failed = c.failed
	c.later(d.render)
	return nil, nil
}

// render makes the image's pull unit, once no other declaration claims its
// machine.
func (d *imgDecl) render() ([]Unit, error) {
	c := d.c
	if d.failed || c.failed {
		return nil, nil
	}
	o := oneshot{
		c:           c,
		name:        d.service,
		description: "berth image " + d.ref,
		start:       append(append([]string{c.opts.Berth, "pull", "--name", d.machine}, d.pull.args()...), d.ref),
		timeout:     pullTimeout,
		mounts:      []string{c.opts.Root, c.opts.MachinesDir},
	}
	if isRegistry(d.ref) {
		o.after, o.wants = []string{"network-online.target"}, []string{"network-online.target"}
	}
	u, err := o.render()
	return []Unit{u}, err
}

func (d *imgDecl) planImage(e Entry) {
	d.given = true
	if strings.HasSuffix(e.Value, ".image") {
		d.c.err(imageGroup, e, "an image declaration names a reference, not another declaration")
		return
	}
	if d.c.checkRef(imageGroup, e) {
		d.ref = e.Value
	}
}

func (d *imgDecl) planPolicy(e Entry)     { d.c.planPolicy(imageGroup, &d.pull, e) }
func (d *imgDecl) planRetry(e Entry)      { d.c.planRetry(imageGroup, &d.pull, e) }
func (d *imgDecl) planRetryDelay(e Entry) { d.c.planRetryDelay(imageGroup, &d.pull, e) }

func (d *imgDecl) planTLSVerify(e Entry) {
	if b, ok := d.c.boolean(imageGroup, e); ok {
		d.pull.insecure = !b
	}
}

func (d *imgDecl) planArch(e Entry)    { d.platform(e, &d.pull.platform.arch) }
func (d *imgDecl) planOS(e Entry)      { d.platform(e, &d.pull.platform.os) }
func (d *imgDecl) planVariant(e Entry) { d.platform(e, &d.pull.platform.variant) }

func (d *imgDecl) platform(e Entry, dst *string) {
	if e.Value == "" || strings.ContainsAny(e.Value, "/ \t") {
		d.c.err(imageGroup, e, "%q is not a platform component", e.Value)
		return
	}
	*dst = e.Value
}

func (d *imgDecl) planServiceName(e Entry) {
	d.serviceEntry, _ = d.c.planServiceName(imageGroup, e)
}

// The container's pull keys.

func (k *ctr) planPull(e Entry)       { k.planPolicy(containerGroup, &k.links.pull, e) }
func (k *ctr) planRetry(e Entry)      { k.conv.planRetry(containerGroup, &k.links.pull, e) }
func (k *ctr) planRetryDelay(e Entry) { k.conv.planRetryDelay(containerGroup, &k.links.pull, e) }

// linkImage makes the machine's first ExecStartPre= the pull of its image
// (or the copy from its NAME.image unit's machine).
func (k *ctr) linkImage() {
	if k.image == "" {
		return
	}
	p := &k.links.pull
	p.policy = cmpOr(p.policy, "missing")
	if !p.retrySet {
		p.retry = defaultRetry
	}
	s := &k.spec
	argv := []string{k.opts.Berth, "pull", "--name", s.Name}
	ref := k.image
	fromImage := strings.HasSuffix(ref, ".image")
	switch {
	case fromImage:
		d := k.reg.images[ref]
		switch {
		case d == nil:
			k.err(containerGroup, k.entry("Image"), "%s is not declared", ref)
			return
		case d.failed:
			k.err(containerGroup, k.entry("Image"), "image %s has errors (see its findings)", d.c.in.File.Path)
			return
		}
		ref, k.image = d.ref, d.ref
		argv = append(argv, "--from", d.machine)
		requireUnit(&s.Unit, d.service)
	case k.reg.layoutTags[k.in.Name] != "":
		tag := k.reg.layoutTags[k.in.Name]
		argv = append(argv, "--ref-name", tag)
		k.image = ref + ":" + tag // for the description only
	}
	if isRegistry(ref) && !fromImage {
		s.Unit.After = appendNew(s.Unit.After, "network-online.target")
		s.Unit.Wants = appendNew(s.Unit.Wants, "network-online.target")
	}
	argv = append(append(argv, p.args()...), ref)
	s.Hooks.StartPre = append(s.Hooks.StartPre, argv)
	p.hook = true
}
