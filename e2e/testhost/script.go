package testhost

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// hostKey is where ScriptParams keeps each script's host in its Env.Values.
type hostKey struct{}

// ScriptParams returns testscript parameters that run every .txtar script
// in dir against a freshly booted test host (see Boot; scripts skip unless
// BERTH_E2E=1), with the commands of ScriptCommands. $HOST is the host's
// machine name, $TESTHOST_ROOTFS the cached Debian tree it boots from (never
// to be written to; a bootable image source). Pass the result to
// testscript.Run.
func ScriptParams(dir string, opts Options) testscript.Params {
	return testscript.Params{
		Dir: dir,
		Setup: func(env *testscript.Env) error {
			// Documented by testscript: under testscript.Run, T is a
			// testing.TB (the script's subtest).
			tb, ok := env.T().(testing.TB)
			if !ok {
				return errors.New("testhost scripts must run under testscript.Run")
			}
			h := Boot(tb, opts)
			env.Values[hostKey{}] = h
			env.Setenv("HOST", h.Name())
			// The host's own Debian tree (read-only): a ready systemd
			// rootfs for scenarios that need a bootable image.
			env.Setenv("TESTHOST_ROOTFS", h.lower)
			return nil
		},
		Cmds: ScriptCommands(),
		// Outer-machine commands must say exec, so "host" is never
		// confused with running something on the outer machine.
		RequireExplicitExec: true,
	}
}

// ScriptCommands are the testscript commands of a test host:
//
//	host CMD [ARGS...]           run CMD inside the host; its output feeds stdout/stderr matchers
//	eventually DURATION CMD...   run CMD inside the host until it succeeds, failing after DURATION
//	copyin SRC DST               copy SRC (relative to $WORK) to the host's absolute path DST
//	busybox DIR                  build a static busybox rootfs at DIR (relative to $WORK)
//	install-berth                build ./cmd/... and copy the binaries into the host's /usr/local/bin
//	registry PORT                start docker-registry on the host's 127.0.0.1:PORT; sets $REGISTRY
//	mkimage ARGS...              run tools/mkimage in the host's network namespace (push to $REGISTRY)
//	reboot                       reboot the host and wait until it is up again
//
// "! host CMD" expects CMD to fail; the other commands cannot be negated.
func ScriptCommands() map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	return map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"host":          scriptHost,
		"eventually":    scriptEventually,
		"copyin":        scriptCopyIn,
		"busybox":       scriptBusybox,
		"install-berth": scriptInstallBerth,
		"registry":      scriptRegistry,
		"mkimage":       scriptMkimage,
		"reboot":        scriptReboot,
	}
}

func scriptHostOf(ts *testscript.TestScript) *Host {
	h, ok := ts.Value(hostKey{}).(*Host)
	if !ok {
		ts.Fatalf("no test host: use testhost.ScriptParams")
	}
	return h
}

func noNeg(ts *testscript.TestScript, neg bool, name string) {
	if neg {
		ts.Fatalf("%s cannot be negated", name)
	}
}

func scriptHost(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) == 0 {
		ts.Fatalf("usage: host CMD [ARGS...]")
	}
	h := scriptHostOf(ts)
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CommandTimeout)
	defer cancel()
	r, err := h.Run(ctx, args[0], args[1:]...)
	ts.Stdout().Write([]byte(r.Stdout))
	ts.Stderr().Write([]byte(r.Stderr))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	switch {
	case neg && r.ExitCode == 0:
		ts.Fatalf("unexpected success")
	case !neg && r.ExitCode != 0:
		ts.Fatalf("exit code %d; last journal lines:\n%s", r.ExitCode, h.JournalTail(20))
	}
}

func scriptEventually(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "eventually")
	if len(args) < 2 {
		ts.Fatalf("usage: eventually DURATION CMD [ARGS...]")
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		ts.Fatalf("eventually: %v", err)
	}
	h := scriptHostOf(ts)
	deadline := time.Now().Add(d)
	var last Result
	for {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		last, err = h.Run(ctx, args[1], args[2:]...)
		cancel()
		if err == nil && last.ExitCode == 0 {
			ts.Stdout().Write([]byte(last.Stdout))
			ts.Stderr().Write([]byte(last.Stderr))
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	ts.Fatalf("%s: no success within %v (%v)\n%s\nlast journal lines:\n%s",
		strings.Join(args[1:], " "), d, errOr(err, "still failing"), last, h.JournalTail(20))
}

func scriptCopyIn(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "copyin")
	if len(args) != 2 {
		ts.Fatalf("usage: copyin SRC DST")
	}
	scriptHostOf(ts).CopyIn(ts.MkAbs(args[0]), args[1])
}

func scriptBusybox(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "busybox")
	if len(args) != 1 {
		ts.Fatalf("usage: busybox DIR")
	}
	ts.Check(writeBusyboxTree(ts.MkAbs(args[0])))
}

func scriptInstallBerth(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "install-berth")
	if len(args) != 0 {
		ts.Fatalf("usage: install-berth")
	}
	scriptHostOf(ts).InstallBerth()
}

func scriptRegistry(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "registry")
	if len(args) != 1 {
		ts.Fatalf("usage: registry PORT")
	}
	port, err := strconv.Atoi(args[0])
	if err != nil || port <= 0 || port > 65535 {
		ts.Fatalf("registry: bad port %q", args[0])
	}
	reg := scriptHostOf(ts).StartRegistry(port)
	ts.Setenv("REGISTRY", reg.Addr)
}

func scriptMkimage(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "mkimage")
	h := scriptHostOf(ts)
	bin := h.buildOnce("./tools/mkimage") + "/mkimage"
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.CommandTimeout)
	defer cancel()
	cmd := h.NetCommand(ctx, bin, args...)
	// Relative layer paths in scripts mean $WORK, like every other path.
	cmd.Dir = ts.Getenv("WORK")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	ts.Stdout().Write(stdout.Bytes())
	ts.Stderr().Write(stderr.Bytes())
	if err != nil {
		ts.Fatalf("mkimage: %v", err)
	}
}

func scriptReboot(ts *testscript.TestScript, neg bool, args []string) {
	noNeg(ts, neg, "reboot")
	if len(args) != 0 {
		ts.Fatalf("usage: reboot")
	}
	scriptHostOf(ts).Reboot()
}
