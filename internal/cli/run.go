package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/machines"
)

func newRunCmd(env Env, g *Globals) *cobra.Command {
	var (
		mf   machineFlags
		rm   bool
		name string
	)
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a machine in the foreground, like docker run",
		Long: `Run IMAGE (a machine installed by ` + "`berth pull`" + `) once in the foreground with
systemd-nspawn. The command's stdout, stderr and exit code are berth's.

Without --rm the command runs in the image's own root filesystem and its
changes stay; with --rm it runs on a throw-away overlay. Works with or
without systemd as PID 1 (without, nspawn runs unregistered in berth's own
process tree).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			image := args[0]
			if err := machine.ValidateName(image); err != nil {
				return err
			}
			if name == "" {
				var b [4]byte
				rand.Read(b[:])
				base := image
				if len(base) > 54 {
					base = base[:54]
				}
				name = base + "-" + hex.EncodeToString(b[:])
			}
			if err := machine.ValidateName(name); err != nil {
				return err
			}
			// Resolved now: the config is at hand, and a run's
			// settings file lives only as long as the run.
			s, err := mf.spec(cmd, env, g, name, image, filepath.Join(g.MachinesDir, image), args[1:], "")
			if err != nil {
				return fmt.Errorf("run %s: %w", image, err)
			}
			s.Ephemeral = rm
			h := machineHost(env, g)
			code, err := h.Run(cmd.Context(), s, machines.RunOptions{
				Interactive:   isTTY(env.Stdin) && isTTY(env.Stdout),
				StdinTerminal: isTTY(env.Stdin),
				Stdin:         env.Stdin,
				Stdout:        env.Stdout,
				Stderr:        env.Stderr,
			})
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	// Flags after IMAGE belong to the command, as with docker run.
	cmd.Flags().SetInterspersed(false)
	mf.register(cmd)
	cmd.Flags().BoolVar(&rm, "rm", false, "run on a throw-away overlay: the image's root filesystem is not changed")
	cmd.Flags().StringVar(&name, "name", "", "machine name (default IMAGE-RANDOM)")
	// docker run's -i and -t are accepted so muscle memory works; the
	// console is interactive exactly when stdin and stdout are terminals.
	cmd.Flags().BoolP("interactive", "i", false, "accepted for docker compatibility; stdin is always passed")
	cmd.Flags().BoolP("tty", "t", false, "accepted for docker compatibility; a terminal is used when stdin and stdout are one")
	return cmd
}
