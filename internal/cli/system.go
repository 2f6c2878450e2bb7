package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/pull"
	"github.com/berth-sh/berth/internal/system"
)

func newSystemCmd(env Env, g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "system",
		Short: "Check, repair, prune and measure berth's state",
	}
	cmd.AddCommand(newSystemCheckCmd(env, g), newSystemPruneCmd(env, g), newSystemDfCmd(env, g))
	return cmd
}

func systemHost(env Env, g *Globals) system.Host {
	return system.Host{Root: g.Root, MachinesDir: g.MachinesDir, Machines: machineHost(env, g)}
}

func newSystemCheckCmd(env Env, g *Globals) *cobra.Command {
	var repair, quick bool
	var format string
	cmd := &cobra.Command{
		Use:   "check [--repair] [--quick]",
		Short: "Verify the store (blob digests, records), machine trees and leftovers of killed commands",
		Long: `Verify berth's state: every blob hashes to its name, every record's blobs,
tree and image config are there, index.json lists the records, and nothing a
killed pull, copy or removal left (temporary blobs, staging directories,
trees without a record) lies around. --repair removes or rewrites what it
can, after waiting for running pulls; what needs you (a missing blob) is
listed with the command that fixes it. The exit status is 0 when nothing
is (left) wrong, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("system check: unknown --format %q (want table or json)", format)
			}
			h := systemHost(env, g)
			found, err := h.Check(cmd.Context(), system.CheckOptions{Quick: quick})
			if err != nil {
				return err
			}
			left := found
			if repair && len(found) > 0 {
				left, err = h.Repair(cmd.Context(), found)
				if err != nil {
					return err
				}
				if left, err = h.Check(cmd.Context(), system.CheckOptions{Quick: quick}); err != nil {
					return err
				}
			}
			if format == "json" {
				out := struct {
					Found    []system.Finding `json:"found"`
					Repaired bool             `json:"repaired"`
					Left     []system.Finding `json:"left"`
				}{nonNil(found), repair, nonNil(left)}
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				printFindings(env, found, repair, left)
			}
			if len(left) > 0 {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&repair, "repair", false, "remove or rewrite what is wrong, where berth can")
	cmd.Flags().BoolVar(&quick, "quick", false, "do not hash every blob")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func nonNil(f []system.Finding) []system.Finding {
	if f == nil {
		return []system.Finding{}
	}
	return f
}

func printFindings(env Env, found []system.Finding, repaired bool, left []system.Finding) {
	if len(found) == 0 {
		fmt.Fprintln(env.Stdout, "berth's state is consistent")
		return
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tPATH\tPROBLEM\tREPAIR")
	for _, f := range found {
		what := f.Repair
		if what == "" {
			what = "run: " + f.Fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Kind, f.Path, f.Problem, what)
	}
	tw.Flush()
	switch {
	case repaired && len(left) == 0:
		fmt.Fprintf(env.Stdout, "repaired %d problem(s); berth's state is consistent\n", len(found))
	case repaired:
		fmt.Fprintf(env.Stdout, "repaired %d of %d problem(s); left:\n", len(found)-len(left), len(found))
		for _, f := range left {
			fmt.Fprintf(env.Stdout, "  %s %s: %s (run: %s)\n", f.Kind, f.Path, f.Problem, f.Fix)
		}
	default:
		fmt.Fprintf(env.Stdout, "%d problem(s); berth system check --repair fixes those with a repair\n", len(found))
	}
}

func newSystemPruneCmd(env Env, g *Globals) *cobra.Command {
	var force bool
	var format string
	cmd := &cobra.Command{
		Use:   "prune [-f]",
		Short: "Remove unused blobs, stale staging directories and unit files of removed machines",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("system prune: unknown --format %q (want table or json)", format)
			}
			if !force {
				fmt.Fprint(env.Stderr, "This removes image blobs no machine uses, staging directories killed commands left, and unit files of machines berth no longer knows.\nAre you sure you want to continue? [y/N] ")
				line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
					fmt.Fprintln(env.Stderr, "nothing removed")
					return &ExitError{Code: 1}
				}
			}
			h := systemHost(env, g)
			res, err := h.Prune(cmd.Context())
			if err != nil {
				return err
			}
			if res.ReloadUnit {
				if err := h.Machines.DaemonReload(cmd.Context()); err != nil {
					return err
				}
			}
			if format == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(env.Stdout, "removed %d unused blob(s) and %d temporary blob(s): %s reclaimed\n", res.Blobs, res.TempBlobs, pull.HumanSize(res.BlobBytes))
			for _, p := range res.Staging {
				fmt.Fprintf(env.Stdout, "removed staging directory %s\n", p)
			}
			for _, p := range res.UnitFiles {
				fmt.Fprintf(env.Stdout, "removed %s (its machine is gone)\n", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}

func newSystemDfCmd(env Env, g *Globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "df",
		Short: "Show the disk space images, machines and volumes use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("system df: unknown --format %q (want table or json)", format)
			}
			use, err := systemHost(env, g).DiskUsage(cmd.Context(), pull.MachinedRunning)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(use)
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			for _, u := range use {
				pct := 0
				if u.Size > 0 {
					pct = int(u.Reclaimable * 100 / u.Size)
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s (%d%%)\n", u.Type, u.Total, u.Active, pull.HumanSize(u.Size), pull.HumanSize(u.Reclaimable), pct)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	return cmd
}
