package e2e

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/berth-sh/berth/e2e/testhost"
)

// TestScripts runs every testdata/script/*.txtar scenario, each on a fresh
// test host; testhost.ScriptCommands lists the commands they can use.
func TestScripts(t *testing.T) {
	if !testhost.Enabled() {
		t.Skip("end-to-end test: set BERTH_E2E=1 or run scripts/e2e.sh")
	}
	testscript.Run(t, testhost.ScriptParams("testdata/script", testhost.Options{}))
}
