package cli

import "github.com/spf13/cobra"

// NewRootCommand is berth's command tree, for tools that document it
// (tools/mangen writes the man pages from it) rather than run it.
func NewRootCommand(env Env) *cobra.Command {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	return newRootCmd(env)
}
