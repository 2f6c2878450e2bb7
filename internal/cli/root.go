// Package cli holds berth's command-line verbs: one file per verb, each
// turning flags into an options value and making one library call.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/paths"
)

// Env is the process environment the CLI runs in. Passing it in keeps every
// verb testable without touching the real process.
type Env struct {
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Environ is the whole environment as KEY=VALUE pairs, for compose
	// interpolation, which needs every variable rather than one by key.
	Environ []string
	// Machines returns the system the machine verbs drive, given berth's
	// state directory and machines directory; nil means the real one
	// (machines.NewHost). Tests point it at temporary directories and a
	// command.RecordingRunner.
	Machines func(root, machinesDir string) machines.Host
}

// Globals are the settings shared by all verbs.
type Globals struct {
	// Root is berth's state directory: the content-addressed blob store and
	// per-machine records. Default /var/lib/berth, env BERTH_ROOT.
	Root string
	// MachinesDir is where machine root filesystems live; machinectl and
	// systemd-nspawn look in /var/lib/machines. Env BERTH_MACHINES_DIR.
	MachinesDir string
	// Quiet suppresses progress output.
	Quiet bool
	// Gunzip picks the gzip decompressor for pulls (pull.Options.Gunzip),
	// env BERTH_GUNZIP: unset for igzip when installed, "builtin", or a path.
	Gunzip string
}

// ExitError carries a specific process exit code (for example the exit code
// of a command run inside a machine) out of a verb.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitBerthFailed is the exit code when berth itself failed (a bad flag,
// a bad project, systemd refused), as docker uses 125; 126 and 127 (the
// command could not be run, not found) and every other code are the
// command's own, passed through as an ExitError.
const ExitBerthFailed = 125

// Main runs berth with env and returns the process exit code.
func Main(ctx context.Context, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	root := newRootCmd(env)
	root.SetArgs(composeShortF(env.Args))
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintf(env.Stderr, "berth: %v\n", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintf(env.Stderr, "berth: %v\n", err)
	return ExitBerthFailed
}

func newRootCmd(env Env) *cobra.Command {
	g := &Globals{Gunzip: env.Getenv("BERTH_GUNZIP")}
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Run OCI images and compose projects as systemd-nspawn machines",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.Root, "root", envOr(env, "BERTH_ROOT", paths.Root), "berth state directory (env BERTH_ROOT)")
	pf.StringVar(&g.MachinesDir, "machines-dir", envOr(env, "BERTH_MACHINES_DIR", paths.Machines), "directory of machine root filesystems (env BERTH_MACHINES_DIR)")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "no progress output")

	root.AddCommand(
		newVersionCmd(env), newEtcFilesCmd(),
		newComposeCmd(env, g),
		newPullCmd(env, g), newImagesCmd(env, g), newRmiCmd(env, g), newInspectCmd(env, g),
		newImportCmd(env, g),
		newExportCmd(env, g), newPushCmd(env, g),
		newCreateCmd(env, g), newRunCmd(env, g), newStartCmd(env, g), newStopCmd(env, g), newRestartCmd(env, g), newRmCmd(env, g), newPsCmd(env, g), newLogsCmd(env, g), newExecCmd(env, g),
		newSystemCmd(env, g),
		// Helpers the generator's units run (hidden).
		newVolumeHelperCmd(), newRequireActiveCmd(),
	)
	return root
}

func envOr(env Env, key, def string) string {
	if v := env.Getenv(key); v != "" {
		return v
	}
	return def
}
