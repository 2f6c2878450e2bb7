package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func digestOf(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenMakesOCILayout(t *testing.T) {
	s := openStore(t)
	b, err := os.ReadFile(filepath.Join(s.Root(), "oci-layout"))
	if err != nil || !strings.Contains(string(b), `"imageLayoutVersion":"1.0.0"`) {
		t.Errorf("oci-layout = %q, %v", b, err)
	}
	b, err = os.ReadFile(filepath.Join(s.Root(), "index.json"))
	if err != nil || !strings.Contains(string(b), `"manifests": []`) {
		t.Errorf("index.json = %q, %v", b, err)
	}
}

func TestBlobWriterVerifies(t *testing.T) {
	s := openStore(t)
	data := []byte("hello blob")
	d := digestOf(data)

	// Wrong content under a digest: rejected, nothing left behind.
	w, err := s.NewBlobWriter(d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello blub"))
	if err := w.Commit(); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Commit of wrong content: %v, want ErrDigestMismatch", err)
	}
	// More bytes than declared: refused at Write.
	w, _ = s.NewBlobWriter(d, 3)
	if _, err := w.Write(data); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Write past declared size: %v", err)
	}
	w.Abort()
	// Short: refused at Commit.
	w, _ = s.NewBlobWriter(d, int64(len(data))+1)
	w.Write(data)
	if err := w.Commit(); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("Commit short blob: %v", err)
	}
	if _, ok := s.Has(d); ok {
		t.Error("a rejected blob is in the store")
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), blobsDir))
	if len(ents) != 0 {
		t.Errorf("blobs dir not empty after failures: %v", ents)
	}

	if err := s.PutBlob(d, data); err != nil {
		t.Fatal(err)
	}
	if size, ok := s.Has(d); !ok || size != int64(len(data)) {
		t.Errorf("Has = %d, %v", size, ok)
	}
	got, err := s.ReadBlob(d)
	if err != nil || string(got) != string(data) {
		t.Errorf("ReadBlob = %q, %v", got, err)
	}
	// A blob corrupted on disk is caught when read back.
	os.WriteFile(s.BlobPath(d), []byte("corrupted!"), 0o644)
	if _, err := s.ReadBlob(d); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("ReadBlob of corrupted blob: %v", err)
	}
}

