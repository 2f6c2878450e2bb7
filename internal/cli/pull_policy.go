package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/berth-sh/berth/internal/project"
	"github.com/berth-sh/berth/internal/pull"
)

// Pull policies (podman's --pull vocabulary), as berth pull --policy takes
// them. The generator's units run berth pull with one before every start.
const (
	policyAlways  = "always"  // resolve the reference; install when it changed
	policyMissing = "missing" // only when the machine does not have the image
	policyNewer   = "newer"   // like always, but a failure keeps an installed image
	policyNever   = "never"   // fail when the machine does not have the image
)

// imageSource carries out berth pull's --policy, --from and --retry: whether
// a machine's image is pulled, copied from another machine, or left alone,
// and how often a pull is tried.
type imageSource struct {
	policy string
	// from is a machine whose tree is copied instead of pulling (a
	// NAME.image unit's machine, which never runs, so its tree is the
	// image as pulled).
	from string
	// retry is how many times a failed pull is tried again; delay the
	// pause between tries (0: 2 s, doubling each time, as podman does).
	retry int
	delay time.Duration
	imgs  project.StoreImages
	// pull and sleep are seams for tests.
	pull   func(context.Context, pull.Options) (*pull.Result, error)
	sleep  func(context.Context, time.Duration) error
	stderr io.Writer
}

func checkPolicy(p string) error {
	switch p {
	case policyAlways, policyMissing, policyNewer, policyNever:
		return nil
	}
	return fmt.Errorf("pull policy %q: want always, missing, newer or never", p)
}

// ensure gives machine o.Name the image o.Ref (with o.LayoutTag) as the
// policy says.
func (s imageSource) ensure(ctx context.Context, o pull.Options) error {
	if err := checkPolicy(s.policy); err != nil {
		return err
	}
	ref, err := pull.ParseRef(o.Ref, o.Insecure)
	if err == nil {
		ref, err = ref.WithLayoutTag(o.LayoutTag)
	}
	if err != nil {
		return err
	}
	if o.Name == "" {
		if o.Name, err = pull.DefaultName(ref); err != nil {
			return err
		}
	}
	have, installed := s.imgs.Installed(o.Name, ref.String())
	if s.from != "" {
		return s.copyFrom(ctx, o.Name, ref.String(), have, installed)
	}
	switch {
	case installed && (s.policy == policyMissing || s.policy == policyNever):
		s.note("%s has %s installed (pull policy %s)", o.Name, ref, s.policy)
		return nil
	case s.policy == policyNever:
		return fmt.Errorf("pull %s: machine %s does not have it and the pull policy is never", ref, o.Name)
	}
	err = s.pullRetrying(ctx, o)
	if err != nil && installed && s.policy == policyNewer {
		s.note("%v; keeping the installed image (pull policy newer)", err)
		return nil
	}
	return err
}

// copyFrom installs machine's image from s.from: when missing, or when
// s.from has another version and the policy asks for the newest.
func (s imageSource) copyFrom(ctx context.Context, machine, ref, have string, installed bool) error {
	src, ok := s.imgs.Installed(s.from, ref)
	switch {
	case !ok:
		return fmt.Errorf("copy %s from machine %s: it does not have that image (has its pull unit run?)", ref, s.from)
	case installed && (have == src || s.policy == policyMissing || s.policy == policyNever):
		s.note("%s has %s installed (pull policy %s)", machine, ref, s.policy)
		return nil
	}
	_, err := s.imgs.Clone(ctx, s.from, machine, nil)
	return err
}

// pullRetrying pulls, trying again s.retry times after a failure that
// another try may fix.
func (s imageSource) pullRetrying(ctx context.Context, o pull.Options) error {
	delay := s.delay
	if delay <= 0 {
		delay = 2 * time.Second
	}
	for try := 0; ; try++ {
		_, err := s.pull(ctx, o)
		if err == nil || try >= s.retry || !retryable(ctx, err) {
			return err
		}
		s.note("%v; trying again in %v (%d of %d)", err, delay, try+1, s.retry)
		if err := s.sleep(ctx, delay); err != nil {
			return err
		}
		if s.delay <= 0 {
			delay *= 2
		}
	}
}

// retryable says whether another try could succeed: not after a
// cancellation, nor when the machine's directory is not berth's.
func retryable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, pull.ErrNotBerthMachine) && !errors.Is(err, pull.ErrDiffIDMismatch)
}

func (s imageSource) note(format string, args ...any) {
	if s.stderr != nil {
		fmt.Fprintf(s.stderr, "berth: "+format+"\n", args...)
	}
}
