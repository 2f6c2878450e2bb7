package decl

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// DefaultUnitDirs is where declarations live, the first one holding a file
// name winning (as quadlet's /etc/containers/systemd, /run/…, /usr/share/…).
var DefaultUnitDirs = []string{"/etc/berth/systemd", "/run/berth/systemd", "/usr/share/berth/systemd"}

// SearchPath is $BERTH_UNIT_DIRS (colon-separated, like quadlet's
// QUADLET_UNIT_DIRS) or DefaultUnitDirs.
func SearchPath(getenv func(string) string) []string {
	if v := getenv("BERTH_UNIT_DIRS"); v != "" {
		return strings.FieldsFunc(v, func(r rune) bool { return r == ':' })
	}
	return DefaultUnitDirs
}

// Dir is the file system the declarations are read from.
type Dir interface {
	ReadDir(name string) ([]fs.DirEntry, error)
	ReadFile(name string) ([]byte, error)
}

// OSDir reads the real file system.
type OSDir struct{}

func (OSDir) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }
func (OSDir) ReadFile(name string) ([]byte, error)       { return os.ReadFile(name) }

// Load reads every declaration in dirs (earlier dirs win by file name) with
// its drop-ins (NAME.EXT.d/*.conf in any dir, earlier dirs winning by conf
// name, applied in conf-name order). A missing dir is no error; a file that
// cannot be read or parsed is a finding and is skipped.
func Load(dirs []string, d Dir) ([]Input, Findings) {
	var fnd Findings
	// Each dir is listed once, up front: drop-in directories are looked
	// up in these listings instead of being opened for every declaration
	// in every dir (the generator runs at every boot, and most
	// declarations have none).
	listings := make([][]fs.DirEntry, len(dirs))
	names := make([]map[string]bool, len(dirs))
	for i, dir := range dirs {
		entries, err := d.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				fnd = append(fnd, Finding{Severity: Error, Path: dir, Msg: err.Error()})
			}
			continue
		}
		listings[i] = entries
		names[i] = make(map[string]bool, len(entries))
		for _, e := range entries {
			names[i][e.Name()] = true
		}
	}
	type decl struct{ dir, name string }
	var decls []decl
	seen := map[string]bool{}
	for i, dir := range dirs {
		for _, e := range listings[i] {
			name := e.Name()
			if seen[name] || !slices.Contains(Extensions, path.Ext(name)) || e.IsDir() {
				continue
			}
			seen[name] = true
			decls = append(decls, decl{dir, name})
		}
	}
	// Read and parse the declarations in two halves at once, one per
	// core (at boot, most of Load); the rest goes in order below.
	files := make([]*File, len(decls))
	errs := make([]error, len(decls))
	read := func(lo, hi int) {
		for j := lo; j < hi; j++ {
			files[j], errs[j] = readDecl(d, filepath.Join(decls[j].dir, decls[j].name))
		}
	}
	var wg sync.WaitGroup
	half := len(decls) / 2
	wg.Go(func() { read(half, len(decls)) })
	read(0, half)
	wg.Wait()
	var inputs []Input
	for j, dc := range decls {
		dir, name := dc.dir, dc.name
		f, err := files[j], errs[j]
		tmpl := templateName(name)
		if err == nil && tmpl != "" && len(f.Sections) == 0 {
			f, err = readTemplate(d, dirs, tmpl, f.Path)
		}
		if err != nil {
			fnd = append(fnd, Finding{Severity: Error, Path: filepath.Join(dir, name), Msg: err.Error()})
			continue
		}
		for _, p := range dropins(d, dirs, names, name, tmpl) {
			di, err := readDecl(d, p)
			if err != nil {
				fnd = append(fnd, Finding{Severity: Error, Path: p, Msg: err.Error() + " (the declaration it extends is skipped)"})
				f = nil
				break
			}
			f.Merge(di)
		}
		if f != nil {
			inputs = append(inputs, Input{Name: name, File: f})
		}
	}
	slices.SortFunc(inputs, func(a, b Input) int { return strings.Compare(a.Name, b.Name) })
	fnd.sort()
	return inputs, fnd
}

func readDecl(d Dir, p string) (*File, error) {
	b, err := d.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return Parse(p, b)
}

// readTemplate reads the template an empty instance file selects (as
// quadlet does; a symlink to the template reads as the template already),
// under the instance's path: entries keep the template's for findings.
func readTemplate(d Dir, dirs []string, tmpl, instance string) (*File, error) {
	for _, dir := range dirs {
		f, err := readDecl(d, filepath.Join(dir, tmpl))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		f.Path = instance
		return f, nil
	}
	return nil, fmt.Errorf("the instance file is empty and there is no template %s", tmpl)
}

// dropins lists the drop-in files of the declaration names (the file's
// own, then its template's, "" skipped), in the order they apply: by conf
// name, the first name and then the earliest dir winning for each, so an
// instance's own drop-in replaces its template's of the same name. listed
// holds the names in each dir (nil: the dir could not be read); only a
// NAME.d listed there is read.
func dropins(d Dir, dirs []string, listed []map[string]bool, names ...string) []string {
	byName := map[string]string{}
	for _, name := range names {
		for i, dir := range dirs {
			if name == "" || !listed[i][name+".d"] {
				continue
			}
			entries, err := d.ReadDir(filepath.Join(dir, name+".d"))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".conf") && !e.IsDir() {
					if _, ok := byName[e.Name()]; !ok {
						byName[e.Name()] = filepath.Join(dir, name+".d", e.Name())
					}
				}
			}
		}
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[n])
	}
	return out
}
