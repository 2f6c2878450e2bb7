package cli

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

func TestSystemCheckPruneDf(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := pushTestImage(t, strings.TrimPrefix(srv.URL, "http://"), "apps/web:1", "app", "v1")
	d := t.TempDir()
	dirs := map[string]string{"BERTH_ROOT": filepath.Join(d, "root"), "BERTH_MACHINES_DIR": filepath.Join(d, "machines")}
	if _, errOut, code := runBerth(t, dirs, "pull", "-q", ref); code != 0 {
		t.Fatalf("pull: %s", errOut)
	}
	if out, errOut, code := runBerth(t, dirs, "system", "check"); code != 0 || !strings.Contains(out, "consistent") {
		t.Fatalf("check of a fresh store: code %d\n%s%s", code, out, errOut)
	}
	stale := filepath.Join(d, "machines", ".berth-tmp-web-1")
	os.MkdirAll(stale, 0o755)
	out, _, code := runBerth(t, dirs, "system", "check")
	if code != 1 || !strings.Contains(out, "staging") || !strings.Contains(out, "--repair") {
		t.Errorf("check with a stale staging directory: code %d\n%s", code, out)
	}
	out, _, code = runBerth(t, dirs, "system", "check", "--repair", "--format", "json")
	var rep struct {
		Found, Left []struct{ Kind, Path string }
		Repaired    bool
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || len(rep.Found) != 1 || rep.Found[0].Kind != "staging" || len(rep.Left) != 0 || !rep.Repaired {
		t.Errorf("check --repair --format json: code %d, %v\n%s", code, err, out)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("repair left %s", stale)
	}
	out, _, code = runBerth(t, dirs, "system", "df", "--format", "json")
	var use []struct {
		Type  string
		Total int
		Size  int64
	}
	if err := json.Unmarshal([]byte(out), &use); err != nil || code != 0 || len(use) != 3 || use[0].Type != "Images" || use[0].Total != 1 || use[1].Total != 1 {
		t.Errorf("df --format json: code %d, %v\n%s", code, err, out)
	}
	if out, _, code = runBerth(t, dirs, "system", "df"); code != 0 || !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Machines") {
		t.Errorf("df: code %d\n%s", code, out)
	}
	// prune asks first; no answer removes nothing.
	if _, errOut, code := runBerth(t, dirs, "system", "prune"); code == 0 || !strings.Contains(errOut, "nothing removed") {
		t.Errorf("prune without -f and no answer: code %d\n%s", code, errOut)
	}
	if _, errOut, code := runBerth(t, dirs, "rmi", "web"); code != 0 {
		t.Fatalf("rmi: %s", errOut)
	}
	if out, errOut, code := runBerth(t, dirs, "system", "prune", "-f"); code != 0 || !strings.Contains(out, "removed 0 unused blob(s)") {
		// rmi collected the blobs already.
		t.Errorf("prune -f: code %d\n%s%s", code, out, errOut)
	}
}
