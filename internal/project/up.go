package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/berth-sh/berth/internal/compose"
)

// pollInterval is how often unit states are read while waiting.
const pollInterval = 250 * time.Millisecond

// ErrNotReady: a service did not reach running/healthy (its unit failed,
// a dependency failed, or the wait timed out).
var ErrNotReady = errors.New("services not ready")

// UpOptions say what `berth compose up` does.
type UpOptions struct {
	// Convert is passed to compose.Convert; its directories are taken
	// from the Host, its Images from Images.
	Convert compose.ConvertOptions
	// Images supplies root filesystems. Required.
	Images Images
	// Services limits up to these services and what they depend on.
	// Empty: every service.
	Services []string
	// Pull is "missing" (default: pull only images a machine does not
	// have), "always", or "never" (a machine without its image is an
	// error).
	Pull string
	// ForceRecreate restarts every selected machine that is running,
	// changed or not (docker compose up --force-recreate).
	ForceRecreate bool
	// NoRecreate leaves running machines running even when their
	// configuration or image changed; the change applies when they next
	// restart, and the next up without it restarts them.
	NoRecreate bool
	// NoStart installs and reloads but starts nothing.
	NoStart bool
	// NoDeps starts only Services, not what they depend on (their
	// required dependencies' start checks still apply).
	NoDeps bool
	// Timeout bounds the wait for running/healthy. Default 5 minutes.
	Timeout time.Duration
}

// UpResult says what up did.
type UpResult struct {
	Project   string
	Pulled    []string // machines that got a new image
	Restarted []string // running machines restarted for a change
	Removed   []string // machines of services no longer in the project
	Findings  compose.Findings
}

// convertOptions fills the conversion's directories from the host.
func (h *Host) convertOptions(o compose.ConvertOptions, imgs Images) compose.ConvertOptions {
	o.Root, o.MachinesDir, o.UnitDir, o.NspawnDir = h.Root, h.MachinesDir, h.UnitDir, h.NspawnDir
	o.Images = imgs.Info
	return o
}

// Up converts p, pulls missing images, installs the file set, reloads
// systemd, restarts running machines whose configuration or image
// changed, starts the project target (or the selected services) and waits
// until every started service is running, completed or healthy.
func (h *Host) Up(ctx context.Context, p *compose.Project, o UpOptions) (*UpResult, error) {
	h.fill()
	if o.Images == nil {
		return nil, errors.New("up: no image source")
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	switch o.Pull {
	case "", "missing", "always", "never":
	default:
		return nil, fmt.Errorf("up %s: pull policy %q: want missing, always or never", p.Name, o.Pull)
	}
	if o.ForceRecreate && o.NoRecreate {
		return nil, fmt.Errorf("up %s: force-recreate and no-recreate exclude each other", p.Name)
	}
	unlock, err := h.lock(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &UpResult{Project: p.Name}
	co := h.convertOptions(o.Convert, o.Images)

	first, err := firstPlan(p, co)
	if first == nil {
		return nil, err
	}
	selected, err := withDependencies(first, o.Services)
	if err != nil {
		return nil, err
	}
	if o.NoDeps && len(o.Services) > 0 {
		selected = map[string]bool{}
		for _, n := range o.Services {
			selected[n] = true
		}
	}
	digests, err := h.pullImages(ctx, first, selected, o, res)
	if err != nil {
		return nil, err
	}

	unlockSubnets, taken, err := h.reserveSubnets(ctx, p.Name)
	if err != nil {
		return res, fmt.Errorf("up %s: %w", p.Name, err)
	}
	co.TakenSubnets = taken
	conv, err := compose.Convert(p, co)
	if conv != nil {
		res.Findings = conv.Findings
	}
	if err != nil {
		unlockSubnets()
		return res, err
	}
	hashes, err := h.install(ctx, p.Name, conv, co, digests, o.Images, res)
	unlockSubnets()
	if err != nil {
		return res, err
	}
	if err := h.restartChanged(ctx, p.Name, conv.Plan, hashes, selected, o, p.ComposeFiles, res); err != nil {
		return res, err
	}
	if o.NoStart {
		return res, nil
	}
	return res, h.start(ctx, conv.Plan, selected, o)
}

// firstPlan is the first conversion, which only names the machines and
// their images (machines resolve their image when they start, so images
// not pulled yet do not stop it); the second conversion, after pulling,
// knows every image's volumes and healthcheck. A nil plan comes with the
// conversion's error.
func firstPlan(p *compose.Project, co compose.ConvertOptions) (*compose.Plan, error) {
	first, err := compose.Convert(p, co)
	if first == nil || first.Plan == nil || first.Findings.Err() != nil {
		return nil, err
	}
	return first.Plan, nil
}

// pullImages gives every machine of plan its image: pulled, or copied from
// another machine that has the current version. It returns each machine's
// image digest.
func (h *Host) pullImages(ctx context.Context, plan *compose.Plan, selected map[string]bool, o UpOptions, res *UpResult) (map[string]string, error) {
	digests := map[string]string{}
	// fresh maps an image to a machine that has its current version, so
	// further instances copy that machine's tree instead of unpacking
	// the layers again.
	fresh := map[string]string{}
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			d, ok := o.Images.Installed(in.Machine, sp.Image)
			// Images of services up does not start are pulled only
			// when missing: every service is installed (the target
			// wants them all), so each needs its image.
			if ok && (o.Pull != "always" || !selected[sp.Name]) {
				digests[in.Machine] = d
				if o.Pull != "always" {
					fresh[sp.Image] = in.Machine
				}
				continue
			}
			if sp.Image == "" {
				return nil, fmt.Errorf("up %s: service %s has no image: (berth cannot build)", plan.Project, sp.Name)
			}
			if o.Pull == "never" {
				return nil, fmt.Errorf("up %s: service %s: machine %s does not have image %s and --pull never forbids pulling it (run berth compose pull, or up --pull missing)", plan.Project, sp.Name, in.Machine, sp.Image)
			}
			unit := in.Unit
			stop := func() error { return h.systemctl(ctx, "stop", "--", unit) }
			var nd string
			var err error
			if src, ok := fresh[sp.Image]; ok {
				fmt.Fprintf(h.Stderr, "berth: copying %s from %s to %s\n", sp.Image, src, in.Machine)
				nd, err = o.Images.Clone(ctx, src, in.Machine, stop)
			} else {
				fmt.Fprintf(h.Stderr, "berth: pulling %s for %s\n", sp.Image, in.Machine)
				nd, err = o.Images.Pull(ctx, sp.Image, in.Machine, stop)
			}
			if err != nil {
				return nil, fmt.Errorf("up %s: service %s: %w", plan.Project, sp.Name, err)
			}
			if nd != d {
				res.Pulled = append(res.Pulled, in.Machine)
			}
			digests[in.Machine] = nd
			fresh[sp.Image] = in.Machine
		}
	}
	return digests, nil
}

