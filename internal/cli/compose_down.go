package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/project"
)

func newComposeDownCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var o project.DownOptions
	var rmi string
	var removeOrphans bool
	timeout := newSecondsFlag(0)
	cmd := &cobra.Command{
		Use:   "down [-v] [--rmi all|local] [-t SECONDS]",
		Short: "Stop the project and remove its units, machines, networks and state",
		Long: `Stop the project and remove everything up installed: units, .nspawn files,
machines and their root filesystems, bridges and veths (removed by the
units as they stop), secrets, configs and per-machine state. Named volumes
stay unless -v; external volumes are never removed. --rmi also deletes
image blobs no machine uses any more.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			switch rmi {
			case "":
			case "all", "local":
				o.RemoveImages = true
			default:
				return errorf("down %s: --rmi %q: want all or local", name, rmi)
			}
			o.Images = composeImages(env, g)
			o.Timeout = timeout.ptr()
			return composeHost(env, g).Down(cmd.Context(), name, o)
		},
	}
	cmd.Flags().BoolVarP(&o.Volumes, "volumes", "v", false, "also remove the project's named volumes")
	cmd.Flags().BoolVar(&removeOrphans, "remove-orphans", false, "also remove machines of services no longer in the project (berth's down always does: they are in the installed manifest)")
	cmd.Flags().VarP(timeout, "timeout", "t", "seconds machines may take to stop before they are killed (default: their stop_grace_period)")
	cmd.Flags().StringVar(&rmi, "rmi", "", "also remove unused image data: all or local (the same here: every image is the project's own copy)")
	return cmd
}
