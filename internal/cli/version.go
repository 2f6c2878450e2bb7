package cli

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// VersionInfo is `berth version --format json`; its fields are stable.
type VersionInfo struct {
	// Version is the module version berth was built as, "(devel)" for a
	// build from a work tree. docker compose version's field of the same
	// name.
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
}

func versionInfo() VersionInfo {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return VersionInfo{Version: v, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// newVersionCmd is `berth version` and `berth compose version`; prefix is
// what the plain form prints before the version.
func newVersionCmd(env Env) *cobra.Command { return versionCmd(env, "berth ") }

func versionCmd(env Env, prefix string) *cobra.Command {
	var short bool
	var format string
	cmd := &cobra.Command{
		Use:   "version [--short] [--format pretty|json]",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := versionInfo()
			switch {
			case short:
				_, err := fmt.Fprintln(env.Stdout, info.Version)
				return err
			case format == "json":
				b, err := json.Marshal(info)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(env.Stdout, "%s\n", b)
				return err
			case format == "pretty" || format == "":
				_, err := fmt.Fprintf(env.Stdout, "%s%s\n", prefix, info.Version)
				return err
			}
			return fmt.Errorf("version: --format %q: want pretty or json", format)
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "print the version only")
	// No -f: under compose it is --file.
	cmd.Flags().StringVar(&format, "format", "pretty", "output format: pretty or json")
	return cmd
}
