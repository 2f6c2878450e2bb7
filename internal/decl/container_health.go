package decl

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/unit"
)

// healthPlan is the declaration's health check, run from the host by
// berth's watcher (`berth compose _health`, the one compose units use) in
// a unit beside the machine's: NAME-health.service, Type=notify, ready
// once the check first passed.
type healthPlan struct {
	// cmd is the test: a command, or with shell one string for /bin/sh -c.
	cmd   []string
	shell bool
	// none is HealthCmd=none: no check.
	none bool
	// Podman's defaults (as docker's).
	interval, timeout, startPeriod time.Duration
	retries                        uint64
	// disabled is HealthInterval=disable: podman runs no timer.
	disabled bool
	// stop is HealthOnFailure=stop: the machine stops when it turns
	// unhealthy.
	stop bool
	// notify is Notify=healthy: the machine's unit is started only once
	// the check passed.
	notify bool
	// keys lists the health entries given, for "needs HealthCmd=".
	keys []Entry
	// bad: HealthCmd= was given but is wrong (reported already).
	bad bool
}

func (h *healthPlan) run() bool { return h.cmd != nil && !h.none && !h.disabled }

func (k *ctr) planHealthCmd(e Entry) {
	h := &k.more.health
	cmd, shell, err := healthTest(e.Value)
	h.bad = err != nil
	switch {
	case err != nil:
		k.err(containerGroup, e, "%v", err)
	case cmd == nil:
		h.none, h.cmd = true, nil
	default:
		h.none, h.cmd, h.shell = false, cmd, shell
	}
}

// healthTest reads HealthCmd= as podman's --health-cmd: "none" disables;
// a JSON array is ["CMD", ARG...], ["CMD-SHELL", STRING], or the command's
// words (one word: a shell string); "CMD ARG..." is split at blanks; any
// other string is run by /bin/sh -c.
func healthTest(v string) (cmd []string, shell bool, err error) {
	var arr []string
	isArr := json.Unmarshal([]byte(v), &arr) == nil
	if !isArr {
		arr = strings.Fields(v)
		if len(arr) > 0 && !strings.EqualFold(arr[0], "CMD") && !strings.EqualFold(arr[0], "NONE") {
			arr = []string{"CMD-SHELL", v}
		}
	}
	if len(arr) == 0 {
		return nil, false, fmt.Errorf("%q names no command", v)
	}
	switch strings.ToUpper(arr[0]) {
	case "NONE":
		return nil, false, nil
	case "CMD":
		if len(arr) < 2 {
			return nil, false, fmt.Errorf("%q: CMD names no command", v)
		}
		return arr[1:], false, nil
	case "CMD-SHELL":
		if len(arr) != 2 {
			return nil, false, fmt.Errorf("%q: CMD-SHELL takes one command string", v)
		}
		return arr[1:], true, nil
	}
	if len(arr) == 1 {
		return arr, true, nil
	}
	return arr, false, nil
}

func (k *ctr) planHealthInterval(e Entry) {
	h := &k.more.health
	h.keys = append(h.keys, e)
	if e.Value == "disable" {
		h.disabled = true
		return
	}
	h.disabled = false
	k.duration(e, &h.interval, false)
}

func (k *ctr) planHealthTimeout(e Entry) {
	h := &k.more.health
	h.keys = append(h.keys, e)
	k.duration(e, &h.timeout, false)
}

func (k *ctr) planHealthStartPeriod(e Entry) {
	h := &k.more.health
	h.keys = append(h.keys, e)
	k.duration(e, &h.startPeriod, true)
}

func (k *ctr) planHealthRetries(e Entry) {
	h := &k.more.health
	h.keys = append(h.keys, e)
	n, err := strconv.ParseUint(e.Value, 10, 32)
	if err != nil || n == 0 {
		k.err(containerGroup, e, "%q is not a number of retries (1 or more)", e.Value)
		return
	}
	h.retries = n
}

