package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/paths"
)

// TestBadDeclarationSkipsOnlyItself: one bad file is reported with
// file:line:key and skipped; the good one still gets its unit, and the
// generator exits 0 (1 only with --dry-run).
func TestBadDeclarationSkipsOnlyItself(t *testing.T) {
	decls, out := t.TempDir(), t.TempDir()
	files := map[string]string{
		"good.container": "[Container]\nImage=example.org/app:1\nNetwork=none\n\n[Install]\nWantedBy=multi-user.target\n",
		"bad.container":  "[Container]\nImage=example.org/app:1\nPodmanArgs=--foo\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(decls, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	getenv := func(k string) string {
		if k == "BERTH_UNIT_DIRS" {
			return decls
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{out, out, out}, paths.ForGenerator(""), getenv, &stdout, &stderr, stderrLog); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := filepath.Join(decls, "bad.container") + ":3: error: [Container] PodmanArgs: "
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not name %q:\n%s", want, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "good.service")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(out, "bad.service")); err == nil {
		t.Error("bad.service was written")
	}
	if target, err := os.Readlink(filepath.Join(out, "multi-user.target.wants", "good.service")); err != nil || target != "../good.service" {
		t.Errorf("install link: %q %v", target, err)
	}
	stdout.Reset()
	if code := run([]string{"--dry-run"}, paths.ForGenerator(""), getenv, &stdout, &stderr, stderrLog); code != 1 {
		t.Errorf("--dry-run with a bad declaration: exit %d, want 1", code)
	}
	if !strings.Contains(stdout.String(), "# good.service (from ") {
		t.Errorf("--dry-run did not list good.service:\n%s", stdout.String())
	}
}

// TestJournalEntry: the native-protocol datagram carries the message
// byte for byte, newlines included, with priority and identifier.
func TestJournalEntry(t *testing.T) {
	b := journalEntry(3, "a.container:3: error: x\ny")
	want := "MESSAGE\n\x19\x00\x00\x00\x00\x00\x00\x00a.container:3: error: x\ny\nPRIORITY\n\x01\x00\x00\x00\x00\x00\x00\x003\nSYSLOG_IDENTIFIER\n\x0f\x00\x00\x00\x00\x00\x00\x00berth-generator\n"
	if got := string(b); !strings.HasPrefix(got, want) {
		t.Errorf("journalEntry = %q, want prefix %q", got, want)
	}
}

// TestUnitsRunTheGeneratorsInstallation: the units of a generator
// installed under /usr (the .deb) run /usr/bin/berth and bind in
// /usr/lib/berth/berth-init.
func TestUnitsRunTheGeneratorsInstallation(t *testing.T) {
	decls := t.TempDir()
	decl := "[Container]\nImage=example.org/app:1\nNetwork=none\n"
	if err := os.WriteFile(filepath.Join(decls, "app.container"), []byte(decl), 0o644); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "BERTH_UNIT_DIRS" {
			return decls
		}
		return ""
	}
	for exe, want := range map[string][2]string{
		"/usr/lib/systemd/system-generators/berth-generator": {"/usr/bin/berth", "/usr/lib/berth/berth-init"},
		"/usr/local/bin/berth-generator":                     {"/usr/local/bin/berth", "/usr/local/lib/berth/berth-init"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"--dry-run"}, paths.ForGenerator(exe), getenv, &stdout, &stderr, stderrLog); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		units := stdout.String()
		if !strings.Contains(units, `"--bind-ro=`+want[1]+`:/.berth/init"`) {
			t.Errorf("%s: units do not bind %s:\n%s", exe, want[1], units)
		}
		if !strings.Contains(units, `ExecStartPre="`+want[0]+`" "pull"`) {
			t.Errorf("%s: units do not run %s:\n%s", exe, want[0], units)
		}
		for _, other := range []string{`"/usr/bin/berth"`, `"/usr/local/bin/berth"`} {
			if other != `"`+want[0]+`"` && strings.Contains(units, other) {
				t.Errorf("%s: units run %s", exe, other)
			}
		}
	}
}
