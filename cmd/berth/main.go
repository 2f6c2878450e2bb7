// Command berth runs OCI images and compose projects as systemd-nspawn
// machines owned by systemd. main only wires the process environment into the
// CLI; the work happens in internal packages.
//
// berth is also a multi-call binary: started as /.berth/init (the path app
// machines start their init at) or through a link named berth-init, it is
// that init (internal/initproc). So a berth installed alone, say by `go
// install`, runs machines without a berth-init beside it.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-sh/berth/internal/cli"
	"github.com/berth-sh/berth/internal/initproc"
	"github.com/berth-sh/berth/internal/machines"
	"github.com/berth-sh/berth/internal/paths"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(argv []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(argv) > 0 && initproc.Invoked(argv[0]) {
		// PID 1 of a machine: no CLI, no signal handling but the
		// init's own.
		return initproc.Main(argv[1:], stderr)
	}
	exe, _ := os.Executable()
	paths.Berth, paths.Init = locate(os.Getenv, exe)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Main(ctx, cli.Env{
		Args:    argv[1:],
		Stdin:   stdin,
		Stdout:  stdout,
		Stderr:  stderr,
		Getenv:  os.Getenv,
		Environ: os.Environ(),
	})
}

// locate is the berth and the init that units rendered by this berth run:
// berth itself wherever it is installed, and the init machines.FindInit
// finds for it. What is not found keeps its default, and the verbs that
// need it (berth run, create) report why.
func locate(getenv func(string) string, exe string) (berth, init string) {
	berth, init = paths.DefaultBerth, paths.DefaultInit
	if exe == "" {
		return berth, init
	}
	berth = exe
	if p, err := machines.FindInit(getenv, exe); err == nil {
		init = p
	}
	return berth, init
}
