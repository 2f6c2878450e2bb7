package machine

import (
	"cmp"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageConfig is the runtime part of an OCI image config (config.config).
type ImageConfig = v1.Config

// Overrides are what `docker run`-style flags change about an image's
// defaults. nil slices mean "not given".
type Overrides struct {
	// Entrypoint replaces the image's Entrypoint; when given, the image's
	// Cmd is dropped too (docker's rule). A non-nil empty slice clears it.
	Entrypoint []string
	// Cmd replaces the image's Cmd.
	Cmd []string
	// Env is appended to the image's Env; a key given again wins. An entry
	// without "=" is an error (the CLI resolves "-e KEY" from its own env).
	Env []string
	// User and WorkingDir replace the image's when not empty.
	User       string
	WorkingDir string
}

// SpecFromImage builds the Spec of machine name (root filesystem dir) from
// an image config and overrides. The result has the image-derived fields
// set; the caller adds binds, ports, network and the host-side settings.
func SpecFromImage(name, dir string, cfg ImageConfig, o Overrides) (Spec, error) {
	s := Spec{Name: name, Directory: dir}
	if err := s.ApplyImage(cfg, o); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// ApplyImage sets the image-derived fields of s (command, environment,
// user, working directory, stop signal, exposed ports, volumes) from an
// image config and overrides, leaving every other field as it is.
func (s *Spec) ApplyImage(cfg ImageConfig, o Overrides) error {
	entry, cmd := cfg.Entrypoint, cfg.Cmd
	if o.Entrypoint != nil {
		entry, cmd = o.Entrypoint, nil
	}
	if o.Cmd != nil {
		cmd = o.Cmd
	}
	s.Argv = append(append([]string{}, entry...), cmd...)

	env, err := MergeEnv(cfg.Env, o.Env)
	if err != nil {
		return fmt.Errorf("build machine %s: %w", s.Name, err)
	}
	s.Env = env

	s.User = cmp.Or(o.User, cfg.User)
	s.WorkingDir = absWorkdir(cmp.Or(o.WorkingDir, cfg.WorkingDir))
	if cfg.StopSignal != "" {
		sig, err := SignalName(cfg.StopSignal)
		if err != nil {
			return fmt.Errorf("build machine %s: %w", s.Name, err)
		}
		s.StopSignal = sig
	}
	return s.RecordImage(cfg)
}

// ResolveAtStart makes s a machine that resolves its image when it starts:
// berth-init reads the image config at configPath (the one kept with the
// machine) and applies o over it with ApplyImage's rules. The units then
// hold only o, so they can be made before the image is pulled and stay
// right when a new image replaces it. What the host side needs from the
// image before the start (its volumes) the caller adds with RecordImage
// when it knows the image.
func (s *Spec) ResolveAtStart(configPath string, o Overrides) {
	s.ImageConfig, s.Overrides = configPath, o
	s.Argv, s.Env, s.User, s.WorkingDir = nil, nil, "", ""
}

// RecordImage sets what the host side must know of an image before the
// machine runs: its anonymous volumes (VOLUME) and exposed ports.
func (s *Spec) RecordImage(cfg ImageConfig) error {
	s.ExposedPorts = slices.Sorted(maps.Keys(cfg.ExposedPorts))
	s.Volumes = nil
	for v := range cfg.Volumes {
		if !path.IsAbs(v) {
			return fmt.Errorf("build machine %s: %w: image volume %q is not an absolute path", s.Name, ErrInvalidSpec, v)
		}
		s.Volumes = append(s.Volumes, path.Clean(v))
	}
	slices.Sort(s.Volumes)
	return nil
}

// absWorkdir resolves a working directory as docker does a relative
// WORKDIR: against "/". "" stays "" (the default, "/").
func absWorkdir(dir string) string {
	if dir == "" {
		return ""
	}
	return path.Clean("/" + dir)
}

// MergeEnv appends overrides to base, replacing earlier assignments of the
// same key in place so the order stays stable.
func MergeEnv(base, overrides []string) ([]string, error) {
	var out []string
	idx := map[string]int{}
	for _, list := range [][]string{base, overrides} {
		for _, kv := range list {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("%w: environment entry %q is not KEY=VALUE", ErrInvalidSpec, kv)
			}
			if i, seen := idx[k]; seen {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out, nil
}
