package cli

import (
	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
	"github.com/berth-sh/berth/internal/project"
	"github.com/berth-sh/berth/internal/pull"
)

// composeHost is the systemd host the compose lifecycle verbs drive.
func composeHost(env Env, g *Globals) *project.Host {
	h := &project.Host{Root: g.Root, MachinesDir: g.MachinesDir, Stderr: env.Stderr}
	if env.Machines != nil {
		// Tests: the same fake systemd and directories the machine
		// verbs get.
		mh := env.Machines(g.Root, g.MachinesDir)
		h.Runner, h.UnitDir, h.NspawnDir = mh.Runner, mh.UnitDir, mh.NspawnDir
	}
	return h
}

// composeImages keeps the machines' images in berth's store, showing pull
// progress on stderr unless --quiet.
func composeImages(env Env, g *Globals) project.StoreImages {
	imgs := project.StoreImages{Root: g.Root, MachinesDir: g.MachinesDir, Gunzip: g.Gunzip}
	if !g.Quiet {
		imgs.Progress = func() pull.Reporter { return pull.NewReporter(env.Stderr) }
	}
	return imgs
}

// composeProjectName finds the project a verb acts on: from the compose
// files as docker compose does, or from -p alone when there are none (so
// `berth compose -p NAME down` works from anywhere, as it does with
// docker).
func composeProjectName(cmd *cobra.Command, cf *composeFlags) (string, error) {
	p, err := compose.Load(cmd.Context(), cf.loadOptions())
	if err == nil {
		return p.Name, nil
	}
	if cf.project != "" {
		return cf.project, nil
	}
	return "", err
}
