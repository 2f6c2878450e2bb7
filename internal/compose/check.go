package compose

import (
	"reflect"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// checkTop applies the top-level support table to every key the project
// and its declared objects use: ignored keys warn, rejected keys are
// errors, partial keys have their values checked by the row's function.
func (pl *planner) checkTop() {
	p := pl.p
	for _, key := range structKeys(reflect.ValueOf(p.Project).Elem(), true) {
		pl.checkTopKey(key, "", []string{key})
	}
	objects := []struct {
		kind string
		keys []string
		obj  func(name string) any
	}{
		{"networks", sortedKeys(p.Networks), func(n string) any { v := p.Networks[n]; return &v }},
		{"volumes", sortedKeys(p.Volumes), func(n string) any { v := p.Volumes[n]; return &v }},
		{"secrets", sortedKeys(p.Secrets), func(n string) any { v := types.FileObjectConfig(p.Secrets[n]); return &v }},
		{"configs", sortedKeys(p.Configs), func(n string) any { v := types.FileObjectConfig(p.Configs[n]); return &v }},
	}
	for _, o := range objects {
		for _, name := range o.keys {
			for _, key := range structKeys(reflect.ValueOf(o.obj(name)).Elem(), true) {
				pl.checkTopKey(o.kind+".*."+key, name, []string{o.kind, name, key})
			}
		}
	}
}

func (pl *planner) checkTopKey(rule, name string, at []string) {
	r, ok := topRule(rule)
	switch {
	case !ok:
		pl.f.add(Error, "", at, "unknown key; berth does not know what it does")
	case r.Support == Ignored:
		pl.f.add(Warning, "", at, "%s", r.How)
	case r.Support == Rejected:
		pl.f.add(Error, "", at, "%s", r.How)
	case r.check != nil:
		r.check(pl, name)
	}
}

func checkNetworkDriver(pl *planner, k string) {
	if d := pl.p.Networks[k].Driver; d != "bridge" {
		pl.f.add(Error, "", []string{"networks", k, "driver"}, "network driver %q is not supported; berth networks are bridges", d)
	}
}

func checkNetworkIPv6(pl *planner, k string) {
	if v6 := pl.p.Networks[k].EnableIPv6; v6 != nil && *v6 {
		pl.f.add(Error, "", []string{"networks", k, "enable_ipv6"}, "IPv6 networks are not supported yet")
	}
}

func checkNetworkIPAM(pl *planner, k string) {
	ipam := pl.p.Networks[k].Ipam
	at := []string{"networks", k, "ipam"}
	if ipam.Driver != "" && ipam.Driver != "default" {
		pl.f.add(Error, "", at, "IPAM driver %q is not supported", ipam.Driver)
	}
	if len(ipam.Options) > 0 {
		pl.f.add(Error, "", at, "IPAM options are not supported")
	}
	if len(ipam.Config) > 1 {
		pl.f.add(Error, "", at, "only one IPAM pool per network is supported")
	}
}

func checkVolumeDriver(pl *planner, k string) {
	if d := pl.p.Volumes[k].Driver; d != "local" {
		pl.f.add(Error, "", []string{"volumes", k, "driver"}, "volume driver %q is not supported; berth volumes are local directories", d)
	}
}

// checkServiceKeys applies the support table to every key the service uses.
// Presence is read from the loaded model (so extends and merged files
// count); the location from the YAML sources. Values of partial keys are
// checked by their planner functions.
func (pl *planner) checkServiceKeys(name string, svc *types.ServiceConfig) {
	for _, key := range structKeys(reflect.ValueOf(svc).Elem(), true) {
		r, ok := serviceRule(key)
		switch {
		case !ok:
			pl.f.svc(Error, name, key, "unknown key; berth does not know what it does")
		case r.Support == Ignored:
			pl.f.svc(Warning, name, key, "%s", r.How)
		case r.Support == Rejected:
			pl.f.svc(Error, name, key, "%s", r.How)
		}
	}
}

// structKeys returns the yaml keys of a compose struct's fields, sorted;
// with used, only those of non-zero fields. Inline structs are flattened;
// extension fields (x-*) and fields yaml never sees are skipped.
func structKeys(v reflect.Value, used bool) []string {
	var keys []string
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
				visit(v.Field(i))
				continue
			}
			if name == "" || name == "-" || strings.HasPrefix(name, "#") || !f.IsExported() {
				continue
			}
			if !used || !v.Field(i).IsZero() {
				keys = append(keys, name)
			}
		}
	}
	visit(v)
	slices.Sort(keys)
	return keys
}

// allServiceKeys lists every yaml key of a compose service (for the table
// completeness test and docs).
func allServiceKeys() []string {
	return structKeys(reflect.ValueOf(types.ServiceConfig{}), false)
}

// allTopKeys lists every top-level key and every key of the objects they
// declare, in the TopKeys spelling (networks.*.driver).
func allTopKeys() []string {
	keys := structKeys(reflect.ValueOf(types.Project{}), false)
	for _, o := range []struct {
		kind string
		v    any
	}{{"networks", types.NetworkConfig{}}, {"volumes", types.VolumeConfig{}}, {"secrets", types.FileObjectConfig{}}, {"configs", types.FileObjectConfig{}}} {
		for _, k := range structKeys(reflect.ValueOf(o.v), false) {
			keys = append(keys, o.kind+".*."+k)
		}
	}
	slices.Sort(keys)
	return keys
}
