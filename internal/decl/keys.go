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

// Rule is one row of a group's support table; T is the conversion the
// group's planners work on (*ctr for [Container]).
type Rule[T any] struct {
	Key     string
	Support Support
	// How says what berth does with the key; for ignored and rejected
	// keys it is also the finding's message.
	How string
	// plan is the key's planner: it checks one entry's value (findings
	// with file:line) and records it. nil for ignored and rejected keys.
	plan func(T, Entry)
}

// KeyRule is one row of the [Container] table.
type KeyRule = Rule[*ctr]

// rule finds key in table.
func rule[T any](table []Rule[T], key string) (Rule[T], bool) {
	for _, r := range table {
		if r.Key == key {
			return r, true
		}
	}
	return Rule[T]{}, false
}

// planGroup runs each entry of sec through table: unknown and rejected
// keys are errors, ignored keys warnings, the others go to their planner
// with x.
func planGroup[T any](c *conv, group string, sec *Section, table []Rule[T], x T) {
	for _, e := range sec.Entries {
		r, ok := rule(table, e.Key)
		switch {
		case !ok:
			c.err(group, e, "unknown key; berth does not know what it does")
		case r.Support == Ignored:
			c.warn(group, e, "%s", r.How)
		case r.Support == Rejected:
			c.err(group, e, "%s", r.How)
		default:
			r.plan(x, e)
		}
	}
}
