// Package system inspects and repairs berth's state as a whole, for `berth
// system check|prune|df`: the blob store and its records, the machine
// trees beside them, staging left by killed installs, and the units berth
// wrote for machines that are gone.
//
// A check only reads, under the store's shared lock (so no collection
// removes blobs under it, while pulls go on). A repair takes the lock
// exclusively, so it waits for running pulls and never removes what one
// is still writing.
package system

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/store"
)

// Kinds of findings, stable for `--format json`.
const (
	KindBlobCorrupt    = "blob-corrupt"    // content does not hash to its name
	KindBlobTemp       = "blob-temp"       // a blob download a killed pull left
	KindBlobForeign    = "blob-foreign"    // a file in blobs/sha256 that is no digest
	KindRecordBroken   = "record-broken"   // a machine record berth cannot read
	KindBlobMissing    = "blob-missing"    // a record names a blob the store lacks
	KindTreeMissing    = "tree-missing"    // a record without its root filesystem
	KindConfigMissing  = "config-missing"  // a tree without its NAME.oci-config
	KindTreeUnrecorded = "tree-unrecorded" // berth's tree (its .oci-config beside it) without a record
	KindStaging        = "staging"         // a staging directory no install holds
	KindIndexStale     = "index-stale"     // index.json does not list the records
	KindInstanceBroken = "instance-broken" // a `berth create` record whose tree is gone
	KindSpoolStale     = "spool-stale"     // an import's temporary file a killed import left
)

// spoolStaleAfter is how old a temporary file in the spool directory must
// be to count as left by a killed import (a running one touches its files
// as it writes them).
const spoolStaleAfter = time.Hour

