package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-sh/berth/internal/fsutil"

	"github.com/berth-sh/berth/internal/machine"
)

// ErrNotFound is returned when no berth machine of the given name exists.
var ErrNotFound = errors.New("no such machine")

// ErrInvalidName is returned for machine names machinectl would refuse.
var ErrInvalidName = errors.New("invalid machine name")

// Record is what berth remembers about an installed machine: which image it
// was made from. Units are rendered from a Record plus the image config.
type Record struct {
	Name string `json:"name"`
	// Reference is the normalized reference the user pulled, e.g.
	// "docker.io/library/busybox:latest" or "oci:/srv/img:v1".
	Reference string `json:"reference"`
	// Digest is what Reference resolved to: an index or a manifest.
	Digest v1.Hash `json:"digest"`
	// Manifest is the platform-specific image manifest that was installed
	// (equal to Digest unless Reference named an index).
	Manifest          v1.Hash         `json:"manifest"`
	ManifestMediaType types.MediaType `json:"manifestMediaType"`
	ManifestSize      int64           `json:"manifestSize"`
	Config            v1.Hash         `json:"config"`
	Platform          v1.Platform     `json:"platform"`
	Layers            []LayerRecord   `json:"layers"`
	// Size is the sum of the layer blobs as stored (compressed).
	Size int64 `json:"size"`
	// Created is the image's creation time from its config, if set.
	Created time.Time `json:"created,omitzero"`
	// Pulled is when this machine was installed.
	Pulled time.Time `json:"pulled"`
}

// LayerRecord is one layer of an installed image.
type LayerRecord struct {
	Digest    v1.Hash         `json:"digest"`
	DiffID    v1.Hash         `json:"diffID"`
	MediaType types.MediaType `json:"mediaType"`
	Size      int64           `json:"size"`
}

// Blobs lists every store blob the record keeps alive.
func (r *Record) Blobs() []v1.Hash {
	out := []v1.Hash{r.Manifest, r.Config}
	for _, l := range r.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// ValidateName checks name against the rules machinectl applies to machine
// names: one RFC 1123 hostname label (letters, digits, '-', 1-63 bytes, no
// leading or trailing '-'). It also keeps names safe as file names.
func ValidateName(name string) error {
	if why := machine.NameProblem(name); why != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidName, name, why)
	}
	return nil
}

func (s *Store) recordPath(name string) string {
	return filepath.Join(s.root, machinesDir, name+".json")
}

// SaveRecord writes r atomically and updates the layout's index.json.
func (s *Store) SaveRecord(r *Record) error {
	if err := ValidateName(r.Name); err != nil {
		return fmt.Errorf("save record: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save record %s: %w", r.Name, err)
	}
	if err := fsutil.AtomicWrite(s.recordPath(r.Name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save record %s: %w", r.Name, err)
	}
	return s.WriteIndex()
}

// Record reads the record of machine name; ErrNotFound if there is none.
func (s *Store) Record(name string) (*Record, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", name, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read record %s: %s: %w", name, s.recordPath(name), err)
	}
	if r.Name != name {
		return nil, fmt.Errorf("read record %s: %s names machine %q", name, s.recordPath(name), r.Name)
	}
	return &r, nil
}

// RemoveRecord deletes the record of machine name and updates index.json.
func (s *Store) RemoveRecord(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := os.Remove(s.recordPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove record %s: %w", name, err)
	}
	return s.WriteIndex()
}

// Records lists all machine records, sorted by name.
func (s *Store) Records() ([]*Record, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, machinesDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ValidateName(name) != nil || !e.Type().IsRegular() {
			continue
		}
		r, err := s.Record(name)
		if errors.Is(err, ErrNotFound) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Annotations on index.json entries: the OCI ref name is the machine name, so
// `skopeo copy oci:/var/lib/berth:NAME ...` picks a machine's image.
const annotationRefName = "org.opencontainers.image.ref.name"

// AnnotationReference records the reference the image was pulled from.
const AnnotationReference = "sh.berth.reference"

// WriteIndex regenerates index.json from the records. It runs under its own
// lock: each writer saves its record first and then rebuilds the whole index,
// so the last rebuild sees every record and no update is lost.
func (s *Store) WriteIndex() error {
	unlock, err := fsutil.Lock(context.Background(), filepath.Join(s.root, locksDir, "index.lock"), Exclusive)
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	defer unlock()
	recs, err := s.Records()
	if err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	idx := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{},
	}
	for _, r := range recs {
		p := r.Platform
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: r.ManifestMediaType,
			Size:      r.ManifestSize,
			Digest:    r.Manifest,
			Platform:  &p,
			Annotations: map[string]string{
				annotationRefName:   r.Name,
				AnnotationReference: r.Reference,
			},
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(idx); err != nil {
		return fmt.Errorf("write index: %w", err)
	}
	return fsutil.AtomicWrite(filepath.Join(s.root, "index.json"), buf.Bytes(), 0o644)
}

// GC removes blobs no record references, and leftover temporary files. The
// caller must hold the store lock exclusively. It returns the number of
// files removed and bytes freed.
func (s *Store) GC() (int, int64, error) {
	recs, err := s.Records()
	if err != nil {
		return 0, 0, fmt.Errorf("collect garbage: %w", err)
	}
	keep := map[string]bool{}
	for _, r := range recs {
		for _, d := range r.Blobs() {
			keep[d.Hex] = true
		}
	}
	dir := filepath.Join(s.root, blobsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("collect garbage: %w", err)
	}
	var n int
	var freed int64
	for _, e := range ents {
		if keep[e.Name()] {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, freed, fmt.Errorf("collect garbage: %w", err)
		}
		n++
		freed += size
	}
	return n, freed, nil
}
