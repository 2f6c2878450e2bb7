package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEtcFiles runs the helper generated units start with: it writes the
// machine's hosts file (world-readable, for the machine's users).
func TestEtcFiles(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "etc", "web", "hosts")
	var out, errb bytes.Buffer
	code := Main(context.Background(), Env{
		Args:   []string{"_etc-files", "--hosts", hosts, "--hostname", "web", "--add-host", "db;pg:10.0.0.2", "--add-host", "v6=fd00::3"},
		Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(hosts)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"127.0.1.1\tweb\n", "10.0.0.2\tdb pg\n", "fd00::3\tv6\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("hosts file lacks %q:\n%s", want, b)
		}
	}
	if fi, err := os.Stat(hosts); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v %v, want 0644", fi.Mode(), err)
	}
	code = Main(context.Background(), Env{
		Args:   []string{"_etc-files", "--hosts", hosts, "--add-host", "db:host-gateway"},
		Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" },
	})
	if code == 0 {
		t.Error("host-gateway accepted")
	}
}
