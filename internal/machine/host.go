package machine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/berth-sh/berth/internal/store"
)

// ErrNotFound is returned for a machine berth did not create.
var ErrNotFound = errors.New("no such machine")

// ErrExists is returned when creating a machine whose name is taken.
var ErrExists = errors.New("machine exists")

// ErrNotRunning is returned by verbs that need a running machine.
var ErrNotRunning = errors.New("machine is not running")

// ErrNoSystemd is returned by verbs that need systemd as PID 1.
var ErrNoSystemd = errors.New("systemd is not running as PID 1 (no /run/systemd/system)")

// File is one rendered file and where it belongs.
type File struct {
	Dir  string // NspawnDir, UnitDir, ...
	Name string
	Data []byte
}

// Path is Dir/Name.
func (f File) Path() string { return filepath.Join(f.Dir, f.Name) }

// Files renders both files of a machine for installation in the given
// settings and unit directories.
func Files(s *Spec, nspawnDir, unitDir string) ([]File, error) {
	n, err := RenderNspawn(s)
	if err != nil {
		return nil, err
	}
	u, err := RenderService(s)
	if err != nil {
		return nil, err
	}
	nb, err := n.Marshal()
	if err != nil {
		return nil, fmt.Errorf("render %s.nspawn: %w", s.Name, err)
	}
	ub, err := u.Marshal()
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", ServiceName(s.Name), err)
	}
	return []File{
		{Dir: nspawnDir, Name: s.Name + ".nspawn", Data: nb},
		{Dir: unitDir, Name: ServiceName(s.Name), Data: ub},
	}, nil
}

// Instance is berth's record of a created machine, kept in the state
// directory so later verbs know its spec and what to clean up.
type Instance struct {
	Spec Spec `json:"spec"`
	// Image is the pulled machine the root filesystem came from.
	Image string `json:"image"`
	// Cloned says the root filesystem is a copy owned by this machine
	// (removed with it), not the image's own directory.
	Cloned bool `json:"cloned,omitempty"`
	// VolumesDir holds the machine's anonymous volumes, removed with it.
	VolumesDir string    `json:"volumesDir,omitempty"`
	Files      []string  `json:"files"`
	Created    time.Time `json:"created"`
}

// Host is the system berth drives: where files go and how commands run.
// Everything is a field so tests can point it at temporary directories and
// a RecordingRunner.
type Host struct {
	Runner Runner
	// SystemdBooted says PID 1 is systemd, so units can be started and
	// machines registered with machined.
	SystemdBooted    bool
	NspawnDir        string // persistent settings, NspawnDir
	RuntimeNspawnDir string // settings of `berth run` machines
	UnitDir          string
	StateDir         string // Instances, one NAME.json each
	MachinesDir      string
	Now              func() time.Time
	// IdmapSupported probes whether a directory's file system supports
	// idmapped mounts (see IdmapSupported); nil assumes it does.
	IdmapSupported func(dir string) (bool, error)
}

// NewHost returns the real host: berth's state under root, machines in
// machinesDir, commands run for real.
func NewHost(root, machinesDir string) Host {
	_, err := os.Stat("/run/systemd/system")
	return Host{
		Runner:           ExecRunner{},
		SystemdBooted:    err == nil,
		NspawnDir:        NspawnDir,
		RuntimeNspawnDir: RuntimeNspawnDir,
		UnitDir:          UnitDir,
		StateDir:         filepath.Join(root, "units"),
		MachinesDir:      machinesDir,
		Now:              time.Now,
		IdmapSupported:   IdmapSupported,
	}
}

// FindInit locates the berth-init binary: $BERTH_INIT, next to the berth
// executable, then the library directories packages install it to.
func FindInit(getenv func(string) string, executable string) (string, error) {
	var cands []string
	if p := getenv("BERTH_INIT"); p != "" {
		cands = append(cands, p)
	}
	if executable != "" {
		cands = append(cands, filepath.Join(filepath.Dir(executable), "berth-init"))
	}
	cands = append(cands, "/usr/local/lib/berth/berth-init", "/usr/lib/berth/berth-init")
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(c)
			if err != nil {
				return "", fmt.Errorf("find berth-init: %w", err)
			}
			return filepath.Clean(abs), nil
		}
	}
	return "", fmt.Errorf("find berth-init: none of %s exists; build it with `CGO_ENABLED=0 go build ./cmd/berth-init` and set BERTH_INIT", strings.Join(cands, ", "))
}

