package machines

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-sh/berth/internal/fsutil"
	"github.com/berth-sh/berth/internal/machine"
)

// File is one rendered file and where it belongs.
type File struct {
	Dir  string // NspawnDir, UnitDir, ...
	Name string
	Data []byte
}

// Path is Dir/Name.
func (f File) Path() string { return filepath.Join(f.Dir, f.Name) }

// Files renders both files of a machine for installation in the given
// settings and unit directories.
func Files(s *machine.Spec, nspawnDir, unitDir string) ([]File, error) {
	n, err := machine.RenderNspawn(s)
	if err != nil {
		return nil, err
	}
	u, err := machine.RenderService(s)
	if err != nil {
		return nil, err
	}
	nb, err := n.Marshal()
	if err != nil {
		return nil, fmt.Errorf("render %s.nspawn: %w", s.Name, err)
	}
	ub, err := u.Marshal()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", machine.ServiceName(s.Name), err)
	}
	return []File{
		{Dir: nspawnDir, Name: s.Name + ".nspawn", Data: nb},
		{Dir: unitDir, Name: machine.ServiceName(s.Name), Data: ub},
	}, nil
}

// WriteFiles writes files into dir (all of them, ignoring their Dir), for
// `berth create --output`.
func WriteFiles(dir string, files []File) error {
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.Name), f.Data); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data to path atomically, so systemd never reads half a
// unit, creating its directory if needed.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return fsutil.AtomicWrite(path, data, 0o644)
}
