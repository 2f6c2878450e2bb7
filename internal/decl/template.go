package decl

import (
	"path"
	"strings"

	"github.com/berth-sh/berth/internal/unit"
)

// Templates work as in quadlet: NAME@.container makes the template unit
// NAME@.service, whose instances (systemctl start NAME@web1.service) are
// machines named NAME-INSTANCE; an instance file NAME@INST.container makes
// the unit NAME@INST.service, with the template's content when the file is
// empty or a symlink to it, and the template's drop-ins before its own.
//
// A template's unit names its instance with the specifier %i wherever the
// machine name appears (--machine=, --directory=, the helpers' paths). The
// machine is planned like any other, under a placeholder name that passes
// machine.ValidateName and occurs in no value of the declaration; before
// the unit is marshalled, each occurrence in its model becomes
// unit.Specifier('i'), which the unit model writes as %i while it still
// doubles every other '%'.

// templateParts splits a declaration's base name (file name without
// extension) at its '@': "web@" is a template, "web@a" an instance of it.
func templateParts(base string) (prefix, instance string, ok bool) {
	return strings.Cut(base, "@")
}

// templateName is the file name of the template an instance file such as
// "web@a.container" belongs to ("web@.container"), or "" for other files.
func templateName(file string) string {
	ext := path.Ext(file)
	prefix, inst, ok := templateParts(strings.TrimSuffix(file, ext))
	if !ok || inst == "" {
		return ""
	}
	return prefix + "@" + ext
}

// isTemplate says whether the declaration is a template (NAME@.EXT).
func (c *conv) isTemplate() bool {
	_, inst, ok := templateParts(c.base)
	return ok && inst == ""
}

// machineName is the default machine name: the base name, NAME-INSTANCE
// for an instance file, NAME-%i (as the placeholder) for a template, with
// each character a machine name cannot hold ("my_app", "a.b") made '-'.
func (k *ctr) machineName() string {
	prefix, inst, ok := templateParts(k.base)
	switch {
	case !ok:
		return machineChars(k.base)
	case inst == "":
		return machineChars(prefix) + "-" + k.placeholder()
	}
	return machineChars(prefix + "-" + inst)
}

func machineChars(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// placeholder is the template's stand-in for its instance name: letters
// only, and found in no value of the declaration, raw or unquoted, so
// that replacing it can only touch what berth derived from the instance.
func (k *ctr) placeholder() string {
	if k.more.placeholder != "" {
		return k.more.placeholder
	}
	var values []string
	for _, s := range k.in.File.Sections {
		for _, e := range s.Entries {
			values = append(values, strings.ToLower(e.Value))
			if w, err := SplitWords(e.Value); err == nil {
				values = append(values, strings.ToLower(strings.Join(w, " ")))
			}
		}
	}
	p := "berthinstance"
	for used := true; used; {
		used = false
		for _, v := range values {
			if strings.Contains(v, p) {
				p += "x"
				used = true
				break
			}
		}
	}
	k.more.placeholder = p
	return p
}

// instantiate turns the placeholder in every value of a template's unit
// into the specifier %i; other units are left as they are.
func (k *ctr) instantiate(f *unit.File) {
	if !k.isTemplate() {
		return
	}
	p := k.placeholder()
	for _, s := range f.Sections {
		for i, e := range s.Entries {
			for j, v := range e.Values {
				if strings.Contains(v, p) {
					s.Entries[i].Values[j] = strings.ReplaceAll(v, p, unit.Specifier('i'))
				}
			}
		}
	}
}

// installName is the unit [Install] links point at: the service itself,
// or for a template the instance its DefaultInstance= names ("" when it
// names none: a template is only started by name, as in systemd).
func (k *ctr) installName() string {
	if !k.isTemplate() {
		return k.service
	}
	inst := ""
	if s := k.in.File.Section("Install"); s != nil {
		for _, e := range s.Entries {
			if e.Key == "DefaultInstance" {
				inst = e.Value
			}
		}
	}
	if inst == "" {
		return ""
	}
	prefix, _, _ := strings.Cut(k.service, "@")
	return prefix + "@" + inst + ".service"
}

// instanceUnit names a unit that belongs beside the service (its health
// watcher): "web.service" with suffix "-health" is "web-health.service",
// "web@.service" is "web-health@.service", so a template's companions are
// templates too.
func instanceUnit(service, suffix string) string {
	base := strings.TrimSuffix(service, ".service")
	if prefix, inst, ok := strings.Cut(base, "@"); ok {
		return prefix + suffix + "@" + inst + ".service"
	}
	return base + suffix + ".service"
}

// serviceInstance is the machine's unit as its companions name it: the
// service, or for a template the instance they belong to (NAME@%i).
func (k *ctr) serviceInstance() string {
	if !k.isTemplate() {
		return k.service
	}
	return strings.TrimSuffix(k.service, ".service") + k.placeholder() + ".service"
}
