package decl

import (
	"fmt"
	"strconv"
	"strings"
)

// EscapeUnitName escapes s as systemd's unit_name_escape() does (what
// `systemd-escape` prints): '/' becomes '-'; '-', '\' and every byte
// outside [A-Za-z0-9:_.] (and a leading '.') become \xNN. The result is
// a valid part of a unit name, and distinct strings never escape alike.
func EscapeUnitName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '_' || c == '.' && i > 0:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

// UnescapeUnitName reverses EscapeUnitName (`systemd-escape -u`).
func UnescapeUnitName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '-':
			b.WriteByte('/')
		case '\\':
			if i+4 > len(s) || s[i+1] != 'x' {
				return "", fmt.Errorf("unescape %q: a backslash not followed by xNN", s)
			}
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", fmt.Errorf("unescape %q: %w", s, err)
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
