package decl

import (
	"path"
	"strings"
)

// NAME.compose runs a compose project at boot. A generator cannot make the
// project's own unit set: that set has .nspawn files, hosts files and
// state under /var/lib/berth, and needs its images pulled (berth compose
// convert reads the image store) — side effects a generator may not have.
// So the declaration becomes one wrapper unit, berth-compose-NAME.service,
// that runs `berth compose up -d` when started: up converts the project,
// pulls what is missing, installs the unit set, enables and starts the
// project's target and waits until every service is running or healthy.
// Reloading the unit runs up again (only changed machines restart);
// stopping it stops the project but keeps it installed, so a reboot does
// not pull or unpack anything again. Removing the declaration does not
// remove the project: `berth compose -p NAME down` does.

const composeGroup = "Compose"

// ComposeKeys is the support table of berth's [Compose] group.
var ComposeKeys = []Rule[*composeDecl]{
	{"EnvironmentFile", Supported, "an environment file for interpolation (--env-file; repeatable; relative to the declaration's directory)", (*composeDecl).planEnvironmentFile},
	{"File", Supported, "a compose file (-f; repeatable, at least one; relative to the declaration's directory)", (*composeDecl).planFile},
	{"Profile", Supported, "a profile to enable (--profile; repeatable)", (*composeDecl).planProfile},
	{"ProjectName", Supported, "the project name (-p; default: NAME)", (*composeDecl).planProjectName},
}

type composeDecl struct {
	c               *conv
	files, envFiles []string
	profiles        []string
	project         string
	projectEntry    *Entry
}

func (c *conv) compose() ([]Unit, error) {
	sec := c.in.File.Section(composeGroup)
	if !c.noTemplate() {
		return nil, nil
	}
	if sec == nil {
		c.fileErr("no [Compose] section")
		return nil, nil
	}
	d := &composeDecl{c: c, project: c.base}
	planGroup(c, composeGroup, sec, ComposeKeys, d)
	if len(d.files) == 0 {
		c.add(Error, c.in.File.Path, sec.Line, composeGroup, "File", "a compose declaration needs File=")
	}
	if !validProjectName(d.project) {
		e := Entry{Key: "ProjectName", Path: c.in.File.Path, Line: sec.Line}
		if d.projectEntry != nil {
			e = *d.projectEntry
		}
		c.err(composeGroup, e, "%q is not a compose project name (lower-case letters, digits, '-' and '_', starting with a letter or digit); set ProjectName=", d.project)
	}
	if c.failed {
		return nil, nil
	}
	global := []string{c.opts.Berth, "--quiet", "compose"}
	for _, f := range d.files {
		global = append(global, "-f", f)
	}
	global = append(global, "-p", d.project)
	for _, p := range d.profiles {
		global = append(global, "--profile", p)
	}
	for _, f := range d.envFiles {
		global = append(global, "--env-file", f)
	}
	var dirs []string
	for _, f := range append(append([]string{}, d.files...), d.envFiles...) {
		dirs = append(dirs, path.Dir(f))
	}
	up := append(append([]string{}, global...), "up", "-d")
	o := oneshot{
		c:           c,
		name:        "berth-compose-" + c.base + ".service",
		description: "berth compose project " + d.project,
		start:       up,
		stop:        append(append([]string{}, global...), "stop"),
		reload:      up,
		after:       []string{"network-online.target"},
		wants:       []string{"network-online.target"},
		mounts:      append(dirs, c.opts.Root, c.opts.MachinesDir),
		timeout:     pullTimeout,
		install:     "multi-user.target",
	}
	u, err := o.render()
	return []Unit{u}, err
}

// validProjectName is compose's rule for project names.
func validProjectName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return true
}

func (d *composeDecl) planFile(e Entry) {
	if p, ok := d.path(e); ok {
		d.files = append(d.files, p)
	}
}

func (d *composeDecl) planEnvironmentFile(e Entry) {
	if p, ok := d.path(e); ok {
		d.envFiles = append(d.envFiles, p)
	}
}

func (d *composeDecl) path(e Entry) (string, bool) {
	if e.Value == "" || strings.ContainsAny(e.Value, "\n") {
		d.c.err(composeGroup, e, "%q is not a path", e.Value)
		return "", false
	}
	return d.c.relPath(e.Value), true
}

func (d *composeDecl) planProfile(e Entry) {
	for i := 0; i < len(e.Value); i++ {
		c := e.Value[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || i > 0 && strings.IndexByte("_.-", c) >= 0) {
			d.c.err(composeGroup, e, "%q is not a profile name", e.Value)
			return
		}
	}
	if e.Value == "" {
		d.c.err(composeGroup, e, "empty profile name")
		return
	}
	d.profiles = append(d.profiles, e.Value)
}

func (d *composeDecl) planProjectName(e Entry) {
	d.project, d.projectEntry = e.Value, &e
}
