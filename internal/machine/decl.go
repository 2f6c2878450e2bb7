package machine

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/berth-sh/berth/internal/unit"
)

// DeclSettings are what declarations (quadlet's [Container] keys) ask of
// a machine beyond `docker run`'s: settled when the machine starts, since
// the generator that makes their units may read and write nothing else.
type DeclSettings struct {
	// EnvFiles are host files of KEY=VALUE lines (podman's --env-file),
	// bound into the machine read-only and read by berth-init when it
	// starts: over the image's environment, under the Overrides'.
	EnvFiles []string
	// GroupAdd are supplementary groups of the command, names (resolved
	// in the machine's /etc/group) or IDs.
	GroupAdd []string
	// Sysctls are net.KEY=VALUE settings berth-init writes in the
	// machine's own network namespace before the command starts.
	Sysctls []string
	// Timezone is nspawn's Timezone= ("" = auto: the host's zone).
	Timezone string
	// Inaccessible are paths in the machine that are masked (nspawn's
	// Inaccessible=; each must exist in the machine).
	Inaccessible []string
}

// envFileDir is where the env files appear in the machine, numbered.
const envFileDir = "/.berth/env"

func (d *DeclSettings) initOptions() []string {
	var argv []string
	for i := range d.EnvFiles {
		argv = append(argv, "--env-file", path.Join(envFileDir, strconv.Itoa(i)))
	}
	for _, g := range d.GroupAdd {
		argv = append(argv, "--group-add", g)
	}
	for _, s := range d.Sysctls {
		argv = append(argv, "--sysctl", s)
	}
	return argv
}

func (d *DeclSettings) files(files *unit.Section, privateUsers string) {
	for i, f := range d.EnvFiles {
		// idmap: the machine's root reads a file only the host's root
		// may (env files hold secrets).
		var opts []string
		if privateUsers != "no" {
			opts = []string{"idmap"}
		}
		files.AddBind("BindReadOnly", f, path.Join(envFileDir, strconv.Itoa(i)), opts...)
	}
	for _, p := range d.Inaccessible {
		files.Add("Inaccessible", p)
	}
}

func (d *DeclSettings) validate() error {
	for _, f := range d.EnvFiles {
		if !isCleanAbs(f) {
			return fmt.Errorf("%w: env file %q must be an absolute clean path", ErrInvalidSpec, f)
		}
	}
	for _, g := range d.GroupAdd {
		if g == "" || strings.ContainsAny(g, ": \t\n") {
			return fmt.Errorf("%w: group %q", ErrInvalidSpec, g)
		}
	}
	for _, s := range d.Sysctls {
		k, _, ok := strings.Cut(s, "=")
		if !ok || !strings.HasPrefix(k, "net.") || strings.ContainsAny(s, "/ \t\n") || strings.Contains(k, "..") {
			return fmt.Errorf("%w: sysctl %q is not net.KEY=VALUE", ErrInvalidSpec, s)
		}
	}
	switch d.Timezone {
	case "", "off", "copy", "bind", "symlink", "delete", "auto":
	default:
		return fmt.Errorf("%w: Timezone=%q is not a mode systemd-nspawn knows", ErrInvalidSpec, d.Timezone)
	}
	for _, p := range d.Inaccessible {
		if !isCleanAbs(p) || p == "/" || strings.ContainsAny(p, " \t\n\"'\\") {
			return fmt.Errorf("%w: inaccessible path %q must be an absolute clean path other than / without blanks, quotes or backslashes", ErrInvalidSpec, p)
		}
	}
	return nil
}
