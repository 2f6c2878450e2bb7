package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose/health"
	"github.com/berth-sh/berth/internal/pull"
)

func newPullCmd(env Env, g *Globals) *cobra.Command {
	var (
		name     string
		platform string
		insecure bool
		noStream bool
		refName  string
		src      = imageSource{policy: policyAlways, pull: pull.Pull, sleep: health.RealClock{}.Sleep}
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
checked against the layer's DiffID either way.

--policy decides whether to pull at all (podman's pull policies): always
(default) resolves REF and installs it when it changed; missing pulls only
when the machine does not have REF installed; newer is always, but keeps an
installed image when the pull fails; never fails unless REF is installed.
--from copies the image from another machine that has it instead of pulling
(the generator's units use it for NAME.image). --retry tries a failed pull
again, 2 s later, then 4 s, ... (or every --retry-delay). --ref-name selects
an image of oci:PATH by its ref name when that holds ':' or '/'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := pull.Options{
				Ref:         args[0],
				Name:        name,
				LayoutTag:   refName,
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
			src.imgs = composeImages(env, g)
			if !g.Quiet {
				src.stderr = env.Stderr
			}
			return src.ensure(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "machine name (default: the repository's last path element)")
	f.StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image (default: this machine's)")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP to a non-loopback registry")
	f.StringVar(&src.policy, "policy", policyAlways, "when to pull: always, missing, newer or never")
	f.StringVar(&src.from, "from", "", "copy the image from this machine instead of pulling it")
	f.IntVar(&src.retry, "retry", 0, "how many times to try a failed pull again")
	f.DurationVar(&src.delay, "retry-delay", 0, "pause between tries (default 2s, doubling)")
	f.StringVar(&refName, "ref-name", "", "select the image of an oci:PATH layout by this ref name")
	// For measuring the streaming pipeline against download-then-apply.
	f.BoolVar(&noStream, "no-stream", false, "apply each layer only after it is fully downloaded")
	f.MarkHidden("no-stream")
	return cmd
}
