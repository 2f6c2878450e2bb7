package pull

import (
	"testing"

	"github.com/berth-sh/berth/internal/store"
)

// FuzzDefaultName: whatever the reference, a derived name is one machinectl
// accepts (and so a safe file name), or an error.
func FuzzDefaultName(f *testing.F) {
	for _, s := range []string{"busybox", "ghcr.io/a/b_c.d:1", "oci:/x/..", "oci:/", "oci:/a/-_-", "localhost:5000/" + string(make([]byte, 80))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s, false)
		if err != nil {
			return
		}
		n, err := DefaultName(r)
		if err != nil {
			return
		}
		if err := store.ValidateName(n); err != nil {
			t.Fatalf("DefaultName(%q) = %q: %v", s, n, err)
		}
	})
}