// writeAtomic writes data to path through a temporary file and a rename,
// so systemd never reads half a unit.
func writeAtomic(path string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".berth-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// WriteFiles writes files into dir (all of them, ignoring their Dir), for
// `berth create --output`.
func WriteFiles(dir string, files []File) error {
	for _, f := range files {
		if err := writeAtomic(filepath.Join(dir, f.Name), f.Data); err != nil {
			return fmt.Errorf("write %s: %w", f.Name, err)
		}
	}
	return nil
}

func (h Host) statePath(name string) string { return filepath.Join(h.StateDir, name+".json") }

// ErrBusy is returned when another berth is creating or removing the same
// machine.
var ErrBusy = errors.New("machine is busy")

// lock serializes Create and Remove of one machine across processes with
// an flock on StateDir/.NAME.lock (the file stays; the lock does not).
func (h Host) lock(name string) (func(), error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(h.StateDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(h.StateDir, "."+name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: another berth is creating or removing %s; try again when it is done", ErrBusy, name)
		}
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { f.Close() }, nil
}

// Instance reads the record of machine name.
func (h Host) Instance(name string) (*Instance, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(h.statePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read machine %s: %w (create it with `berth create`)", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read machine %s: %w", name, err)
	}
	var in Instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("read machine %s: %s: %w", name, h.statePath(name), err)
	}
	return &in, nil
}

