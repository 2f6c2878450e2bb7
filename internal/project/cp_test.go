package project

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestCopyStaysInTree: links in the machine's tree that point out of it
// (absolute, or up through ..) are resolved inside the tree, and a link
// at the destination is never written through.
func TestCopyStaysInTree(t *testing.T) {
	tree := t.TempDir()
	outside := t.TempDir()
	src := filepath.Join(t.TempDir(), "payload")
	os.WriteFile(src, []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
	os.Symlink("/", filepath.Join(tree, "abs"))
	os.Symlink("../../../../../../"+outside, filepath.Join(tree, "up"))
	os.Symlink(filepath.Join(outside, "target"), filepath.Join(tree, "etc", "trap"))
	for _, dst := range []string{"/abs" + outside + "/a", "/up/b", "/../../../../" + outside + "/c", "/etc/trap"} {
		o := CopyOptions{ToMachine: true, MachinePath: dst, HostPath: src, Stderr: io.Discard}
		copyIn(o, tree, dst, false)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("cp wrote outside the tree: %v", ents)
	}
	// Reading: the same links resolve inside the tree.
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600)
	for _, p := range []string{"/abs" + outside + "/secret", "/up/secret"} {
		dst := filepath.Join(t.TempDir(), "out")
		o := CopyOptions{MachinePath: p, HostPath: dst, FollowLink: true, Stderr: io.Discard}
		copyOut(o, tree, p, false)
		if b, err := os.ReadFile(dst); err == nil && string(b) == "host" {
			t.Errorf("cp %s read the host's file", p)
		}
	}
	// An ordinary copy in and out works.
	o := CopyOptions{ToMachine: true, MachinePath: "/etc/new", HostPath: src, Stderr: io.Discard}
	if err := copyIn(o, tree, "/etc/new", false); err != nil {
		t.Fatal(err)
	}
	back := filepath.Join(t.TempDir(), "back")
	if err := copyOut(CopyOptions{MachinePath: "/etc", HostPath: back, Stderr: io.Discard}, tree, "/etc", false); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(back, "new")); err != nil || string(b) != "x" {
		t.Errorf("copy out of /etc: %q %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(back, "trap")); err != nil || l != filepath.Join(outside, "target") {
		t.Errorf("a link is copied as a link: %q %v", l, err)
	}
}
