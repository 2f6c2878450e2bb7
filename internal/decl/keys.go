package decl

import "github.com/berth-sh/berth/internal/keytable"

// Support says how berth treats a key (package keytable).
type Support = keytable.Support

// The support levels.
const (
	Supported = keytable.Supported
	Partial   = keytable.Partial
	Ignored   = keytable.Ignored
	Rejected  = keytable.Rejected
)

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