// Instances lists the machines berth created, by name.
func (h Host) Instances() ([]*Instance, error) {
	ents, err := os.ReadDir(h.StateDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list machines: %w", err)
	}
	var out []*Instance
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || ValidateName(name) != nil {
			continue
		}
		in, err := h.Instance(name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

// CreateOptions say how Create installs a machine.
type CreateOptions struct {
	// Image is the pulled machine whose root filesystem to use. If it is
	// not the new machine's name, the tree is copied (reflinked where the
	// filesystem can) to MachinesDir/NAME.
	Image string
	// VolumesDir holds the host directories backing the image's anonymous
	// volumes (VOLUME): VolumesDir/NAME/..., removed with the machine.
	// Empty: anonymous volumes stay part of the root filesystem.
	VolumesDir string
}

// volumeDirName names the host directory of an anonymous volume: readable,
// and unique per mount point because of the hash.
func volumeDirName(dest string) string {
	sum := sha256.Sum256([]byte(dest))
	var b strings.Builder
	for _, r := range strings.Trim(dest, "/") {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String() + "-" + hex.EncodeToString(sum[:4])
}

// volumeBinds returns a bind for each anonymous volume of s that no bind
// covers, backed by a directory under dir.
func volumeBinds(s *Spec, dir string) []Bind {
	covered := map[string]bool{}
	for _, b := range s.Binds {
		covered[path.Clean(b.Destination)] = true
	}
	var out []Bind
	for _, v := range s.Volumes {
		if !covered[v] {
			out = append(out, Bind{Source: filepath.Join(dir, volumeDirName(v)), Destination: v, Idmap: s.PrivateUsers != "no"})
		}
	}
	return out
}

// Planned returns s as Create installs it: with a bind for each anonymous
// volume when o.VolumesDir is set and the machine can use it. `berth
// create --dry-run` shows the files of this spec.
func (h Host) Planned(s Spec, o CreateOptions) (Spec, error) {
	s, _, err := h.plan(s, o)
	return s, err
}

// plan is Planned, also returning the volume binds it added.
func (h Host) plan(s Spec, o CreateOptions) (Spec, []Bind, error) {
	if err := h.checkIdmap(&s); err != nil {
		return Spec{}, nil, err
	}
	if o.VolumesDir == "" {
		return s, nil, nil
	}
	vbinds := volumeBinds(&s, filepath.Join(o.VolumesDir, s.Name))
	if len(vbinds) > 0 && vbinds[0].Idmap && !h.idmapOK(o.VolumesDir) {
		// The machine's root could not write to a volume directory
		// that is not idmapped into its UID range; as part of the
		// root filesystem, which nspawn chowns into the range
		// instead, the volumes work (and still go with the machine).
		return s, nil, nil
	}
	s.Binds = append(append([]Bind{}, s.Binds...), vbinds...)
	return s, vbinds, nil
}

// idmapOK says whether an idmapped bind of p (or, while p does not exist,
// of its nearest existing parent) can work. Without a probe, or when the
// probe itself fails (not root, say), it assumes so: nspawn has the final
// word when the machine starts.
func (h Host) idmapOK(p string) bool {
	if h.IdmapSupported == nil {
		return true
	}
	for {
		if _, err := os.Stat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		p = filepath.Dir(p)
	}
	ok, err := h.IdmapSupported(p)
	return ok || err != nil
}

// checkIdmap fails for an idmapped bind whose source's file system cannot
// do it, before nspawn fails the start with a less helpful message.
func (h Host) checkIdmap(s *Spec) error {
	for _, b := range s.Binds {
		if b.Idmap && !h.idmapOK(b.Source) {
			return fmt.Errorf("%w: bind %s:%s: the file system of %s does not support idmapped mounts; add the noidmap option (-v %s:%s:noidmap) and make the files owned by the machine's UID range, or use --private-users=no",
				ErrInvalidSpec, b.Source, b.Destination, b.Source, b.Source, b.Destination)
		}
	}
	return nil
}

// seedVolumes creates the host directory of each volume bind, seeded with
// what the image has at that path (as docker does). src is the image's
// root filesystem; every path in it is resolved inside it, never following
// links out.
func (h Host) seedVolumes(ctx context.Context, binds []Bind, src string) error {
	for _, b := range binds {
		if err := os.MkdirAll(filepath.Dir(b.Source), 0o700); err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
		seed, err := securejoin.SecureJoin(src, b.Destination)
		if err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
		if fi, err := os.Lstat(seed); err == nil && fi.IsDir() {
			if err := h.Runner.Run(ctx, Command{Args: []string{"cp", "-a", "--reflink=auto", "-T", "--", seed, b.Source}}); err != nil {
				return fmt.Errorf("create volume %s: copy the image's %s: %w", b.Destination, b.Destination, err)
			}
		} else if err := os.Mkdir(b.Source, 0o755); err != nil {
			return fmt.Errorf("create volume %s: %w", b.Destination, err)
		}
	}
	return nil
}

// Create installs machine s: its root filesystem (if cloned), NAME.nspawn,
// the service unit and berth's record, then reloads systemd. On failure
// nothing it wrote is left behind.
func (h Host) Create(ctx context.Context, s Spec, o CreateOptions) (_ *Instance, err error) {
	unlock, err := h.lock(s.Name)
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	defer unlock()
	if _, err := h.Instance(s.Name); err == nil {
		return nil, fmt.Errorf("create machine %s: %w; remove it with `berth rm %s` first", s.Name, ErrExists, s.Name)
	}
	if _, err := Files(&s, h.NspawnDir, h.UnitDir); err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	planned, vbinds, err := h.plan(s, o)
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	in := &Instance{Spec: planned, Image: o.Image, Created: h.Now().UTC()}
	if len(vbinds) > 0 {
		vdir := filepath.Join(o.VolumesDir, s.Name)
		if _, err := os.Lstat(vdir); err == nil {
			return nil, fmt.Errorf("create machine %s: %w: %s is in the way", s.Name, ErrExists, vdir)
		}
		defer func() {
			if err != nil {
				os.RemoveAll(vdir)
			}
		}()
		if err := h.seedVolumes(ctx, vbinds, filepath.Join(h.MachinesDir, o.Image)); err != nil {
			return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
		}
		in.VolumesDir = vdir
	}
	s = planned
	files, err := Files(&s, h.NspawnDir, h.UnitDir)
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	for _, f := range files {
		if _, err := os.Lstat(f.Path()); err == nil {
			return nil, fmt.Errorf("create machine %s: %w: %s is in the way", s.Name, ErrExists, f.Path())
		}
	}
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.RemoveAll(p)
			}
		}
	}()
	if o.Image != s.Name {
		dst := filepath.Join(h.MachinesDir, s.Name)
		if _, err := os.Lstat(dst); err == nil {
			return nil, fmt.Errorf("create machine %s: %w: %s is in the way", s.Name, ErrExists, dst)
		}
		src := filepath.Join(h.MachinesDir, o.Image)
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("create machine %s: image %s has no root filesystem at %s; pull it first", s.Name, o.Image, src)
		}
		st, err := store.NewStaging(h.MachinesDir, s.Name)
		if err != nil {
			return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
		}
		// cp -a keeps owners, modes, xattrs and hard links; --reflink
		// makes the copy nearly free on btrfs and xfs.
		if err := h.Runner.Run(ctx, Command{Args: []string{"cp", "-a", "--reflink=auto", "-T", "--", src, st.Dir}}); err != nil {
			st.Discard()
			return nil, fmt.Errorf("create machine %s: copy root filesystem of %s: %w", s.Name, o.Image, err)
		}
		if err := st.Commit(); err != nil {
			st.Discard()
			return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
		}
		defer func() {
			if err != nil {
				store.RemoveRootfs(h.MachinesDir, s.Name)
			}
		}()
		in.Cloned = true
	}
	for _, f := range files {
		if err := writeAtomic(f.Path(), f.Data); err != nil {
			return nil, fmt.Errorf("create machine %s: write %s: %w", s.Name, f.Path(), err)
		}
		written = append(written, f.Path())
		in.Files = append(in.Files, f.Path())
	}
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	if err := writeAtomic(h.statePath(s.Name), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	written = append(written, h.statePath(s.Name))
	if err := h.daemonReload(ctx); err != nil {
		return nil, fmt.Errorf("create machine %s: %w", s.Name, err)
	}
	return in, nil
}

