package machine

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected files in testdata/*.txtar")

// goldenInput is input.json of a testdata archive: an image config, the
// docker-run-style overrides, and host-side Spec fields laid over the
// result of SpecFromImage.
type goldenInput struct {
	Name      string          `json:"name"`
	Directory string          `json:"directory"`
	Image     ImageConfig     `json:"image"`
	Overrides Overrides       `json:"overrides"`
	Spec      json.RawMessage `json:"spec"`
}

// renderGolden turns input.json into the files a test archive expects:
// NAME.nspawn and NAME.service, or "error" holding the error text.
func renderGolden(t *testing.T, input []byte) (map[string][]byte, *Spec) {
	t.Helper()
	var in goldenInput
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("parse input.json: %v", err)
	}
	out := map[string][]byte{}
	spec, err := SpecFromImage(in.Name, in.Directory, in.Image, in.Overrides)
	if err != nil {
		out["error"] = []byte(err.Error() + "\n")
		return out, nil
	}
	if len(in.Spec) > 0 {
		d := json.NewDecoder(bytes.NewReader(in.Spec))
		d.DisallowUnknownFields()
		if err := d.Decode(&spec); err != nil {
			t.Fatalf("parse input.json spec: %v", err)
		}
	}
	nf, err := RenderNspawn(&spec)
	if err == nil {
		var sf interface{ Marshal() ([]byte, error) }
		sf, err = RenderService(&spec)
		if err == nil {
			var nb, sb []byte
			if nb, err = nf.Marshal(); err == nil {
				if sb, err = sf.Marshal(); err == nil {
					out[spec.Name+".nspawn"] = nb
					out[ServiceName(spec.Name)] = sb
				}
			}
		}
	}
	if err != nil {
		return map[string][]byte{"error": []byte(err.Error() + "\n")}, nil
	}
	return out, &spec
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var input []byte
			want := map[string][]byte{}
			for _, f := range ar.Files {
				if f.Name == "input.json" {
					input = f.Data
				} else {
					want[f.Name] = f.Data
				}
			}
			if input == nil {
				t.Fatal("no input.json")
			}
			got, spec := renderGolden(t, input)
			if *update {
				ar.Files = []txtar.File{{Name: "input.json", Data: input}}
				for _, name := range sortedKeys(got) {
					ar.Files = append(ar.Files, txtar.File{Name: name, Data: got[name]})
				}
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for name, w := range want {
				if g, ok := got[name]; !ok {
					t.Errorf("%s: not produced", name)
				} else if !bytes.Equal(g, w) {
					t.Errorf("%s differs\n--- got\n%s\n--- want\n%s", name, g, w)
				}
			}
			for name := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("%s: produced but not expected:\n%s", name, got[name])
				}
			}
			if spec != nil {
				verifyService(t, spec, got[ServiceName(spec.Name)])
			}
		})
	}
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// requireTool finds a system tool: tests skip without it, unless
// BERTH_TEST_REQUIRE_TOOLS=1 (CI), where a missing tool fails them.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is required (BERTH_TEST_REQUIRE_TOOLS=1): %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// verifyService runs `systemd-analyze verify` on a rendered unit and
// requires silence: unknown keys and bad values only produce warnings.
func verifyService(t *testing.T, spec *Spec, service []byte) {
	t.Helper()
	sa := requireTool(t, "systemd-analyze")
	if _, err := os.Stat(spec.Nspawn); spec.Nspawn != "" && err != nil {
		t.Fatalf("the unit's nspawn %s must exist for verify: %v", spec.Nspawn, err)
	}
	dir := t.TempDir()
	// verify loads dependencies too; give it stand-ins next to the unit.
	deps := append(append(append([]string{}, spec.Unit.After...), spec.Unit.Wants...), spec.Unit.Requires...)
	deps = append(append(deps, spec.Unit.BindsTo...), spec.Unit.PartOf...)
	for _, d := range deps {
		stub := "[Service]\nExecStart=/bin/true\n"
		if err := os.WriteFile(filepath.Join(dir, d), []byte(stub), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, ServiceName(spec.Name))
	if err := os.WriteFile(p, service, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", p)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", ServiceName(spec.Name), err, stderr.Bytes())
	}
}
