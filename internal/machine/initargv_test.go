package machine

import (
	"reflect"
	"testing"
)

// TestWithCommand: what `berth exec` runs through berth-init keeps the
// machine's settings, with the user and directory given winning; a
// machine that resolves its image at start has the exec's command as the
// whole command (the image's Entrypoint and Cmd replaced) and resolves
// the rest from the image config again.
func TestWithCommand(t *testing.T) {
	eager := Spec{Argv: []string{"serve"}, User: "app", WorkingDir: "/srv", Env: []string{"HOME=/data"}}
	if got, want := InitArgv(ptr(eager.WithCommand([]string{"sh"}, "", ""))), []string{InitPath, "--user", "app", "--workdir", "/srv", "--keep-home", "--", "sh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("eager exec: %q, want %q", got, want)
	}
	if got, want := InitArgv(ptr(eager.WithCommand([]string{"id"}, "root", "/tmp"))), []string{InitPath, "--user", "root", "--workdir", "/tmp", "--keep-home", "--", "id"}; !reflect.DeepEqual(got, want) {
		t.Errorf("eager exec as root: %q, want %q", got, want)
	}

	var late Spec
	late.ResolveAtStart("/var/lib/machines/web.oci-config", Overrides{Cmd: []string{"serve"}, Env: []string{"A=1", "B=line\n2", "A=3"}, User: "app", WorkingDir: "srv"})
	late.StopSignal = "QUIT"
	if got, want := InitArgv(&late), []string{InitPath, "--image-config", ImageConfigPath, "--user", "app", "--workdir", "/srv", "--stop-signal", "SIGQUIT", "--env", "A=3", "--env", "B=line\n2", "--cmd", "serve"}; !reflect.DeepEqual(got, want) {
		t.Errorf("late machine: %q, want %q", got, want)
	}
	if got, want := InitArgv(ptr(late.WithCommand([]string{"id", "-u"}, "root", ""))), []string{InitPath, "--image-config", ImageConfigPath, "--user", "root", "--workdir", "/srv", "--stop-signal", "SIGQUIT", "--env", "A=3", "--env", "B=line\n2", "--", "id", "-u"}; !reflect.DeepEqual(got, want) {
		t.Errorf("late exec: %q, want %q", got, want)
	}
	if late.Overrides.Cmd[0] != "serve" {
		t.Error("WithCommand changed the machine's own overrides")
	}
}

func ptr(s Spec) *Spec { return &s }
