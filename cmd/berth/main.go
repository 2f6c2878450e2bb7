// Command berth runs OCI images and compose projects as systemd-nspawn
// machines owned by systemd. main only wires the process environment into the
// CLI; the work happens in internal packages.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-sh/berth/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, cli.Env{
		Args:    os.Args[1:],
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		Environ: os.Environ(),
	})
	stop()
	os.Exit(code)
}
