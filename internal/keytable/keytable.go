// Package keytable holds what berth's support tables share: how a key of
// an input format (compose, declarations) is treated. Each format keeps
// its own table of rows; this is the vocabulary, so the docs and findings
// say the same thing for every format.
package keytable

// Support says how berth treats a key.
type Support int

const (
	// Supported keys are converted fully.
	Supported Support = iota
	// Partial keys are converted for some values; the others are findings
	// (an error where ignoring them would change behaviour, else a warning).
	Partial
	// Ignored keys have no effect on how a machine runs under berth; using
	// one is a warning.
	Ignored
	// Rejected keys would change behaviour berth cannot reproduce; using
	// one is an error.
	Rejected
)

func (s Support) String() string {
	switch s {
	case Supported:
		return "supported"
	case Partial:
		return "partial"
	case Ignored:
		return "ignored (warning)"
	case Rejected:
		return "rejected (error)"
	}
	return "unknown"
}

// Severity of a finding about a key's value.
type Severity int

const (
	// Warning: the key has no effect under berth; what uses it still
	// runs as written.
	Warning Severity = iota
	// Error: converting anyway would change behaviour; nothing is made
	// from the file (compose) or the declaration (generator).
	Error
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}
