package layer

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// FuzzApply feeds arbitrary bytes as an upper layer onto a rootfs whose lower
// layer has symlinks pointing out of it (absolute and relative). Invariant:
// no panic, and nothing outside the rootfs changes.
func FuzzApply(f *testing.F) {
	for _, c := range evilCases() {
		for _, l := range c.layers {
			var ents []ent
			for _, e := range l {
				e.hdr.Name = strings.ReplaceAll(e.hdr.Name, "OUT", "../outside")
				e.hdr.Linkname = strings.ReplaceAll(e.hdr.Linkname, "OUT", "../outside")
				ents = append(ents, e)
			}
			f.Add(mkTar(f, ents...))
		}
	}
	f.Add(mkTar(f, fileE("a", "x"), opqE("d"), whE("abs", "secret"), linkE("h", "rel/secret")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		lower := mkTar(t, dirE("d"), fileE("d/f", "x"), symE("abs", s.outside), symE("rel", "../outside"),
			symE("etc", "/etc"), symE("up", "../../../.."), dirE("e"), symE("e/self", "."))
		if _, err := Apply(context.Background(), s.root, bytes.NewReader(lower), testOpts()); err != nil {
			t.Fatal(err)
		}
		before := s.snap(t)
		Apply(context.Background(), s.root, bytes.NewReader(data), testOpts()) //nolint:errcheck // errors are fine; escapes are not
		if d := diffSnap(before, s.snap(t)); len(d) > 0 {
			t.Fatalf("layer touched the host:\n%s", strings.Join(d, "\n"))
		}
	})
}
