package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// TestManPages: a page per visible verb, none for hidden helpers, dated by
// SOURCE_DATE_EPOCH.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	var stderr bytes.Buffer
	getenv := func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return "1767225600"
		}
		return ""
	}
	if code := run([]string{dir}, getenv, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{"berth.1", "berth-run.1", "berth-compose.1", "berth-compose-up.1", "berth-completion-bash.1"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if !strings.Contains(string(b), `.TH "BERTH" "1" "Jan 2026" "berth" "berth manual"`) {
			t.Errorf("%s header: %.200s", name, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "berth-_etc-files.1")); err == nil {
		t.Error("a page was written for a hidden verb")
	}
	if code := run(nil, getenv, &stderr); code != 2 {
		t.Errorf("no DIR: exit %d", code)
	}
}

// TestManPageOfBrokenVerb: cobra panics on a verb whose flag shorthand
// clashes with an inherited one; the error names the verb.
func TestManPageOfBrokenVerb(t *testing.T) {
	root := &cobra.Command{Use: "x"}
	root.PersistentFlags().StringP("file", "f", "", "")
	bad := &cobra.Command{Use: "bad", Run: func(*cobra.Command, []string) {}}
	bad.Flags().BoolP("force", "f", false, "")
	root.AddCommand(bad)
	err := writeManTree(root, &doc.GenManHeader{Section: "1"}, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "x-bad.1") {
		t.Errorf("err = %v, want one naming x-bad.1", err)
	}
}
