package decl

import (
	"fmt"
	"strings"
)

// quadlet writes [Container] values into the podman command line of
// ExecStart=, where systemd expands specifiers: "%i" is the instance, "%%"
// a percent sign, and a lone '%' is an error. berth writes every value
// literally (the unit model doubles '%'), so it resolves the specifiers of
// [Container] values itself, before the planners see them: a podman
// user's file means the same here. A template's %i becomes its instance
// placeholder (template.go), so it reaches the unit as %i.

// staticSpecifiers are the specifiers of a system unit whose value is known
// when units are made (systemd.unit(5), "Specifiers").
var staticSpecifiers = map[byte]string{
	'E': "/etc", 'S': "/var/lib", 'C': "/var/cache", 'L': "/var/log",
	't': "/run", 'T': "/tmp", 'V': "/var/tmp",
	'h': "/root", 'u': "root", 'U': "0", 'g': "root", 'G': "0",
}

// expand resolves the specifiers of a [Container] entry's value.
func (k *ctr) expand(e Entry) (Entry, error) {
	v := e.Value
	if !strings.Contains(v, "%") {
		return e, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i++; i == len(v) {
			return e, fmt.Errorf("%q ends in a lone %%; write %%%% for a percent sign", v)
		}
		s, err := k.specifier(v[i])
		if err != nil {
			return e, fmt.Errorf("%q: %w", v, err)
		}
		b.WriteString(s)
	}
	e.Value = b.String()
	return e, nil
}

// specifier is the value of %c in this declaration.
func (k *ctr) specifier(c byte) (string, error) {
	prefix, inst, isInst := templateParts(k.base)
	if inst == "" && isInst {
		inst = k.placeholder()
	}
	unitName := k.base // %N: the unit name without its type suffix
	if isInst {
		unitName = prefix + "@" + inst
	}
	switch c {
	case '%':
		return "%", nil
	case 'i', 'I':
		if !isInst {
			return "", fmt.Errorf("%%%c is the instance of a template; %s is none", c, k.in.Name)
		}
		return inst, nil
	case 'p', 'P':
		return prefix, nil
	case 'n':
		return unitName + ".service", nil
	case 'N':
		return unitName, nil
	}
	if s, ok := staticSpecifiers[c]; ok {
		return s, nil
	}
	return "", fmt.Errorf("%%%c is not known when units are made (write %%%% for a percent sign)", c)
}

// expandAll is sec with the specifiers of every value resolved; an entry
// whose value has one berth cannot resolve is reported and left out.
func (k *ctr) expandAll(sec *Section) *Section {
	out := &Section{Name: sec.Name, Line: sec.Line}
	for _, e := range sec.Entries {
		x, err := k.expand(e)
		if err != nil {
			k.err(sec.Name, e, "%v", err)
			continue
		}
		out.Entries = append(out.Entries, x)
	}
	return out
}
