package testhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cleanup runs when the test ends: it saves the journal of a failed test,
// then powers the host off and removes everything it left, unless
// BERTH_E2E_KEEP=1 asks to keep it running.
func (h *Host) cleanup() {
	p, leader := h.current()
	up := p != nil && leader != 0 && !p.exited()
	if h.t.Failed() {
		h.saveArtifacts()
	}
	if h.keep && up {
		h.t.Logf("testhost %s: kept running (BERTH_E2E_KEEP=1)\n  enter: nsenter -t %d -a -r -w /bin/bash\n  stop:  kill %d  (systemd-nspawn; powers the host off), then rm -rf %s\n  or:    scripts/e2e.sh stop",
			h.name, leader, p.cmd.Process.Pid, h.dir)
		return
	}
	if p != nil {
		if err := h.shutdown(p); err != nil {
			h.t.Error(err)
		}
	}
	if h.console != nil {
		h.console.Close()
	}
	if h.cg != nil {
		if err := h.cg.remove(); err != nil {
			h.t.Errorf("testhost %s: %v", h.name, err)
		}
	}
	if err := os.RemoveAll(h.dir); err != nil {
		h.t.Errorf("testhost %s: remove host dir: %v", h.name, err)
	}
}

// shutdown powers the host off and waits for every one of its processes to
// be gone. It escalates from a clean poweroff (systemctl, else systemd's
// poweroff signal) to systemd-nspawn's immediate termination and a SIGKILL
// of systemd-nspawn (by PID), and finally kills the host's cgroup.
func (h *Host) shutdown(p *nspawnProc) error {
	begin := time.Now()
	var problems []string
	if !p.exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		// --no-block: systemctl must not wait for a manager that is about
		// to stop; nspawn's exit tells us it is done.
		r, err := h.Run(ctx, "systemctl", "poweroff", "--no-block")
		cancel()
		if err == nil && r.ExitCode == 0 {
			if !waitDone(p, time.Minute) {
				problems = append(problems, "no poweroff within 1m of systemctl poweroff")
			}
		} else {
			// Not booted far enough for systemctl (a boot that timed
			// out, say). systemd drops signals it has no handler for
			// yet, so repeat its poweroff signal until it is heard.
			h.signalPoweroff(p, 30*time.Second)
		}
	}
	if !p.exited() {
		// nspawn's first SIGTERM asks the init to halt (which may be lost
		// like the signals above); the second terminates the container
		// at once.
		problems = append(problems, "sent SIGTERM twice to systemd-nspawn (immediate termination)")
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		waitDone(p, time.Second)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if !waitDone(p, 20*time.Second) {
			problems = append(problems, "still running 20s later; sent SIGKILL to systemd-nspawn")
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	// Nothing should be left; if the init survived a killed nspawn, it and
	// its children are still in the host's cgroup.
	if h.cg != nil {
		// Processes that are exiting may linger an instant.
		for deadline := time.Now().Add(5 * time.Second); len(h.cg.pids()) > 0 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if pids := h.cg.pids(); len(pids) > 0 {
			problems = append(problems, fmt.Sprintf("processes %v left after systemd-nspawn exited; killed the host's cgroup", pids))
			if err := h.cg.kill(); err != nil {
				problems = append(problems, err.Error())
			}
			deadline := time.Now().Add(30 * time.Second)
			for len(h.cg.pids()) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if pids := h.cg.pids(); len(pids) > 0 {
				problems = append(problems, fmt.Sprintf("processes %v survived SIGKILL", pids))
			}
		}
	}
	h.t.Logf("testhost %s: shut down in %v", h.name, time.Since(begin).Round(time.Millisecond))
	if len(problems) > 0 {
		return fmt.Errorf("shut down test host %s: %s", h.name, strings.Join(problems, "; "))
	}
	return nil
}

// sigPoweroff is SIGRTMIN+4 as glibc numbers it (its SIGRTMIN is the
// kernel's 32 + 2): systemd's "start poweroff.target".
const sigPoweroff = syscall.Signal(38)

// signalPoweroff sends systemd's poweroff signal to the host's init every
// second until systemd-nspawn exits or d has passed.
func (h *Host) signalPoweroff(p *nspawnProc, d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		_, leader := h.current()
		if leader == 0 {
			leader, _ = findContainerInit("/proc", p.cmd.Process.Pid)
		}
		if leader != 0 {
			_ = syscall.Kill(leader, sigPoweroff)
		}
		if waitDone(p, time.Second) {
			return
		}
	}
}

