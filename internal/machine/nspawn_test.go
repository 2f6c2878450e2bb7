package machine

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// buildStatic compiles a Go package into a static binary for a machine.
func buildStatic(t *testing.T, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
}

// TestNspawnRoundTrip renders a settings file full of hostile values,
// installs it where nspawn reads trusted settings, runs the machine with the
// real systemd-nspawn, berth-init and a payload that prints what it got, and
// requires every argument, assignment, directory and bind to arrive exactly.
func TestNspawnRoundTrip(t *testing.T) {
	nspawn := requireTool(t, "systemd-nspawn")
	if os.Geteuid() != 0 {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatal("needs root")
		}
		t.Skip("needs root")
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "rootfs")
	for _, d := range []string{"bin", "etc", "usr"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// nspawn wants an OS tree: os-release marks one.
	if err := os.WriteFile(filepath.Join(root, "etc/os-release"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	buildStatic(t, "./testdata/printargs", filepath.Join(root, "bin/printargs"))
	initBin := filepath.Join(tmp, "berth-init")
	buildStatic(t, "../../cmd/berth-init", initBin)

	hostileDirs := []string{"a:b c", `back\slash `, "pct%i $HOME \"q\" 'q'"}
	var binds []Bind
	var read []string
	for i, d := range hostileDirs {
		src := filepath.Join(tmp, d)
		if err := os.MkdirAll(src, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, "f"), []byte("content "+strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		dst := "/mnt/" + d
		binds = append(binds, Bind{Source: src, Destination: dst, ReadOnly: i%2 == 0})
		read = append(read, dst+"/f")
	}
	rb, _ := json.Marshal(read)
	if err := os.WriteFile(filepath.Join(root, "printargs-read"), rb, 0o644); err != nil {
		t.Fatal(err)
	}

	jsonArgs := []string{"line1\nline2", "cr\rdel\x7f", "#!/bin/sh\necho hi\n"}
	jsonEnv := []string{"PEM=-----BEGIN-----\nabc\n-----END-----\n", "A=replaced\n"}
	for _, tc := range []struct {
		name              string
		moreArgs, moreEnv []string
		late              bool
	}{
		{"plain", nil, nil, false},
		// Characters a .nspawn file cannot carry: berth-init gets
		// the command and these variables as JSON.
		{"json", jsonArgs, jsonEnv, false},
		// The image resolved at start: berth-init reads the image
		// config (bound in from the host) and the command and
		// variables arrive as overrides of the image's.
		{"image-config", nil, nil, true},
		{"image-config-json", jsonArgs, jsonEnv, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nspawnRoundTrip(t, nspawn, root, initBin, binds, read, tc.moreArgs, tc.moreEnv, tc.late)
		})
	}
}

// nspawnRoundTrip runs printargs with hostile arguments and environment
// (plus more) through a rendered settings file and checks what arrived.
// With late, they are overrides of an image config berth-init reads when
// the machine starts.
func nspawnRoundTrip(t *testing.T, nspawn, root, initBin string, binds []Bind, read, moreArgs, moreEnv []string, late bool) {
	args := []string{"%s|", "-rf", "@x", "$$", "${HOME}", "$(id)", `a"b`, `c\d`, "", ";", `e\`, "ünïcödé ✓", "tab\there", "'", `"`, "  lead and trail  ", "#not a comment", "[Section]"}
	args = append(append(args, randomWords(300)...), moreArgs...)
	env, err := MergeEnv(append([]string{"PATH=/bin", `A=100% $HOME ${X} "q" 'q' \ \\ trailing\`, "B=  spaced  ", "C=x=y", "D=", "E=tab\tx"}, randomEnv(100)...), moreEnv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ImageConfig{
		Entrypoint: []string{"/bin/printargs"},
		Cmd:        args,
		Env:        env,
		WorkingDir: "/srv/my dir/%i $x \"q\"",
		User:       "1000:1000",
	}
	name := "berth-rt-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(len(moreArgs))
	if late {
		name += "-late"
	}
	spec, err := SpecFromImage(name, root, cfg, Overrides{})
	if err != nil {
		t.Fatal(err)
	}
	if late {
		// The image has other values; the overrides must win, and
		// the image's environment must arrive under them.
		img := ImageConfig{Entrypoint: cfg.Entrypoint, Cmd: []string{"image-cmd"}, Env: append([]string{"IMAGE=only", "PATH=/image"}, env[:10]...), WorkingDir: cfg.WorkingDir, User: "0"}
		cfgPath := filepath.Join(t.TempDir(), "image %i \"q\".json")
		b, err := json.Marshal(struct{ Config ImageConfig }{img})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
			t.Fatal(err)
		}
		spec = Spec{Name: name, Directory: root}
		spec.ResolveAtStart(cfgPath, Overrides{Cmd: args, Env: env, User: cfg.User})
		cfg.Env = append([]string{"IMAGE=only"}, env...)
	}
	spec.InitBinary = initBin
	spec.Binds = binds
	spec.Network = Network{Mode: NetworkNone}
	f, err := RenderNspawn(&spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	settings := filepath.Join(RuntimeNspawnDir, name+".nspawn")
	if err := os.MkdirAll(RuntimeNspawnDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(settings) })

	argv := append(ServiceCommand(&spec)[1:], "--register=no")
	cmd := exec.Command(nspawn, argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("systemd-nspawn %q: %v\nsettings:\n%s\nstderr:\n%s", argv, err, b, stderr.Bytes())
	}
	var got struct {
		Args  []string
		Env   []string
		UID   int
		GID   int
		Cwd   string
		Files map[string]string
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("payload output %q: %v\nstderr: %s", stdout.Bytes(), err, stderr.Bytes())
	}
	if want := append([]string{"/bin/printargs"}, args...); !reflect.DeepEqual(got.Args, want) {
		t.Errorf("argv differs\ngot  %q\nwant %q", got.Args, want)
	}
	envSet := map[string]bool{}
	for _, kv := range got.Env {
		envSet[kv] = true
	}
	for _, kv := range cfg.Env {
		if !envSet[kv] {
			t.Errorf("environment lacks %q; got %q", kv, got.Env)
		}
	}
	if got.UID != 1000 || got.GID != 1000 {
		t.Errorf("uid:gid %d:%d, want 1000:1000", got.UID, got.GID)
	}
	if got.Cwd != cfg.WorkingDir {
		t.Errorf("cwd %q, want %q", got.Cwd, cfg.WorkingDir)
	}
	for i, p := range read {
		if want := "content " + strconv.Itoa(i); got.Files[p] != want {
			t.Errorf("bind %s: read %q, want %q", p, got.Files[p], want)
		}
	}
}

// hostileRunes are the characters the parsers treat specially, plus some
// that must simply pass.
var hostileRunes = []rune(" \t\"'\\%$;:#[]=@-+!|&*?~{}()<>`,.é✓/")

// randomWords returns n words drawn from hostileRunes and letters, with a
// fixed seed so a failure reproduces.
func randomWords(n int) []string {
	r := rand.New(rand.NewPCG(1, 2))
	var out []string
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

// randomEnv returns n assignments with random hostile values.
func randomEnv(n int) []string {
	var out []string
	for i, v := range randomWords(n) {
		out = append(out, "R"+strconv.Itoa(i)+"="+v)
	}
	return out
}
