package depcheck

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what would have failed the test.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Error(args ...any) {
	r.errs = append(r.errs, fmt.Sprint(args...))
}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// This package imports os/exec itself.
func TestCheck(t *testing.T) {
	r := &recorder{TB: t}
	Check(r, ".", "os/exec", "net/http", "github.com/godbus/dbus/...")
	want := []string{"github.com/berth-sh/berth/internal/depcheck depends on os/exec: github.com/berth-sh/berth/internal/depcheck → os/exec"}
	if !reflect.DeepEqual(r.errs, want) {
		t.Errorf("errors %q, want %q", r.errs, want)
	}
}

func TestCheckChainsAndExceptions(t *testing.T) {
	g := &graph{root: "a", imports: map[string][]string{
		"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": {"x/y"},
	}}
	want := []string{"a depends on x/y: a → b → d → x/y"}
	if got := g.check(nil, []string{"x/..."}); !reflect.DeepEqual(got, want) {
		t.Errorf("check = %q, want %q", got, want)
	}
	if got := g.check([]string{"d"}, []string{"x/y"}); len(got) != 0 {
		t.Errorf("check not following d = %q", got)
	}
	if got := g.check(nil, []string{"x", "c/..."}); !reflect.DeepEqual(got, []string{"a depends on c: a → c"}) {
		t.Errorf("check of x and c/... = %q", got)
	}
}

func TestOnly(t *testing.T) {
	r := &recorder{TB: t}
	Only(r, "github.com/berth-sh/berth/internal/fsutil")
	if len(r.errs) != 1 || !strings.HasSuffix(r.errs[0], "internal/fsutil → golang.org/x/sys/unix") {
		t.Errorf("errors %q", r.errs)
	}
	r = &recorder{TB: t}
	Only(r, "github.com/berth-sh/berth/internal/fsutil", "golang.org/x/sys/...")
	if len(r.errs) != 0 {
		t.Errorf("errors %q", r.errs)
	}
}
