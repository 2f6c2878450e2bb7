package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newComposePortCmd(env Env, g *Globals, cf *composeFlags) *cobra.Command {
	var proto string
	var index int
	cmd := &cobra.Command{
		Use:   "port [--protocol tcp|udp] [--index N] SERVICE PRIVATE_PORT",
		Short: "Print the host address a service's port is published on",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := composeProjectName(cmd, cf)
			if err != nil {
				return err
			}
			port, err := strconv.Atoi(args[1])
			if err != nil || port < 1 || port > 65535 {
				return fmt.Errorf("compose port: private port %q: want a number 1-65535", args[1])
			}
			addr, err := composeHost(env, g).Port(name, args[0], port, proto, index)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(env.Stdout, addr)
			return err
		},
	}
	cmd.Flags().StringVar(&proto, "protocol", "tcp", "tcp or udp")
	cmd.Flags().IntVar(&index, "index", 1, "which instance of the service")
	return cmd
}
