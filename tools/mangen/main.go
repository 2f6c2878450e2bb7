// Command mangen writes berth's man pages (one per visible verb: berth.1,
// berth-compose-up.1, ...) into a directory:
//
//	mangen DIR
//
// scripts/install.sh and scripts/deb.sh run it. It is a program of its own
// so that berth does not link the man page renderer (cobra/doc and
// go-md2man), whose package initialisation every berth start, the helpers
// units run included, would pay for. SOURCE_DATE_EPOCH fixes the date the
// pages carry, so builds repeat.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/berth-sh/berth/internal/cli"
	"github.com/berth-sh/berth/internal/fsutil"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "usage: mangen DIR")
		return 2
	}
	if err := writeManPages(getenv, args[0]); err != nil {
		fmt.Fprintln(stderr, "mangen:", err)
		return 1
	}
	return 0
}

func writeManPages(getenv func(string) string, dir string) error {
	date := time.Now()
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("write man pages: SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		date = time.Unix(n, 0).UTC()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write man pages: %w", err)
	}
	// The defaults flags show are berth's own, not this environment's.
	root := cli.NewRootCommand(cli.Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	root.DisableAutoGenTag = true
	// cobra adds "completion" when it executes; the pages document it too.
	root.InitDefaultCompletionCmd()
	hdr := &doc.GenManHeader{Title: "BERTH", Section: "1", Source: "berth", Manual: "berth manual", Date: &date}
	return writeManTree(root, hdr, dir)
}

// writeManTree writes the page of c and of every visible command below
// it, as doc.GenManTree does, but turns cobra's panics (two flags of a
// verb with one shorthand) into an error naming the verb.
func writeManTree(c *cobra.Command, hdr *doc.GenManHeader, dir string) (err error) {
	for _, sub := range c.Commands() {
		if !sub.IsAvailableCommand() || sub.IsAdditionalHelpTopicCommand() {
			continue
		}
		if err := writeManTree(sub, hdr, dir); err != nil {
			return err
		}
	}
	name := strings.ReplaceAll(c.CommandPath(), " ", "-") + "." + hdr.Section
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write man page %s: %v", name, r)
		}
	}()
	h := *hdr // GenMan fills the header per page
	var buf bytes.Buffer
	if err := doc.GenMan(c, &h, &buf); err != nil {
		return fmt.Errorf("write man page %s: %w", name, err)
	}
	if err := fsutil.AtomicWrite(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write man page %s: %w", name, err)
	}
	return nil
}
