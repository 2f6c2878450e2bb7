package decl

import (
	"fmt"
	"strings"
)

// SplitWords splits a value into words the way systemd splits command
// lines and lists (extract_first_word with quotes and C escapes): blanks
// separate words; "double" and 'single' quotes group; a backslash escapes
// the next character (\n, \t, \\, \", \' and \xHH are decoded).
func SplitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, fmt.Errorf("%q ends in a backslash", s)
			}
			i++
			r, n, err := unescape(s[i:])
			if err != nil {
				return nil, fmt.Errorf("%q: %w", s, err)
			}
			cur.WriteString(r)
			i += n - 1
			inWord = true
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%q has an unterminated %c quote", s, quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// unescape decodes the escape at the start of s (after the backslash) and
// says how many bytes it used.
func unescape(s string) (string, int, error) {
	switch s[0] {
	case 'n':
		return "\n", 1, nil
	case 't':
		return "\t", 1, nil
	case 'r':
		return "\r", 1, nil
	case 'a':
		return "\a", 1, nil
	case 'b':
		return "\b", 1, nil
	case 'f':
		return "\f", 1, nil
	case 'v':
		return "\v", 1, nil
	case 's':
		return " ", 1, nil
	case 'x':
		var b byte
		if len(s) < 3 {
			return "", 0, fmt.Errorf("short \\x escape")
		}
		if _, err := fmt.Sscanf(s[1:3], "%02x", &b); err != nil {
			return "", 0, fmt.Errorf("bad \\x escape %q", s[:3])
		}
		return string([]byte{b}), 3, nil
	}
	return s[:1], 1, nil
}
