package machines

import (
	"context"
	"errors"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

// TestRemoveResetsFailed: rm clears a failed unit from systemd's memory,
// and a reset-failed that finds nothing to reset does not stop the removal.
func TestRemoveResetsFailed(t *testing.T) {
	rr := &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl --quiet is-active berth-app.service":    {Code: 3},
		"systemctl --quiet reset-failed berth-app.service": {Code: 1},
	}}
	h := testHost(t, rr)
	h.SystemdBooted = true
	createApp(t, h, "app")
	if err := h.Remove(context.Background(), "app", false); err != nil {
		t.Fatalf("remove: %v", err)
	}
	want := "systemctl daemon-reload\nsystemctl --quiet is-active berth-app.service\nsystemctl --quiet disable berth-app.service\nsystemctl --quiet reset-failed berth-app.service\nsystemctl daemon-reload\n"
	if got := rr.Commands(); got != want {
		t.Errorf("commands:\n%s\nwant:\n%s", got, want)
	}
	if _, err := h.Instance("app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("record left after remove: %v", err)
	}
}
