package project

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// ProjectStatus is one line of `berth compose ls`. Its JSON form is
// docker compose ls's.
type ProjectStatus struct {
	Name string `json:"Name"`
	// Status counts the machines per state, as docker does:
	// "running(2), exited(1)".
	Status string `json:"Status"`
	// ConfigFiles are the compose files of the last up, comma-separated
	// ("" for a project installed by an older berth).
	ConfigFiles string `json:"ConfigFiles"`
	// Running is the number of running machines (not in the JSON: docker
	// compose ls has no such field).
	Running int `json:"-"`
}

// Projects lists the installed projects (those with a manifest) in name
// order, with the state of their machines. Without all, projects with no
// running machine are left out, as docker compose ls does.
func (h *Host) Projects(ctx context.Context, all bool) ([]ProjectStatus, error) {
	h.fill()
	ents, err := os.ReadDir(filepath.Join(h.Root, "compose"))
	if errors.Is(err, fs.ErrNotExist) {
		return []ProjectStatus{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	out := []ProjectStatus{}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(h.manifestPath(e.Name())); err != nil {
			continue
		}
		st, err := h.Ps(ctx, e.Name(), nil, true)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		count := map[string]int{}
		for _, s := range st {
			count[s.State]++
		}
		states := make([]string, 0, len(count))
		for k := range count {
			states = append(states, k)
		}
		sort.Strings(states)
		var parts []string
		for _, k := range states {
			parts = append(parts, fmt.Sprintf("%s(%d)", k, count[k]))
		}
		ps := ProjectStatus{Name: e.Name(), Status: strings.Join(parts, ", "), Running: count["running"] + count["starting"] + count["restarting"],
			ConfigFiles: strings.Join(h.readApplied(e.Name()).ConfigFiles, ",")}
		if !all && ps.Running == 0 {
			continue
		}
		out = append(out, ps)
	}
	return out, nil
}
