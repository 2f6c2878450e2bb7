package decl

import (
	"path"
	"strings"

	"github.com/berth-sh/berth/internal/unit"
)

// Where the units' start-time helpers keep a machine's files: a generator
// writes nothing but units, so what a machine needs beyond its command
// line is made by the unit when it starts.
const (
	// etcDir/MACHINE holds the hosts and resolv.conf `berth _etc-files`
	// writes and nspawn binds in (AddHost=, DNS=, ...).
	etcDir = "/run/berth/etc"
	// healthDir/MACHINE.json is the health watcher's state.
	healthDir = "/run/berth/health"
)

// more is what the [Container] keys leave for after the last entry:
// settings that depend on each other (ReadOnlyTmpfs= on ReadOnly=, the
// health keys on HealthCmd=), files the machine needs at start, and
// entries and units beside the machine's own.
type more struct {
	// placeholder stands for a template's instance (template.go).
	placeholder string
	etc         etcPlan
	health      healthPlan
	// readOnlyTmpfs is ReadOnlyTmpfs= (podman's default: true).
	readOnlyTmpfs      bool
	readOnlyTmpfsEntry *Entry
	// ReloadCmd= or ReloadSignal=, for ExecReload=.
	reloadCmd    []string
	reloadSignal string
	reloadEntry  *Entry
	// discardOutput is LogDriver=none.
	discardOutput bool
	// labels are Label= assignments, recorded in [X-Berth].
	labels []string
	// privateUsers is the UserNS= entry that asked for a private range.
	privateUsers *Entry
	// sysctl is the last Sysctl= entry, for findings.
	sysctl *Entry
	// timezone is a tz database name (Timezone=) whose file is bound.
	timezone string
}

// finish plans what needs every entry seen: it runs after the last one,
// before the machine is rendered.
func (k *ctr) finish() {
	k.finishReadOnlyTmpfs()
	k.finishEtc()
	k.finishHealth()
	k.finishUserNS()
	k.finishSysctl()
	k.finishTimezone()
	for _, o := range k.reg.containers {
		if o != k && o.spec.Name == k.spec.Name {
			k.err(containerGroup, k.entry("ContainerName"), "machine name %s is also %s's; set ContainerName= to tell them apart", k.spec.Name, o.in.File.Path)
		}
	}
	if k.isTemplate() && !strings.HasSuffix(strings.TrimSuffix(k.service, ".service"), "@") {
		k.err(containerGroup, k.entry("ServiceName"), "%q: a template's unit must be a template too (NAME@)", k.service)
	}
}

// entry is the last entry of key in [Container] (for findings about keys
// that act together), or one naming the section's line.
func (k *ctr) entry(key string) Entry {
	sec := k.in.File.Section(containerGroup)
	for i := len(sec.Entries) - 1; i >= 0; i-- {
		if sec.Entries[i].Key == key {
			return sec.Entries[i]
		}
	}
	return Entry{Key: key, Path: k.in.File.Path, Line: sec.Line}
}

// namedFile is a unit model and the name it is written as.
type namedFile struct {
	name string
	f    *unit.File
}

// decorate adds to the machine's unit what the machine model does not
// carry (reload, output, labels, the wait for health) and returns the
// units that go beside it.
func (k *ctr) decorate(f *unit.File) []namedFile {
	svc := f.Section("Service")
	if r := k.reload(); r != nil {
		svc.AddCommand("ExecReload", "", r...)
	}
	if k.more.discardOutput {
		svc.Add("StandardOutput", "null")
		svc.Add("StandardError", "null")
	}
	var out []namedFile
	if h := &k.more.health; h.run() {
		if h.notify {
			// Notify=healthy: the unit is started only once the
			// check passed, as podman's --sdnotify=healthy.
			svc.AddCommand("ExecStartPost", "", k.healthArgv(true)...)
		}
		out = append(out, namedFile{instanceUnit(k.service, "-health"), k.healthUnit()})
	}
	if len(k.more.labels) > 0 {
		// Sections named X-* are ignored by systemd: the labels are
		// kept with the unit, for people and tools that read it.
		x := f.Section("X-Berth")
		for _, l := range k.more.labels {
			x.Add("Label", l)
		}
	}
	return out
}

// trimSentinel is err's message without the sentinel's prefix: findings
// say what is wrong with the value, not which package found it.
func trimSentinel(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}

// imageConfigPath is where the image config of a machine is kept beside
// its tree (store.ConfigPath, which the generator cannot link: a test
// keeps the two equal).
func imageConfigPath(machinesDir, name string) string {
	return path.Join(machinesDir, name+".oci-config")
}
