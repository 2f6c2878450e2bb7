// Package goldentest holds what berth's golden tests share: txtar archives
// extracted and compared with their "want" file (rewritten with -update), a
// readable difference between the expected and the actual text, and the
// check that systemd reads every generated unit without a word of complaint.
package goldentest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

// LineDiff shows the first lines where want and got differ.
func LineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
			if shown++; shown > 8 {
				break
			}
		}
	}
	return b.String()
}

// RequireTools reports whether missing system tools must fail tests
// instead of skipping them (CI sets BERTH_TEST_REQUIRE_TOOLS=1).
func RequireTools() bool { return os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" }

// VerifyUnits runs systemd-analyze verify on the unit files units, all of
// them in dir, together; any output fails t. Units they name (After=,
// Requires=) are looked up in dir first, then on the host.
func VerifyUnits(t testing.TB, dir string, units []string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if RequireTools() {
			t.Fatalf("systemd-analyze is required: %v", err)
		}
		t.Skip("systemd-analyze not installed")
	}
	if len(units) == 0 {
		t.Fatal("no units to verify")
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil || out.Len() > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out.String())
	}
}

// Extract writes every file of an archive except "want" under dir.
func Extract(t testing.TB, ar *txtar.Archive, dir string) {
	t.Helper()
	for _, f := range ar.Files {
		if f.Name == "want" {
			continue
		}
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Compare checks got against the archive's "want" file; with update it
// rewrites that file instead (adding it when missing) and reports true, so
// the caller can skip what follows a comparison.
func Compare(t testing.TB, archive string, ar *txtar.Archive, got string, update bool) (updated bool) {
	t.Helper()
	idx := slices.IndexFunc(ar.Files, func(f txtar.File) bool { return f.Name == "want" })
	if update {
		if idx < 0 {
			ar.Files = append(ar.Files, txtar.File{Name: "want"})
			idx = len(ar.Files) - 1
		}
		ar.Files[idx].Data = []byte(got)
		if err := os.WriteFile(archive, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		return true
	}
	want := ""
	if idx >= 0 {
		want = string(ar.Files[idx].Data)
	}
	if idx < 0 || got != want {
		t.Errorf("output differs from %s (rerun with -update to accept):\n%s", archive, LineDiff(want, got))
	}
	return false
}
