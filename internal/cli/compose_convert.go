package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/store"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func newComposeConvertCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var out, format string
	opts := compose.ConvertOptions{}
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Convert the compose project to systemd units (no root needed)",
		Long: `Convert the compose project to the files that run it: .nspawn settings,
service, socket and target units, hosts files, the project manifest, and the
directories and secrets berth compose up would install.

Without -o, print a listing of every file to stdout (secret contents are
never printed). With -o DIR, write them under DIR as a staging tree
(DIR/etc/systemd/system/..., DIR/var/lib/berth/...). The output is the same
byte for byte for the same project, options and pulled images.

Warnings go to stderr; keys berth cannot convert without changing behaviour
are errors naming file:line, and nothing is written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			opts.Root = g.Root
			opts.MachinesDir = g.MachinesDir
			opts.Images = storeImages(g.Root)
			res, err := compose.Convert(p, opts)
			if res != nil {
				for _, f := range res.Findings {
					if f.Severity == compose.Warning {
						fmt.Fprintf(env.Stderr, "berth: %s\n", f)
					}
				}
			}
			if err != nil {
				return err
			}
			if out == "" {
				switch format {
				case "text":
					return compose.WriteListing(env.Stdout, res.Files)
				case "json":
					return compose.WriteListingJSON(env.Stdout, res.Files)
				}
				return fmt.Errorf("convert compose project: unknown format %q (want text or json)", format)
			}
			return compose.WriteTree(out, res.Files, compose.TreeOptions{})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "write the files under this directory instead of listing them")
	f.StringVar(&format, "format", "text", "listing format: text or json")
	f.StringVar(&opts.Berth, "berth-binary", "", "path of berth the units run for helper commands (default /usr/local/bin/berth)")
	f.StringVar(&opts.Init, "init-binary", "", "host path of berth-init (default /usr/local/lib/berth/berth-init)")
	return cmd
}

// storeImages looks images up among the machines berth has pulled, by
// normalized reference. A missing or unreadable store knows no images.
func storeImages(root string) compose.ImageInfo {
	if _, err := os.Stat(filepath.Join(root, "machines")); err != nil {
		return nil
	}
	s, err := store.Open(root)
	if err != nil {
		return nil
	}
	recs, err := s.Records()
	if err != nil {
		return nil
	}
	return func(ref string) (*v1.Config, bool) {
		r, err := pull.ParseRef(ref, false)
		if err != nil {
			return nil, false
		}
		want := r.String()
		for _, rec := range recs {
			if rec.Reference != want {
				continue
			}
			cf, err := s.Config(rec)
			if err != nil {
				return nil, false
			}
			return &cf.Config, true
		}
		return nil, false
	}
}
