// Package compose turns docker compose projects into systemd unit sets that
// run each service as a systemd-nspawn machine.
//
// Loading (this file) is the only part that reads files; checking the keys
// against berth's support table, planning names/addresses and rendering units
// are pure functions of the loaded project.
package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/cli/pkg/kvfile"
)

// LoadOptions say which compose project to load, mirroring docker compose's
// global flags. The zero value loads compose.yaml (or its docker-compose.*
// variants) from the current directory with no environment.
type LoadOptions struct {
	// Files are the -f files, merged in order. Empty: COMPOSE_FILE from
	// Environ, else the default file names in WorkDir.
	Files []string
	// WorkDir is --project-directory. Empty: the directory of the first file.
	WorkDir string
	// ProjectName is -p. Empty: COMPOSE_PROJECT_NAME, the top-level name:,
	// then the directory name, as docker compose does.
	ProjectName string
	// Profiles are the --profile values. Empty: COMPOSE_PROFILES.
	Profiles []string
	// EnvFiles are the --env-file files. Empty: WorkDir/.env if it exists.
	EnvFiles []string
	// Environ is the process environment ("KEY=VALUE") used for
	// interpolation and the COMPOSE_* variables. Passed in rather than read
	// so loading is reproducible in tests.
	Environ []string
}

// Project is a loaded compose project together with the YAML sources it came
// from, kept so findings can name file and line.
type Project struct {
	*types.Project
	sources *sources
}

// Load reads and normalizes a compose project the way docker compose does:
// interpolation, .env and env_file, profiles, extends, include, merging of
// several files and the project-name rules. Its errors name the key path
// and file:line compose-go's do not (see locateError).
func Load(ctx context.Context, opts LoadOptions) (*Project, error) {
	var included []string
	// The loader options of the load, kept to reproduce a failure on
	// reduced copies of the files (see prober).
	var loadOpts *loader.Options
	po, err := cli.NewProjectOptions(opts.Files,
		cli.WithWorkingDirectory(opts.WorkDir),
		cli.WithEnv(opts.Environ),
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		withEnvFiles(opts.EnvFiles),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(opts.Profiles...),
		cli.WithName(opts.ProjectName),
		cli.WithResolvedPaths(true),
		cli.WithLoadOptions(func(o *loader.Options) {
			// LoadConfigFiles applies the options too, to options without
			// interpolation; keep those of the load proper.
			if o.Interpolate != nil {
				loadOpts = o
			}
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("load compose project: %w", envFileError(err))
	}
	po.WithListeners(func(event string, md map[string]any) {
		if event != "include" {
			return
		}
		wd, _ := md["workingdir"].(string)
		paths, _ := md["path"].(types.StringList)
		for _, p := range paths {
			if !filepath.IsAbs(p) {
				p = filepath.Join(wd, p)
			}
			included = append(included, p)
		}
	})
	files := append([]string(nil), po.ConfigPaths...)
	p, err := po.LoadProject(ctx)
	if err != nil {
		// The source files are parsed only now, after compose-go gave up,
		// to turn its key path into file:line.
		src := readSources(append(files, included...))
		pr := newProber(ctx, po, loadOpts, err)
		return nil, fmt.Errorf("load compose project: %w", src.locateError(err, pr))
	}
	src := readSources(append(append([]string(nil), p.ComposeFiles...), included...))
	return &Project{Project: p, sources: src}, nil
}

// envFileError says file:line of a parse error in a --env-file or .env
// file ("failed to read FILE: line N: …" from compose-go).
func envFileError(err error) error {
	m := dotenvRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(m[2])
	return &LocatedError{Loc: Location{File: m[1], Line: line}, Msg: m[3], Err: err}
}

func init() {
	// docker compose registers env_file's format: raw; compose-go knows
	// only the default (.env syntax).
	dotenv.RegisterFormat("raw", rawEnvFile)
}

// rawEnvFile reads an env_file with format: raw as docker compose does:
// docker run --env-file's KEY=VALUE lines, taken literally (no quotes, no
// interpolation); a KEY alone takes its value from lookup.
func rawEnvFile(r io.Reader, filename string, vars map[string]string, lookup func(string) (string, bool)) error {
	lines, err := kvfile.ParseFromReader(r, lookup)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", filename, err)
	}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		vars[k] = v
	}
	return nil
}

// withEnvFiles keeps docker compose's rule: explicit --env-file files, else
// .env in the project directory. compose-go's own default looks at the real
// process environment for COMPOSE_DISABLE_ENV_FILE, which Load must not.
func withEnvFiles(files []string) cli.ProjectOptionsFn {
	return func(o *cli.ProjectOptions) error {
		if len(files) > 0 {
			o.EnvFiles = files
			return nil
		}
		if v := o.Environment["COMPOSE_DISABLE_ENV_FILE"]; v == "1" || v == "true" {
			return nil
		}
		wd, err := o.GetWorkingDir()
		if err != nil {
			return err
		}
		def := filepath.Join(wd, ".env")
		if st, err := os.Stat(def); err == nil && st.Mode().IsRegular() {
			o.EnvFiles = []string{def}
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read env file %s: %w", def, err)
		}
		return nil
	}
}

// ServiceNames returns the enabled services in a stable order.
func (p *Project) ServiceNames() []string {
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Marshal prints the normalized project like docker compose config: YAML
// (format "yaml" or "") or indented JSON ("json"). Secret contents are never
// included.
func Marshal(p *Project, format string) ([]byte, error) {
	switch format {
	case "", "yaml":
		b, err := p.Project.MarshalYAML()
		if err != nil {
			return nil, fmt.Errorf("print compose project: %w", err)
		}
		return b, nil
	case "json":
		b, err := p.Project.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("print compose project: %w", err)
		}
		return append(b, '\n'), nil
	}
	return nil, fmt.Errorf("print compose project: unknown format %q (want yaml or json)", format)
}
