// Package unit is a model of systemd unit files and .nspawn settings files
// and the only place berth turns values into their text.
//
// A File is sections of ordered, possibly repeated keys. Every entry records
// what KIND of value it holds (plain text, a path, a command line, a list of
// environment assignments, a bind mount), and Marshal escapes each value by
// its kind and by the file's Dialect, following the parsers in systemd's
// src/shared/conf-parser.c, src/basic/extract-word.c, src/core/load-fragment.c
// and src/nspawn/nspawn-settings.c. Values that the target parser cannot
// represent (newlines, a lone trailing backslash in a literal value,
// whitespace that the line parser would strip, ...) are errors naming the
// section and key; nothing is ever silently changed.
package unit

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrInvalidValue is wrapped by every error about a value that cannot be
// written so that systemd reads it back exactly.
var ErrInvalidValue = errors.New("value cannot be represented")

// ErrInvalidName is wrapped by errors about section or key names.
var ErrInvalidName = errors.New("invalid name")

// Dialect says which parser will read a File. The two share the line syntax
// (conf-parser.c) but differ in what happens to values afterwards.
type Dialect int

const (
	// Systemd is a unit file read by the service manager (.service,
	// .socket, .mount, ...): "%" specifiers are expanded in almost every
	// setting, command lines are C-unescaped and "$VAR" expanded.
	Systemd Dialect = iota
	// Nspawn is a .nspawn settings file read by systemd-nspawn: no
	// specifiers, list values split with quotes but backslashes kept
	// verbatim, Bind= split on ":" with backslash escapes.
	Nspawn
)

func (d Dialect) String() string {
	switch d {
	case Systemd:
		return "systemd unit"
	case Nspawn:
		return "nspawn settings"
	}
	return fmt.Sprintf("Dialect(%d)", int(d))
}

// Kind is the kind of value an Entry holds; it selects the escaping.
type Kind int

const (
	// Text is a single literal value (an enum, a number, a description, a
	// unit name). It is written as is, with "%" doubled in the Systemd
	// dialect. It may not start or end with whitespace or end in a
	// backslash, because the line parser would strip or join them.
	Text Kind = iota
	// Verbatim is a single literal value of a setting that systemd
	// parses without specifier expansion (CPUQuota=, MemoryMax=,
	// TasksMax=, ...): written like Text but with "%" kept single.
	Verbatim
	// Path is a single absolute, already clean path (as path.Clean
	// returns it), written like Text.
	Path
	// Command is a command line: ExecStart= and friends in units,
	// Parameters= in .nspawn files. Every word round-trips exactly,
	// including "$", "%", quotes, backslashes, spaces and empty words.
	Command
	// Words is a list of words each of which must round-trip exactly, for
	// settings that split on whitespace with quoting (RequiresMountsFor=,
	// and list settings in .nspawn files).
	Words
	// Env is a list of KEY=VALUE assignments (Environment=).
	Env
	// Bind is an nspawn bind mount: Values are source, destination and
	// optional mount options (Bind=, BindReadOnly=).
	Bind
)

// Entry is one "Key=value" line.
type Entry struct {
	Key    string
	Kind   Kind
	Values []string
	// Prefix is a command line's special executable prefix ("-", "@",
	// "+", "!", "!!", ":" or a combination) for the Systemd dialect.
	// It is written in front of the first word, unquoted.
	Prefix string
}

// Section is a "[Name]" group of entries, in order.
type Section struct {
	Name    string
	Entries []Entry
}

// File is a unit or settings file.
type File struct {
	Dialect Dialect
	// Comments are written as "# " lines at the top of the file.
	Comments []string
	Sections []*Section
}

// New returns an empty File for dialect d.
func New(d Dialect) *File { return &File{Dialect: d} }

// Section returns the section called name, adding it at the end if the file
// has none yet.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	s := &Section{Name: name}
	f.Sections = append(f.Sections, s)
	return s
}

// Lookup returns the entries for key in section, in order.
func (f *File) Lookup(section, key string) []Entry {
	var out []Entry
	for _, s := range f.Sections {
		if s.Name != section {
			continue
		}
		for _, e := range s.Entries {
			if e.Key == key {
				out = append(out, e)
			}
		}
	}
	return out
}

// Add appends a Text entry.
func (s *Section) Add(key, value string) *Section {
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Text, Values: []string{value}})
	return s
}

// AddVerbatim appends a Verbatim entry.
func (s *Section) AddVerbatim(key, value string) *Section {
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Verbatim, Values: []string{value}})
	return s
}

// AddCommand appends a Command entry. prefix is only meaningful for the
// Systemd dialect (for example "-" to ignore failure).
func (s *Section) AddCommand(key, prefix string, argv ...string) *Section {
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Command, Prefix: prefix, Values: argv})
	return s
}

