package compose

import (
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-sh/berth/internal/machine"
)

// resources are a service's cgroup limits in docker's units, as set by the
// service-level keys or by deploy.resources; 0 is "not set".
type resources struct {
	mem, low, swap int64
	cpus           float64
	pids           int64
}

// planMemLimit, planMemReservation, planMemswapLimit, planCPUs and
// planPidsLimit record the service-level limits; deploy.resources wins
// over them (assembleLimits).
func (c *svcPlanner) planMemLimit()       { c.res.mem = int64(c.svc.MemLimit) }
func (c *svcPlanner) planMemReservation() { c.res.low = int64(c.svc.MemReservation) }
func (c *svcPlanner) planMemswapLimit()   { c.res.swap = int64(c.svc.MemSwapLimit) }
func (c *svcPlanner) planCPUs()           { c.res.cpus = float64(c.svc.CPUS) }
func (c *svcPlanner) planPidsLimit()      { c.res.pids = c.svc.PidsLimit }

// planCPUShares is the planner of cpu_shares: (CPUWeight=).
func (c *svcPlanner) planCPUShares() {
	if s := c.svc.CPUShares; s > 0 {
		c.m.Limits.CPUWeight = machine.CPUWeight(s)
	}
}

// planCPUSet is the planner of cpuset: (AllowedCPUs=).
func (c *svcPlanner) planCPUSet() {
	if s := c.svc.CPUSet; s != "" {
		if _, err := machine.ParseCPUList(s); err != nil {
			c.err("cpuset", "%s", machine.Reason(err))
			return
		}
		c.m.Limits.AllowedCPUs = s
	}
}

// planScale is the planner of scale: the number of instances (it wins
// over deploy.replicas).
func (c *svcPlanner) planScale() {
	if s := c.svc.Scale; s != nil {
		c.scale = c.replicaCount("scale", *s)
	}
}

func (c *svcPlanner) replicaCount(key string, n int) *int {
	if n < 0 {
		c.err(key, "negative replica count %d", n)
		n = 0
	}
	return &n
}

// planDeploy is the planner of deploy: replicas, resources and the
// restart policy; the swarm-only parts are findings.
func (c *svcPlanner) planDeploy() {
	d := c.svc.Deploy
	if d == nil {
		return
	}
	if d.Mode != "" && d.Mode != "replicated" {
		c.err("deploy.mode", "deploy mode %q is not supported", d.Mode)
	}
	if d.Replicas != nil {
		c.replicas = c.replicaCount("deploy.replicas", *d.Replicas)
	}
	for _, r := range []*types.Resource{d.Resources.Limits, d.Resources.Reservations} {
		if r != nil && (len(r.Devices) > 0 || len(r.GenericResources) > 0) {
			c.err("deploy.resources", "device and generic resource requests are not supported")
		}
	}
	if lim := d.Resources.Limits; lim != nil {
		c.deployRes.mem, c.deployRes.cpus, c.deployRes.pids = int64(lim.MemoryBytes), float64(lim.NanoCPUs), lim.Pids
	}
	if res := d.Resources.Reservations; res != nil {
		c.deployRes.low = int64(res.MemoryBytes)
		if res.NanoCPUs != 0 || res.Pids != 0 {
			c.warn("deploy.resources.reservations", "CPU and pids reservations are not enforced by systemd; only memory is (MemoryLow=)")
		}
	}
	if d.UpdateConfig != nil || d.RollbackConfig != nil || d.EndpointMode != "" || len(d.Placement.Constraints) > 0 || len(d.Placement.Preferences) > 0 || d.Placement.MaxReplicas > 0 {
		c.warn("deploy", "placement, update_config, rollback_config and endpoint_mode are swarm only; ignored")
	}
	c.deployRestart = d.RestartPolicy
}

