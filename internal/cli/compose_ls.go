package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newComposeLsCmd(env Env, g *Globals) *cobra.Command {
	var format string
	var all, quiet bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the projects berth has installed, with the state of their machines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("compose ls: --format %q: want table or json", format)
			}
			var nameFilter string
			for _, f := range filters {
				k, v, _ := parseFilter(f)
				if k != "name" {
					return unsupported("ls", "--filter "+f, "only name=NAME is supported")
				}
				nameFilter = v
			}
			list, err := composeHost(env, g).Projects(cmd.Context(), all)
			if err != nil {
				return err
			}
			if nameFilter != "" {
				kept := list[:0]
				for _, p := range list {
					if p.Name == nameFilter {
						kept = append(kept, p)
					}
				}
				list = kept
			}
			switch {
			case quiet:
				for _, p := range list {
					fmt.Fprintln(env.Stdout, p.Name)
				}
				return nil
			case format == "json":
				return writeJSON(env.Stdout, list)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
			for _, p := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, p.Status, p.ConfigFiles)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also show projects with no running machine")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print project names only")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "filter: name=NAME")
	return cmd
}

func parseFilter(f string) (key, value string, ok bool) {
	for i := 0; i < len(f); i++ {
		if f[i] == '=' {
			return f[:i], f[i+1:], true
		}
	}
	return f, "", false
}
