package importer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-sh/berth/internal/store"
)

// requireTool skips a test whose tool is missing, or fails it with
// BERTH_TEST_REQUIRE_TOOLS=1 (scripts/deps.sh installs them all).
func requireTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("BERTH_TEST_REQUIRE_TOOLS") == "1" {
				t.Fatalf("%s is required (BERTH_TEST_REQUIRE_TOOLS=1; scripts/deps.sh installs it)", tool)
			}
			t.Skipf("needs %s (scripts/deps.sh)", tool)
		}
	}
}

// ent is one tar entry of a test tarball.
type ent struct {
	typ      byte
	name     string
	body     string // content, or link target
	mode     int64
	uid, gid int
}

func file(name, body string) ent { return ent{typ: tar.TypeReg, name: name, body: body, mode: 0o644} }
func dir(name string) ent        { return ent{typ: tar.TypeDir, name: name, mode: 0o755} }
func sym(name, to string) ent    { return ent{typ: tar.TypeSymlink, name: name, body: to, mode: 0o777} }
func hard(name, to string) ent   { return ent{typ: tar.TypeLink, name: name, body: to, mode: 0o644} }

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1700000000, 0)}
		switch e.typ {
		case tar.TypeReg:
			h.Size = int64(len(e.body))
		case tar.TypeSymlink, tar.TypeLink:
			h.Linkname = e.body
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses b with the command-line tool of comp (gzip in Go).
func compress(t *testing.T, b []byte, comp string) []byte {
	t.Helper()
	switch comp {
	case compNone:
		return b
	case compGzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	tool := map[string]string{compXz: "xz", compZstd: "zstd", compBzip2: "bzip2"}[comp]
	requireTool(t, tool)
	cmd := exec.Command(tool, "-c")
	cmd.Stdin = bytes.NewReader(b)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s -c: %v: %s", tool, err, errb.String())
	}
	return out.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// env is an import environment: store and machines directory in a temp dir.
type env struct {
	root, machines string
}

func newEnv(t *testing.T) env {
	d := t.TempDir()
	return env{root: filepath.Join(d, "berth"), machines: filepath.Join(d, "machines")}
}

func (e env) opts(src string) Options {
	return Options{
		Source:      src,
		Root:        e.root,
		MachinesDir: e.machines,
		Running:     func(string) bool { return false },
		Gunzip:      "builtin",
		sleep:       func(context.Context, time.Duration) error { return nil },
	}
}

func (e env) run(t *testing.T, src string, mod ...func(*Options)) (*Result, error) {
	t.Helper()
	o := e.opts(src)
	for _, m := range mod {
		m(&o)
	}
	return Import(context.Background(), o)
}

func (e env) mustImport(t *testing.T, src string, mod ...func(*Options)) *Result {
	t.Helper()
	res, err := e.run(t, src, mod...)
	if err != nil {
		t.Fatalf("Import(%s): %v", src, err)
	}
	return res
}

// assertNothingInstalled: no machine directory, no staging directory, no
// record, no config and no spool file a failed import left behind (a
// partial download kept for resuming is allowed with keepPartial).
func (e env) assertNothingInstalled(t *testing.T, keepPartial bool) {
	t.Helper()
	ents, _ := os.ReadDir(e.machines)
	for _, de := range ents {
		t.Errorf("machines dir holds %s after a failed import", de.Name())
	}
	if st, err := store.Open(e.root); err == nil {
		if recs, _ := st.Records(); len(recs) != 0 {
			t.Errorf("records after a failed import: %v", recs[0].Name)
		}
	}
	spool, _ := os.ReadDir(filepath.Join(e.root, "spool"))
	for _, de := range spool {
		if keepPartial && (strings.HasSuffix(de.Name(), ".partial") || strings.HasSuffix(de.Name(), ".meta")) {
			continue
		}
		t.Errorf("spool holds %s after a failed import", de.Name())
	}
}

func (e env) read(t *testing.T, machine, p string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.machines, machine, p))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fileServer serves files by path, with Range, If-Range and Last-Modified
// (http.ServeContent); cut, if set for a path, is how many requests for it
// are cut off after half the body before it is served whole.
type fileServer struct {
	*httptest.Server
	mu     sync.Mutex
	files  map[string][]byte
	cut    map[string]int
	ranges []string // Range headers of requests, in order
}

func newFileServer(t *testing.T, files map[string][]byte) *fileServer {
	fs := &fileServer{files: files, cut: map[string]int{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	b, ok := fs.files[r.URL.Path]
	cut := fs.cut[r.URL.Path] > 0
	if cut {
		fs.cut[r.URL.Path]--
	}
	if ok && !strings.Contains(r.URL.Path, "SHA256SUMS") {
		fs.ranges = append(fs.ranges, r.Header.Get("Range"))
	}
	fs.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if cut {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.Header().Set("Last-Modified", time.Unix(1700000000, 0).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // drops the connection mid-body
	}
	http.ServeContent(w, r, "", time.Unix(1700000000, 0), bytes.NewReader(b))
}
