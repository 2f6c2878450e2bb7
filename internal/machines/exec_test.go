package machines

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

// TestExecNotRunning: exec into a machine machined does not know says it
// is not running and how to start it.
func TestExecNotRunning(t *testing.T) {
	rr := &command.RecordingRunner{Results: map[string]command.Result{"machinectl show --property=Leader --value -- app": {Code: 1}}}
	h := testHost(t, rr)
	h.SystemdBooted = true
	createApp(t, h, "app")
	_, err := h.Exec(context.Background(), "app", []string{"true"}, ExecOptions{})
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "berth start app") {
		t.Errorf("exec in a stopped machine: %v", err)
	}
}
