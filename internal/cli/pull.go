package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/pull"
)

func newPullCmd(env Env, g *Globals) *cobra.Command {
	var (
		name     string
		platform string
		insecure bool
		noStream bool
	)
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image and install it as a machine",
		Long: `Pull an image from a registry (host[:port]/repo[:tag|@digest]; "busybox" means
docker.io/library/busybox:latest) or a local OCI image layout (oci:PATH[:TAG]),
verify every blob, and install it atomically as MACHINES_DIR/NAME.

Plain HTTP is used only for loopback registries, or any registry with --insecure.
Credentials come from ~/.docker/config.json ($DOCKER_CONFIG) and credential helpers.

gzip layers are inflated by igzip (Debian package isal) when it is in PATH, as
nobody, and in-process otherwise; BERTH_GUNZIP=builtin always inflates
in-process, BERTH_GUNZIP=PROGRAM names a gzip-compatible one. The result is
checked against the layer's DiffID either way.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := pull.Options{
				Ref:         args[0],
				Name:        name,
				Insecure:    insecure,
				NoStream:    noStream,
				Gunzip:      g.Gunzip,
				Root:        g.Root,
				MachinesDir: g.MachinesDir,
			}
			if platform != "" {
				p, err := pull.ParsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platform = &p
			}
			if !g.Quiet {
				r := pull.NewReporter(env.Stderr)
				defer r.Close()
				opts.Progress = r
			}
			_, err := pull.Pull(cmd.Context(), opts)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "machine name (default: the repository's last path element)")
	f.StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image (default: this machine's)")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP to a non-loopback registry")
	// For measuring the streaming pipeline against download-then-apply.
	f.BoolVar(&noStream, "no-stream", false, "apply each layer only after it is fully downloaded")
	f.MarkHidden("no-stream")
	return cmd
}
