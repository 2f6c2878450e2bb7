package testhost

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// procStatus is what the harness needs from /proc/PID/status.
type procStatus struct {
	PPid int
	// NSpid lists the PID in each nested PID namespace, outermost first.
	NSpid []int
}

func parseProcStatus(data []byte) (procStatus, error) {
	var st procStatus
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "PPid":
			n, err := strconv.Atoi(strings.TrimSpace(val))
			if err != nil {
				return st, fmt.Errorf("parse PPid %q: %w", val, err)
			}
			st.PPid = n
		case "NSpid":
			for _, f := range strings.Fields(val) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return st, fmt.Errorf("parse NSpid %q: %w", val, err)
				}
				st.NSpid = append(st.NSpid, n)
			}
		}
	}
	return st, sc.Err()
}

// isContainerInit reports whether st is PID 1 of a PID namespace directly
// below ours whose parent is parent: the init that systemd-nspawn started.
func (st procStatus) isContainerInit(parent int) bool {
	return st.PPid == parent && len(st.NSpid) == 2 && st.NSpid[1] == 1
}

// findContainerInit returns the outer PID of the container init that the
// systemd-nspawn process nspawnPID runs, or 0 when it has none (yet).
func findContainerInit(procDir string, nspawnPID int) (int, error) {
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return 0, fmt.Errorf("list processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(procDir, e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseProcStatus(data)
		if err != nil {
			continue
		}
		if st.isContainerInit(nspawnPID) {
			return pid, nil
		}
	}
	return 0, nil
}

// The cgroup that a test host runs in. nspawn --keep-unit without a systemd
// on the outside puts its "payload" and "supervisor" cgroups below its own
// cgroup: two hosts started from the same cgroup would share them. So every
// host gets its own cgroup, in every hierarchy that tracks processes
// (cgroup2, and on hybrid machines also the name=systemd v1 tree), which
// also lets cleanup find every process the host left behind.
const cgroupParent = "berth-testhost"

type cgroupHierarchy struct {
	Dir string // mount point
	V2  bool
}

// processHierarchies lists the mounted cgroup hierarchies that systemd uses
// to track processes.
func processHierarchies() ([]cgroupHierarchy, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("inspect /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []cgroupHierarchy{{Dir: "/sys/fs/cgroup", V2: true}}, nil
	}
	var hs []cgroupHierarchy
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		hs = append(hs, cgroupHierarchy{Dir: "/sys/fs/cgroup/unified", V2: true})
	}
	if unix.Statfs("/sys/fs/cgroup/systemd", &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
		hs = append(hs, cgroupHierarchy{Dir: "/sys/fs/cgroup/systemd"})
	}
	if len(hs) == 0 {
		return nil, errors.New("find cgroup hierarchies: neither cgroup2 nor name=systemd is mounted under /sys/fs/cgroup")
	}
	return hs, nil
}

// hostCgroup is one test host's cgroup across hierarchies.
type hostCgroup struct {
	Dirs []string
	// KillFile is cgroup.kill in the cgroup2 tree ("" without cgroup2):
	// writing 1 kills every process of the subtree in one step.
	KillFile string
}

func newHostCgroup(name string) (*hostCgroup, error) {
	hs, err := processHierarchies()
	if err != nil {
		return nil, err
	}
	cg := &hostCgroup{}
	for _, h := range hs {
		dir := filepath.Join(h.Dir, cgroupParent, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create test host cgroup %s: %w", dir, err)
		}
		cg.Dirs = append(cg.Dirs, dir)
		if h.V2 {
			if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err == nil {
				cg.KillFile = filepath.Join(dir, "cgroup.kill")
			}
		}
	}
	return cg, nil
}

// pids returns every process left in the cgroup subtree.
func (cg *hostCgroup) pids() []int {
	var pids []int
	for _, dir := range cg.Dirs {
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(path)
			for _, f := range strings.Fields(string(data)) {
				if n, err := strconv.Atoi(f); err == nil && !slices.Contains(pids, n) {
					pids = append(pids, n)
				}
			}
			return nil
		})
	}
	return pids
}

// kill kills every process left in the host's cgroup. Only processes of
// this host can be there: the cgroup was created for it.
func (cg *hostCgroup) kill() error {
	if cg.KillFile != "" {
		if err := os.WriteFile(cg.KillFile, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("kill test host cgroup: %w", err)
		}
		return nil
	}
	var errs []error
	for _, pid := range cg.pids() {
		if err := unix.Kill(pid, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill test host process %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// remove removes the cgroup subtree, deepest first; the kernel refuses
// while a process is still in it.
func (cg *hostCgroup) remove() error {
	var errs []error
	for _, dir := range cg.Dirs {
		var dirs []string
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, path)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("remove test host cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}
