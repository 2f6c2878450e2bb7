package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-sh/berth/e2e/testhost"
	"github.com/berth-sh/berth/internal/unit"
)

// hostileWords are values every unit-file dialect must carry through
// unchanged.
var hostileWords = []string{"%s|%n", "-rf", "@x", "$$", "${HOME}", "$(id)", `a"b`, `c\d`, "", ";", `e\`, "ünïcödé ✓", "tab\there", "'", `"`, "  lead and trail  ", "#not a comment", "[Section]", `\;`}

// hostileRunes are the characters systemd's parsers treat specially, plus
// some that must simply pass.
var hostileRunes = []rune(" \t\"'\\%$;:#[]=@-+!|&*?~{}()<>`,.é✓/")

// randomWords returns n words drawn from hostileRunes and letters, with a
// fixed seed so a failure reproduces.
func randomWords(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]string, 0, n)
	for range n {
		var b strings.Builder
		for range r.IntN(12) {
			if r.IntN(3) == 0 {
				b.WriteRune(rune('a' + r.IntN(26)))
			} else {
				b.WriteRune(hostileRunes[r.IntN(len(hostileRunes))])
			}
		}
		out = append(out, b.String())
	}
	return out
}

// testUnitEscaping renders a service whose command line and environment
// are full of hostile values through internal/unit, lets the real service
// manager run it, and compares what the process got byte for byte.
func testUnitEscaping(t *testing.T, h *testhost.Host) {
	h.InstallGo("./internal/machine/testdata/printargs")

	env := []string{`A=100% $HOME ${X} "q" 'q' \ \\ trailing\`, "B=  spaced  ", "C=x=y", "D=", "E=tab\tx", "F=%n%%"}
	for i, v := range randomWords(100) {
		env = append(env, "R"+strconv.Itoa(i)+"="+v)
	}
	words := append(append([]string{}, hostileWords...), randomWords(300)...)
	f := unit.New(unit.Systemd)
	f.Section("Unit").Add("Description", `berth 100% "hostile" $unit \ test`)
	s := f.Section("Service")
	s.Add("Type", "oneshot")
	s.AddCommand("ExecStart", "", append([]string{"/usr/local/bin/printargs"}, words...)...)
	for _, kv := range env {
		s.AddEnv("Environment", kv)
	}
	s.Add("StandardOutput", "file:/run/berth-printargs.json")
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	h.WriteFile("/etc/systemd/system/berth-printargs.service", b, 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := h.Run(ctx, "systemd-analyze", "verify", "--man=no", "/etc/systemd/system/berth-printargs.service"); err != nil || r.ExitCode != 0 || r.Stdout+r.Stderr != "" {
		t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, r, b)
	}
	h.MustRun("systemctl", "daemon-reload")
	h.MustRun("systemctl", "start", "berth-printargs.service")
	var got struct {
		Args []string
		Env  []string
	}
	if err := json.Unmarshal([]byte(h.MustRun("cat", "/run/berth-printargs.json")), &got); err != nil {
		t.Fatal(err)
	}
	if want := append([]string{"/usr/local/bin/printargs"}, words...); !reflect.DeepEqual(got.Args, want) {
		t.Errorf("ExecStart= argv differs\ngot  %q\nwant %q\nunit:\n%s", got.Args, want, b)
	}
	have := map[string]bool{}
	for _, kv := range got.Env {
		have[kv] = true
	}
	for _, kv := range env {
		if !have[kv] {
			t.Errorf("Environment= lost %q; got %q", kv, got.Env)
		}
	}
	if d := h.MustRun("systemctl", "show", "--property=Description", "--value", "berth-printargs.service"); d != `berth 100% "hostile" $unit \ test`+"\n" {
		t.Errorf("Description= = %q", d)
	}
}
