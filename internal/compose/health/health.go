// Package health runs a compose healthcheck from the host against a
// running machine, with docker's semantics (interval, timeout, retries,
// start_period, start_interval), and reports the state to systemd: READY=1
// the first time the check passes, STATUS= after every probe. The unit that
// runs it (berth-MACHINE_health.service, Type=notify) is what
// service_healthy dependents order themselves after.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-sh/berth/internal/fsutil"
)

// Check is one healthcheck.
type Check struct {
	Interval      time.Duration
	Timeout       time.Duration
	StartPeriod   time.Duration
	StartInterval time.Duration
	// Retries is how many consecutive failures make the machine unhealthy.
	Retries uint64
	// ExitUnhealthy makes Watch return ErrUnhealthy whenever the machine
	// turns unhealthy, not only before it was first healthy: a unit bound
	// to the watcher's then stops (podman's HealthOnFailure=stop).
	ExitUnhealthy bool
	// UntilHealthy makes Watch return nil once the check first passed:
	// a wait for health (podman's Notify=healthy, as ExecStartPost=).
	UntilHealthy bool
}

// Result is one probe.
type Result struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exit_code"`
	Output   string    `json:"output"`
}

// Status values, as docker names them.
const (
	Starting  = "starting"
	Healthy   = "healthy"
	Unhealthy = "unhealthy"
)

// State is what berth compose ps shows; it is saved after every probe.
type State struct {
	Status        string   `json:"status"`
	FailingStreak uint64   `json:"failing_streak"`
	Log           []Result `json:"log"`
}

// maxLog is how many results the state keeps, as docker does.
const maxLog = 5

// maxOutput bounds the output kept per probe (docker keeps 4 KiB).
const maxOutput = 4096

// Prober runs the test once inside the machine; a non-zero exit code (or
// an error, such as the machine not running) is a failed probe.
type Prober interface {
	Probe(ctx context.Context) (exitCode int, output string, err error)
}

// Clock is time, passed in so tests control it.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// ErrUnhealthy is returned when the check fails Retries times in a row
// before it ever passed: the unit fails, and so do its dependents.
var ErrUnhealthy = errors.New("machine is unhealthy")

// Watch probes until ctx ends. notify gets sd_notify lines ("READY=1",
// "STATUS=..."); save gets the state after every probe.
func Watch(ctx context.Context, c Check, p Prober, clk Clock, notify func(string) error, save func(State) error) error {
	if c.Interval <= 0 || c.Timeout <= 0 {
		return fmt.Errorf("watch health: interval and timeout must be positive")
	}
	start := clk.Now()
	st := State{Status: Starting}
	ready := false
	if err := save(st); err != nil {
		return err
	}
	for {
		wait := c.Interval
		inStart := clk.Now().Sub(start) < c.StartPeriod
		if !ready && inStart && c.StartInterval > 0 {
			wait = c.StartInterval
		}
		if err := clk.Sleep(ctx, wait); err != nil {
			return nil // stopped
		}
		res := probe(ctx, c, p, clk)
		st.Log = append(st.Log, res)
		if len(st.Log) > maxLog {
			st.Log = st.Log[len(st.Log)-maxLog:]
		}
		if res.ExitCode == 0 {
			st.Status, st.FailingStreak = Healthy, 0
		} else if !(clk.Now().Sub(start) < c.StartPeriod && !ready) {
			// Failures in the start period do not count, until the
			// check passed once.
			st.FailingStreak++
			if st.FailingStreak >= c.Retries {
				st.Status = Unhealthy
			}
		}
		if err := save(st); err != nil {
			return err
		}
		msg := fmt.Sprintf("STATUS=%s (failing streak %d)", st.Status, st.FailingStreak)
		if st.Status == Healthy && !ready {
			ready = true
			msg = "READY=1\n" + msg
		}
		if err := notify(msg); err != nil {
			return fmt.Errorf("watch health: notify systemd: %w", err)
		}
		if st.Status == Unhealthy && (!ready || c.ExitUnhealthy) {
			return fmt.Errorf("watch health: %w: %d failures in a row, last exit code %d: %s", ErrUnhealthy, st.FailingStreak, res.ExitCode, res.Output)
		}
		if ready && c.UntilHealthy {
			return nil
		}
	}
}

func probe(ctx context.Context, c Check, p Prober, clk Clock) Result {
	pctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	r := Result{Start: clk.Now()}
	code, out, err := p.Probe(pctx)
	r.End = clk.Now()
	switch {
	case pctx.Err() == context.DeadlineExceeded:
		r.ExitCode, out = -1, fmt.Sprintf("health check exceeded timeout (%s)", c.Timeout)
	case err != nil:
		r.ExitCode, out = -1, err.Error()
	default:
		r.ExitCode = code
	}
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	r.Output = out
	return r
}

// SaveFile returns a save function writing the state as JSON to path,
// atomically, so berth compose ps never reads half a file.
func SaveFile(path string) func(State) error {
	return func(st State) error {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("save health state: %w", err)
		}
		if err := fsutil.AtomicWrite(path, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("save health state: %w", err)
		}
		return nil
	}
}

// RealClock is the system clock.
type RealClock struct{}

// Now implements Clock.
func (RealClock) Now() time.Time { return time.Now() }

// Sleep implements Clock; it returns ctx's error when ctx ends first.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
