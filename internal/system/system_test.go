package system

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
)

type fixture struct {
	h    Host
	st   *store.Store
	refs map[string]string
}

// newFixture pulls two machines, web and db, into a fresh store.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	d := t.TempDir()
	f := &fixture{refs: map[string]string{}}
	f.h = Host{Root: filepath.Join(d, "root"), MachinesDir: filepath.Join(d, "machines"), Machines: machines.Host{
		Runner: &command.RecordingRunner{}, UnitDir: filepath.Join(d, "units"), NspawnDir: filepath.Join(d, "nspawn"),
		StateDir: filepath.Join(d, "root", "units"), MachinesDir: filepath.Join(d, "machines"),
	}}
	for _, n := range []string{"web", "db"} {
		ref, _ := crashImage(t, host, "apps/"+n+":1", n, 1, 3, 1024)
		if _, err := pull.Pull(context.Background(), pull.Options{Ref: ref, Name: n, Root: f.h.Root, MachinesDir: f.h.MachinesDir, Gunzip: "builtin", Running: func(string) bool { return false }}); err != nil {
			t.Fatal(err)
		}
		f.refs[n] = ref
	}
	var err error
	if f.st, err = store.Open(f.h.Root); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) check(t *testing.T) []Finding {
	t.Helper()
	got, err := f.h.Check(context.Background(), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func kinds(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Kind)
	}
	return out
}

func TestCheckCleanStore(t *testing.T) {
	f := newFixture(t)
	if got := f.check(t); len(got) != 0 {
		t.Fatalf("check of a fresh store = %+v, want nothing", got)
	}
}

