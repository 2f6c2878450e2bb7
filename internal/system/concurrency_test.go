package system

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// TestConcurrentPullsFetchEachBlobOnce runs 8 `berth pull` processes of one
// image at once, half into one machine name and half into names of their
// own: all succeed, every blob is fetched from the registry once, and the
// state is consistent after.
func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds berth")
	}
	bin := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	var mu sync.Mutex
	fetched := map[string]int{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			mu.Lock()
			fetched[r.URL.Path[strings.LastIndex(r.URL.Path, ":")+1:]]++
			mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, _ := crashImage(t, host, "conc/app:1", "conc", 4, 30, 64<<10)
	d := t.TempDir()
	h := Host{Root: filepath.Join(d, "root"), MachinesDir: filepath.Join(d, "machines")}
	env := append(os.Environ(), "BERTH_ROOT="+h.Root, "BERTH_MACHINES_DIR="+h.MachinesDir, "BERTH_GUNZIP=builtin")
	var wg sync.WaitGroup
	outs := make([][]byte, 8)
	errs := make([]error, 8)
	for i := range 8 {
		name := "shared"
		if i%2 == 1 {
			name = "own" + string(rune('a'+i))
		}
		wg.Go(func() {
			c := exec.Command(bin, "pull", "-q", "--name", name, ref)
			c.Env = env
			outs[i], errs[i] = c.CombinedOutput()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pull %d: %v\n%s", i, err, outs[i])
		}
	}
	var twice []string
	for d, n := range fetched {
		if n != 1 {
			twice = append(twice, d[:12]+"×"+string(rune('0'+n)))
		}
	}
	slices.Sort(twice)
	if len(fetched) != 5 || len(twice) > 0 {
		t.Errorf("fetched %d distinct blobs (want the 4 layers and the config), some more than once: %v", len(fetched), twice)
	}
	if found, err := h.Check(t.Context(), CheckOptions{}); err != nil || len(found) != 0 {
		t.Errorf("check after concurrent pulls: %v %+v", err, found)
	}
}