func waitDone(p *nspawnProc, d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// saveArtifacts writes the host's full journal and console log to the
// artifact directory and the journal's tail to the test log.
func (h *Host) saveArtifacts() {
	if h.dir == "" || h.console == nil {
		return
	}
	dir := filepath.Join(h.opts.ArtifactDir, artifactName(h.t.Name())+"-"+h.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Logf("testhost %s: cannot save artifacts: %v", h.name, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var journal string
	if r, err := h.Run(ctx, "journalctl", "--no-pager", "-o", "short-precise"); err == nil && r.ExitCode == 0 {
		journal = r.Stdout
	} else if out, err := h.offlineJournal(ctx, "-o", "short-precise"); err == nil {
		journal = out
	} else {
		journal = fmt.Sprintf("(journal unavailable: %v)\n", err)
	}
	jpath := filepath.Join(dir, "journal.txt")
	cpath := filepath.Join(dir, "console.log")
	errs := []error{os.WriteFile(jpath, []byte(journal), 0o644)}
	if data, err := os.ReadFile(h.console.Name()); err == nil {
		errs = append(errs, os.WriteFile(cpath, data, 0o644))
	}
	if err := errors.Join(errs...); err != nil {
		h.t.Logf("testhost %s: saving artifacts: %v", h.name, err)
	}
	h.t.Logf("testhost %s: test failed; journal in %s, console in %s; last journal lines:\n%s",
		h.name, jpath, cpath, tailLines(journal, 60))
}

var artifactUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// artifactName turns a test name (with subtests' slashes) into a file name.
func artifactName(testName string) string {
	return strings.Trim(artifactUnsafe.ReplaceAllString(testName, "_"), "_")
}

// hostNameRE matches the machine names Boot gives hosts: bt<owner pid>-<n>.
var hostNameRE = regexp.MustCompile(`^bt([0-9]+)-[0-9]+$`)

// sweepStale removes what test binaries that died without cleanup (killed
// by a timeout or by hand) left behind: host directories and empty cgroups.
// Their hosts are already gone: systemd-nspawn got SIGTERM when its test
// binary died. Hosts of running test binaries, and hosts kept with
// BERTH_E2E_KEEP=1 (whose systemd-nspawn still runs), are left alone.
func sweepStale(t testing.TB) {
	sweepStaleDirs(t)
	sweepStaleCgroups(t)
}

// ownerAlive reports whether the test binary that named a host (bt<pid>-<n>)
// still runs; false for names not made by Boot.
func ownerAlive(hostName string) (alive, ok bool) {
	m := hostNameRE.FindStringSubmatch(hostName)
	if m == nil {
		return false, false
	}
	_, err := os.Stat(filepath.Join("/proc", m[1]))
	return err == nil, true
}

// hostDirRE matches the directories Boot makes: berth-testhost-<name>-<random>.
var hostDirRE = regexp.MustCompile(`^berth-testhost-(bt[0-9]+-[0-9]+)-[0-9]+$`)

// binDirRE matches the directories of binaries built by a test binary:
// berth-testhost-bin-<pid>.
var binDirRE = regexp.MustCompile(`^berth-testhost-bin-([0-9]+)$`)

func sweepStaleDirs(t testing.TB) {
	tmp := os.TempDir()
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		if m := binDirRE.FindStringSubmatch(e.Name()); m != nil && e.IsDir() {
			if _, err := os.Stat(filepath.Join("/proc", m[1])); err != nil {
				_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
			}
			continue
		}
		m := hostDirRE.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		if alive, _ := ownerAlive(m[1]); alive {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		if nspawnRunning(dir) {
			continue // kept with BERTH_E2E_KEEP=1
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("testhost: remove stale host dir: %v", err)
		}
	}
}

// nspawnRunning reports whether the systemd-nspawn recorded in a host dir
// still runs that host (the PID may have been reused since).
func nspawnRunning(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "nspawn.pid"))
	if err != nil {
		return false
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(string(data)), "cmdline"))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(string(cmdline), "\x00"), "--directory="+filepath.Join(dir, "mnt"))
}

func sweepStaleCgroups(t testing.TB) {
	hs, err := processHierarchies()
	if err != nil {
		return
	}
	for _, hier := range hs {
		entries, _ := os.ReadDir(filepath.Join(hier.Dir, cgroupParent))
		for _, e := range entries {
			if alive, ok := ownerAlive(e.Name()); alive || !ok {
				continue
			}
			cg := &hostCgroup{Dirs: []string{filepath.Join(hier.Dir, cgroupParent, e.Name())}}
			if len(cg.pids()) > 0 {
				continue
			}
			if err := cg.remove(); err != nil {
				t.Logf("testhost: stale cgroup: %v", err)
			}
		}
	}
}