// TestCheckRepair damages the state the ways a crash or a disk can, one
// of each, and checks that check names each and --repair fixes what it
// can, leaving what needs the user with the command that fixes it.
func TestCheckRepair(t *testing.T) {
	f := newFixture(t)
	web, err := f.st.Record("web")
	if err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(f.h.Root, "blobs", "sha256")
	// A corrupt layer of web.
	layer := f.st.BlobPath(web.Layers[0].Digest)
	if err := os.WriteFile(layer, []byte("bit rot"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A killed download.
	if err := os.WriteFile(filepath.Join(blobs, ".tmp-12345"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	// db's tree is gone (record left).
	if err := os.RemoveAll(filepath.Join(f.h.MachinesDir, "db")); err != nil {
		t.Fatal(err)
	}
	// web's image config next to its tree is gone.
	if err := os.Remove(store.ConfigPath(f.h.MachinesDir, "web")); err != nil {
		t.Fatal(err)
	}
	// A killed pull's staging directory, and one a running pull holds.
	stale := filepath.Join(f.h.MachinesDir, store.StagingPrefix+"web-999")
	if err := os.MkdirAll(filepath.Join(stale, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	live, err := store.NewStaging(f.h.MachinesDir, "cache")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Discard()
	// A tree berth installed whose record was never written, and a tree
	// of someone else's (no .oci-config): only the first is berth's.
	orphan := filepath.Join(f.h.MachinesDir, "orphan")
	os.MkdirAll(filepath.Join(orphan, "usr"), 0o755)
	os.WriteFile(store.ConfigPath(f.h.MachinesDir, "orphan"), []byte("{}"), 0o644)
	foreign := filepath.Join(f.h.MachinesDir, "handmade")
	os.MkdirAll(filepath.Join(foreign, "usr"), 0o755)
	// An import's temporary file from yesterday, one being written now,
	// and a partial download kept for resuming.
	spool := filepath.Join(f.h.Root, "spool")
	os.MkdirAll(spool, 0o700)
	oldTemp, newTemp, partial := filepath.Join(spool, ".layer-1"), filepath.Join(spool, ".layer-2"), filepath.Join(spool, "0123abcd.part")
	for _, p := range []string{oldTemp, newTemp, partial} {
		os.WriteFile(p, []byte("x"), 0o600)
	}
	yesterday := time.Now().Add(-24 * time.Hour)
	os.Chtimes(oldTemp, yesterday, yesterday)
	os.Chtimes(partial, yesterday, yesterday)

	got := f.check(t)
	want := []string{KindBlobCorrupt, KindBlobMissing, KindBlobTemp, KindConfigMissing, KindSpoolStale, KindStaging, KindTreeMissing, KindTreeUnrecorded}
	if !slices.Equal(kinds(got), want) {
		t.Fatalf("check kinds = %v, want %v\n%+v", kinds(got), want, got)
	}
	for _, fd := range got {
		switch fd.Kind {
		case KindBlobMissing:
			if fd.Fix != "berth pull --name web "+f.refs["web"] || fd.Repair != "" {
				t.Errorf("blob-missing: fix %q, repair %q", fd.Fix, fd.Repair)
			}
		case KindStaging:
			if fd.Path != stale {
				t.Errorf("staging reported %s; a held staging directory must not be", fd.Path)
			}
		case KindTreeUnrecorded:
			if fd.Path != orphan {
				t.Errorf("unrecorded tree %s, want only %s", fd.Path, orphan)
			}
		}
	}

	left, err := f.h.Repair(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(kinds(left), []string{KindBlobMissing}) {
		t.Errorf("left after repair = %v, want only blob-missing", kinds(left))
	}
	after := f.check(t)
	if !slices.Equal(kinds(after), []string{KindBlobMissing}) {
		t.Errorf("check after repair = %+v, want only web's missing layer", after)
	}
	for _, p := range []string{stale, orphan, store.ConfigPath(f.h.MachinesDir, "orphan"), filepath.Join(blobs, ".tmp-12345"), layer, oldTemp} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s still there after repair", p)
		}
	}
	for _, p := range []string{live.Dir, foreign, store.ConfigPath(f.h.MachinesDir, "web"), newTemp, partial} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("repair removed %s: %v", p, err)
		}
	}
	if _, err := f.st.Record("db"); err == nil {
		t.Errorf("db's record survived the repair of its missing tree")
	}

	// The fix it names works: the pull restores the layer, and the state
	// is consistent again.
	if _, err := pull.Pull(context.Background(), pull.Options{Ref: f.refs["web"], Name: "web", Root: f.h.Root, MachinesDir: f.h.MachinesDir, Gunzip: "builtin", Running: func(string) bool { return false }}); err != nil {
		t.Fatal(err)
	}
	if got := f.check(t); len(got) != 0 {
		t.Errorf("check after the pull it asked for = %+v", got)
	}
}

func TestCheckIndexAndBrokenRecord(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.h.Root, "index.json"), []byte(`{"schemaVersion":2,"manifests":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.h.Root, "machines", "db.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := f.check(t)
	// db's record is unreadable, so its tree is berth's without a record.
	if want := []string{KindIndexStale, KindRecordBroken, KindTreeUnrecorded}; !slices.Equal(kinds(got), want) {
		t.Fatalf("check = %v, want %v\n%+v", kinds(got), want, got)
	}
	if _, err := f.h.Repair(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	if got := f.check(t); len(got) != 0 {
		t.Errorf("check after repair = %+v", got)
	}
	recs, _ := f.st.Records()
	if len(recs) != 1 || recs[0].Name != "web" {
		t.Errorf("records after repair: %v", recs)
	}
}

func TestPruneAndDiskUsage(t *testing.T) {
	f := newFixture(t)
	// An unused blob (a removed machine's layer) and a temporary one.
	junk := []byte("layer of a removed machine")
	sum := sha256.Sum256(junk)
	blobs := filepath.Join(f.h.Root, "blobs", "sha256")
	os.WriteFile(filepath.Join(blobs, hex.EncodeToString(sum[:])), junk, 0o644)
	os.WriteFile(filepath.Join(blobs, ".tmp-1"), []byte("half"), 0o644)
	// Unit files of a created machine whose record is gone, one of a
	// machine that still has one, and one berth did not write.
	units := f.h.Machines.UnitDir
	os.MkdirAll(units, 0o755)
	os.MkdirAll(f.h.Machines.NspawnDir, 0o755)
	header := "# " + machine.Header + "\n[Service]\n"
	os.WriteFile(filepath.Join(units, "berth-gone.service"), []byte(header), 0o644)
	os.WriteFile(filepath.Join(f.h.Machines.NspawnDir, "gone.nspawn"), []byte(header), 0o644)
	os.WriteFile(filepath.Join(units, "mine.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	kept := filepath.Join(units, "berth-kept.service")
	os.WriteFile(kept, []byte(header), 0o644)
	os.MkdirAll(f.h.Machines.StateDir, 0o755)
	os.WriteFile(filepath.Join(f.h.Machines.StateDir, "kept.json"), []byte(`{"spec":{"Name":"kept"},"image":"web","files":["`+kept+`"]}`), 0o644)
	stale := filepath.Join(f.h.MachinesDir, store.StagingPrefix+"db-1")
	os.MkdirAll(stale, 0o755)

	use, err := f.h.DiskUsage(context.Background(), func(n string) bool { return n == "web" })
	if err != nil {
		t.Fatal(err)
	}
	if len(use) != 3 || use[0].Type != "Images" || use[0].Total != 2 || use[0].Active != 1 || use[0].Reclaimable < int64(len(junk)) ||
		use[1].Type != "Machines" || use[1].Total != 2 || use[1].Active != 1 || use[1].Size <= 0 {
		t.Errorf("disk usage = %+v", use)
	}

	res, err := f.h.Prune(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 1 || res.TempBlobs != 1 || !slices.Equal(res.Staging, []string{stale}) || !res.ReloadUnit {
		t.Errorf("prune = %+v", res)
	}
	wantGone := []string{filepath.Join(f.h.Machines.NspawnDir, "gone.nspawn"), filepath.Join(units, "berth-gone.service")}
	slices.Sort(wantGone)
	if !slices.Equal(res.UnitFiles, wantGone) {
		t.Errorf("pruned unit files %v, want %v", res.UnitFiles, wantGone)
	}
	for _, p := range []string{kept, filepath.Join(units, "mine.service")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("prune removed %s", p)
		}
	}
	if got := f.check(t); len(got) != 0 {
		t.Errorf("check after prune = %+v", got)
	}
	after, _ := f.h.DiskUsage(context.Background(), func(string) bool { return false })
	if after[0].Reclaimable != 0 {
		t.Errorf("reclaimable after prune = %d", after[0].Reclaimable)
	}
}
