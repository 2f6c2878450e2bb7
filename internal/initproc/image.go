package initproc

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// imageConfig is the part of an OCI image config (the "config" object of
// the config blob) that decides what a container runs. Go's JSON decoding
// matches the keys case-insensitively, as docker writes them.
type imageConfig struct {
	Config struct {
		Entrypoint []string
		Cmd        []string
		Env        []string
		User       string
		WorkingDir string
		StopSignal string
	} `json:"config"`
}

// maxConfigSize bounds the config read into memory, as berth's pull does.
const maxConfigSize = 8 << 20

// readImageConfig reads the image config berth keeps with the machine and
// nspawn binds in read-only.
func readImageConfig(p string) (imageConfig, error) {
	var c imageConfig
	f, err := os.Open(p)
	if err != nil {
		return c, fmt.Errorf("read image config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return c, fmt.Errorf("read image config %s: %w", p, err)
	}
	if len(b) > maxConfigSize {
		return c, fmt.Errorf("read image config %s: more than %d bytes", p, maxConfigSize)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse image config %s: %w", p, err)
	}
	if err := checkAssignments("the image's Env", c.Config.Env); err != nil {
		return c, fmt.Errorf("image config %s: %w", p, err)
	}
	return c, nil
}

var errNoCommand = errors.New("no command: the image sets no Entrypoint or Cmd and the machine gives none")

// resolve applies docker's rules for running an image: o's overrides over
// img's defaults. A whole command (o.argv) replaces the image's Entrypoint
// and Cmd; a Cmd (o.cmd) replaces only the image's Cmd; the environment
// overrides replace the image's assignments by key, in order; the user and
// working directory overrides win when given; a relative WORKDIR is taken
// from "/"; an explicit stop signal wins over the image's STOPSIGNAL. The
// result reads no image config: it is what berth-init runs.
func resolve(o options, img imageConfig) (options, error) {
	c := img.Config
	r := options{
		user:       cmp.Or(o.user, c.User),
		workdir:    cmp.Or(o.workdir, c.WorkingDir),
		keepHome:   o.keepHome,
		stopSignal: cmp.Or(o.stopSignal, c.StopSignal),
		env:        mergeEnv(c.Env, o.env),
		groupAdd:   o.groupAdd,
		sysctls:    o.sysctls,
	}
	if r.workdir != "" {
		r.workdir = path.Clean("/" + r.workdir)
	}
	switch {
	case o.argv != nil:
		r.argv = o.argv
	case o.cmdSet:
		r.argv = append(append([]string{}, c.Entrypoint...), o.cmd...)
	default:
		r.argv = append(append([]string{}, c.Entrypoint...), c.Cmd...)
	}
	if len(r.argv) == 0 {
		return options{}, errNoCommand
	}
	if _, err := parseSignal(r.stopSignal); err != nil {
		return options{}, fmt.Errorf("stop signal: %w", err)
	}
	for _, kv := range r.env {
		if strings.HasPrefix(kv, "HOME=") {
			// The image or the machine chose HOME; otherwise the
			// user's home applies, as docker does.
			r.keepHome = true
		}
	}
	return r, nil
}

// args is the command line that runs o without an image config: what
// berth-init re-executes itself with once it resolved the image. The
// environment goes with the process, not on the command line.
func (o options) args(argv0 string) []string {
	a := []string{argv0}
	for _, opt := range [][2]string{{"--user", o.user}, {"--workdir", o.workdir}, {"--stop-signal", o.stopSignal}} {
		if opt[1] != "" {
			a = append(a, opt[0], opt[1])
		}
	}
	if o.keepHome {
		a = append(a, "--keep-home")
	}
	a = o.extraArgs(a)
	return append(append(a, "--"), o.argv...)
}

// checkAssignments requires every entry of env to be KEY=VALUE.
func checkAssignments(what string, env []string) error {
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("%s: %q is not KEY=VALUE", what, kv)
		}
	}
	return nil
}

// mergeEnv is base with the assignments of over applied in order: a key
// already set is replaced where it stands, a new one is appended, so a
// key is never set twice.
func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	idx := map[string]int{}
	for _, list := range [][]string{base, over} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// sigRTMin is the first real-time signal as the C library and systemd
// number it (glibc keeps 32 and 33 for itself).
const sigRTMin = 34

// parseSignal reads a stop signal as docker and systemd write it: "SIGINT",
// "INT", "2", "SIGRTMIN+3". "" is SIGTERM.
func parseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n >= 1 && n <= 64 {
			return syscall.Signal(n), nil
		}
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		n := 0
		if rest != "" {
			var err error
			if n, err = strconv.Atoi(strings.TrimPrefix(rest, "+")); err != nil || rest[0] != '+' || n < 0 || n > 30 {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
		}
		return syscall.Signal(sigRTMin + n), nil
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
