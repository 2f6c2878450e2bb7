package cli

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/berth-sh/berth/internal/goldentest"
)

var updateGolden = flag.Bool("update", false, "rewrite the expected output of golden tests")

// TestCreateGolden runs `berth create --dry-run` for each
// testdata/create/*.txtar archive: image.json is the pulled image's config,
// the comment's "args:" line the arguments after --dry-run (a JSON array),
// and want the output (stdout, or "ERROR: " and stderr, with the temporary
// directories as $ETC, $MACHINES, $INIT and $ROOT). Every unit printed must pass
// systemd-analyze verify with empty output.
func TestCreateGolden(t *testing.T) {
	archives, _ := filepath.Glob("testdata/create/*.txtar")
	if len(archives) == 0 {
		t.Fatal("no golden archives")
	}
	for _, a := range archives {
		t.Run(strings.TrimSuffix(filepath.Base(a), ".txtar"), func(t *testing.T) {
			runCreateGolden(t, a)
		})
	}
}

func runCreateGolden(t *testing.T, archive string) {
	ar, err := txtar.ParseFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	var conf v1.Config
	var args []string
	for _, f := range ar.Files {
		if f.Name == "image.json" {
			if err := json.Unmarshal(f.Data, &conf); err != nil {
				t.Fatalf("image.json: %v", err)
			}
		}
	}
	for _, line := range strings.Split(string(ar.Comment), "\n") {
		if v, ok := strings.CutPrefix(line, "args:"); ok {
			if err := json.Unmarshal([]byte(v), &args); err != nil {
				t.Fatalf("args: %v", err)
			}
		}
	}
	dirs := pulledImage(t, conf)
	fs := fakeHost(t, dirs, true)
	out, errOut, code := fs.berth(t, append([]string{"create", "--dry-run"}, args...)...)
	got := out
	if code != 0 {
		got = "ERROR: " + errOut
	}
	got = strings.NewReplacer(fs.etc, "$ETC", dirs["BERTH_MACHINES_DIR"], "$MACHINES", dirs["BERTH_INIT"], "$INIT", dirs["BERTH_ROOT"], "$ROOT").Replace(got)
	if goldentest.Compare(t, archive, ar, got, *updateGolden) {
		return
	}
	if code == 0 {
		verifyDryRunUnits(t, out)
	}
}

// verifyDryRunUnits runs systemd-analyze verify on the .service files of a
// dry-run listing ("# PATH" headers, then the content).
func verifyDryRunUnits(t *testing.T, listing string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("systemd-analyze is required: %v", err)
		}
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	var units []string
	files := map[string]*strings.Builder{}
	var cur *strings.Builder
	for _, line := range strings.SplitAfter(listing, "\n") {
		if name, ok := strings.CutPrefix(line, "# /"); ok {
			cur = nil
			if name = strings.TrimSpace(name); strings.HasSuffix(name, ".service") {
				cur = &strings.Builder{}
				files[filepath.Base(name)] = cur
			}
			continue
		}
		if cur != nil {
			cur.WriteString(line)
		}
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	if len(units) == 0 {
		t.Fatal("no service unit in the listing")
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
