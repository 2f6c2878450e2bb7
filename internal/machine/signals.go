package machine

import (
	"fmt"
	"strconv"
	"strings"
)

// signals are the names systemd's signal_from_string() accepts for
// KillSignal= (without the SIG prefix), with their Linux numbers.
var signals = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8,
	"KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
	"STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
	"URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
	"PWR": 30, "SYS": 31,
}

// SignalName normalizes an image's StopSignal ("SIGTERM", "TERM", "15",
// "SIGRTMIN+3") to the "SIGxxx" form systemd reads. "" means SIGTERM.
func SignalName(s string) (string, error) {
	if s == "" {
		return "SIGTERM", nil
	}
	up := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if _, ok := signals[up]; ok {
		return "SIG" + up, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		for name, num := range signals {
			if num == n {
				return "SIG" + name, nil
			}
		}
		if n >= 34 && n <= 64 {
			return fmt.Sprintf("SIGRTMIN+%d", n-34), nil
		}
	}
	if rest, ok := strings.CutPrefix(up, "RTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && n <= 30 {
			return "SIGRTMIN+" + rest, nil
		}
	}
	if up == "RTMIN" {
		return "SIGRTMIN", nil
	}
	return "", fmt.Errorf("%w: unknown stop signal %q", ErrInvalidSpec, s)
}
