package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/decl/hostprep"
)

// newVolumeHelperCmd is the helper generated units run to create a named
// volume (NAME-volume.service) and to fill it from the image before a
// machine first mounts it (the machine unit's ExecStartPre=).
func newVolumeHelperCmd() *cobra.Command {
	v := hostprep.Volume{}
	cmd := &cobra.Command{
		Use:    "_volume --dir DIR [--uid N] [--gid N] [--seed-from ROOTFS --seed-path PATH]",
		Short:  "Create a named volume, seeded from an image when empty (run by generated units)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return hostprep.EnsureVolume(cmd.Context(), command.ExecRunner{}, v)
		},
	}
	f := cmd.Flags()
	f.StringVar(&v.Dir, "dir", "", "the volume directory")
	f.IntVar(&v.UID, "uid", -1, "owner of the volume's top directory")
	f.IntVar(&v.GID, "gid", -1, "group of the volume's top directory")
	f.StringVar(&v.SeedFrom, "seed-from", "", "machine root filesystem to fill an empty volume from")
	f.StringVar(&v.SeedPath, "seed-path", "", "the volume's mount point in that machine")
	return cmd
}