// AddWords appends a Words entry.
func (s *Section) AddWords(key string, words ...string) *Section {
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Words, Values: words})
	return s
}

// AddEnv appends an Env entry with the assignments kv ("KEY=VALUE").
func (s *Section) AddEnv(key string, kv ...string) *Section {
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Env, Values: kv})
	return s
}

// AddBind appends a Bind entry. options may be empty.
func (s *Section) AddBind(key, source, dest string, options ...string) *Section {
	v := append([]string{source, dest}, options...)
	s.Entries = append(s.Entries, Entry{Key: key, Kind: Bind, Values: v})
	return s
}

// Marshal renders f. It fails, naming section and key, if any value cannot
// be written so that the dialect's parser reads back exactly that value.
func (f *File) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.Grow(f.sizeHint())
	for _, c := range f.Comments {
		if err := checkLine(c); err != nil {
			return nil, fmt.Errorf("write comment %q: %w", c, err)
		}
		b.WriteString("# ")
		b.WriteString(c)
		b.WriteByte('\n')
	}
	first := true
	for _, s := range f.Sections {
		if len(s.Entries) == 0 {
			continue // an empty section says nothing
		}
		if !first || len(f.Comments) > 0 {
			b.WriteByte('\n')
		}
		first = false
		if !validSectionName(s.Name) {
			return nil, fmt.Errorf("write section [%s]: %w", s.Name, ErrInvalidName)
		}
		b.WriteString("[" + s.Name + "]\n")
		for _, e := range s.Entries {
			v, err := f.Dialect.value(e)
			if err != nil {
				return nil, fmt.Errorf("write [%s] %s=: %w", s.Name, e.Key, err)
			}
			b.WriteString(e.Key)
			b.WriteByte('=')
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	return b.Bytes(), nil
}

// sizeHint is about what f marshals to, so the buffer grows once.
func (f *File) sizeHint() int {
	n := 0
	for _, c := range f.Comments {
		n += len(c) + 3
	}
	for _, s := range f.Sections {
		n += len(s.Name) + 4
		for _, e := range s.Entries {
			n += len(e.Key) + 2
			for _, v := range e.Values {
				n += len(v) + 3
			}
		}
	}
	return n + n/8
}

func validSectionName(n string) bool {
	if n == "" {
		return false
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f || r == '[' || r == ']' {
			return false
		}
	}
	return utf8.ValidString(n)
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// checkLine rejects what no value may contain: invalid UTF-8, NUL and line
// ends (systemd's read_line() ends lines at \n, \r and \0).
func checkLine(v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: invalid UTF-8 in %q", ErrInvalidValue, v)
	}
	if i := strings.IndexAny(v, "\n\r\x00"); i >= 0 {
		what := map[byte]string{'\n': "a newline", '\r': "a carriage return", 0: "a NUL byte"}[v[i]]
		return fmt.Errorf("%w: %q contains %s", ErrInvalidValue, v, what)
	}
	return nil
}

// checkControl rejects control characters (other than tab) in values that
// are written verbatim: there is no escape for them.
func checkControl(v string) error {
	for _, r := range v {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return fmt.Errorf("%w: %q contains control character %U", ErrInvalidValue, v, r)
		}
	}
	return nil
}

func (d Dialect) value(e Entry) (string, error) {
	if !validKey(e.Key) {
		return "", ErrInvalidName
	}
	marked := false
	for _, v := range e.Values {
		if err := checkLine(unmark(v)); err != nil {
			return "", err
		}
		marked = marked || v != unmark(v)
	}
	if marked {
		if d != Systemd || e.Kind == Verbatim || e.Kind == Bind {
			return "", fmt.Errorf("%w: a specifier (unit.Specifier) in a setting that expands none", ErrInvalidValue)
		}
	}
	switch e.Kind {
	case Text, Verbatim, Path:
		if len(e.Values) != 1 {
			return "", fmt.Errorf("%w: want exactly one value, have %d", ErrInvalidValue, len(e.Values))
		}
		v := e.Values[0]
		if e.Kind == Path && (!path.IsAbs(v) || path.Clean(v) != v) {
			return "", fmt.Errorf("%w: %q is not an absolute clean path", ErrInvalidValue, v)
		}
		if e.Kind == Verbatim {
			return Nspawn.literal(v)
		}
		return d.literal(v)
	case Command:
		return d.command(e.Prefix, e.Values)
	case Words:
		if d == Systemd {
			// RequiresMountsFor= and friends unquote without C
			// escapes: a control character has no spelling there.
			for _, w := range e.Values {
				if err := checkControl(unmark(w)); err != nil {
					return "", err
				}
				if strings.ContainsRune(w, '\t') {
					return "", fmt.Errorf("%w: %q contains a tab", ErrInvalidValue, w)
				}
			}
		}
		return d.words(e.Values, false)
	case Env:
		for _, kv := range e.Values {
			if err := checkEnv(unmark(kv)); err != nil {
				return "", err
			}
		}
		return d.words(e.Values, false)
	case Bind:
		if d != Nspawn {
			return "", fmt.Errorf("%w: bind mounts are .nspawn settings", ErrInvalidValue)
		}
		return bindValue(e.Values)
	}
	return "", fmt.Errorf("%w: unknown value kind %d", ErrInvalidValue, e.Kind)
}