func (h Host) daemonReload(ctx context.Context) error {
	if !h.SystemdBooted {
		return nil // nothing to tell; the files are read when systemd starts
	}
	return h.Runner.Run(ctx, Command{Args: []string{"systemctl", "daemon-reload"}})
}

func (h Host) systemctl(ctx context.Context, verb, name string) error {
	if !h.SystemdBooted {
		return fmt.Errorf("%s machine %s: %w; use `berth run` instead", verb, name, ErrNoSystemd)
	}
	if _, err := h.Instance(name); err != nil {
		return fmt.Errorf("%s machine %s: %w", verb, name, err)
	}
	if err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", verb, ServiceName(name)}}); err != nil {
		return fmt.Errorf("%s machine %s: %w", verb, name, err)
	}
	return nil
}

// Start starts machine name's service.
func (h Host) Start(ctx context.Context, name string) error { return h.systemctl(ctx, "start", name) }

// Stop stops it: nspawn sends the stop signal to the container and waits.
func (h Host) Stop(ctx context.Context, name string) error { return h.systemctl(ctx, "stop", name) }

// Restart restarts it.
func (h Host) Restart(ctx context.Context, name string) error {
	return h.systemctl(ctx, "restart", name)
}

// Status is a machine's state as systemd reports it.
type Status struct {
	Name        string `json:"name"`
	Image       string `json:"image"`
	Unit        string `json:"unit"`
	ActiveState string `json:"activeState"`
	SubState    string `json:"subState"`
	MainPID     int    `json:"mainPID"`
	Boot        bool   `json:"boot"`
}

