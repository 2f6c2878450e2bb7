package systemd

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-sh/berth/internal/command"
)

func TestShow(t *testing.T) {
	r := &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl show --property=Id,ActiveState,MainPID -- a.service b.service": {Stdout: "Id=a.service\nActiveState=active\nMainPID=42\n\nId=b.service\nActiveState=failed\nMainPID=0\n"},
		"systemctl show --property=Id,ActiveState,MainPID -- c.service":           {Stdout: "\n"},
		"systemctl show --property=Id,ActiveState,MainPID -- d.service":           {Stderr: "Failed to connect to bus", Code: 1},
	}}
	props := []string{"Id", "ActiveState", "MainPID"}
	got, err := Show(context.Background(), r, props, "a.service", "b.service")
	want := []Properties{{"Id": "a.service", "ActiveState": "active", "MainPID": "42"}, {"Id": "b.service", "ActiveState": "failed", "MainPID": "0"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Show = %v, %v; want %v", got, err, want)
	}
	if _, err := Show(context.Background(), r, props, "c.service"); err == nil || !strings.Contains(err.Error(), "answered for 0 of 1 units") {
		t.Errorf("Show of a missing answer: %v", err)
	}
	if _, err := Show(context.Background(), r, props, "d.service"); err == nil || !strings.Contains(err.Error(), "Failed to connect to bus") {
		t.Errorf("Show that fails: %v", err)
	}
	if got, err := Show(context.Background(), r, props); got != nil || err != nil {
		t.Errorf("Show of no units = %v, %v", got, err)
	}
	// A value may hold '='.
	if got := ParseShow("StatusText=a=b\n"); got[0]["StatusText"] != "a=b" {
		t.Errorf("ParseShow = %v", got)
	}
}

func TestLeader(t *testing.T) {
	r := &command.RecordingRunner{Results: map[string]command.Result{
		"machinectl show --property=Leader --value -- up":   {Stdout: "4242\n"},
		"machinectl show --property=Leader --value -- down": {Stderr: "Machine 'down' not known.\n", Code: 1},
		"machinectl show --property=Leader --value -- odd":  {Stdout: "\n"},
	}}
	if pid, err := Leader(context.Background(), r, "up"); pid != 4242 || err != nil {
		t.Errorf("Leader(up) = %d, %v", pid, err)
	}
	_, err := Leader(context.Background(), r, "down")
	if !errors.Is(err, ErrNoMachine) || !strings.Contains(err.Error(), "Machine 'down' not known.") {
		t.Errorf("Leader(down) = %v", err)
	}
	if _, err := Leader(context.Background(), r, "odd"); err == nil || errors.Is(err, ErrNoMachine) || !strings.Contains(err.Error(), `leader ""`) {
		t.Errorf("Leader(odd) = %v", err)
	}
	if got, want := strings.Join(Enter(42, "/bin/sh", "-c", "x"), " "), "nsenter --target=42 --all --root --wd -- /bin/sh -c x"; got != want {
		t.Errorf("Enter = %s, want %s", got, want)
	}
}

func TestRequireActive(t *testing.T) {
	r := &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl show --property=Id,ActiveState,SubState,Result -- a.service b.service": {Stdout: "Id=a.service\nActiveState=active\nSubState=running\nResult=success\n\nId=b.service\nActiveState=failed\nSubState=failed\nResult=exit-code\n"},
	}}
	err := RequireActive(context.Background(), r, "a.service", "b.service")
	if err == nil || !strings.Contains(err.Error(), "b.service is failed, result exit-code") || strings.Contains(err.Error(), "a.service is") {
		t.Fatalf("RequireActive = %v", err)
	}
	r = &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl show --property=Id,ActiveState,SubState,Result -- a.service": {Stdout: "Id=a.service\nActiveState=active\nSubState=exited\nResult=success\n"},
	}}
	if err := RequireActive(context.Background(), r, "a.service"); err != nil {
		t.Fatalf("RequireActive(active oneshot) = %v", err)
	}
	// A dependency in an automatic restart is coming back: the dependent
	// (restarting itself meanwhile) may start.
	r = &command.RecordingRunner{Results: map[string]command.Result{
		"systemctl show --property=Id,ActiveState,SubState,Result -- a.service": {Stdout: "Id=a.service\nActiveState=activating\nSubState=auto-restart\nResult=exit-code\n"},
		"systemctl show --property=Id,ActiveState,SubState,Result -- b.service": {Stdout: "Id=b.service\nActiveState=inactive\nSubState=dead\nResult=success\n"},
	}}
	if err := RequireActive(context.Background(), r, "a.service"); err != nil {
		t.Fatalf("RequireActive(auto-restart) = %v", err)
	}
	if err := RequireActive(context.Background(), r, "b.service"); !errors.Is(err, ErrDependencyDown) {
		t.Fatalf("RequireActive(inactive) = %v, want ErrDependencyDown", err)
	}
}
