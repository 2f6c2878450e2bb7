package machine

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Limit syntaxes systemd accepts (systemd.resource-control(5)). CPUQuota=
// takes at most two decimals; MemorySwapMax= no percentage. Each is
// compiled when first used: berth-generator starts at every boot and most
// declarations set few limits, so compiling all at init would be wasted.
var (
	memoryRe   = lazyRegexp(`^([0-9]+[KMGT]?|[0-9]+(\.[0-9]+)?%|infinity)$`)
	swapRe     = lazyRegexp(`^([0-9]+[KMGT]?|infinity)$`)
	cpuQuotaRe = lazyRegexp(`^[0-9]+(\.[0-9]{1,2})?%$`)
	weightRe   = lazyRegexp(`^([1-9][0-9]{0,3}|10000)$`)
	cpuListRe  = lazyRegexp(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	tasksRe    = lazyRegexp(`^([0-9]+|[0-9]+(\.[0-9]+)?%|infinity)$`)
)

// lazyRegexp is expr compiled on the first call.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// Validate checks every limit against the syntax systemd accepts.
func (l Limits) Validate() error {
	for _, c := range []struct {
		key, v string
		re     func() *regexp.Regexp
	}{
		{"memory limit", l.MemoryMax, memoryRe},
		{"memory reservation", l.MemoryLow, memoryRe},
		{"swap limit", l.MemorySwapMax, swapRe},
		{"CPU quota", l.CPUQuota, cpuQuotaRe},
		{"CPU weight", l.CPUWeight, weightRe},
		{"allowed CPUs", l.AllowedCPUs, cpuListRe},
		{"tasks limit", l.TasksMax, tasksRe},
	} {
		if c.v != "" && !c.re().MatchString(c.v) {
			return fmt.Errorf("%w: %s %q (want %s)", ErrInvalidSpec, c.key, c.v, c.re())
		}
	}
	if l.AllowedCPUs != "" {
		if _, err := ParseCPUList(l.AllowedCPUs); err != nil {
			return err
		}
	}
	return nil
}

// CPUQuota turns a number of CPUs (docker's --cpus, compose's cpus:) into
// CPUQuota=: a percentage with at most two decimals, as systemd requires
// (0.333 CPUs is "33.3%"). It fails for values that are not positive or
// that round to 0%.
func CPUQuota(cpus float64) (string, error) {
	if math.IsNaN(cpus) || math.IsInf(cpus, 0) || cpus <= 0 {
		return "", fmt.Errorf("%w: %s CPUs: want a positive number", ErrInvalidSpec, strconv.FormatFloat(cpus, 'g', 6, 64))
	}
	pct := math.Round(cpus*10000) / 100
	if pct == 0 {
		return "", fmt.Errorf("%w: %s CPUs is below the smallest quota systemd can express (0.0001 CPUs, 0.01%%)", ErrInvalidSpec, strconv.FormatFloat(cpus, 'g', 6, 64))
	}
	if pct > 1e9 {
		return "", fmt.Errorf("%w: %s CPUs is more than any machine has", ErrInvalidSpec, strconv.FormatFloat(cpus, 'g', 6, 64))
	}
	return strconv.FormatFloat(pct, 'f', -1, 64) + "%", nil
}

// CPUWeight turns docker's relative CPU shares (1024 = normal) into
// CPUWeight= (100 = normal), clamped to systemd's 1..10000.
func CPUWeight(shares int64) string {
	return strconv.FormatInt(min(max(shares*100/1024, 1), 10000), 10)
}

// ParseCPUList checks a CPU list ("0-3,6") as cpuset and AllowedCPUs=
// take it, and returns the CPUs it names in order.
func ParseCPUList(s string) ([]int, error) {
	bad := func(why string) ([]int, error) {
		return nil, fmt.Errorf("%w: CPU list %q: %s (want numbers and ranges like 0-3,6)", ErrInvalidSpec, s, why)
	}
	if !cpuListRe().MatchString(s) {
		return bad("not a list of CPUs")
	}
	var cpus []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a > 8191 || b > 8191 {
			return bad("CPU numbers go up to 8191")
		}
		if b < a {
			return bad(fmt.Sprintf("range %s runs backwards", part))
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// Capability turns a docker capability name (NET_ADMIN, cap_net_admin,
// ALL) into nspawn's (CAP_NET_ADMIN, all).
func Capability(name string) (string, error) {
	u := strings.ToUpper(name)
	if u == "ALL" {
		return "all", nil
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	if len(u) == len("CAP_") || strings.IndexFunc(u, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}) >= 0 {
		return "", fmt.Errorf("%w: %q is not a capability name", ErrInvalidSpec, name)
	}
	return u, nil
}

// rlimitKeys maps resource names to nspawn's Limit*= settings.
var rlimitKeys = map[string]string{
	"as": "LimitAS", "core": "LimitCORE", "cpu": "LimitCPU", "data": "LimitDATA",
	"fsize": "LimitFSIZE", "locks": "LimitLOCKS", "memlock": "LimitMEMLOCK",
	"msgqueue": "LimitMSGQUEUE", "nice": "LimitNICE", "nofile": "LimitNOFILE",
	"nproc": "LimitNPROC", "rss": "LimitRSS", "rtprio": "LimitRTPRIO",
	"rttime": "LimitRTTIME", "sigpending": "LimitSIGPENDING", "stack": "LimitSTACK",
}

// RlimitNames lists the resource names an Rlimit may have.
func RlimitNames() []string {
	names := make([]string, 0, len(rlimitKeys))
	for n := range rlimitKeys {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Validate checks a resource limit's name and that soft ≤ hard.
func (r Rlimit) Validate() error {
	if _, ok := rlimitKeys[r.Name]; !ok {
		return fmt.Errorf("%w: %q is not a resource limit systemd-nspawn knows (want one of %s)", ErrInvalidSpec, r.Name, strings.Join(RlimitNames(), ", "))
	}
	if r.Hard >= 0 && (r.Soft < 0 || r.Soft > r.Hard) {
		return fmt.Errorf("%w: %s soft limit %s is above the hard limit %s", ErrInvalidSpec, r.Name, limitValue(r.Soft), limitValue(r.Hard))
	}
	return nil
}

func limitValue(v int64) string {
	if v < 0 {
		return "infinity"
	}
	return strconv.FormatInt(v, 10)
}

func (s Security) validate() error {
	for _, list := range [][]string{s.Capabilities, s.DropCapabilities} {
		for _, c := range list {
			if n, err := Capability(c); err != nil {
				return err
			} else if n != c {
				return fmt.Errorf("%w: capability %q is not in nspawn's form (%s)", ErrInvalidSpec, c, n)
			}
		}
	}
	if s.OOMScoreAdjust != nil && (*s.OOMScoreAdjust < -1000 || *s.OOMScoreAdjust > 1000) {
		return fmt.Errorf("%w: OOM score adjustment %d is outside -1000..1000", ErrInvalidSpec, *s.OOMScoreAdjust)
	}
	for _, r := range s.Rlimits {
		if err := r.Validate(); err != nil {
			return err
		}
	}
	return nil
}
