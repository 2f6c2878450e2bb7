package pull

import "runtime/debug"

// goarm reports the GOARM berth was built with (only meaningful on arm).
func goarm() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOARM" {
				return s.Value
			}
		}
	}
	return ""
}
