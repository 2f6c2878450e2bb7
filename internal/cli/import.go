package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/importer"
	"github.com/berth-sh/berth/internal/pull"
)

func newImportCmd(env Env, g *Globals) *cobra.Command {
	var (
		name, verify, sha256, keyring string
	)
	cmd := &cobra.Command{
		Use:   "import [--name NAME] [--verify=no|checksum|signature] [--sha256 HEX] [--keyring FILE] SOURCE",
		Short: "Install a machine from a root filesystem tarball, ACI, docker or OCI archive",
		Long: `Install a machine from SOURCE: a file, - for standard input, or an http(s) URL.
The format is detected from the content, not the name: a root filesystem tar
(uncompressed, gzip, xz, zstd or bzip2; a single top-level directory is lifted
to be the root), an ACI (appc image), a docker-archive (docker save) or an OCI
archive (a tarred OCI image layout). Choose the image of an archive holding
several with PATH:TAG or URL#TAG.

URLs are checked against SHA256SUMS in the same directory by default
(--verify=checksum); --verify=signature also checks SHA256SUMS.gpg with gpgv
against --keyring (default ` + importer.DefaultKeyring + `). --sha256 checks the
file's digest. A failed check installs nothing. An interrupted download is kept
under BERTH_ROOT/spool and resumed by the next try.

The machine is named --name, else after the archive's tag or the file name
without its extensions.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := importer.Options{
				Source:      args[0],
				Name:        name,
				Verify:      importer.Verify(verify),
				SHA256:      sha256,
				Keyring:     keyring,
				Root:        g.Root,
				MachinesDir: g.MachinesDir,
				Stdin:       env.Stdin,
				Warn:        env.Stderr,
				Gunzip:      g.Gunzip,
			}
			if !g.Quiet {
				opts.Download = importer.NewDownloadReporter(env.Stderr)
				r := pull.NewReporter(env.Stderr)
				defer r.Close()
				opts.Progress = r
			}
			res, err := importer.Import(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if !g.Quiet {
				what := string(res.Format)
				if res.Compression != "none" {
					what += ", " + res.Compression
				}
				if res.Lifted != "" {
					what += ", " + res.Lifted + "/ lifted to /"
				}
				fmt.Fprintf(env.Stderr, "imported %s as %s (%s)\n", args[0], res.Record.Name, what)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "machine name (default: from the archive's tag or the file name)")
	f.StringVar(&verify, "verify", "", "no, checksum or signature (default: checksum for URLs, no otherwise)")
	f.StringVar(&sha256, "sha256", "", "expected sha256 of SOURCE (hex)")
	f.StringVar(&keyring, "keyring", "", "keyring of trusted signers for --verify=signature (default "+importer.DefaultKeyring+")")
	return cmd
}
