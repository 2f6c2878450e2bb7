package machines

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeFile is an executable regular file for findInit's stat.
type fakeFile struct{ mode fs.FileMode }

func (f fakeFile) Name() string       { return "" }
func (f fakeFile) Size() int64        { return 0 }
func (f fakeFile) Mode() fs.FileMode  { return f.mode }
func (f fakeFile) ModTime() time.Time { return time.Time{} }
func (f fakeFile) IsDir() bool        { return f.mode.IsDir() }
func (f fakeFile) Sys() any           { return nil }

func TestFindInit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     string
		exe     string
		files   map[string]fs.FileMode
		static  bool
		want    string
		wantErr error
	}{
		{name: "the .deb", exe: "/usr/bin/berth", files: map[string]fs.FileMode{"/usr/lib/berth/berth-init": 0o755}, want: "/usr/lib/berth/berth-init"},
		{name: "install.sh", exe: "/usr/local/bin/berth", files: map[string]fs.FileMode{"/usr/local/lib/berth/berth-init": 0o755, "/usr/lib/berth/berth-init": 0o755}, want: "/usr/local/lib/berth/berth-init"},
		{name: "build directory", exe: "/src/bin/berth", files: map[string]fs.FileMode{"/src/bin/berth-init": 0o755, "/usr/local/lib/berth/berth-init": 0o755}, want: "/src/bin/berth-init"},
		{name: "$BERTH_INIT wins", env: "/opt/init", exe: "/src/bin/berth", files: map[string]fs.FileMode{"/opt/init": 0o755, "/src/bin/berth-init": 0o755}, want: "/opt/init"},
		{name: "go install: berth itself", exe: "/root/go/bin/berth", static: true, want: "/root/go/bin/berth"},
		{name: "not executable, a directory: skipped", exe: "/root/go/bin/berth", files: map[string]fs.FileMode{"/root/go/bin/berth-init": 0o644, "/usr/local/lib/berth/berth-init": fs.ModeDir | 0o755}, static: true, want: "/root/go/bin/berth"},
		{name: "go install with cgo", exe: "/root/go/bin/berth", static: false, wantErr: ErrDynamicInit},
	} {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "BERTH_INIT" {
					return tt.env
				}
				return ""
			}
			stat := func(p string) (fs.FileInfo, error) {
				if m, ok := tt.files[p]; ok {
					return fakeFile{m}, nil
				}
				return nil, fs.ErrNotExist
			}
			static := func(p string) (bool, error) {
				if p != tt.exe {
					t.Errorf("static(%q), want berth's own path %q", p, tt.exe)
				}
				return tt.static, nil
			}
			got, err := findInit(getenv, tt.exe, stat, static)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
					t.Fatalf("err = %v, want %v naming the fix", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("findInit = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

// TestStaticBinary tells a CGO_ENABLED=0 build from a dynamically linked
// program.
func TestStaticBinary(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err == nil {
		if ok, err := staticBinary("/bin/sh"); err != nil {
			t.Fatal(err)
		} else if ok && !isBusybox("/bin/sh") {
			t.Error("/bin/sh reported static")
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", "x", ".")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("go build: %v\n%s", err, out)
	}
	if ok, err := staticBinary(filepath.Join(dir, "x")); err != nil || !ok {
		t.Errorf("a CGO_ENABLED=0 build: static = %v, %v", ok, err)
	}
	if _, err := staticBinary(filepath.Join(dir, "main.go")); err == nil {
		t.Error("a text file passed as ELF")
	}
}

func isBusybox(p string) bool {
	t, err := filepath.EvalSymlinks(p)
	return err == nil && strings.Contains(t, "busybox")
}
