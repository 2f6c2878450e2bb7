package unit

import (
	"errors"
	"strings"
	"testing"
)

func TestMarshalEscapesByKindAndDialect(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		entry   Entry
		want    string
	}{
		{"text percent unit", Systemd, Entry{Key: "Description", Kind: Text, Values: []string{"100% $HOME \"q\" a\\b"}}, `Description=100%% $HOME "q" a\b`},
		{"text percent nspawn", Nspawn, Entry{Key: "Hostname", Kind: Text, Values: []string{"a%b"}}, `Hostname=a%b`},
		{"path", Systemd, Entry{Key: "WorkingDirectory", Kind: Path, Values: []string{"/srv/my dir/%i"}}, `WorkingDirectory=/srv/my dir/%%i`},
		{"command unit", Systemd, Entry{Key: "ExecStart", Kind: Command, Prefix: "-", Values: []string{"/bin/echo", "$HOME", "50%", `a"b`, `c\d`, "", ";", "tab\there", "'", "ünï"}},
			`ExecStart=-"/bin/echo" "$$HOME" "50%%" "a\"b" "c\\d" "" ";" "tab\there" "'" "ünï"`},
		{"command nspawn", Nspawn, Entry{Key: "Parameters", Kind: Command, Values: []string{"/bin/echo", "$HOME", "50%", `a"b`, `c\d`, "", `"`, "'", `\`, "x y"}},
			`Parameters="/bin/echo" "$HOME" "50%" "a"'"'"b" "c\d" "" '"' "'" "\" "x y"`},
		{"env unit", Systemd, Entry{Key: "Environment", Kind: Env, Values: []string{"A=1 2", "B=%$", `C="\`}}, `Environment="A=1 2" "B=%%$" "C=\"\\"`},
		{"env nspawn", Nspawn, Entry{Key: "Environment", Kind: Env, Values: []string{"A=1 2", "B=%$", `C="\`}}, `Environment="A=1 2" "B=%$" "C="'"'"\"`},
		{"bind", Nspawn, Entry{Key: "Bind", Kind: Bind, Values: []string{`/a:b\c`, "/d e ", "rbind"}}, `Bind=/a\:b\\c:/d\ e\ :rbind`},
		{"bind trailing space", Nspawn, Entry{Key: "Bind", Kind: Bind, Values: []string{"/a ", "/b "}}, `Bind=/a\ :/b\ :rbind`},
		{"words unit", Systemd, Entry{Key: "RequiresMountsFor", Kind: Words, Values: []string{"/var/lib/machines/a b", "/x%"}}, `RequiresMountsFor="/var/lib/machines/a b" "/x%%"`},
		{"verbatim percent", Systemd, Entry{Key: "CPUQuota", Kind: Verbatim, Values: []string{"150%"}}, `CPUQuota=150%`},
		{"empty resets", Systemd, Entry{Key: "Environment", Kind: Text, Values: []string{""}}, `Environment=`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.dialect)
			s := f.Section("S")
			s.Entries = append(s.Entries, tt.entry)
			b, err := f.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			want := "[S]\n" + tt.want + "\n"
			if string(b) != want {
				t.Errorf("got\n%s\nwant\n%s", b, want)
			}
		})
	}
}

func TestMarshalRejectsUnrepresentableValues(t *testing.T) {
	tests := []struct {
		name    string
		dialect Dialect
		entry   Entry
		inErr   string
	}{
		{"newline text", Systemd, Entry{Key: "Description", Kind: Text, Values: []string{"a\nb"}}, "[S] Description=: "},
		{"newline arg", Nspawn, Entry{Key: "Parameters", Kind: Command, Values: []string{"/bin/sh", "a\nb"}}, "newline"},
		{"cr env", Systemd, Entry{Key: "Environment", Kind: Env, Values: []string{"A=a\rb"}}, "carriage return"},
		{"nul", Systemd, Entry{Key: "ExecStart", Kind: Command, Values: []string{"/bin/x", "a\x00"}}, "NUL"},
		{"trailing backslash", Systemd, Entry{Key: "Description", Kind: Text, Values: []string{`a\`}}, "backslash"},
		{"surrounding space", Nspawn, Entry{Key: "Hostname", Kind: Text, Values: []string{" a"}}, "whitespace"},
		{"control in nspawn word", Nspawn, Entry{Key: "Parameters", Kind: Command, Values: []string{"/x", "a\x1bb"}}, "control character"},
		{"prefix in argv0", Systemd, Entry{Key: "ExecStart", Kind: Command, Values: []string{"-x"}}, "prefix"},
		{"bad prefix", Systemd, Entry{Key: "ExecStart", Kind: Command, Prefix: "x", Values: []string{"/bin/true"}}, "prefix"},
		{"relative path", Systemd, Entry{Key: "WorkingDirectory", Kind: Path, Values: []string{"srv"}}, "absolute"},
		{"unclean path", Nspawn, Entry{Key: "WorkingDirectory", Kind: Path, Values: []string{"/srv/../etc"}}, "clean"},
		{"env name", Nspawn, Entry{Key: "Environment", Kind: Env, Values: []string{"a.b=1"}}, "variable name"},
		{"env no equals", Systemd, Entry{Key: "Environment", Kind: Env, Values: []string{"AB"}}, "no \"=\""},
		{"bind relative", Nspawn, Entry{Key: "Bind", Kind: Bind, Values: []string{"a", "/b"}}, "absolute"},
		{"bind in unit", Systemd, Entry{Key: "Bind", Kind: Bind, Values: []string{"/a", "/b"}}, ".nspawn"},
		{"bad utf8", Systemd, Entry{Key: "Description", Kind: Text, Values: []string{"\xff"}}, "UTF-8"},
		{"bad key", Systemd, Entry{Key: "A=B", Kind: Text, Values: []string{"x"}}, "invalid name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(tt.dialect)
			s := f.Section("S")
			s.Entries = append(s.Entries, tt.entry)
			_, err := f.Marshal()
			if err == nil {
				t.Fatal("Marshal succeeded")
			}
			if !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrInvalidName) {
				t.Errorf("error %v is neither ErrInvalidValue nor ErrInvalidName", err)
			}
			if !strings.Contains(err.Error(), tt.inErr) || !strings.Contains(err.Error(), tt.entry.Key+"=") {
				t.Errorf("error %q does not name the key or mention %q", err, tt.inErr)
			}
		})
	}
}

func TestMarshalLayout(t *testing.T) {
	f := New(Systemd)
	f.Comments = []string{"Generated by berth."}
	f.Section("Unit").Add("Description", "x")
	f.Section("Service").Add("Type", "notify").AddCommand("ExecStart", "", "/bin/true")
	f.Section("Unit").Add("After", "network.target")
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "# Generated by berth.\n\n[Unit]\nDescription=x\nAfter=network.target\n\n[Service]\nType=notify\nExecStart=\"/bin/true\"\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
	if got := f.Lookup("Unit", "After"); len(got) != 1 || got[0].Values[0] != "network.target" {
		t.Errorf("Lookup = %v", got)
	}
}

func TestSpecifierKeptOtherPercentDoubled(t *testing.T) {
	i := Specifier('i')
	f := New(Systemd)
	s := f.Section("S")
	s.Add("Description", "machine web-"+i+" at 100%")
	s.AddCommand("ExecStart", "", "/bin/nspawn", "--machine=web-"+i, "50%", "$X")
	s.AddWords("RequiresMountsFor", "/m/web-"+i)
	s.AddEnv("Environment", "M=web-"+i+"%")
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := "[S]\nDescription=machine web-%i at 100%%\n" +
		`ExecStart="/bin/nspawn" "--machine=web-%i" "50%%" "$$X"` + "\n" +
		`RequiresMountsFor="/m/web-%i"` + "\n" +
		`Environment="M=web-%i%%"` + "\n"
	if string(b) != want {
		t.Errorf("got\n%s\nwant\n%s", b, want)
	}
}

func TestSpecifierRefusedWhereNotExpanded(t *testing.T) {
	i := Specifier('i')
	for name, f := range map[string]*File{
		"nspawn":   {Dialect: Nspawn, Sections: []*Section{{Name: "Exec", Entries: []Entry{{Key: "Hostname", Kind: Text, Values: []string{"a" + i}}}}}},
		"verbatim": {Dialect: Systemd, Sections: []*Section{{Name: "S", Entries: []Entry{{Key: "MemoryMax", Kind: Verbatim, Values: []string{"1" + i}}}}}},
		"stray":    {Dialect: Systemd, Sections: []*Section{{Name: "S", Entries: []Entry{{Key: "Description", Kind: Text, Values: []string{"a\x00x"}}}}}},
	} {
		if _, err := f.Marshal(); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: got %v, want ErrInvalidValue", name, err)
		}
	}
}
