package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/paths"
)

// TestMain lets the test binary be berth's main, so the dispatch on argv[0]
// is tested as a machine starts it: a separate process whose argv[0] is
// set by its parent (nspawn, or the init re-executing itself).
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func asMain(argv0 string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Args = append([]string{argv0}, args...)
	cmd.Env = append(os.Environ(), "BERTH_TEST_AS_MAIN=1")
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestMultiCall: started as /.berth/init or berth-init, berth is the init
// (it runs the command and passes its exit status through, and re-executes
// itself as the init after resolving an image config); started under any
// other name it is the CLI.
func TestMultiCall(t *testing.T) {
	for _, argv0 := range []string{"/.berth/init", "/usr/lib/berth/berth-init"} {
		var out bytes.Buffer
		cmd := asMain(argv0, "--env", "GREETING=hi", "--", "/bin/sh", "-c", `echo "$GREETING from $0"; exit 7`)
		cmd.Stdout, cmd.Stderr = &out, &out
		if code := exitCode(cmd.Run()); code != 7 {
			t.Errorf("as %s: exit %d, want the command's 7 (output %q)", argv0, code, out.String())
		}
		if got := out.String(); got != "hi from /bin/sh\n" {
			t.Errorf("as %s: output %q", argv0, got)
		}
	}

	// With an image config the init re-executes itself (/proc/self/exe,
	// keeping argv[0]); it must come back as the init, not the CLI.
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"config":{"Entrypoint":["/bin/sh","-c"],"Cmd":["echo $MSG; exit 3"],"Env":["MSG=from the image"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := asMain("/.berth/init", "--image-config", cfg).CombinedOutput()
	if code := exitCode(err); code != 3 || string(out) != "from the image\n" {
		t.Errorf("with an image config: exit %d, output %q; want 3, %q", code, out, "from the image\n")
	}

	// A usage error is the init's, not cobra's.
	out, err = asMain("/.berth/init", "--bogus").CombinedOutput()
	if code := exitCode(err); code != 125 || !strings.HasPrefix(string(out), "berth-init: ") {
		t.Errorf("init usage error: exit %d, output %q", code, out)
	}

	for _, argv0 := range []string{"berth", "/usr/local/bin/berth", "init"} {
		out, err := asMain(argv0, "version").CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), "berth ") {
			t.Errorf("as %s: `version` gave %v, %q; want the CLI", argv0, err, out)
		}
	}
}

func TestLocate(t *testing.T) {
	none := func(string) string { return "" }
	if b, i := locate(none, ""); b != paths.DefaultBerth || i != paths.DefaultInit {
		t.Errorf("no executable: %q %q", b, i)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "bin", "berth")
	init := filepath.Join(dir, "lib", "berth", "berth-init")
	for _, p := range []string{exe, init} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if b, i := locate(none, exe); b != exe || i != init {
		t.Errorf("installed under %s: %q %q, want %q %q", dir, b, i, exe, init)
	}
	env := func(k string) string {
		if k == "BERTH_INIT" {
			return exe
		}
		return ""
	}
	if _, i := locate(env, exe); i != exe {
		t.Errorf("$BERTH_INIT: init %q, want %q", i, exe)
	}
}