// List reports every machine berth created with its service state
// ("unknown" without systemd).
func (h Host) List(ctx context.Context) ([]Status, error) {
	ins, err := h.Instances()
	if err != nil {
		return nil, err
	}
	out := []Status{}
	for _, in := range ins {
		st := Status{Name: in.Spec.Name, Image: in.Image, Unit: ServiceName(in.Spec.Name), Boot: in.Spec.Boot, ActiveState: "unknown"}
		if h.SystemdBooted {
			var buf bytes.Buffer
			err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", "show", "--property=ActiveState,SubState,MainPID", ServiceName(in.Spec.Name)}, Stdout: &buf})
			if err != nil {
				return nil, fmt.Errorf("list machines: %w", err)
			}
			for _, line := range strings.Split(buf.String(), "\n") {
				k, v, _ := strings.Cut(line, "=")
				switch k {
				case "ActiveState":
					st.ActiveState = v
				case "SubState":
					st.SubState = v
				case "MainPID":
					st.MainPID, _ = strconv.Atoi(v)
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// Logs writes machine name's journal (its command's output) to w.
func (h Host) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	in, err := h.Instance(name)
	if err != nil {
		return fmt.Errorf("show logs of %s: %w", name, err)
	}
	args := []string{"journalctl", "--no-pager", "--output=cat"}
	if in.Spec.Boot {
		// The machine's console and systemd's messages about it; its
		// own journal is `journalctl -M NAME`.
		args = append(args, "--unit="+ServiceName(name))
	} else {
		// Only the command's output, as docker logs: it reaches the
		// journal through the service's stdout stream, while nspawn
		// logs to the journal directly (SYSTEMD_LOG_TARGET in the unit)
		// and systemd's messages come from PID 1. Entries of an
		// earlier machine of the same name are not this one's.
		args = append(args, "_SYSTEMD_UNIT="+ServiceName(name), "_TRANSPORT=stdout",
			"--since=@"+strconv.FormatInt(in.Created.Unix(), 10))
	}
	if follow {
		args = append(args, "--follow")
	}
	if err := h.Runner.Run(ctx, Command{Args: args, Stdout: w}); err != nil {
		return fmt.Errorf("show logs of %s: %w", name, err)
	}
	return nil
}

// ExecOptions say how to run a command in a running machine.
type ExecOptions struct {
	User    string // "" = the machine's user
	WorkDir string // "" = the machine's working directory
	TTY     bool
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Exec runs argv in running machine name and returns its exit code. App
// machines are entered with nsenter through berth-init (which switches user
// and reaps, as for the main command); booted machines through systemd-run
// so the command is a proper unit inside.
func (h Host) Exec(ctx context.Context, name string, argv []string, o ExecOptions) (int, error) {
	if len(argv) == 0 {
		return 0, fmt.Errorf("exec in %s: no command given", name)
	}
	in, err := h.Instance(name)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	if !h.SystemdBooted {
		return 0, fmt.Errorf("exec in %s: %w", name, ErrNoSystemd)
	}
	var c Command
	if in.Spec.Boot {
		args := []string{"systemd-run", "--machine=" + name, "--quiet", "--wait", "--collect", "--service-type=exec"}
		if o.TTY {
			args = append(args, "--pty")
		} else {
			args = append(args, "--pipe")
		}
		if o.User != "" {
			args = append(args, "--uid="+o.User)
		}
		if o.WorkDir != "" {
			args = append(args, "--working-directory="+o.WorkDir)
		}
		c = Command{Args: append(append(args, "--"), argv...)}
	} else {
		var buf bytes.Buffer
		if err := h.Runner.Run(ctx, Command{Args: []string{"machinectl", "show", "--property=Leader", "--value", name}, Stdout: &buf}); err != nil {
			if exitCode(err) > 0 {
				// machined does not know it: the service is down.
				return 0, fmt.Errorf("exec in %s: %w; start it with `berth start %s`", name, ErrNotRunning, name)
			}
			return 0, fmt.Errorf("exec in %s: %w", name, err)
		}
		leader, err := strconv.Atoi(strings.TrimSpace(buf.String()))
		if err != nil || leader <= 0 {
			return 0, fmt.Errorf("exec in %s: machinectl reported leader %q", name, buf.String())
		}
		spec := in.Spec
		if o.User != "" {
			spec.User = o.User
		}
		if o.WorkDir != "" {
			spec.WorkingDir = o.WorkDir
		}
		spec.Argv = argv
		c = Command{
			Args: append([]string{"nsenter", "--target=" + strconv.Itoa(leader), "--all", "--root", "--wd"}, InitArgv(&spec)...),
			// The machine's environment, not berth's.
			Env: append([]string{"container=systemd-nspawn", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, spec.Env...),
		}
	}
	c.Stdin, c.Stdout, c.Stderr = o.Stdin, o.Stdout, o.Stderr
	err = h.Runner.Run(ctx, c)
	if code := exitCode(err); code > 0 {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	return 0, nil
}

// Remove deletes machine name: its unit and settings files, its cloned
// root filesystem and berth's record. A running machine is stopped first
// only if force is set.
func (h Host) Remove(ctx context.Context, name string, force bool) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	unlock, err := h.lock(name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	defer unlock()
	in, err := h.Instance(name)
	if err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	if h.SystemdBooted {
		err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", "--quiet", "is-active", ServiceName(name)}})
		if err == nil {
			if !force {
				return fmt.Errorf("remove machine %s: it is running; stop it first or use --force", name)
			}
			if err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", "stop", ServiceName(name)}}); err != nil {
				return fmt.Errorf("remove machine %s: %w", name, err)
			}
		}
		// Disabling a unit that was never enabled is harmless.
		if err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", "--quiet", "disable", ServiceName(name)}}); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
		// A failed unit stays in systemd's memory (and in `systemctl
		// --failed`) after its file is gone. reset-failed of a unit
		// that did not fail exits non-zero on some versions; that is
		// not a reason to keep the machine.
		if err := h.Runner.Run(ctx, Command{Args: []string{"systemctl", "--quiet", "reset-failed", ServiceName(name)}}); err != nil && exitCode(err) < 0 {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	for _, p := range in.Files {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	if in.VolumesDir != "" {
		if err := os.RemoveAll(in.VolumesDir); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	if in.Cloned {
		if err := store.RemoveRootfs(h.MachinesDir, name); err != nil {
			return fmt.Errorf("remove machine %s: %w", name, err)
		}
	}
	if err := os.Remove(h.statePath(name)); err != nil {
		return fmt.Errorf("remove machine %s: %w", name, err)
	}
	return h.daemonReload(ctx)
}
