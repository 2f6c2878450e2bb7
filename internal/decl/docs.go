package decl

import (
	"bytes"
	"fmt"
	"strings"
)

// KeysMarkdown renders a group's support table for docs/generator.md,
// between the markers <!-- BEGIN keys GROUP --> and <!-- END keys GROUP -->.
// A test keeps the file equal to it.
func KeysMarkdown[T any](table []Rule[T]) []byte {
	var b bytes.Buffer
	b.WriteString("| key | support | what berth does |\n|-----|---------|-----------------|\n")
	for _, r := range table {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", r.Key, r.Support, strings.ReplaceAll(r.How, "|", `\|`))
	}
	return b.Bytes()
}

// ReplaceKeysDoc returns doc with the table between group's markers
// replaced by table, and whether the markers were found.
func ReplaceKeysDoc(doc []byte, group string, table []byte) ([]byte, bool) {
	begin, end := []byte("<!-- BEGIN keys "+group+" -->\n"), []byte("<!-- END keys "+group+" -->")
	i := bytes.Index(doc, begin)
	j := bytes.Index(doc, end)
	if i < 0 || j < i {
		return doc, false
	}
	out := append([]byte{}, doc[:i+len(begin)]...)
	out = append(out, table...)
	return append(out, doc[j:]...), true
}
