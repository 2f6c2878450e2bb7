package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when the watcher sleeps; it ends the watch after
// the scripted probes are used up.
type fakeClock struct {
	now    time.Time
	sleeps []time.Duration
	left   func() int
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.left() == 0 {
		return context.Canceled
	}
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

type script struct{ codes []int }

func (s *script) Probe(context.Context) (int, string, error) {
	c := s.codes[0]
	s.codes = s.codes[1:]
	if c < 0 {
		return 0, "", errors.New("machine not running")
	}
	return c, "out", nil
}

func run(t *testing.T, c Check, codes []int) (notes []string, states []State, sleeps []time.Duration, err error) {
	t.Helper()
	s := &script{codes: codes}
	clk := &fakeClock{now: time.Unix(1000, 0), left: func() int { return len(s.codes) }}
	err = Watch(context.Background(), c, s, clk,
		func(m string) error { notes = append(notes, m); return nil },
		func(st State) error { states = append(states, st); return nil })
	return notes, states, clk.sleeps, err
}

func TestStartPeriodFailuresDoNotCount(t *testing.T) {
	c := Check{Interval: 10 * time.Second, Timeout: time.Second, StartPeriod: 5 * time.Second, StartInterval: 2 * time.Second, Retries: 2}
	// Two failures inside the start period (at 2s and 4s), then a pass at
	// 6s: healthy, never unhealthy.
	notes, states, sleeps, err := run(t, c, []int{1, 1, 0, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	wantSleeps := []time.Duration{2 * time.Second, 2 * time.Second, 2 * time.Second, 10 * time.Second, 10 * time.Second}
	if len(sleeps) != len(wantSleeps) {
		t.Fatalf("sleeps %v, want %v", sleeps, wantSleeps)
	}
	for i := range sleeps {
		if sleeps[i] != wantSleeps[i] {
			t.Fatalf("sleeps %v, want %v", sleeps, wantSleeps)
		}
	}
	if got := states[2].Status; got != Starting {
		t.Errorf("after two start-period failures: %s, want starting", got)
	}
	if !strings.HasPrefix(notes[2], "READY=1\n") {
		t.Errorf("third probe passed but notification is %q", notes[2])
	}
	for i, n := range notes {
		if i != 2 && strings.Contains(n, "READY=1") {
			t.Errorf("READY=1 sent again at probe %d", i+1)
		}
	}
	if last := states[len(states)-1]; last.Status != Healthy || len(last.Log) != 5 {
		t.Errorf("final state %+v", last)
	}
	// After readiness a failure counts but one is below retries.
	if st := states[4]; st.Status != Healthy || st.FailingStreak != 1 {
		t.Errorf("after a failure past readiness: %+v", st)
	}
}

func TestUnhealthyBeforeReadyFails(t *testing.T) {
	c := Check{Interval: time.Second, Timeout: time.Second, Retries: 3}
	notes, _, _, err := run(t, c, []int{1, -1, 7, 0})
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrUnhealthy", err)
	}
	for _, n := range notes {
		if strings.Contains(n, "READY=1") {
			t.Errorf("READY=1 sent though the check never passed")
		}
	}
	if !strings.Contains(err.Error(), "last exit code 7") {
		t.Errorf("error does not name the last exit code: %v", err)
	}
}

func TestUnhealthyAfterReadyKeepsWatching(t *testing.T) {
	c := Check{Interval: time.Second, Timeout: time.Second, Retries: 2}
	_, states, _, err := run(t, c, []int{0, 1, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, s := range states[1:] {
		got = append(got, s.Status)
	}
	if strings.Join(got, " ") != "healthy healthy unhealthy healthy" {
		t.Errorf("statuses %v", got)
	}
}

type slowProbe struct{}

func (slowProbe) Probe(ctx context.Context) (int, string, error) {
	<-ctx.Done()
	return 0, "", ctx.Err()
}

func TestTimeoutIsAFailure(t *testing.T) {
	c := Check{Interval: time.Second, Timeout: time.Millisecond, Retries: 1}
	r := probe(context.Background(), c, slowProbe{}, RealClock{})
	if r.ExitCode != -1 || !strings.Contains(r.Output, "timeout") {
		t.Errorf("result %+v, want a timeout failure", r)
	}
}

func TestExitUnhealthyAfterReady(t *testing.T) {
	c := Check{Interval: time.Second, Timeout: time.Second, Retries: 2, ExitUnhealthy: true}
	_, states, _, err := run(t, c, []int{0, 1, 1, 0})
	if !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("err = %v, want ErrUnhealthy", err)
	}
	if len(states) != 4 || states[3].Status != Unhealthy {
		t.Errorf("stopped at %+v, want after the second failure", states)
	}
}

func TestUntilHealthyReturnsOnFirstPass(t *testing.T) {
	c := Check{Interval: time.Second, Timeout: time.Second, Retries: 3, UntilHealthy: true}
	notes, _, _, err := run(t, c, []int{1, 0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 2 {
		t.Errorf("watched on after the first pass: %q", notes)
	}
}
