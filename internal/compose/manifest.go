package compose

import (
	"errors"
	"fmt"
)

// ErrNoService: a service named on the command line is not in the project.
var ErrNoService = errors.New("no such service")

// Manifest is a project's project.json: which units, machines, networks and
// volumes belong to it, for berth compose up/down/ps. Convert writes it;
// internal/project reads it. It holds no secret values.
type Manifest struct {
	Project  string            `json:"project"`
	Target   string            `json:"target"`
	Networks []ManifestNetwork `json:"networks"`
	Services []ManifestService `json:"services"`
	Units    []string          `json:"units"`
	Volumes  []ManifestVolume  `json:"volumes,omitempty"`
}

// ManifestNetwork is one project network and the bridge that carries it.
type ManifestNetwork struct {
	Name    string            `json:"name"`
	Bridge  string            `json:"bridge"`
	Subnet  string            `json:"subnet"`
	Unit    string            `json:"unit,omitempty"`
	Managed bool              `json:"managed"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// ManifestService is one compose service.
type ManifestService struct {
	Name      string             `json:"name"`
	Image     string             `json:"image"`
	Oneshot   bool               `json:"oneshot,omitempty"`
	Labels    map[string]string  `json:"labels,omitempty"`
	Expose    []string           `json:"expose,omitempty"`
	Instances []ManifestInstance `json:"instances"`
}

// ManifestInstance is one machine of a service.
type ManifestInstance struct {
	Machine   string            `json:"machine"`
	Unit      string            `json:"unit"`
	Health    string            `json:"health_unit,omitempty"`
	Addresses map[string]string `json:"addresses,omitempty"`
	Ports     []string          `json:"ports,omitempty"`
}

// ManifestVolume is one named volume and its directory on the host.
type ManifestVolume struct {
	Name   string            `json:"name"`
	Dir    string            `json:"dir"`
	Shared bool              `json:"shared,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Select returns the services named (all when names is empty), in
// manifest order; an unknown name is ErrNoService.
func (m *Manifest) Select(names []string) ([]ManifestService, error) {
	if len(names) == 0 {
		return m.Services, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []ManifestService
	for _, s := range m.Services {
		if want[s.Name] {
			out = append(out, s)
			delete(want, s.Name)
		}
	}
	for _, n := range names {
		if want[n] {
			return nil, fmt.Errorf("select service %q in project %s: %w", n, m.Project, ErrNoService)
		}
	}
	return out, nil
}
