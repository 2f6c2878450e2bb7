package initproc

import (
	"slices"
	"testing"

	"github.com/berth-sh/berth/internal/machine"
)

func TestParseEnvFile(t *testing.T) {
	in := "# comment\n\nA=1\n  B = two words \nC=\"quoted\"\n=novalue\nHOME\nUNSET\nD=x=y\n"
	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return "/root", true
		}
		return "", false
	}
	got := parseEnvFile([]byte(in), lookup)
	want := []string{"A=1", "B = two words ", `C="quoted"`, "HOME=/root", "D=x=y"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestExtraOptionsSurviveReExec(t *testing.T) {
	o, err := parseArgs([]string{"--image-config", "/c.json", "--env-file", "/e", "--group-add", "video", "--group-add", "44", "--sysctl", "net.ipv4.ip_forward=1", "--cmd", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.envFiles, []string{"/e"}) || !slices.Equal(o.groupAdd, []string{"video", "44"}) || !slices.Equal(o.sysctls, []string{"net.ipv4.ip_forward=1"}) {
		t.Fatalf("parsed %+v", o)
	}
	var img imageConfig
	img.Config.Entrypoint = []string{"/bin/app"}
	r, err := resolve(o, img)
	if err != nil {
		t.Fatal(err)
	}
	got := r.args("init")
	want := []string{"init", "--group-add", "video", "--group-add", "44", "--sysctl", "net.ipv4.ip_forward=1", "--", "/bin/app", "x"}
	if !slices.Equal(got, want) {
		t.Errorf("re-exec args %q, want %q", got, want)
	}
	if _, err := parseArgs(append(got[1:len(got)-3], "--", "/bin/app")); err != nil {
		t.Errorf("re-exec args do not parse: %v", err)
	}
}

func TestExtraOptionsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--env-file", "relative", "--", "x"},
		{"--group-add", "", "--", "x"},
		{"--sysctl", "kernel.shmmax=1", "--", "x"},
		{"--sysctl", "net.ipv4/../../x=1", "--", "x"},
		{"--sysctl", "net.ipv4.ip_forward", "--", "x"},
	} {
		if _, err := parseArgs(args); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestLookupGroup(t *testing.T) {
	groups := []groupEntry{{name: "video", gid: 44}}
	if g, err := lookupGroup("video", groups); err != nil || g != 44 {
		t.Errorf("video: %d %v", g, err)
	}
	if g, err := lookupGroup("1234", groups); err != nil || g != 1234 {
		t.Errorf("1234: %d %v", g, err)
	}
	if _, err := lookupGroup("nope", groups); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestInvoked(t *testing.T) {
	for argv0, want := range map[string]bool{
		"/.berth/init":                    true,
		"berth-init":                      true,
		"/usr/local/lib/berth/berth-init": true,
		"/usr/local/bin/berth":            false,
		"berth":                           false,
		"/sbin/init":                      false,
		"init":                            false,
		"":                                false,
	} {
		if got := Invoked(argv0); got != want {
			t.Errorf("Invoked(%q) = %v, want %v", argv0, got, want)
		}
	}
}

// TestPathIsTheMachinesInitPath: berth recognises its init role by the
// path machine units start the init at.
func TestPathIsTheMachinesInitPath(t *testing.T) {
	if Path != machine.InitPath {
		t.Errorf("initproc.Path = %q, machine.InitPath = %q", Path, machine.InitPath)
	}
}
