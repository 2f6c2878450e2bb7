package compose

import (
	"bytes"
	"fmt"
	"strings"
)

// KeysMarkdown renders the support tables as docs/compose-keys.md. A test
// keeps the committed file equal to this output.
func KeysMarkdown() []byte {
	var b bytes.Buffer
	b.WriteString(`# Compose keys in berth

Generated from internal/compose/keys.go (` + "`go test ./internal/compose -run TestKeysDoc -update`" + `);
do not edit by hand.

Every key of a compose service and of the top level is listed. **supported**
keys are converted fully; **partial** keys are converted for the values
named, and other values are findings; **ignored** keys do not change how a
service runs under berth and are reported as warnings; **rejected** keys
would change behaviour berth cannot reproduce and are errors. Findings name
the key path and file:line, for example:

    compose.yaml:3: error: services.web.build: build: is not supported yet (berth cannot build images); set image:

Nothing is dropped silently: a key compose-go knows but this table does not
is an error ("unknown key"), and a test fails when compose-go grows a key the
table lacks.

## Service keys

| key | support | what berth does |
|-----|---------|-----------------|
`)
	for _, r := range ServiceKeys {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Key, r.Support, mdCell(r.How))
	}
	b.WriteString(`
## Top-level keys

| key | support | what berth does |
|-----|---------|-----------------|
`)
	for _, r := range TopKeys {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Key, r.Support, mdCell(r.How))
	}
	return b.Bytes()
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
