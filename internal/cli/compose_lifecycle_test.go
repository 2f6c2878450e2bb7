package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The lifecycle verbs read the installed project from the state directory;
// these tests cover what they decide before touching systemd.

func TestComposeLifecycleFlagErrors(t *testing.T) {
	dir := writeProject(t)
	root := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"down", "--rmi", "bogus"}, `--rmi "bogus": want all or local`},
		{[]string{"logs", "--tail", "many"}, `--tail "many": want a number of lines or all`},
		{[]string{"ps", "--format", "xml"}, `unknown format "xml" (want table or json)`},
		{[]string{"ps"}, "read project clitest: project is not installed (run berth compose up first)"},
		{[]string{"exec", "app"}, "requires at least 2 arg(s)"},
		{[]string{"up", "nope"}, `select service "nope" in project clitest: no such service`},
	} {
		args := append([]string{"--root", root, "compose", "--project-directory", dir}, tc.args...)
		_, errOut, code := runCompose(t, args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error with %q", tc.args, code, errOut, tc.want)
		}
	}
}

// -p alone names the project when there is no compose file, as with
// docker compose.
func TestComposeProjectNameWithoutFile(t *testing.T) {
	root := t.TempDir()
	empty := t.TempDir()
	_, errOut, code := runCompose(t, "--root", root, "compose", "--project-directory", empty, "-p", "gone", "ps")
	if code == 0 || !strings.Contains(errOut, "read project gone: project is not installed") {
		t.Errorf("ps -p gone: exit %d, %q", code, errOut)
	}
	// Down of a project that is not installed has nothing to do.
	_, errOut, code = runCompose(t, "--root", root, "compose", "--project-directory", empty, "-p", "gone", "down")
	if code != 0 || !strings.Contains(errOut, "project gone is not installed; nothing to remove") {
		t.Errorf("down -p gone: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(root, "compose", "gone")); err == nil {
		t.Error("down created the project directory")
	}
	// Without -p and without a file, the loader's error stands.
	_, errOut, code = runCompose(t, "--root", root, "compose", "--project-directory", empty, "ps")
	if code == 0 || errOut == "" {
		t.Errorf("ps without a project: exit %d, %q", code, errOut)
	}
}