// install checks the converted project against the host, removes what an
// earlier up installed and the project no longer has, writes the file set,
// reloads systemd and enables the project target. It returns each
// machine's hash (see machineHashes).
func (h *Host) install(ctx context.Context, name string, conv *compose.Result, co compose.ConvertOptions, digests map[string]string, imgs Images, res *UpResult) (map[string]string, error) {
	plan := conv.Plan
	if err := h.checkSubnets(ctx, plan); err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	hashes, err := machineHashes(plan, conv.Files, co, digests)
	if err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	if prev, _ := h.Manifest(name); prev != nil {
		removed, err := h.removeStale(ctx, prev, conv.Files, co, imgs)
		res.Removed = removed
		if err != nil {
			return nil, fmt.Errorf("up %s: %w", name, err)
		}
	}
	if err := h.createMountPoints(readOnlyMountPoints(plan, conv.Files)); err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	if err := h.seedVolumes(conv.Files); err != nil {
		return nil, fmt.Errorf("up %s: %w", name, err)
	}
	if err := compose.WriteTree("/", installOrder(conv.Files, co, plan.Target), compose.TreeOptions{Chown: true}); err != nil {
		return nil, fmt.Errorf("up %s: install units: %w", name, err)
	}
	if err := h.systemctl(ctx, "daemon-reload"); err != nil {
		return nil, fmt.Errorf("up %s: reload systemd: %w", name, err)
	}
	// Enabled, the target comes back with multi-user.target after a
	// reboot, and with it every machine it wants.
	if err := h.systemctl(ctx, "enable", "--", plan.Target); err != nil {
		return nil, fmt.Errorf("up %s: enable %s: %w", name, plan.Target, err)
	}
	return hashes, nil
}

// restartChanged restarts the running machines whose hash changed since
// the last up (unless noStart or NoRecreate; with ForceRecreate every
// selected one) and records the new hashes.
func (h *Host) restartChanged(ctx context.Context, name string, plan *compose.Plan, hashes map[string]string, selected map[string]bool, o UpOptions, files []string, res *UpResult) error {
	old := h.readApplied(name)
	var changed []string
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			was, ok := old.Hashes[in.Machine]
			switch {
			case o.ForceRecreate && selected[sp.Name]:
			case !ok || was == hashes[in.Machine]:
				continue
			case o.NoRecreate:
				// Keep the old hash: the next up restarts it.
				hashes[in.Machine] = was
				continue
			}
			changed = append(changed, in.Unit)
			res.Restarted = append(res.Restarted, in.Machine)
		}
	}
	if len(changed) > 0 && !o.NoStart {
		// try-restart leaves stopped machines stopped; the start
		// below brings up the ones this up selects.
		if err := h.systemctl(ctx, append([]string{"try-restart", "--"}, changed...)...); err != nil {
			return fmt.Errorf("up %s: restart changed services: %w", name, err)
		}
	}
	if err := h.writeApplied(name, applied{Hashes: hashes, ConfigFiles: files}); err != nil {
		return fmt.Errorf("up %s: %w", name, err)
	}
	return nil
}

