package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/export"
	"github.com/berth-sh/berth/internal/store"
)

func newPushCmd(env Env, g *Globals) *cobra.Command {
	var insecure bool
	cmd := &cobra.Command{
		Use:   "push NAME REF",
		Short: "Push a machine's image from berth's store to a registry",
		Long: `Push the image machine NAME was installed from to registry reference REF
(host[:port]/repo[:tag|@digest]). The manifest, config and layers are the
stored blobs, unchanged, so the pushed digest is the pulled one; for an
image pulled from a multi-platform index, it is the installed platform's
manifest. Prints REPO@DIGEST.

As for pull: plain HTTP only to loopback registries, or any with --insecure;
credentials from ~/.docker/config.json ($DOCKER_CONFIG) and credential helpers.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, ref := args[0], args[1]
			_, rec, err := exportSource(env, g, name)
			if err != nil {
				return fmt.Errorf("push %s: %w", name, err)
			}
			if rec == nil {
				return fmt.Errorf("push %s: %w: no image record for it (pull its image again)", name, store.ErrNotFound)
			}
			d, err := export.Push(cmd.Context(), store.At(g.Root), rec, ref, export.PushOptions{Insecure: insecure})
			if err != nil {
				return err
			}
			if !g.Quiet {
				fmt.Fprintf(env.Stderr, "pushed %s to %s\n", name, ref)
			}
			fmt.Fprintln(env.Stdout, d.String())
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP to a non-loopback registry")
	return cmd
}