func (k *ctr) planHealthOnFailure(e Entry) {
	h := &k.more.health
	h.keys = append(h.keys, e)
	switch e.Value {
	case "none":
		h.stop = false
	case "stop":
		h.stop = true
	case "kill", "restart":
		k.err(containerGroup, e, "%s: systemd has no dependency that kills or restarts a unit when another fails; use stop (the machine's unit is bound to its health unit) or none", e.Value)
	default:
		k.err(containerGroup, e, "%q is not none, stop, kill or restart", e.Value)
	}
}

func (k *ctr) planHealthLogDestination(e Entry) {
	if e.Value != "local" {
		k.err(containerGroup, e, "%q: berth keeps the last results in %s/MACHINE.json (local); other destinations are not supported", e.Value, healthDir)
	}
}

// duration reads a Go duration (podman's format for the health timings),
// positive, or not negative with zero.
func (k *ctr) duration(e Entry, d *time.Duration, zero bool) {
	v, err := time.ParseDuration(e.Value)
	if err != nil || v < 0 || v == 0 && !zero {
		k.err(containerGroup, e, "%q is not a positive duration (30s, 1m30s)", e.Value)
		return
	}
	*d = v
}

// finishHealth checks that the health keys have a test to apply to, and
// ties the machine's unit to the health unit.
func (k *ctr) finishHealth() {
	h := &k.more.health
	if h.bad {
		return
	}
	if h.cmd == nil && !h.none {
		for _, e := range h.keys {
			k.err(containerGroup, e, "needs HealthCmd=: the image's HEALTHCHECK is not known when units are made")
		}
		if h.notify {
			k.err(containerGroup, k.entry("Notify"), "healthy needs HealthCmd=")
		}
		return
	}
	if !h.run() {
		if h.notify {
			k.err(containerGroup, k.entry("Notify"), "healthy needs a health check that runs (HealthCmd= is none or HealthInterval= disable)")
		}
		return
	}
	u := instanceUnit(k.serviceInstance(), "-health")
	if h.stop {
		// The watcher exits when the machine turns unhealthy; a unit
		// bound to it stops with it.
		k.spec.Unit.BindsTo = append(k.spec.Unit.BindsTo, u)
	} else {
		k.spec.Unit.Wants = append(k.spec.Unit.Wants, u)
	}
}

// healthArgv is the watcher's command line; until makes it the wait of
// Notify=healthy, which exits once the check passed and keeps no state.
func (k *ctr) healthArgv(until bool) []string {
	h := &k.more.health
	dur := func(d, def time.Duration) string {
		if d == 0 {
			d = def
		}
		return d.String()
	}
	interval := dur(h.interval, 30*time.Second)
	retries := h.retries
	if retries == 0 {
		retries = 3
	}
	argv := []string{k.opts.Berth, "compose", "_health", "--machine", k.spec.Name,
		"--interval", interval,
		"--timeout", dur(h.timeout, 30*time.Second),
		"--retries", strconv.FormatUint(retries, 10),
		"--start-period", h.startPeriod.String(),
		// podman checks at the interval in the start period too.
		"--start-interval", interval,
	}
	if until {
		argv = append(argv, "--until-healthy")
	} else {
		argv = append(argv, "--state", path.Join(healthDir, k.spec.Name+".json"))
		if h.stop {
			argv = append(argv, "--exit-unhealthy")
		}
	}
	if h.shell {
		argv = append(argv, "--shell")
	}
	return append(append(argv, "--"), h.cmd...)
}

// healthUnit renders the watcher's unit, as compose renders its own: it
// needs the machine, stops and restarts with it, and is ready once the
// check first passed.
func (k *ctr) healthUnit() *unit.File {
	f := unit.New(unit.Systemd)
	f.Comments = []string{"Generated by berth-generator from " + k.in.File.Path + "; do not edit."}
	u := f.Section("Unit")
	u.Add("Description", "health check of berth machine "+k.spec.Name)
	m := k.serviceInstance()
	u.Add("Requires", m)
	u.Add("After", m)
	u.Add("PartOf", m)
	s := f.Section("Service")
	s.Add("Type", "notify")
	s.Add("NotifyAccess", "main")
	s.Add("TimeoutStartSec", "infinity")
	s.AddCommand("ExecStart", "", k.healthArgv(false)...)
	return f
}
