package cli

import (
	"github.com/spf13/cobra"
)

// composeUnsupported are docker compose verbs berth knows and does not
// implement, with the reason; running one says so instead of "unknown
// command". docs/compose-cli.md has the same table.
var composeUnsupported = []struct{ verb, why string }{
	{"attach", "berth compose logs -f SERVICE shows a machine's output; attaching stdin to a systemd service's machine is not possible"},
	{"build", "berth cannot build images yet (issue #11); build elsewhere and push to a registry"},
	{"events", "systemd has the events: journalctl -f -u 'berth-PROJECT-*'"},
	{"pause", "freezing machines (systemctl freeze) is not wired up yet"},
	{"unpause", "freezing machines (systemctl thaw) is not wired up yet"},
	{"push", "berth does not build, so it has nothing of its own to push"},
	{"scale", "use berth compose up --scale SERVICE=N"},
	{"stats", "systemd has the numbers: systemd-cgtop machine.slice"},
	{"watch", "watch syncs and rebuilds on file changes, which needs build (issue #11)"},
	{"publish", "berth does not publish compose applications as OCI artifacts"},
	{"alpha", "docker's experimental verbs are not implemented"},
	{"commit", "berth does not make images from machines"},
	{"export", "berth does not export machines as tar archives; berth compose cp copies files"},
	{"volumes", "named volumes are directories under /var/lib/berth/compose/PROJECT/volumes"},
}

func newComposeUnsupportedCmds() []*cobra.Command {
	var out []*cobra.Command
	for _, u := range composeUnsupported {
		why := u.why
		verb := u.verb
		out = append(out, &cobra.Command{
			Use:                verb,
			Short:              "not supported: " + why,
			Hidden:             true,
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return unsupported(verb, "the verb", why)
			},
		})
	}
	return out
}
