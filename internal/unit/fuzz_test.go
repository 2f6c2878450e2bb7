package unit

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The decoders below model systemd's parsing of the lines Marshal writes
// (conf-parser.c line handling, extract_first_word() with the flags each
// setting uses, specifier and $ unescaping). They let the fuzzer check
// round trips on inputs no one thought of; TestNspawnRoundTrip and the
// systemd e2e tests check the same escaping against the real parsers.

var errModel = errors.New("model rejects line")

// lineValue is conf-parser's view of "Key=value": the value stripped of
// surrounding whitespace; a trailing odd backslash would join the next line.
func lineValue(line string) (string, error) {
	if strings.ContainsAny(line, "\n\r\x00") {
		return "", errModel
	}
	_, v, ok := strings.Cut(line, "=")
	if !ok {
		return "", errModel
	}
	n := 0
	for i := len(line) - 1; i >= 0 && line[i] == '\\'; i-- {
		n++
	}
	if n%2 == 1 {
		return "", errModel
	}
	return strings.Trim(v, " \t"), nil
}

// splitWords models extract_first_word() with EXTRACT_UNQUOTE and either
// EXTRACT_CUNESCAPE (cunescape) or EXTRACT_RETAIN_ESCAPE (!cunescape).
func splitWords(v string, cunescape bool) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i >= len(v) {
			return words, nil
		}
		var b strings.Builder
		var quote byte
		for ; i < len(v); i++ {
			c := v[i]
			if quote == 0 && (c == ' ' || c == '\t') {
				break
			}
			switch {
			case c == '\\' && cunescape:
				r, n, err := cunescapeOne(v[i+1:])
				if err != nil {
					return nil, err
				}
				b.WriteString(r)
				i += n
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
			case quote != 0 && c == quote:
				quote = 0
			default:
				b.WriteByte(c)
			}
		}
		if quote != 0 {
			return nil, errModel
		}
		words = append(words, b.String())
	}
}

// cunescapeOne decodes the escapes cQuote writes (and a few more).
func cunescapeOne(s string) (string, int, error) {
	if s == "" {
		return "", 0, errModel
	}
	switch s[0] {
	case '\\', '"', '\'':
		return s[:1], 1, nil
	case 't':
		return "\t", 1, nil
	case 'n':
		return "\n", 1, nil
	case 's':
		return " ", 1, nil
	case 'x':
		if len(s) < 3 {
			return "", 0, errModel
		}
		n, err := strconv.ParseUint(s[1:3], 16, 8)
		if err != nil || n == 0 {
			return "", 0, errModel
		}
		return string(rune(n)), 3, nil
	}
	return "", 0, errModel
}

// unescapeSpecifiers undoes "%%" (the only specifier Marshal writes).
func unescapeSpecifiers(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+1 >= len(s) || s[i+1] != '%' {
				return "", errModel // a real specifier: the value would change
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// unescapeDollars undoes "$$"; a lone $ would be expanded at exec time.
func unescapeDollars(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' {
			if i+1 >= len(s) || s[i+1] != '$' {
				return "", errModel
			}
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// decodeCommand is what the process would get as argv from the line.
func decodeCommand(d Dialect, line string) ([]string, error) {
	v, err := lineValue(line)
	if err != nil {
		return nil, err
	}
	if d == Nspawn {
		return splitWords(v, false)
	}
	if v, err = unescapeSpecifiers(v); err != nil {
		return nil, err
	}
	words, err := splitWords(v, true)
	if err != nil {
		return nil, err
	}
	for i, w := range words {
		if words[i], err = unescapeDollars(w); err != nil {
			return nil, err
		}
	}
	return words, nil
}

func FuzzCommandRoundTrip(f *testing.F) {
	for _, s := range []string{"", " ", "a b", `"`, `'`, `\`, `a\`, "%", "%%n", "$", "$$", "${X}", ";", "\t", "\x01", "é✓", `'"'`, "  x  ", "#", "[S]"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if unmark(a) != a || unmark(b) != b {
			t.Skip("a Specifier mark is written as a specifier on purpose")
		}
		for _, d := range []Dialect{Systemd, Nspawn} {
			argv := []string{"/bin/x", a, b}
			f := New(d)
			key := "ExecStart"
			if d == Nspawn {
				key = "Parameters"
			}
			f.Section("S").AddCommand(key, "", argv...)
			out, err := f.Marshal()
			if err != nil {
				if !errors.Is(err, ErrInvalidValue) {
					t.Fatalf("%v: error %v is not ErrInvalidValue", d, err)
				}
				// Refusals must have a reason the parser could not
				// carry: a line end, NUL, invalid UTF-8 or (nspawn) a
				// control character.
				for _, s := range argv {
					if !utf8.ValidString(s) || strings.ContainsAny(s, "\n\r\x00") {
						return
					}
					if d == Nspawn && strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
						return
					}
				}
				t.Fatalf("%v refused %q: %v", d, argv, err)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%v: %q made %d lines:\n%s", d, argv, len(lines), out)
			}
			got, err := decodeCommand(d, lines[1])
			if err != nil || !reflect.DeepEqual(got, argv) {
				t.Fatalf("%v: %q came back as %q (%v) from %s", d, argv, got, err, lines[1])
			}
		}
	})
}

func FuzzBindRoundTrip(f *testing.F) {
	for _, s := range []string{"/a", "/a:b", "/a b ", `/a\`, "/a\t", "/é"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, src, dst string) {
		src, dst = "/"+src, "/"+dst
		file := New(Nspawn)
		file.Section("Files").AddBind("Bind", src, dst)
		out, err := file.Marshal()
		if err != nil {
			return
		}
		v, err := lineValue(strings.Split(string(out), "\n")[1])
		if err != nil {
			t.Fatalf("%q %q: %v in %s", src, dst, err, out)
		}
		// bind_mount_parse: split on ":" with a backslash quoting
		// any character.
		var parts []string
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			switch {
			case v[i] == '\\' && i+1 < len(v):
				i++
				b.WriteByte(v[i])
			case v[i] == '\\':
				t.Fatalf("dangling backslash in %s", out)
			case v[i] == ':':
				parts = append(parts, b.String())
				b.Reset()
			default:
				b.WriteByte(v[i])
			}
		}
		parts = append(parts, b.String())
		if len(parts) < 2 || parts[0] != src || parts[1] != dst || (len(parts) == 3 && parts[2] != "rbind") || len(parts) > 3 {
			t.Fatalf("%q %q came back as %q from %s", src, dst, parts, out)
		}
	})
}
