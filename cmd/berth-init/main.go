// Command berth-init is PID 1 of berth app machines: systemd-nspawn starts
// it, bind-mounted read-only from the host at /.berth/init. The init itself
// lives in internal/initproc (berth can run it too, as a multi-call
// binary); this small static binary is what installations bind in, since
// it costs less memory than berth as every machine's PID 1.
//
// It must stay a static binary (CGO_ENABLED=0) with no dependencies beyond
// golang.org/x/sys: it runs in scratch images.
package main

import (
	"os"

	"github.com/berth-sh/berth/internal/initproc"
)

func main() {
	os.Exit(initproc.Main(os.Args[1:], os.Stderr))
}
