package cli

import (
	"encoding/json"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/store"
)

func newInspectCmd(env Env, g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Show a machine's image record and image config as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rec, cfg, err := store.LoadMachine(g.Root, args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				Record *store.Record  `json:"record"`
				Config *v1.ConfigFile `json:"config"`
			}{rec, cfg})
		},
	}
}
