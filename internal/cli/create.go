package cli

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/machine"
	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/store"
)

func newCreateCmd(env Env, g *Globals) *cobra.Command {
	var (
		mf       machineFlags
		restart  string
		memory   string
		cpus     string
		output   string
		dryRun   bool
		nspawnTo string
		stopSecs int
	)
	cmd := &cobra.Command{
		Use:   "create [flags] NAME IMAGE [COMMAND [ARG...]]",
		Short: "Create a machine from a pulled image as a systemd service",
		Long: `Create machine NAME from IMAGE (a machine installed by ` + "`berth pull`" + `) and install
its settings (` + machine.NspawnDir + `/NAME.nspawn) and service unit
(` + machine.UnitDir + `/berth-NAME.service). If NAME differs from IMAGE, the
image's root filesystem is copied (reflinked where possible) to NAME.

--dry-run prints the files instead; --output DIR writes them to DIR only.
Start the machine with ` + "`berth start NAME`" + `.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, image := args[0], args[1]
			if err := machine.ValidateName(name); err != nil {
				return err
			}
			h := machineHost(env, g)
			// The machine reads its image's defaults from the config
			// kept with it when it starts (Create copies it along
			// with a copied tree), so a new pull of the image needs
			// no new units.
			s, err := mf.spec(cmd, env, g, name, image, filepath.Join(g.MachinesDir, name), args[2:], store.ConfigPath(g.MachinesDir, name))
			if err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			s.Restart.Policy = restart
			if stopSecs < 0 {
				return fmt.Errorf("create %s: --stop-timeout %d: want a number of seconds, 0 or more", name, stopSecs)
			}
			if !s.Boot || cmd.Flags().Changed("stop-timeout") {
				// A whole OS shutting down may need longer than a
				// command: --boot machines keep systemd's default,
				// as systemd-nspawn@.service does, unless told.
				t := time.Duration(stopSecs) * time.Second
				s.StopTimeout = &t
			}
			s.Limits.MemoryMax = memory
			if cpus != "" {
				if s.Limits.CPUQuota, err = parseCPUs(cpus); err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
			}
			if err := s.Validate(); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			if nspawnTo != "" {
				s.Nspawn = nspawnTo
			}
			opts := machines.CreateOptions{Image: image, VolumesDir: filepath.Join(g.Root, "volumes")}
			if dryRun || output != "" {
				planned, err := h.Planned(s, opts)
				if err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
				files, err := machines.Files(&planned, h.NspawnDir, h.UnitDir)
				if err != nil {
					return fmt.Errorf("create %s: %w", name, err)
				}
				if output != "" {
					return machines.WriteFiles(output, files)
				}
				for i, f := range files {
					if i > 0 {
						fmt.Fprintln(env.Stdout)
					}
					fmt.Fprintf(env.Stdout, "# %s\n%s", f.Path(), f.Data)
				}
				return nil
			}
			in, err := h.Create(cmd.Context(), s, opts)
			if err != nil {
				return err
			}
			if !g.Quiet {
				for _, f := range in.Files {
					fmt.Fprintf(env.Stderr, "wrote %s\n", f)
				}
			}
			fmt.Fprintln(env.Stdout, name)
			return nil
		},
	}
	// Flags after IMAGE belong to the command, as with docker create.
	cmd.Flags().SetInterspersed(false)
	mf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&restart, "restart", "no", "restart policy: no, on-failure, on-abnormal, on-abort, on-success or always")
	fl.IntVar(&stopSecs, "stop-timeout", 10, "seconds to wait after the stop signal before killing the machine (TimeoutStopSec=; 0 kills at once, as docker does; --boot machines keep systemd's default unless this is given)")
	fl.StringVar(&memory, "memory", "", "memory limit (MemoryMax=), e.g. 512M")
	fl.StringVar(&cpus, "cpus", "", "CPU limit in CPUs, e.g. 1.5 (CPUQuota=150%)")
	fl.StringVar(&output, "output", "", "write the files to this directory instead of installing them")
	fl.BoolVar(&dryRun, "dry-run", false, "print the files instead of installing them")
	fl.StringVar(&nspawnTo, "nspawn", "", "systemd-nspawn binary the unit runs (default "+machine.DefaultNspawn+")")
	return cmd
}

// parseCPUs turns docker's --cpus (a decimal number of CPUs) into a
// CPUQuota= percentage.
func parseCPUs(s string) (string, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return "", fmt.Errorf("parse --cpus %q: want a positive number of CPUs", s)
	}
	q, err := machine.CPUQuota(f)
	if err != nil {
		return "", fmt.Errorf("parse --cpus %q: %w", s, err)
	}
	return q, nil
}
