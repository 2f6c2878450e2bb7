package project

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseLogTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]string{
		"10m":                         "2026-05-01T11:50:00Z",
		"1h30m":                       "2026-05-01T10:30:00Z",
		"2026-04-30T10:00:00Z":        "2026-04-30T10:00:00Z",
		"2026-04-30T10:00:00.5+02:00": "2026-04-30T08:00:00.5Z",
		"2026-04-30":                  "2026-04-30T00:00:00Z",
		"1777636800":                  "2026-05-01T12:00:00Z",
	} {
		got, err := ParseLogTime(in, now)
		if err != nil || got.UTC().Format(time.RFC3339Nano) != want {
			t.Errorf("ParseLogTime(%q) = %v, %v; want %s", in, got.UTC(), err, want)
		}
	}
	for _, bad := range []string{"yesterday", "", "1e9"} {
		if _, err := ParseLogTime(bad, now); err == nil {
			t.Errorf("ParseLogTime(%q): no error", bad)
		}
	}
	if got := journalTime(time.UnixMicro(1777636800000042)); got != "@1777636800.000042" {
		t.Errorf("journalTime = %s", got)
	}
}

func TestNormalizeSignal(t *testing.T) {
	for in, want := range map[string]string{"": "SIGKILL", "term": "SIGTERM", "SIGHUP": "SIGHUP", "9": "9", "RTMIN+3": "SIGRTMIN+3"} {
		if got, err := normalizeSignal(in); err != nil || got != want {
			t.Errorf("normalizeSignal(%q) = %q, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"NOPE", "0", "65", "-1", "TERM;reboot"} {
		if _, err := normalizeSignal(bad); err == nil {
			t.Errorf("normalizeSignal(%q): no error", bad)
		}
	}
}

func TestFreeAddress(t *testing.T) {
	sub := netip.MustParsePrefix("172.20.0.0/29")
	used := map[netip.Addr]bool{netip.MustParseAddr("172.20.0.6"): true}
	if a, err := freeAddress(sub, used); err != nil || a.String() != "172.20.0.5" {
		t.Errorf("freeAddress = %v, %v; want 172.20.0.5 (.7 is broadcast, .6 used)", a, err)
	}
	for i := 1; i <= 6; i++ {
		used[netip.AddrFrom4([4]byte{172, 20, 0, byte(i)})] = true
	}
	if _, err := freeAddress(sub, used); err == nil {
		t.Error("full subnet: no error")
	}
}

func TestForegroundArgs(t *testing.T) {
	in := []string{"systemd-nspawn", "--quiet", "--keep-unit", "--settings=no", "--console=pipe", "--", "/.berth/init", "--keep-unit", "--console=pipe"}
	got := strings.Join(foregroundArgs(in, true), " ")
	want := "systemd-nspawn --quiet --settings=no --console=interactive -- /.berth/init --keep-unit --console=pipe"
	if got != want {
		t.Errorf("foregroundArgs:\n%s\nwant:\n%s", got, want)
	}
}

func TestParsePublisher(t *testing.T) {
	p, ok := parsePublisher("0.0.0.0:8080->80/tcp")
	if !ok || p != (Publisher{URL: "0.0.0.0", PublishedPort: 8080, TargetPort: 80, Protocol: "tcp"}) {
		t.Errorf("parsePublisher = %+v, %v", p, ok)
	}
	if _, ok := parsePublisher("nonsense"); ok {
		t.Error("parsePublisher(nonsense) ok")
	}
}

func TestResolveMount(t *testing.T) {
	binds := []bind{{src: "/vol/data", dst: "/data"}, {src: "/vol/logs", dst: "/data/logs", ro: true}}
	for p, want := range map[string]string{
		"/etc/passwd":    "/tree /etc/passwd false",
		"/data":          "/vol/data / false",
		"/data/x/y":      "/vol/data /x/y false",
		"/data/logs/a":   "/vol/logs /a true",
		"/datafile":      "/tree /datafile false",
		"/data/../etc/x": "/tree /etc/x false",
	} {
		r, rel, ro := resolveMount("/tree", binds, p)
		if got := strings.Join([]string{r, rel, map[bool]string{true: "true", false: "false"}[ro]}, " "); got != want {
			t.Errorf("resolveMount(%s) = %s, want %s", p, got, want)
		}
	}
	if got := splitEscaped(`/a\:b:/c:idmap`); strings.Join(got, "|") != "/a:b|/c|idmap" {
		t.Errorf("splitEscaped = %q", got)
	}
}
