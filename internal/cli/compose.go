package cli

import (
	"fmt"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
)

// composeFlags are docker compose's global flags, shared by every compose
// subcommand.
type composeFlags struct {
	files      []string
	project    string
	profiles   []string
	envFiles   []string
	projectDir string
	// environ is the process environment used for interpolation.
	environ []string
}

func (f *composeFlags) loadOptions() compose.LoadOptions {
	return compose.LoadOptions{
		Files:       f.files,
		WorkDir:     f.projectDir,
		ProjectName: f.project,
		Profiles:    f.profiles,
		EnvFiles:    f.envFiles,
		Environ:     f.environ,
	}
}

func newComposeCmd(env Env, g *Globals) *cobra.Command {
	cf := &composeFlags{environ: env.Environ}
	cmd := &cobra.Command{
		Use:   "compose",
		Short: "Run docker compose projects as systemd-nspawn machines",
		Long: `Run docker compose projects as systemd-nspawn machines.

The project is loaded as docker compose loads it (-f, -p, --profile,
--env-file, .env, COMPOSE_FILE, COMPOSE_PROJECT_NAME, COMPOSE_PROFILES) and
converted to a set of systemd units: one machine per service instance, a
bridge per network, a target for the whole project.`,
	}
	// An unknown verb is an error (exit 125), not the help text.
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("compose: unknown verb %q (berth compose --help lists them)", args[0])
		}
		return c.Help()
	}
	cmd.PersistentPreRun = func(*cobra.Command, []string) {
		// compose-go reports loader warnings (obsolete version:, YAML 1.1
		// booleans) through logrus; show them as berth warnings.
		logrus.SetOutput(env.Stderr)
		logrus.SetFormatter(warningFormatter{})
	}
	pf := cmd.PersistentFlags()
	pf.StringArrayVarP(&cf.files, "file", "f", nil, "compose file (repeatable; default compose.yaml in the project directory)")
	pf.StringVarP(&cf.project, "project-name", "p", "", "project name (default: name: in the file, else the directory name)")
	pf.StringArrayVar(&cf.profiles, "profile", nil, "profile to enable (repeatable)")
	pf.StringArrayVar(&cf.envFiles, "env-file", nil, "environment file for interpolation (repeatable; default .env)")
	pf.StringVar(&cf.projectDir, "project-directory", "", "project directory (default: the first file's directory)")
	cmd.AddCommand(
		newComposeConfigCmd(env, g, cf),
		newComposeConvertCmd(env, g, cf),
		newComposeUpCmd(env, g, cf), newComposeDownCmd(env, g, cf), newComposePsCmd(env, g, cf), newComposeLogsCmd(env, g, cf), newComposeExecCmd(env, g, cf), newComposeRestartCmd(env, g, cf), newComposeStopCmd(env, g, cf), newComposeStartCmd(env, g, cf), newComposePullCmd(env, g, cf), newComposeImagesCmd(env, g, cf), newComposeTopCmd(env, g, cf),
		newComposeRunCmd(env, g, cf), newComposeCreateCmd(env, g, cf), newComposeLsCmd(env, g), newComposeKillCmd(env, g, cf), newComposeRmCmd(env, g, cf),
		newComposePortCmd(env, g, cf), newComposeCpCmd(env, g, cf), newComposeWaitCmd(env, g, cf), versionCmd(env, "berth compose version "),
	)
	cmd.AddCommand(newComposeUnsupportedCmds()...)
	cmd.AddCommand(
		newComposeBridgeUpCmd(),
		newComposeBridgeDownCmd(),
		newComposeNetnsUpCmd(),
		newComposeNetnsDownCmd(),
		newComposeHealthCmd(),
		newComposeUDPProxyCmd(),
	)
	return cmd
}

type warningFormatter struct{}

func (warningFormatter) Format(e *logrus.Entry) ([]byte, error) {
	return []byte("berth: " + e.Level.String() + ": " + e.Message + "\n"), nil
}
