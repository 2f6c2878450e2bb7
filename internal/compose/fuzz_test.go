package compose

import (
	"bytes"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// FuzzConvert feeds arbitrary strings into the fields that reach units,
// hosts files and paths. Conversion may refuse a value, but must not panic,
// must be deterministic, and must never let a value add a line to a hosts
// file or resolv.conf.
func FuzzConvert(f *testing.F) {
	for _, seed := range [][5]string{
		{"plain", "arg", "alias", "host.example", "search.example"},
		{"100% $HOME \"q\" 'x' \\", "-dash", "a b", "x\ny", "a;b"},
		{"line\nbreak", "", "bad\n127.0.0.1 evil", "ok", "#comment"},
		{"\x00\x7f", "%n", "UPPER.case_ok", "::1", "\t"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4])
	}
	f.Fuzz(func(t *testing.T, env, arg, alias, extraName, search string) {
		value := func(s string) *string { return &s }
		svc := types.ServiceConfig{Name: "app"}
		svc.Image = "example/app"
		svc.Command = types.ShellCommand{"/bin/app", arg}
		svc.Environment = types.MappingWithEquals{"VALUE": value(env)}
		svc.Networks = map[string]*types.ServiceNetworkConfig{"default": {Aliases: []string{alias}}}
		svc.ExtraHosts = types.HostsList{extraName: []string{"192.0.2.1"}}
		svc.DNSSearch = types.StringList{search}
		svc.Labels = types.Labels{"l": env}
		p := &Project{Project: &types.Project{
			Name:       "fuzz",
			WorkingDir: "/srv/fuzz",
			Services:   types.Services{"app": svc},
			Networks:   types.Networks{"default": {Name: "fuzz_default"}},
		}}
		res1, err1 := Convert(p, testOptions())
		res2, err2 := Convert(p, testOptions())
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("conversions disagree: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		var l1, l2 bytes.Buffer
		WriteListing(&l1, res1.Files)
		WriteListing(&l2, res2.Files)
		if !bytes.Equal(l1.Bytes(), l2.Bytes()) {
			t.Fatal("conversion is not deterministic")
		}
		for _, f := range res1.Files {
			if bytes.HasSuffix([]byte(f.Path), []byte("/hosts")) {
				for _, line := range bytes.Split(f.Data, []byte("\n")) {
					if bytes.Contains(line, []byte("evil")) {
						t.Fatalf("a value injected a hosts line: %q", line)
					}
				}
			}
			if bytes.HasSuffix([]byte(f.Path), []byte("/resolv.conf")) && bytes.Count(f.Data, []byte("\n")) != 2 {
				t.Fatalf("resolv.conf has extra lines:\n%s", f.Data)
			}
		}
	})
}
