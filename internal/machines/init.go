package machines

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-sh/berth/internal/paths"
)

// ErrDynamicInit: berth would be the machines' init itself, but it is
// linked against the C library, which scratch and busybox images lack.
var ErrDynamicInit = errors.New("berth is dynamically linked")

// FindInit locates the program app machines run as their init:
// $BERTH_INIT, else the first berth-init of paths.InitCandidates(executable)
// (beside berth, in its installation, in the default places), else berth
// itself, which runs the init when started as /.berth/init (a `go
// install`ed berth has no berth-init). executable is berth's own path
// (os.Executable).
func FindInit(getenv func(string) string, executable string) (string, error) {
	return findInit(getenv, executable, os.Stat, staticBinary)
}

func findInit(getenv func(string) string, executable string, stat func(string) (fs.FileInfo, error), static func(string) (bool, error)) (string, error) {
	var cands []string
	if p := getenv("BERTH_INIT"); p != "" {
		cands = append(cands, p)
	}
	cands = append(cands, paths.InitCandidates(executable)...)
	for _, c := range cands {
		if fi, err := stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(c)
			if err != nil {
				return "", fmt.Errorf("find berth-init: %w", err)
			}
			return filepath.Clean(abs), nil
		}
	}
	if executable == "" || !filepath.IsAbs(executable) {
		return "", fmt.Errorf("find berth-init: none of %s exists, and berth does not know its own path", strings.Join(cands, ", "))
	}
	ok, err := static(executable)
	if err != nil {
		return "", fmt.Errorf("find berth-init: none of %s exists: %w", strings.Join(cands, ", "), err)
	}
	if !ok {
		return "", fmt.Errorf("find berth-init: none of %s exists, and %s cannot be the init of images without a C library: %w (built with cgo); "+
			"install berth-init (scripts/install.sh) or rebuild berth with CGO_ENABLED=0 go install github.com/berth-sh/berth/cmd/berth@latest",
			strings.Join(cands, ", "), executable, ErrDynamicInit)
	}
	return filepath.Clean(executable), nil
}

// staticBinary reports whether the ELF program at p needs no dynamic
// loader, so it runs in any root file system.
func staticBinary(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}
