package decl

// Support says how berth treats a declaration key.
type Support int

const (
	// Supported keys are converted fully.
	Supported Support = iota
	// Partial keys are converted for some values; the others are errors.
	Partial
	// Ignored keys do not change how the machine runs; using one warns.
	Ignored
	// Rejected keys would change behaviour berth cannot reproduce; using
	// one is an error and the declaration gets no unit.
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

// KeyRule is one row of a group's support table.
type KeyRule struct {
	Key     string
	Support Support
	// How says what berth does with the key; for ignored and rejected
	// keys it is also the finding's message.
	How string
	// plan is the key's planner: it checks one entry's value (findings
	// with file:line) and records it. nil for ignored and rejected keys.
	plan func(*ctr, Entry)
}

// rule finds key in table.
func rule(table []KeyRule, key string) (KeyRule, bool) {
	for _, r := range table {
		if r.Key == key {
			return r, true
		}
	}
	return KeyRule{}, false
}