// start starts the project target (or, with o.Services, the selected
// services' units) and waits until they are ready.
func (h *Host) start(ctx context.Context, plan *compose.Plan, selected map[string]bool, o UpOptions) error {
	if len(o.Services) == 0 {
		if err := h.systemctl(ctx, "start", "--no-block", "--", plan.Target); err != nil {
			return fmt.Errorf("up %s: start %s: %w", plan.Project, plan.Target, err)
		}
	}
	var watch, start []string
	for _, sp := range plan.Services {
		if !selected[sp.Name] {
			continue
		}
		for _, in := range sp.Instances {
			watch = append(watch, in.Unit)
			start = append(start, in.Unit)
			if sp.Health != nil {
				watch = append(watch, compose.HealthUnit(in.Machine))
				start = append(start, compose.HealthUnit(in.Machine))
			}
			for _, pp := range in.Ports {
				start = append(start, pp.Unit+".socket")
			}
		}
	}
	if len(o.Services) > 0 {
		if err := h.systemctl(ctx, append([]string{"start", "--no-block", "--"}, start...)...); err != nil {
			return fmt.Errorf("up %s: start services: %w", plan.Project, err)
		}
	}
	return h.wait(ctx, plan.Project, unitNames(plan), watch, o.Timeout)
}

// withDependencies returns the selected services and everything they
// depend on, transitively (docker compose up SERVICE starts its
// dependencies too). Empty names select every service.
func withDependencies(plan *compose.Plan, names []string) (map[string]bool, error) {
	byName := map[string]*compose.ServicePlan{}
	for _, sp := range plan.Services {
		byName[sp.Name] = sp
	}
	sel := map[string]bool{}
	if len(names) == 0 {
		for n := range byName {
			sel[n] = true
		}
		return sel, nil
	}
	var visit func(string) error
	visit = func(n string) error {
		sp, ok := byName[n]
		if !ok {
			return fmt.Errorf("select service %q in project %s: %w", n, plan.Project, ErrNoService)
		}
		if sel[n] {
			return nil
		}
		sel[n] = true
		for _, d := range sp.Deps {
			if err := visit(d.Service); err != nil {
				return err
			}
		}
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return sel, nil
}

// unitNames maps machine and health units to "service" / "service (health)"
// labels for reports.
func unitNames(plan *compose.Plan) map[string]string {
	out := map[string]string{}
	for _, sp := range plan.Services {
		for _, in := range sp.Instances {
			label := sp.Name
			if len(sp.Instances) > 1 {
				label = fmt.Sprintf("%s-%d", sp.Name, in.Index)
			}
			out[in.Unit] = label
			out[compose.HealthUnit(in.Machine)] = label + " (healthcheck)"
		}
	}
	return out
}

func manifestUnitNames(m *Manifest) map[string]string {
	out := map[string]string{}
	for _, s := range m.Services {
		for i, in := range s.Instances {
			label := s.Name
			if len(s.Instances) > 1 {
				label = fmt.Sprintf("%s-%d", s.Name, i+1)
			}
			out[in.Unit] = label
			if in.Health != "" {
				out[in.Health] = label + " (healthcheck)"
			}
		}
	}
	return out
}

// wait polls the units until all are active (a oneshot counts once it
// exited 0, a health unit once its check first passed). It fails as soon
// as no unit has a job left and one of them is not active, or at the
// timeout, naming each unit that is not ready with its last log lines.
func (h *Host) wait(ctx context.Context, project string, labels map[string]string, units []string, timeout time.Duration) error {
	if len(units) == 0 {
		return nil
	}
	deadline := h.Now().Add(timeout)
	for {
		// Jobs first: a unit seen without a job and then inactive
		// has truly stopped, since nothing queues new jobs meanwhile.
		jobs, err := h.pendingJobs(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", project, err)
		}
		states, err := h.show(ctx, units)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", project, err)
		}
		ready, busy := 0, false
		var bad []unitState
		for _, st := range states {
			switch {
			case st["ActiveState"] == "active" || exitedCleanly(st):
				ready++
			case jobs[st["Id"]] || st["ActiveState"] == "activating" || st["ActiveState"] == "reloading" || st["ActiveState"] == "deactivating":
				busy = true
				if st["SubState"] == "auto-restart" {
					bad = append(bad, st)
				}
			default:
				bad = append(bad, st)
			}
		}
		if ready == len(states) {
			return nil
		}
		timedOut := !h.Now().Before(deadline)
		if (!busy && len(bad) > 0) || timedOut {
			if timedOut {
				bad = nil
				for _, st := range states {
					if st["ActiveState"] != "active" {
						bad = append(bad, st)
					}
				}
			}
			return h.report(ctx, project, labels, bad, timedOut, timeout)
		}
		if err := h.Sleep(ctx, pollInterval); err != nil {
			return fmt.Errorf("wait for %s: %w", project, err)
		}
	}
}

