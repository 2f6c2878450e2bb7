package compose

import (
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// planHealthcheck is the planner of healthcheck: the service's own test
// or, without one, the image's HEALTHCHECK, with docker's defaults.
func (c *svcPlanner) planHealthcheck() { c.sp.Health = c.health() }

func (c *svcPlanner) health() *HealthPlan {
	hc := c.svc.HealthCheck
	var img *v1.HealthConfig
	if cfg, ok := c.image(c.svc.Image); ok && cfg.Healthcheck != nil && len(cfg.Healthcheck.Test) > 0 {
		img = cfg.Healthcheck
	}
	if hc == nil {
		if img == nil {
			return nil
		}
		h := &HealthPlan{
			FromImage:     true,
			Interval:      orDur(img.Interval, defaultHealthInterval),
			Timeout:       orDur(img.Timeout, defaultHealthTimeout),
			StartPeriod:   img.StartPeriod,
			StartInterval: defaultHealthStartInt,
			Retries:       defaultHealthRetries,
		}
		if img.Retries > 0 {
			h.Retries = uint64(img.Retries)
		}
		if !c.healthTest(h, img.Test) {
			return nil
		}
		return h
	}
	if hc.Disable {
		return nil
	}
	h := &HealthPlan{
		Interval:      durOr(hc.Interval, defaultHealthInterval),
		Timeout:       durOr(hc.Timeout, defaultHealthTimeout),
		StartPeriod:   durOr(hc.StartPeriod, 0),
		StartInterval: durOr(hc.StartInterval, defaultHealthStartInt),
		Retries:       defaultHealthRetries,
	}
	if hc.Retries != nil {
		h.Retries = *hc.Retries
	}
	if len(hc.Test) == 0 {
		// A healthcheck that only tunes timing applies to the image's test.
		if img != nil {
			h.FromImage = true
			if c.healthTest(h, img.Test) {
				return h
			}
			return nil
		}
		c.warn("healthcheck", "healthcheck has no test and the image's HEALTHCHECK is not known; no check is run")
		return nil
	}
	if !c.healthTest(h, hc.Test) {
		return nil
	}
	return h
}

// image returns the config of ref if the caller knows it.
func (pl *planner) image(ref string) (*v1.Config, bool) { return lookupImage(pl.opts, ref) }

// lookupImage asks opts.Images about ref; nil or unknown is ok=false.
func lookupImage(opts ConvertOptions, ref string) (*v1.Config, bool) {
	if opts.Images == nil || ref == "" {
		return nil, false
	}
	cfg, ok := opts.Images(ref)
	return cfg, ok && cfg != nil
}

func orDur(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// healthTest fills h from a docker test array; false means no check.
func (c *svcPlanner) healthTest(h *HealthPlan, test []string) bool {
	switch test[0] {
	case "NONE":
		return false
	case "CMD":
		if len(test) < 2 {
			c.err("healthcheck.test", "CMD names no command")
			return false
		}
		h.Command = append([]string(nil), test[1:]...)
	case "CMD-SHELL":
		if len(test) == 2 && test[1] == "NONE" {
			// test: NONE written as a string: compose-go makes it a shell
			// command, but it can only mean "disabled".
			return false
		}
		if len(test) != 2 {
			c.err("healthcheck.test", "CMD-SHELL takes exactly one command string")
			return false
		}
		h.Shell = true
		h.Command = []string{test[1]}
	default:
		// compose-go turns a plain string into CMD-SHELL; anything else is
		// malformed.
		c.err("healthcheck.test", "test must start with CMD, CMD-SHELL or NONE, not %q", test[0])
		return false
	}
	if h.Interval <= 0 || h.Timeout <= 0 {
		c.err("healthcheck", "interval and timeout must be positive")
	}
	return true
}

// durOr is a compose duration, or def when it is unset or 0.
func durOr(d *types.Duration, def time.Duration) time.Duration {
	if d == nil || *d == 0 {
		return def
	}
	return time.Duration(*d)
}
