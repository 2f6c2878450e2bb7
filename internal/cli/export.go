package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/export"
	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/store"
)

func newExportCmd(env Env, g *Globals) *cobra.Command {
	var out, format, tag string
	var formats []string
	for _, f := range export.Formats {
		formats = append(formats, fmt.Sprintf("  %-15s %s", f.Format, f.What))
	}
	cmd := &cobra.Command{
		Use:   "export NAME [-o FILE|DIR|-] [--format FORMAT]",
		Short: "Write a machine's root filesystem or image out as a tar or an OCI layout",
		Long: `Write machine NAME out in one of these formats:

` + strings.Join(formats, "\n") + `

The tar formats read the machine's current root filesystem; owners are the
container's (a tree nspawn chowned into a UID range is mapped back), hard
links, xattrs, devices and FIFOs are kept, sockets skipped with a warning.
The image formats copy the manifest, config and layers from berth's store
unchanged, so digests are the pulled ones, and name the image by the
reference it was pulled by (--tag to choose).

Without --format the name says: -o ending in .oci.tar is an oci-archive,
.docker.tar a docker-archive, .tar.zst/.tar.zstd/.tzst a zstd tar, .tar a
tar; a name ending in / or an existing directory an OCI layout; no -o, or
-o -, a tar on standard output (never to a terminal).

The output is written beside its destination and renamed into place when
complete: an export that fails or is interrupted leaves nothing there.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			f, err := exportFormat(format, out)
			if err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
			if export.ToStdout(out) && !f.IsDir() && isTTY(env.Stdout) {
				return fmt.Errorf("export %s: refusing to write a %s archive to a terminal; redirect standard output or give -o FILE", name, f)
			}
			tree, rec, err := exportSource(env, g, name)
			if err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
			o := export.Options{Format: f, Out: out, Stdout: env.Stdout, Tree: tree, RefName: tag}
			o.TreeOptions.Warn = func(msg string) { fmt.Fprintf(env.Stderr, "berth: warning: %s\n", msg) }
			if !f.IsTree() {
				if rec == nil {
					return fmt.Errorf("export %s: %w: no image record for it (pull its image again)", name, store.ErrNotFound)
				}
				o.Store, o.Record = store.At(g.Root), rec
			} else if rec != nil && tree == filepath.Join(g.MachinesDir, rec.Name) {
				// A pull of the same machine waits: it would swap the
				// tree out from under the export.
				unlock, err := store.At(g.Root).LockName(cmd.Context(), rec.Name)
				if err != nil {
					return fmt.Errorf("export %s: %w", name, err)
				}
				defer unlock()
			}
			res, err := export.Export(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("export %s: %w", name, err)
			}
			if !g.Quiet && !export.ToStdout(out) {
				what := "root filesystem"
				if !f.IsTree() {
					what = "image " + res.RefName
				}
				fmt.Fprintf(env.Stderr, "exported %s of %s to %s (%s)\n", what, name, out, f)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&out, "output", "o", "", "file or directory to write (default: standard output)")
	fl.StringVar(&format, "format", "", "tar, tar.zst, oci, oci-archive or docker-archive (default: from the -o name)")
	fl.StringVar(&tag, "tag", "", "name of the image in an image export (default: the reference it was pulled by)")
	return cmd
}

// exportFormat is the --format given, or the one the output name implies.
func exportFormat(format, out string) (export.Format, error) {
	if format != "" {
		return export.ParseFormat(format)
	}
	fi, err := os.Stat(out)
	return export.DefaultFormat(out, err == nil && fi.IsDir())
}

// exportSource finds machine name's root filesystem and the record of the
// image it came from: a pulled machine is its own image; a machine made by
// `berth create NAME IMAGE` has its own tree and IMAGE's record (nil if
// that image is gone).
func exportSource(env Env, g *Globals, name string) (string, *store.Record, error) {
	st := store.At(g.Root)
	rec, err := st.Record(name)
	if err == nil {
		return filepath.Join(g.MachinesDir, name), rec, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	in, ierr := machineHost(env, g).Instance(name)
	if errors.Is(ierr, machines.ErrNotFound) {
		return "", nil, err
	}
	if ierr != nil {
		return "", nil, ierr
	}
	tree := in.Spec.Directory
	if tree == "" {
		tree = filepath.Join(g.MachinesDir, name)
	}
	rec, err = st.Record(in.Image)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", nil, err
	}
	return tree, rec, nil
}