// exitedCleanly: a service without restart whose command ran and exited
// 0 (docker's "exited (0)"), which up accepts as docker does.
func exitedCleanly(st unitState) bool {
	return st["ActiveState"] == "inactive" && st["Result"] == "success" && st["ExecMainCode"] == "1" && st["ExecMainStatus"] == "0"
}

// report explains which services are not ready: the unit's state and
// result, the exit status of its main process, and its last log lines.
// Units that merely did not start because a dependency failed say so and
// show no logs, so the cause stands out.
func (h *Host) report(ctx context.Context, project string, labels map[string]string, bad []unitState, timedOut bool, timeout time.Duration) error {
	sort.SliceStable(bad, func(i, j int) bool { return labels[bad[i]["Id"]] < labels[bad[j]["Id"]] })
	var b strings.Builder
	if timedOut {
		fmt.Fprintf(&b, "project %s: not ready after %v:", project, timeout)
	} else {
		fmt.Fprintf(&b, "project %s:", project)
	}
	for _, st := range bad {
		id := st["Id"]
		label := labels[id]
		if label == "" {
			label = id
		}
		what := st["ActiveState"]
		if st["SubState"] != "" && st["SubState"] != what {
			what += " (" + st["SubState"] + ")"
		}
		logs := true
		switch {
		case st["ActiveState"] == "inactive" && (st["Result"] == "success" || st["Result"] == "") && !timedOut:
			what = "not started: a service it depends on failed"
			logs = false
		case st["Result"] != "" && st["Result"] != "success":
			what += ", result " + st["Result"]
		}
		if st["ExecMainStatus"] != "" && st["ExecMainStatus"] != "0" {
			what += ", exit status " + st["ExecMainStatus"]
		}
		fmt.Fprintf(&b, "\n  %s (%s): %s", label, id, what)
		if logs {
			if tail := h.lastLines(ctx, id, 10); tail != "" {
				b.WriteString("\n    | " + strings.ReplaceAll(tail, "\n", "\n    | "))
			}
		}
	}
	return fmt.Errorf("%s\n%w", b.String(), ErrNotReady)
}

// removeStale stops and removes what an earlier up installed and the new
// file set no longer has: units, .nspawn files, machines of removed
// services (root filesystems and state; never volumes).
func (h *Host) removeStale(ctx context.Context, prev *Manifest, files []compose.File, co compose.ConvertOptions, imgs Images) ([]string, error) {
	have := map[string]bool{}
	for _, f := range files {
		have[f.Path] = true
	}
	var units []string
	for _, u := range prev.Units {
		if !have[filepath.Join(co.UnitDir, u)] {
			units = append(units, u)
		}
	}
	var machines []string
	for _, s := range prev.Services {
		for _, in := range s.Instances {
			if !have[filepath.Join(co.NspawnDir, in.Machine+".nspawn")] {
				machines = append(machines, in.Machine)
			}
		}
	}
	if len(units) == 0 && len(machines) == 0 {
		return nil, nil
	}
	if len(units) > 0 {
		if err := h.systemctl(ctx, append([]string{"stop", "--"}, units...)...); err != nil {
			return nil, fmt.Errorf("stop removed units: %w", err)
		}
		for _, u := range units {
			if err := os.Remove(filepath.Join(co.UnitDir, u)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("remove unit %s: %w", u, err)
			}
		}
	}
	for _, m := range machines {
		fmt.Fprintf(h.Stderr, "berth: removing %s: its service is no longer in the project\n", m)
		if err := os.Remove(filepath.Join(co.NspawnDir, m+".nspawn")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove machine %s: %w", m, err)
		}
		if err := imgs.Remove(ctx, m); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(filepath.Join(h.Dir(prev.Project), "machines", m)); err != nil {
			return nil, fmt.Errorf("remove machine %s: %w", m, err)
		}
	}
	return machines, nil
}
