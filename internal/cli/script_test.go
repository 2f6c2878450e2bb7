package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/berth-sh/berth/internal/command"
	"github.com/berth-sh/berth/internal/machines"
)

// TestScripts runs testdata/script/*.txtar: the CLI surface that needs no
// systemd (usage errors and their exit codes, compose config, ls, ps,
// port, version). `berth` runs the CLI in-process against scriptSystemd, a
// fake that answers `systemctl show` from $WORK/units (lines "UNIT
// ActiveState SubState ExecMainStatus") and logs every command to
// $WORK/commands.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"berth": scriptBerth,
		},
	})
}

func scriptBerth(ts *testscript.TestScript, neg bool, args []string) {
	work := ts.Getenv("WORK")
	run := &scriptSystemd{work: work}
	var stdin io.Reader = strings.NewReader(ts.Getenv("STDIN"))
	code := Main(context.Background(), Env{
		Args:   args,
		Stdin:  stdin,
		Stdout: ts.Stdout(),
		Stderr: ts.Stderr(),
		Getenv: func(k string) string {
			switch k {
			case "BERTH_ROOT":
				return filepath.Join(work, "root")
			case "BERTH_MACHINES_DIR":
				return filepath.Join(work, "machines")
			}
			return ts.Getenv(k)
		},
		Machines: func(root, machinesDir string) machines.Host {
			return machines.Host{Runner: run, NspawnDir: filepath.Join(work, "nspawn"), UnitDir: filepath.Join(work, "system"), StateDir: filepath.Join(root, "units"), MachinesDir: machinesDir}
		},
	})
	// The exit code is part of the output scripts compare: berth's own
	// failures are 125, as docker's.
	fmt.Fprintf(ts.Stderr(), "[exit %d]\n", code)
	if (code != 0) != neg {
		ts.Fatalf("berth %s: exit %d", strings.Join(args, " "), code)
	}
}

type scriptSystemd struct{ work string }

func (s *scriptSystemd) Run(_ context.Context, c command.Command) error {
	f, err := os.OpenFile(filepath.Join(s.work, "commands"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, c.String())
		f.Close()
	}
	if len(c.Args) > 2 && c.Args[0] == "systemctl" && c.Args[1] == "show" && c.Stdout != nil {
		states := map[string][]string{}
		if b, err := os.Open(filepath.Join(s.work, "units")); err == nil {
			sc := bufio.NewScanner(b)
			for sc.Scan() {
				if f := strings.Fields(sc.Text()); len(f) == 4 {
					states[f[0]] = f[1:]
				}
			}
			b.Close()
		}
		units := c.Args[slicesIndex(c.Args, "--")+1:]
		for _, u := range units {
			st := states[u]
			if st == nil {
				st = []string{"inactive", "dead", "0"}
			}
			fmt.Fprintf(c.Stdout, "Id=%s\nLoadState=loaded\nActiveState=%s\nSubState=%s\nExecMainStatus=%s\nExecMainCode=1\nMainPID=0\n\n", u, st[0], st[1], st[2])
		}
	}
	return nil
}

func slicesIndex(a []string, s string) int {
	for i, v := range a {
		if v == s {
			return i
		}
	}
	return -1
}