func TestDigestsCannotEscape(t *testing.T) {
	s := openStore(t)
	for _, d := range []v1.Hash{
		{Algorithm: "sha256", Hex: "../../../../etc/passwd"},
		{Algorithm: "sha256", Hex: strings.Repeat("A", 64)},
		{Algorithm: "sha512", Hex: strings.Repeat("a", 128)},
		{Algorithm: "sha256", Hex: strings.Repeat("a", 63) + "/"},
	} {
		if _, err := s.NewBlobWriter(d, 1); err == nil {
			t.Errorf("NewBlobWriter(%q) accepted", d)
		}
		if _, err := s.OpenBlob(d); err == nil {
			t.Errorf("OpenBlob(%q) accepted", d)
		}
		if _, ok := s.Has(d); ok {
			t.Errorf("Has(%q) = true", d)
		}
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"busybox": true, "web-1": true, "A1": true, strings.Repeat("a", 63): true,
		"": false, strings.Repeat("a", 64): false, "-web": false, "web-": false, "we_b": false,
		"web.example": false, "../x": false, ".hidden": false, "a b": false, "ü": false,
	} {
		if err := ValidateName(name); (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func record(name string, blobs ...[]byte) *Record {
	r := &Record{Name: name, Reference: "example.com/" + name + ":1", ManifestMediaType: types.OCIManifestSchema1}
	r.Manifest, r.Digest = digestOf(blobs[0]), digestOf(blobs[0])
	r.Config = digestOf(blobs[1])
	for _, l := range blobs[2:] {
		r.Layers = append(r.Layers, LayerRecord{Digest: digestOf(l), DiffID: digestOf(l), Size: int64(len(l))})
	}
	return r
}

func TestRecordsIndexAndGC(t *testing.T) {
	s := openStore(t)
	shared := []byte("shared layer")
	a := [][]byte{[]byte("manifest a"), []byte("config a"), shared, []byte("layer a")}
	b := [][]byte{[]byte("manifest b"), []byte("config b"), shared}
	for _, set := range [][][]byte{a, b, {[]byte("garbage")}} {
		for _, blob := range set {
			if err := s.PutBlob(digestOf(blob), blob); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.SaveRecord(record("a", a...)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRecord(record("b", b...)); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Records()
	if err != nil || len(recs) != 2 || recs[0].Name != "a" || recs[1].Name != "b" {
		t.Fatalf("Records = %v, %v", recs, err)
	}
	idx, _ := os.ReadFile(filepath.Join(s.Root(), "index.json"))
	if !strings.Contains(string(idx), `"org.opencontainers.image.ref.name": "b"`) {
		t.Errorf("index.json lacks machine b:\n%s", idx)
	}

	n, _, err := s.CollectGarbage(context.Background())
	if err != nil || n != 1 {
		t.Errorf("GC removed %d, %v; want just the garbage blob", n, err)
	}
	if err := s.RemoveRecord("a"); err != nil {
		t.Fatal(err)
	}
	n, _, _ = s.CollectGarbage(context.Background())
	if n != 3 {
		t.Errorf("GC after removing a: removed %d, want 3 (manifest, config, own layer)", n)
	}
	if _, ok := s.Has(digestOf(shared)); !ok {
		t.Error("GC removed a layer machine b still uses")
	}
	if _, err := s.Record("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record(a) after removal: %v", err)
	}
}

func TestStagingCommitAndSwap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "machines")
	build := func(content string) {
		t.Helper()
		stg, err := NewStaging(dir, "web")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(filepath.Base(stg.Dir), StagingPrefix) {
			t.Errorf("staging dir %s is not hidden", stg.Dir)
		}
		if err := os.WriteFile(filepath.Join(stg.Dir, "version"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := stg.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	build("1")
	build("2")
	b, err := os.ReadFile(filepath.Join(dir, "web", "version"))
	if err != nil || string(b) != "2" {
		t.Errorf("after swap version = %q, %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("machines dir after swap: %v, want only web", ents)
	}
	if err := RemoveRootfs(dir, "web"); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("machines dir after RemoveRootfs: %v", ents)
	}
}

func TestCleanStagingSparesLiveBuilds(t *testing.T) {
	dir := t.TempDir()
	live, err := NewStaging(dir, "live")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Discard()
	dead := filepath.Join(dir, StagingPrefix+"dead-1")
	os.MkdirAll(filepath.Join(dead, "usr/bin"), 0o755)
	other := filepath.Join(dir, "not-ours")
	os.Mkdir(other, 0o755)

	if err := CleanStaging(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("abandoned staging dir survived: %v", err)
	}
	if _, err := os.Stat(live.Dir); err != nil {
		t.Errorf("live staging dir was removed: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a machine was removed: %v", err)
	}
}

func TestLockExclusiveWaitsAndCancels(t *testing.T) {
	s := openStore(t)
	unlock, err := s.Lock(context.Background(), Shared)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TryLock(Exclusive); ok {
		t.Fatal("exclusive lock taken while a shared one is held")
	}
	other, err := s.Lock(context.Background(), Shared)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	other()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Lock(ctx, Exclusive); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	unlock()
	if u, ok := s.TryLock(Exclusive); !ok {
		t.Error("exclusive lock not free after release")
	} else {
		u()
	}
}

// StartWriteback syncs the staging filesystem until stopped, and stop waits
// for the syncer: none runs after stop returned (Commit or Discard may follow).
func TestStagingWriteback(t *testing.T) {
	stg, err := NewStaging(t.TempDir(), "wb")
	if err != nil {
		t.Fatal(err)
	}
	defer stg.Discard()
	var mu sync.Mutex
	calls, stopped := 0, false
	synced := make(chan struct{}, 1)
	orig := syncfs
	syncfs = func(fd int) error {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			t.Error("background sync after stop returned")
		}
		if fd != int(stg.lock.Fd()) {
			t.Errorf("synced fd %d, want the staging directory's %d", fd, stg.lock.Fd())
		}
		calls++
		select {
		case synced <- struct{}{}:
		default:
		}
		return nil
	}
	defer func() { syncfs = orig }()

	stop := stg.StartWriteback(time.Millisecond)
	<-synced // blocks until the first background sync ran
	stop()
	mu.Lock()
	stopped = true
	n := calls
	mu.Unlock()
	stop() // idempotent
	if n == 0 {
		t.Fatal("no background sync")
	}
	if err := stg.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteConfig installs a machine's image config from the store, where
// machines that resolve their image at start read it, and refuses a blob
// the store does not have.
func TestWriteConfig(t *testing.T) {
	s := openStore(t)
	cfg := []byte(`{"config":{"Cmd":["sh"]}}`)
	if err := s.PutBlob(digestOf(cfg), cfg); err != nil {
		t.Fatal(err)
	}
	machines := t.TempDir()
	if err := s.WriteConfig(machines, "web", digestOf(cfg)); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(ConfigPath(machines, "web")); err != nil || string(got) != string(cfg) {
		t.Errorf("config file = %q, %v; want %q", got, err, cfg)
	}
	if err := s.WriteConfig(machines, "db", digestOf([]byte("missing"))); err == nil {
		t.Error("a config the store lacks was installed")
	}
	if _, err := os.Stat(ConfigPath(machines, "db")); !os.IsNotExist(err) {
		t.Errorf("failed install left %s: %v", ConfigPath(machines, "db"), err)
	}
}
