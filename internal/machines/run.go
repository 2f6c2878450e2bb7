package machines

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/paths"
)

// RunOptions say how to run a machine in the foreground.
type RunOptions struct {
	// Interactive gives the command a terminal (nspawn
	// --console=interactive); otherwise its stdin, stdout and stderr are
	// berth's own (--console=pipe), so output and exit code pass through.
	Interactive bool
	// StdinTerminal says stdin is a terminal. Without one (and without
	// Interactive) nspawn runs in its own process group; with one it
	// must stay in the terminal's foreground group to read from it.
	StdinTerminal bool
	Stdin         io.Reader
	Stdout        io.Writer
	Stderr        io.Writer
}

// RunCommand is the systemd-nspawn command line that runs s in the
// foreground, its settings coming from RuntimeNspawnDir/NAME.nspawn.
func (h Host) RunCommand(s *machine.Spec, o RunOptions) []string {
	nspawn := s.Nspawn
	if nspawn == "" {
		nspawn = paths.Nspawn
	}
	console := "--console=pipe"
	if o.Interactive {
		console = "--console=interactive"
	}
	argv := []string{nspawn, "--quiet", "--settings=override", "--machine=" + s.Name, "--directory=" + s.Directory, console}
	if !h.SystemdBooted {
		// No service manager to register with or to make a scope
		// for us: run in berth's own process tree.
		argv = append(argv, "--register=no", "--keep-unit")
	}
	return argv
}

// Run runs machine s in the foreground and returns its command's exit
// code. The settings file lives only as long as the run. Cancelling ctx
// stops the machine (SIGTERM to nspawn, which sends the stop signal in).
func (h Host) Run(ctx context.Context, s machine.Spec, o RunOptions) (int, error) {
	if err := h.checkIdmap(&s); err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	f, err := machine.RenderNspawn(&s)
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	b, err := f.Marshal()
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	if err := os.MkdirAll(h.RuntimeNspawnDir, 0o755); err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	settings := filepath.Join(h.RuntimeNspawnDir, s.Name+".nspawn")
	// O_EXCL: a machine of this name is already running; do not change
	// its settings under it.
	sf, err := os.OpenFile(settings, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return 0, fmt.Errorf("run %s: %w: %s exists (a machine of that name is running?)", s.Name, ErrExists, settings)
	}
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	defer os.Remove(settings)
	if _, err := sf.Write(b); err != nil {
		sf.Close()
		return 0, fmt.Errorf("run %s: write %s: %w", s.Name, settings, err)
	}
	if err := sf.Close(); err != nil {
		return 0, fmt.Errorf("run %s: write %s: %w", s.Name, settings, err)
	}
	stderr := o.Stderr
	var noise *noiseFilter
	if stderr != nil {
		// nspawn's own meaningless lines are dropped, the rest (the
		// command's stderr with --console=pipe) passes unchanged.
		noise = newNoiseFilter(stderr)
		stderr = noise
	}
	err = h.Runner.Run(ctx, command.Command{
		Args:  h.RunCommand(&s, o),
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: stderr,
		OwnProcessGroup: !o.Interactive && !o.StdinTerminal,
	})
	if noise != nil {
		_ = noise.Flush()
	}
	if code := command.ExitCode(err); code > 0 {
		return code, nil
	}
	if err != nil {
		return 0, fmt.Errorf("run %s: %w", s.Name, err)
	}
	return 0, nil
}