// assembleLimits turns the recorded limits into the machine's, with
// deploy.resources.limits winning over the service-level keys as in
// docker compose.
func (c *svcPlanner) assembleLimits() {
	r, d := c.res, c.deployRes
	memKey, cpuKey := "mem_limit", "cpus"
	if d.mem > 0 {
		r.mem, memKey = d.mem, "deploy.resources.limits.memory"
	}
	if d.cpus > 0 {
		r.cpus, cpuKey = d.cpus, "deploy.resources.limits.cpus"
	}
	if d.pids > 0 {
		r.pids = d.pids
	}
	if d.low > 0 {
		r.low = d.low
	}
	l := &c.m.Limits
	if r.mem > 0 {
		l.MemoryMax = strconv.FormatInt(r.mem, 10)
	}
	if r.low > 0 {
		l.MemoryLow = strconv.FormatInt(r.low, 10)
	}
	// memswap_limit is memory plus swap, as docker reads it; systemd's
	// MemorySwapMax= is the swap alone.
	switch {
	case r.swap == -1:
		l.MemorySwapMax = "infinity"
	case r.swap < -1:
		c.err("memswap_limit", "%d is not a limit (want bytes, or -1 for unlimited swap)", r.swap)
	case r.swap > 0 && r.mem <= 0:
		c.err("memswap_limit", "memswap_limit needs mem_limit: it is memory plus swap (docker refuses it alone too)")
	case r.swap > 0 && r.swap < r.mem:
		c.err("memswap_limit", "%d is below %s %d: memswap_limit is memory plus swap, so it must be at least the memory limit", r.swap, memKey, r.mem)
	case r.swap > 0:
		l.MemorySwapMax = strconv.FormatInt(r.swap-r.mem, 10)
	}
	if r.cpus > 0 {
		q, err := machine.CPUQuota(r.cpus)
		if err != nil {
			c.err(cpuKey, "%s", machine.Reason(err))
		}
		l.CPUQuota = q
	}
	if r.pids > 0 {
		l.TasksMax = strconv.FormatInt(r.pids, 10)
	} else if r.pids < 0 {
		l.TasksMax = "infinity"
	}
}

// planRestart is the planner of restart: (deploy.restart_policy wins).
func (c *svcPlanner) planRestart() { c.restart = c.svc.Restart }

// assembleRestart maps docker's restart policy onto systemd's.
func (c *svcPlanner) assembleRestart() {
	var r machine.Restart
	var maxRetries uint64
	policy, key := c.restart, "restart"
	if rp := c.deployRestart; rp != nil {
		switch rp.Condition {
		case "", "any":
			policy = "always"
		case "on-failure":
			policy = "on-failure"
		case "none":
			policy = "no"
		}
		key = "deploy.restart_policy"
		if rp.MaxAttempts != nil {
			maxRetries = *rp.MaxAttempts
		}
		if rp.Delay != nil {
			r.Delay = time.Duration(*rp.Delay)
		}
		if rp.Window != nil {
			r.Interval = time.Duration(*rp.Window)
		}
	}
	switch {
	case policy == "" || policy == "no":
		r.Policy = "no"
	case policy == "always" || policy == "unless-stopped":
		// unless-stopped differs from always only across a docker daemon
		// restart; a stopped unit stays stopped under systemd either way.
		r.Policy = "always"
	case policy == "on-failure":
		r.Policy = "on-failure"
	case strings.HasPrefix(policy, "on-failure:"):
		n, err := strconv.ParseUint(strings.TrimPrefix(policy, "on-failure:"), 10, 32)
		if err != nil {
			c.err(key, "restart %q: the retry count is not a number", policy)
		}
		r.Policy = "on-failure"
		maxRetries = n
	default:
		c.err(key, "restart policy %q is not one of no, always, on-failure[:N], unless-stopped", policy)
		r.Policy = "no"
	}
	if r.Policy != "no" && r.Delay == 0 {
		r.Delay = defaultRestartDelay
	}
	if maxRetries > 0 {
		// on-failure:N allows N restarts after the first start.
		r.Burst = maxRetries + 1
	}
	if r.Delay < 0 || r.Interval < 0 {
		c.err(key, "restart delay and window must not be negative")
		r.Delay, r.Interval = defaultRestartDelay, 0
	}
	c.m.Restart = r
}
