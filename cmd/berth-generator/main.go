// Command berth-generator is a systemd generator (systemd.generator(7)): at
// boot and on every daemon-reload it turns berth declarations into units.
//
//	berth-generator NORMAL-DIR [EARLY-DIR LATE-DIR]
//	berth-generator --dry-run
//
// It reads NAME.container (and the other declaration kinds, with
// NAME.EXT.d/*.conf drop-ins) from the search path — /etc/berth/systemd,
// /run/berth/systemd, /usr/share/berth/systemd, the first one holding a
// file name winning; $BERTH_UNIT_DIRS (colon-separated) replaces it — and
// writes units into NORMAL-DIR, nowhere else, each atomically. It never
// pulls, unpacks or runs anything: a unit whose image is missing pulls it
// when it starts. A declaration with an error is skipped and reported as
// FILE:LINE: error: [Group] Key: message to the journal (the kernel log at
// early boot, before journald runs) and stderr; the generator still exits 0 so one bad file never costs the
// boot the others. --dry-run prints the units instead, and exits 1 if any
// declaration was skipped.
//
// Units run the berth and berth-init of the generator's own installation:
// installed as PREFIX/lib/systemd/system-generators/berth-generator it
// renders PREFIX/bin/berth and PREFIX/lib/berth/berth-init (/usr for the
// .deb, /usr/local for scripts/install.sh); elsewhere (a link in
// /etc/systemd/system-generators resolves to its target) the defaults
// under /usr/local. It reads only its own path (/proc/self/exe) for that.
//
// It also makes one unit per image name of every OCI image layout under
// /var/lib/berth/layouts ($BERTH_LAYOUT_DIRS, colon-separated, replaces
// it), reading only each layout's index.json.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/berth-sh/berth/internal/decl"
	"github.com/berth-sh/berth/internal/paths"
)

func main() {
	exe, _ := os.Executable()
	os.Exit(run(os.Args[1:], paths.ForGenerator(exe), os.Getenv, os.Stdout, os.Stderr, openSystemLog))
}

// run is the generator; inst is the installation whose berth and
// berth-init units run; openLog gives where findings are logged (the
// journal or kernel log under systemd; tests pass stderr only).
func run(args []string, inst paths.Installation, getenv func(string) string, stdout, stderr io.Writer, openLog func(io.Writer) *systemLog) int {
	dryRun := len(args) == 1 && args[0] == "--dry-run"
	if !dryRun && (len(args) != 1 && len(args) != 3 || args[0] == "" || args[0][0] == '-') {
		fmt.Fprintln(stderr, "usage: berth-generator NORMAL-DIR [EARLY-DIR LATE-DIR] | --dry-run")
		return 2
	}
	in, loadFindings := decl.Load(decl.SearchPath(getenv), decl.OSDir{})
	layouts, layoutFindings := decl.LoadLayouts(decl.LayoutPath(getenv), decl.OSDir{})
	units, findings := decl.Generate(in, decl.Options{Layouts: layouts, Berth: inst.Berth, Init: inst.Init})
	loadFindings = append(loadFindings, layoutFindings...)
	findings = append(loadFindings, findings...)
	if dryRun {
		for _, f := range findings {
			fmt.Fprintln(stderr, "berth-generator: "+f.String())
		}
		if err := decl.WriteListing(stdout, units); err != nil {
			fmt.Fprintln(stderr, "berth-generator:", err)
			return 1
		}
		if decl.Findings(findings).HasErrors() {
			return 1
		}
		return 0
	}
	log := openLog(stderr)
	defer log.close()
	for _, f := range findings {
		prio := 4
		if f.Severity == decl.Error {
			prio = 3
		}
		log.printf(prio, "%s", f)
	}
	if err := decl.WriteUnits(args[0], units); err != nil {
		log.printf(3, "%v", err)
		return 1
	}
	return 0
}
