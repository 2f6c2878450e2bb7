package initproc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Options of machines made from declarations (berth-generator), which
// cannot be settled when the unit is made: an env file is read when the
// machine starts (podman reads it when the container is created), group
// names resolve in the machine's /etc/group, and net.* sysctls need the
// machine's own network namespace, which exists only once nspawn made it.

// setExtra records one of the options above.
func (o *options) setExtra(flag, v string) error {
	switch flag {
	case "--env-file":
		if !strings.HasPrefix(v, "/") {
			return fmt.Errorf("%s: %q is not an absolute path", flag, v)
		}
		o.envFiles = append(o.envFiles, v)
	case "--group-add":
		if v == "" || strings.ContainsAny(v, ":\n") {
			return fmt.Errorf("%s: %q is not a group", flag, v)
		}
		o.groupAdd = append(o.groupAdd, v)
	case "--sysctl":
		if _, err := sysctlPath(v); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
		o.sysctls = append(o.sysctls, v)
	}
	return nil
}

// extraArgs appends the group and sysctl options to a, for the command
// line berth-init re-executes itself with (env files are read by then).
func (o options) extraArgs(a []string) []string {
	for _, g := range o.groupAdd {
		a = append(a, "--group-add", g)
	}
	for _, s := range o.sysctls {
		a = append(a, "--sysctl", s)
	}
	return a
}

// readEnvFiles puts the assignments of the env files under the --env ones:
// the image's environment, then the files in order, then --env win, as
// podman orders --env-file and --env.
func (o *options) readEnvFiles() error {
	var env []string
	for _, p := range o.envFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read env file: %w", err)
		}
		env = append(env, parseEnvFile(b, os.LookupEnv)...)
	}
	if env != nil {
		o.env = append(env, o.env...)
	}
	o.envFiles = nil
	return nil
}

// parseEnvFile reads docker's and podman's env file format: one KEY=VALUE
// a line, taken as it is (no quotes, no escapes); blank lines and lines
// starting with '#' are skipped; a line that is only a KEY passes that
// variable from the environment (here berth-init's: the machine's) when
// it is set.
func parseEnvFile(b []byte, lookup func(string) (string, bool)) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimLeft(sc.Text(), " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); ok {
			if k != "" {
				out = append(out, line)
			}
			continue
		}
		if v, ok := lookup(strings.TrimSpace(line)); ok {
			out = append(out, strings.TrimSpace(line)+"="+v)
		}
	}
	return out
}

// applyExtras adds the supplementary groups to u and sets the sysctls,
// before the command starts.
func (o options) applyExtras(u *execUser) error {
	if len(o.groupAdd) > 0 {
		groups := readGroup("/etc/group")
		for _, name := range o.groupAdd {
			gid, err := lookupGroup(name, groups)
			if err != nil {
				return err
			}
			u.Groups = append(u.Groups, gid)
		}
	}
	for _, kv := range o.sysctls {
		p, _ := sysctlPath(kv) // checked by setExtra
		_, v, _ := strings.Cut(kv, "=")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set sysctl %s: %w", kv, err)
		}
	}
	return nil
}

// lookupGroup is a group ID, or a group name from the machine's
// /etc/group.
func lookupGroup(name string, groups []groupEntry) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	for _, g := range groups {
		if g.name == name {
			return g.gid, nil
		}
	}
	return 0, fmt.Errorf("add group %q: no such group in /etc/group", name)
}

// sysctlPath is where a net.KEY=VALUE sysctl is written. Only net.* is
// accepted: nspawn mounts the rest of /proc/sys read-only, and net.* is
// the machine's own only with its own network namespace.
func sysctlPath(kv string) (string, error) {
	k, _, ok := strings.Cut(kv, "=")
	if !ok || !strings.HasPrefix(k, "net.") || strings.ContainsAny(k, "/ ") || strings.Contains(k, "..") || strings.HasSuffix(k, ".") {
		return "", fmt.Errorf("%q is not net.KEY=VALUE", kv)
	}
	return "/proc/sys/" + strings.ReplaceAll(k, ".", "/"), nil
}