// Finding is one problem a check found. Repair says what --repair does
// about it; empty when it needs the user (Fix says what to run).
type Finding struct {
	Kind    string `json:"kind"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
	Repair  string `json:"repair,omitempty"`
	Fix     string `json:"fix,omitempty"`
	repair  func() error
}

// Host is the state a check covers.
type Host struct {
	Root        string // berth's state directory (the store)
	MachinesDir string
	// Machines are the machines `berth create` made (their records and
	// unit files).
	Machines machines.Host
}

// CheckOptions tune a check.
type CheckOptions struct {
	// Quick skips hashing every blob (the slow part on a large store).
	Quick bool
}

// Check verifies the store, the records and the machine trees and returns
// what is wrong, sorted by kind and path.
func (h Host) Check(ctx context.Context, o CheckOptions) ([]Finding, error) {
	st := store.At(h.Root)
	if _, err := os.Stat(h.Root); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing installed yet
	}
	unlock, err := st.Lock(ctx, store.Shared)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer unlock()
	return h.check(ctx, st, o)
}

func (h Host) check(ctx context.Context, st *store.Store, o CheckOptions) ([]Finding, error) {
	var out []Finding
	blobs, err := h.checkBlobs(ctx, st, o, &out)
	if err != nil {
		return nil, err
	}
	recorded, err := h.checkRecords(st, blobs, &out)
	if err != nil {
		return nil, err
	}
	if err := h.checkTrees(recorded, &out); err != nil {
		return nil, err
	}
	if err := h.checkInstances(&out); err != nil {
		return nil, err
	}
	h.checkSpool(&out)
	slices.SortFunc(out, func(a, b Finding) int {
		return strings.Compare(a.Kind+"\x00"+a.Path, b.Kind+"\x00"+b.Path)
	})
	return out, nil
}

// checkBlobs verifies every blob's digest and returns the digests present
// (with a good name; corrupt ones excluded).
func (h Host) checkBlobs(ctx context.Context, st *store.Store, o CheckOptions, out *[]Finding) (map[string]bool, error) {
	dir := filepath.Join(h.Root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("check blobs: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := filepath.Join(dir, e.Name())
		remove := func() error { return removeIfExists(p) }
		switch {
		case strings.HasPrefix(e.Name(), ".tmp-"):
			*out = append(*out, Finding{Kind: KindBlobTemp, Path: p, Problem: "a blob download a killed pull left", Repair: "remove it", repair: remove})
			continue
		case !isHex64(e.Name()) || !e.Type().IsRegular():
			*out = append(*out, Finding{Kind: KindBlobForeign, Path: p, Problem: "not a blob (its name is no sha256 digest or it is no regular file)", Fix: "move it out of berth's store"})
			continue
		}
		if !o.Quick {
			got, err := hashFile(p)
			if err != nil {
				return nil, fmt.Errorf("check blob %s: %w", p, err)
			}
			if got != e.Name() {
				*out = append(*out, Finding{Kind: KindBlobCorrupt, Path: p, Problem: "content hashes to sha256:" + got, Repair: "remove it (pull the images that use it again)", repair: remove})
				continue
			}
		}
		have[e.Name()] = true
	}
	return have, nil
}

// checkRecords reads every machine record and checks the blobs it keeps
// alive are there, and index.json lists exactly the records. It returns
// the names recorded.
func (h Host) checkRecords(st *store.Store, blobs map[string]bool, out *[]Finding) (map[string]*store.Record, error) {
	dir := filepath.Join(h.Root, "machines")
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("check records: %w", err)
	}
	recorded := map[string]*store.Record{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		r, err := st.Record(name)
		if err != nil {
			*out = append(*out, Finding{Kind: KindRecordBroken, Path: p, Problem: err.Error(),
				Repair: "remove the record (the machine's tree, if any, is then reported as unrecorded)",
				repair: func() error { return removeIfExists(p) }})
			continue
		}
		recorded[name] = r
		for _, d := range r.Blobs() {
			if !blobs[d.Hex] {
				*out = append(*out, Finding{Kind: KindBlobMissing, Path: st.BlobPath(d),
					Problem: fmt.Sprintf("machine %s's image needs blob %s", name, d),
					Fix:     fmt.Sprintf("berth pull --name %s %s", name, r.Reference)})
			}
		}
		tree := filepath.Join(h.MachinesDir, name)
		if _, err := os.Lstat(tree); errors.Is(err, fs.ErrNotExist) {
			rec := name
			*out = append(*out, Finding{Kind: KindTreeMissing, Path: tree,
				Problem: fmt.Sprintf("machine %s is recorded but has no root filesystem", name),
				Repair:  "remove the record (berth pull installs it again)",
				repair: func() error {
					if err := removeIfExists(store.ConfigPath(h.MachinesDir, rec)); err != nil {
						return err
					}
					return st.RemoveRecord(rec)
				}})
			continue
		}
		cfg := store.ConfigPath(h.MachinesDir, name)
		if _, err := os.Stat(cfg); errors.Is(err, fs.ErrNotExist) && blobs[r.Config.Hex] {
			rec := r
			*out = append(*out, Finding{Kind: KindConfigMissing, Path: cfg,
				Problem: fmt.Sprintf("machine %s's image config is not beside its tree (the machine cannot resolve its command)", name),
				Repair:  "write it again from the store",
				repair:  func() error { return st.WriteConfig(h.MachinesDir, rec.Name, rec.Config) }})
		}
	}
	if stale, err := indexStale(st, recorded); err != nil {
		return nil, err
	} else if stale != "" {
		*out = append(*out, Finding{Kind: KindIndexStale, Path: filepath.Join(h.Root, "index.json"), Problem: stale,
			Repair: "write it again from the records", repair: st.WriteIndex})
	}
	return recorded, nil
}

// checkTrees finds staging directories no install holds and trees berth
// installed (an .oci-config beside them) that no record or created machine
// owns: what a kill between install steps leaves.
func (h Host) checkTrees(recorded map[string]*store.Record, out *[]Finding) error {
	ents, err := os.ReadDir(h.MachinesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check machine trees: %w", err)
	}
	owned, err := h.createdMachines()
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(h.MachinesDir, e.Name())
		if strings.HasPrefix(e.Name(), store.StagingPrefix) && e.IsDir() {
			if held(p) {
				continue // an install is building it now
			}
			*out = append(*out, Finding{Kind: KindStaging, Path: p, Problem: "a staging directory no install holds (a killed pull, copy or removal)",
				Repair: "remove it", repair: func() error { return store.CleanStaging(h.MachinesDir) }})
			continue
		}
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		name := e.Name()
		if recorded[name] != nil || owned[name] {
			continue
		}
		if _, err := os.Stat(store.ConfigPath(h.MachinesDir, name)); err != nil {
			continue // not berth's: berth never touches a tree it did not install
		}
		*out = append(*out, Finding{Kind: KindTreeUnrecorded, Path: p,
			Problem: fmt.Sprintf("machine %s's tree and image config are berth's, but no record names them (an install killed before its record was written)", name),
			Repair:  "remove the tree and its image config (berth pull installs it again)",
			repair: func() error {
				if err := store.RemoveRootfs(h.MachinesDir, name); err != nil {
					return err
				}
				return removeIfExists(store.ConfigPath(h.MachinesDir, name))
			}})
	}
	return nil
}

// createdMachines are the machines `berth create` made with a tree of
// their own (a copy of an image's).
func (h Host) createdMachines() (map[string]bool, error) {
	out := map[string]bool{}
	if h.Machines.StateDir == "" {
		return out, nil
	}
	ins, err := h.Machines.Instances()
	if err != nil {
		return nil, fmt.Errorf("check machine trees: %w", err)
	}
	for _, in := range ins {
		if in.Cloned {
			out[in.Spec.Name] = true
		}
	}
	return out, nil
}

// checkInstances finds machines `berth create` made whose own tree is gone.
func (h Host) checkInstances(out *[]Finding) error {
	if h.Machines.StateDir == "" {
		return nil
	}
	ins, err := h.Machines.Instances()
	if err != nil {
		return fmt.Errorf("check created machines: %w", err)
	}
	for _, in := range ins {
		if !in.Cloned {
			continue
		}
		tree := filepath.Join(h.MachinesDir, in.Spec.Name)
		if _, err := os.Lstat(tree); errors.Is(err, fs.ErrNotExist) {
			*out = append(*out, Finding{Kind: KindInstanceBroken, Path: tree,
				Problem: fmt.Sprintf("machine %s was created with its own tree, which is gone", in.Spec.Name),
				Fix:     "berth rm " + in.Spec.Name})
		}
	}
	return nil
}

// checkSpool finds temporary files and directories of imports (the
// hidden entries of the spool directory) that nothing has written for an
// hour. Partial downloads (named by their URL) are kept on purpose: the
// next import of that URL resumes them.
func (h Host) checkSpool(out *[]Finding) {
	dir := filepath.Join(h.Root, "spool")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil || time.Since(fi.ModTime()) < spoolStaleAfter {
			continue
		}
		p := filepath.Join(dir, e.Name())
		*out = append(*out, Finding{Kind: KindSpoolStale, Path: p, Problem: "a temporary file of an import, untouched for " + time.Since(fi.ModTime()).Round(time.Minute).String(),
			Repair: "remove it", repair: func() error { return removeIfExists(p) }})
	}
}

// indexStale says how index.json differs from the records ("" if not).
func indexStale(st *store.Store, recorded map[string]*store.Record) (string, error) {
	b, err := os.ReadFile(filepath.Join(st.Root(), "index.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if len(recorded) == 0 {
			return "", nil
		}
		return "index.json is missing", nil
	}
	if err != nil {
		return "", fmt.Errorf("check index.json: %w", err)
	}
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(b)))
	if err != nil {
		return "index.json is not an image index: " + err.Error(), nil
	}
	listed := map[string]string{}
	for _, d := range idx.Manifests {
		listed[d.Annotations["org.opencontainers.image.ref.name"]] = d.Digest.String()
	}
	for name, r := range recorded {
		if listed[name] != r.Manifest.String() {
			return fmt.Sprintf("index.json does not list machine %s with manifest %s", name, r.Manifest), nil
		}
	}
	for name := range listed {
		if recorded[name] == nil {
			return fmt.Sprintf("index.json lists %q, which has no record", name), nil
		}
	}
	return "", nil
}

// Repair carries out the repairs of findings, under the store's exclusive
// lock (it waits for running pulls). It returns the findings it could not
// repair automatically and the first error.
func (h Host) Repair(ctx context.Context, findings []Finding) ([]Finding, error) {
	st := store.At(h.Root)
	unlock, err := st.Lock(ctx, store.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("repair: %w", err)
	}
	defer unlock()
	var left []Finding
	var errs []error
	staging, index := false, false
	for _, f := range findings {
		if f.repair == nil {
			left = append(left, f)
			continue
		}
		switch f.Kind {
		case KindIndexStale, KindRecordBroken, KindTreeMissing:
			// index.json is rebuilt from the records last, once the
			// broken ones are gone.
			index = true
			if f.Kind == KindIndexStale {
				continue
			}
		}
		if f.Kind == KindStaging {
			if staging {
				continue // one CleanStaging removes them all
			}
			staging = true
		}
		if err := f.repair(); err != nil {
			errs = append(errs, fmt.Errorf("repair %s %s: %w", f.Kind, f.Path, err))
		}
	}
	if index {
		if err := st.WriteIndex(); err != nil {
			errs = append(errs, fmt.Errorf("repair index.json: %w", err))
		}
	}
	return left, errors.Join(errs...)
}

func removeIfExists(p string) error {
	if err := os.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// held reports whether another process holds the flock an install keeps on
// its staging directory.
func held(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
