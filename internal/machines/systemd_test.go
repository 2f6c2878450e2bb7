package machines

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

// TestStartKeepsSystemctlStderr: when systemctl fails, its explanation
// (written to its stderr) reaches the error `berth start` prints.
func TestStartKeepsSystemctlStderr(t *testing.T) {
	const why = "Job for berth-app.service failed because the control process exited with error code.\nSee \"systemctl status berth-app.service\" and \"journalctl -xeu berth-app.service\" for details."
	rr := &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl start berth-app.service": {Stderr: why + "\n", Code: 1},
	}}
	h := testHost(t, rr)
	h.SystemdBooted = true
	createApp(t, h, "app")
	err := h.Start(context.Background(), "app")
	if want := "start machine app: systemctl start berth-app.service: exit status 1: " + why; err == nil || err.Error() != want {
		t.Errorf("Start = %v\nwant %s", err, want)
	}
	if want := "systemctl daemon-reload\nsystemctl start berth-app.service\n"; rr.Commands() != want {
		t.Errorf("commands:\n%s\nwant:\n%s", rr.Commands(), want)
	}
}

// TestList reads each machine's state from systemctl show.
func TestList(t *testing.T) {
	rr := &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl show --property=ActiveState,SubState,MainPID -- berth-app.service": {Stdout: "ActiveState=active\nSubState=running\nMainPID=42\n"},
	}}
	h := testHost(t, rr)
	h.SystemdBooted = true
	createApp(t, h, "app")
	st, err := h.List(context.Background())
	if err != nil || len(st) != 1 {
		t.Fatalf("List = %v, %v", st, err)
	}
	if want := (Status{Name: "app", Image: "app", Unit: "berth-app.service", ActiveState: "active", SubState: "running", MainPID: 42}); st[0] != want {
		t.Errorf("List = %+v, want %+v", st[0], want)
	}
	h.SystemdBooted = false
	if st, err := h.List(context.Background()); err != nil || st[0].ActiveState != "unknown" {
		t.Errorf("List without systemd = %+v, %v", st, err)
	}
	if !strings.HasSuffix(rr.Commands(), "systemctl show --property=ActiveState,SubState,MainPID -- berth-app.service\n") {
		t.Errorf("commands:\n%s", rr.Commands())
	}
}
