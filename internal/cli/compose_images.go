package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newComposeImagesCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "images [-q] [SERVICE...]",
		Short: "List the image each machine of the project runs",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			rows, err := composeHost(env, g).Images(name, args, composeImages(env, g))
			if err != nil {
				return err
			}
			if quiet {
				// docker prints image IDs, each once: berth's are the
				// manifest digests its store keeps.
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.Digest] {
						seen[r.Digest] = true
						fmt.Fprintln(env.Stdout, r.Digest)
					}
				}
				return nil
			}
			switch format {
			case "json":
				return writeJSON(env.Stdout, rows)
			case "table":
			default:
				return errorf("images %s: unknown format %q (want table or json)", name, format)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "MACHINE\tSERVICE\tIMAGE\tDIGEST\tSIZE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", r.Machine, r.Service, r.Reference, r.Digest, r.Size)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only the image digests, each once")
	return cmd
}