// literal writes a value the parser keeps verbatim (after specifier
// expansion in units). conf-parser strips surrounding whitespace and joins a
// line ending in an odd number of backslashes with the next one.
func (d Dialect) literal(v string) (string, error) {
	if err := checkControl(unmark(v)); err != nil {
		return "", err
	}
	if v != strings.TrimSpace(v) {
		return "", fmt.Errorf("%w: %q has leading or trailing whitespace, which the parser strips", ErrInvalidValue, v)
	}
	if strings.HasSuffix(v, `\`) {
		return "", fmt.Errorf("%w: %q ends in a backslash, which continues the line", ErrInvalidValue, v)
	}
	if d == Systemd {
		v = strings.ReplaceAll(v, "%", "%%")
		v = strings.ReplaceAll(v, specifierMark, "%")
	}
	return v, nil
}

// specifierMark starts a specifier in a value (see Specifier). checkLine
// refuses NUL everywhere else, so no value can contain it by accident.
const specifierMark = "\x00"

// specifiers are the systemd specifiers a value may keep: the instance
// name of a template unit, escaped (%i) and unescaped (%I).
const specifiers = "iI"

// Specifier is a piece of a value that Marshal writes as the systemd
// specifier %c, while every other '%' in the value is doubled: for units
// made from templates (NAME@.service), whose machine name, paths and
// command lines name the instance. c must be 'i' or 'I'. Only settings the
// manager expands specifiers in may hold one (Text, Path, Command, Words
// and Env entries of the Systemd dialect); elsewhere Marshal fails.
func Specifier(c byte) string {
	if !strings.ContainsRune(specifiers, rune(c)) {
		panic("unit: unsupported specifier %" + string(c))
	}
	return specifierMark + string(c)
}

// unmark is v with each well-formed specifier mark written as its
// specifier ("%i"), the text checks see; a stray mark stays a NUL byte,
// which they refuse.
func unmark(v string) string {
	if !strings.Contains(v, specifierMark) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == 0 && i+1 < len(v) && strings.IndexByte(specifiers, v[i+1]) >= 0 {
			b.WriteByte('%')
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// execPrefixes are the characters config_parse_exec() strips from the front
// of the first word of a command line after unquoting it.
const execPrefixes = "-@:+!|"

func (d Dialect) command(prefix string, argv []string) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("%w: empty command line", ErrInvalidValue)
	}
	if d == Systemd {
		for _, r := range prefix {
			if !strings.ContainsRune(execPrefixes, r) {
				return "", fmt.Errorf("%w: %q is not a command prefix", ErrInvalidValue, prefix)
			}
		}
		// Quoting does not protect the first word: systemd strips
		// prefix characters after unquoting it, and then wants a path.
		if argv[0] == "" || strings.ContainsRune(execPrefixes, rune(argv[0][0])) {
			return "", fmt.Errorf("%w: executable %q starts with a character systemd reads as a prefix", ErrInvalidValue, argv[0])
		}
		w, err := d.words(argv, true)
		if err != nil {
			return "", err
		}
		return prefix + w, nil
	}
	if prefix != "" {
		return "", fmt.Errorf("%w: command prefixes exist only in unit files", ErrInvalidValue)
	}
	return d.words(argv, false)
}

// words quotes each word for extract_first_word(): in units with
// EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE (C escapes inside double quotes), in
// .nspawn files with EXTRACT_UNQUOTE|EXTRACT_RETAIN_ESCAPE (backslashes are
// literal, so a double quote can only be written inside single quotes).
func (d Dialect) words(ws []string, dollar bool) (string, error) {
	var b strings.Builder
	n := 0
	for _, w := range ws {
		n += len(w) + 3 // quotes and a blank; escapes grow it further
	}
	b.Grow(n)
	for i, w := range ws {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch d {
		case Systemd:
			cQuoteTo(&b, w, dollar)
		case Nspawn:
			if err := checkControl(w); err != nil {
				return "", err
			}
			b.WriteString(nspawnQuote(w))
		default:
			return "", fmt.Errorf("%w: unknown dialect %d", ErrInvalidValue, int(d))
		}
	}
	return b.String(), nil
}

// cQuoteTo writes w to b double-quoted with C escapes. "%" is doubled because specifiers
// are expanded in every setting that takes words; "$" is doubled where the
// words are a command line, because the manager expands $VAR and ${VAR}
// there when it starts the process.
func cQuoteTo(b *strings.Builder, w string, dollar bool) {
	b.WriteByte('"')
	for len(w) > 0 {
		// Copy the run of bytes that need no escape at once: this is
		// most of every unit, and the generator's time at boot.
		n := 0
		for n < len(w) && w[n] >= 0x20 && w[n] < 0x7f && w[n] != '\\' && w[n] != '"' && w[n] != '%' && w[n] != '$' {
			n++
		}
		b.WriteString(w[:n])
		if w = w[n:]; w == "" {
			break
		}
		r, size := utf8.DecodeRuneInString(w)
		w = w[size:]
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == 0:
			b.WriteByte('%') // a Specifier (checked): its letter follows
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(b, `\x%02x`, r)
		case r == '%':
			b.WriteString("%%")
		case r == '$' && dollar:
			b.WriteString("$$")
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// nspawnQuote writes w as adjacent quoted pieces: runs without a double
// quote inside "...", each double quote inside '...'. Both kinds of quote
// keep everything else, backslashes included, verbatim.
func nspawnQuote(w string) string {
	if w == "" {
		return `""`
	}
	var b strings.Builder
	for w != "" {
		i := strings.IndexByte(w, '"')
		switch {
		case i < 0:
			b.WriteString(`"` + w + `"`)
			w = ""
		case i == 0:
			b.WriteString(`'"'`)
			w = w[1:]
		default:
			b.WriteString(`"` + w[:i] + `"`)
			w = w[i:]
		}
	}
	return b.String()
}

// bindValue writes SOURCE:DEST[:OPTIONS] for bind_mount_parse(), which
// splits on ":" and drops a backslash in front of any character. Escaping
// whitespace too keeps conf-parser from stripping it at either end.
// BindArg is a bind mount (source, destination, options) as nspawn's
// --bind= and Bind= parse it: ':' and blanks in the paths escaped.
func BindArg(source, dest string, options ...string) (string, error) {
	return bindValue(append([]string{source, dest}, options...))
}

func bindValue(v []string) (string, error) {
	if len(v) < 2 {
		return "", fmt.Errorf("%w: a bind mount needs a source and a destination", ErrInvalidValue)
	}
	for _, p := range v[:2] {
		if !path.IsAbs(p) {
			return "", fmt.Errorf("%w: bind mount path %q is not absolute", ErrInvalidValue, p)
		}
		if err := checkControl(p); err != nil {
			return "", err
		}
	}
	esc := func(s string) string {
		if !strings.ContainsAny(s, "\\: \t") {
			return s
		}
		var b strings.Builder
		for _, r := range s {
			if r == '\\' || r == ':' || r == ' ' || r == '\t' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		return b.String()
	}
	out := esc(v[0]) + ":" + esc(v[1])
	opts := v[2:]
	if strings.TrimRight(v[1], " \t") != v[1] && len(opts) == 0 {
		// conf-parser strips trailing whitespace before unescaping,
		// which would leave a trailing backslash that joins the next
		// line. "rbind" is the default, so spelling it out changes
		// nothing but ends the line safely.
		opts = []string{"rbind"}
	}
	if len(opts) > 0 {
		for _, o := range opts {
			if o == "" || strings.ContainsAny(o, ":, \t\\") {
				return "", fmt.Errorf("%w: bind mount option %q", ErrInvalidValue, o)
			}
		}
		out += ":" + strings.Join(opts, ",")
	}
	return out, nil
}

// checkEnv applies systemd's env_assignment_is_valid(): the name is a shell
// variable name, the value has no control characters but tab.
func checkEnv(kv string) error {
	name, val, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("%w: environment assignment %q has no \"=\"", ErrInvalidValue, kv)
	}
	if !ValidEnvName(name) {
		return fmt.Errorf("%w: environment variable name %q (systemd allows letters, digits and _, not starting with a digit)", ErrInvalidValue, name)
	}
	return checkControl(val)
}

// ValidEnvName reports whether systemd accepts name as an environment
// variable name.
func ValidEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// TimeSpan writes d in systemd's time span syntax (systemd.time(7)) to the
// millisecond: "10s", "1500ms". Beware 0 ("0s"): most timeout settings
// read it as "no timeout", so callers that mean "at once" must say so.
func TimeSpan(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}
