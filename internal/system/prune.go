package system

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/store"
)

// Pruned is what Prune removed.
type Pruned struct {
	Blobs      int      `json:"blobs"`
	BlobBytes  int64    `json:"blobBytes"`
	Staging    []string `json:"staging"`
	UnitFiles  []string `json:"unitFiles"`
	TempBlobs  int      `json:"tempBlobs"`
	ReloadUnit bool     `json:"-"` // unit files were removed: systemd must reload
}

// Prune removes what nothing uses: blobs no record keeps (and the
// temporary blobs killed pulls left), staging directories no install
// holds, and unit and .nspawn files `berth create` wrote for machines
// whose record is gone. It waits for running pulls (the store's exclusive
// lock). Compose projects' and the generator's units are their owners' to
// remove (`berth compose down`; the generator rewrites its own at every
// daemon-reload), so Prune leaves them.
func (h Host) Prune(ctx context.Context) (*Pruned, error) {
	res := &Pruned{}
	st, err := store.Open(h.Root)
	if err != nil {
		return nil, err
	}
	unlock, err := st.Lock(ctx, store.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	defer unlock()
	res.TempBlobs = countTemp(filepath.Join(h.Root, "blobs", "sha256"))
	n, freed, err := st.GC()
	if err != nil {
		return nil, err
	}
	res.Blobs, res.BlobBytes = n-res.TempBlobs, freed
	if ents, err := os.ReadDir(h.MachinesDir); err == nil {
		for _, e := range ents {
			p := filepath.Join(h.MachinesDir, e.Name())
			if strings.HasPrefix(e.Name(), store.StagingPrefix) && e.IsDir() && !held(p) {
				res.Staging = append(res.Staging, p)
			}
		}
	}
	if err := store.CleanStaging(h.MachinesDir); err != nil {
		return nil, err
	}
	orphans, err := h.orphanUnitFiles()
	if err != nil {
		return nil, err
	}
	for _, p := range orphans {
		if err := removeIfExists(p); err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		res.UnitFiles = append(res.UnitFiles, p)
		res.ReloadUnit = res.ReloadUnit || filepath.Dir(p) == h.Machines.UnitDir
	}
	return res, nil
}

// orphanUnitFiles are the files `berth create` wrote (its header on the
// first line) for a machine that has no record of its own any more: a
// create or rm killed half-way.
func (h Host) orphanUnitFiles() ([]string, error) {
	if h.Machines.StateDir == "" {
		return nil, nil
	}
	ins, err := h.Machines.Instances()
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	owned := map[string]bool{}
	for _, in := range ins {
		for _, f := range in.Files {
			owned[f] = true
		}
	}
	var out []string
	for _, dir := range []string{h.Machines.UnitDir, h.Machines.NspawnDir} {
		if dir == "" {
			continue
		}
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("prune: %w", err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			if !e.Type().IsRegular() || owned[p] || !generatedByCreate(p) {
				continue
			}
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func generatedByCreate(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 128)
	n, _ := f.Read(buf)
	first, _, _ := strings.Cut(string(buf[:n]), "\n")
	return first == "# "+machine.Header
}

func countTemp(dir string) int {
	ents, _ := os.ReadDir(dir)
	n := 0
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			n++
		}
	}
	return n
}
