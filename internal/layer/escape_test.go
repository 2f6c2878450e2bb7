package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// evilCase is a sequence of layers trying to touch the host. OUT in names and
// targets is replaced by the absolute path of the sandbox's outside/ dir.
type evilCase struct {
	name   string
	layers [][]ent
	// inside, if set, checks where the layer's writes were contained.
	inside func(t *testing.T, s sandbox)
}

func evilCases() []evilCase {
	return []evilCase{
		{name: "dotdot names", layers: [][]ent{{
			fileE("../../../../pwn", "x"), fileE("../outside/secret", "pwned"), fileE("a/../../../outside/sub/file", "pwned"),
			dirE("../../newdir"), symE("../outside/link", "/etc/shadow"),
		}}, inside: func(t *testing.T, s sandbox) {
			if got := readFile(t, filepath.Join(s.root, "outside/secret")); got != "pwned" {
				t.Errorf("../outside/secret not contained to root/outside/secret: %q", got)
			}
			if !exists(filepath.Join(s.root, "pwn")) {
				t.Error("../../../../pwn not contained to root/pwn")
			}
		}},
		{name: "absolute names", layers: [][]ent{{
			fileE("OUT/secret", "pwned"), fileE("/etc/passwd", "pwned"), dirE("/OUT/sub"), whE("OUT", "passwd"),
		}}, inside: func(t *testing.T, s sandbox) {
			if got := readFile(t, filepath.Join(s.root, "etc/passwd")); got != "pwned" {
				t.Errorf("/etc/passwd not contained: %q", got)
			}
		}},
		{name: "write through absolute symlink", layers: [][]ent{{
			symE("l", "OUT"), fileE("l/secret", "pwned"), fileE("l/new", "pwned"),
		}}},
		{name: "write through absolute symlink with dir made first", layers: [][]ent{
			{dirE("OUT")},
			{symE("l", "OUT"), fileE("l/secret", "pwned"), dirE("l/sub"), fileE("l/sub/file", "pwned")},
		}, inside: func(t *testing.T, s sandbox) {
			if got := readFile(t, filepath.Join(s.root, s.outside, "secret")); got != "pwned" {
				t.Errorf("write through l/ not contained to root%s/secret: %q", s.outside, got)
			}
		}},
		{name: "symlink to /etc", layers: [][]ent{
			{dirE("etc"), fileE("etc/passwd", "image passwd")},
			{symE("etc2", "/etc"), fileE("etc2/passwd", "pwned"), fileE("etc2/shadow", "pwned"), linkE("etc2/hl", "/etc/passwd")},
		}, inside: func(t *testing.T, s sandbox) {
			if got := readFile(t, filepath.Join(s.root, "etc/shadow")); got != "pwned" {
				t.Errorf("etc2/shadow not contained to root/etc/shadow: %q", got)
			}
		}},
		{name: "relative symlink up and out", layers: [][]ent{{
			dirE("outside"), symE("up", "../../../../.."), fileE("up/pwn", "x"),
			dirE("a"), symE("a/b", "../../outside"), fileE("a/b/secret", "pwned"),
			symE("rel", "../outside"), dirE("rel/sub"), fileE("rel/sub/file", "pwned"),
		}}, inside: func(t *testing.T, s sandbox) {
			if !exists(filepath.Join(s.root, "pwn")) {
				t.Error("up/pwn not contained to root/pwn")
			}
		}},
		{name: "symlink chain", layers: [][]ent{{
			dirE("c"), symE("a", "b"), symE("b", "c/../../../.."), symE("c/d", "/../../a"), fileE("a/outside/secret", "pwned"), fileE("c/d/outside/sub/file", "pwned"),
		}}},
		{name: "symlink loop", layers: [][]ent{{
			symE("x", "y"), symE("y", "x"), fileE("x/f", "loop"),
		}}},
		{name: "proc magic link", layers: [][]ent{{
			symE("p", "/proc/self/root/OUT"), fileE("p/secret", "pwned"), symE("q", "/proc/self/cwd"), fileE("q/x", "x"),
		}}},
		{name: "hardlink out of root", layers: [][]ent{{
			linkE("h1", "../outside/secret"), linkE("h2", "OUT/secret"), linkE("h3", "/etc/passwd"), linkE("h4", "../../../../etc/shadow"),
		}}},
		{name: "hardlink through symlinked dir", layers: [][]ent{{
			symE("l", "OUT"), linkE("h", "l/secret"), symE("rl", "../outside"), linkE("h2", "rl/passwd"), symE("e", "/etc"), linkE("h3", "e/passwd"),
		}}},
		{name: "hardlink to outside-pointing symlink then write", layers: [][]ent{
			{symE("s", "OUT/secret"), linkE("h", "s")},
			{fileE("h", "replaced"), fileE("s", "replaced")},
		}, inside: func(t *testing.T, s sandbox) {
			if got := readFile(t, filepath.Join(s.root, "h")); got != "replaced" {
				t.Errorf("h = %q", got)
			}
		}},
		{name: "final symlink component is replaced not followed", layers: [][]ent{
			{symE("f", "OUT/secret"), symE("d", "OUT"), symE("dev", "OUT/passwd")},
			{fileE("f", "pwned"), dirE("d"), ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev", Mode: 0o666, ModTime: testTime}}},
		}},
		{name: "whiteouts through symlinked dirs", layers: [][]ent{
			{symE("l", "OUT"), symE("r", "../outside"), symE("e", "/etc")},
			{whE("l", "secret"), whE("r", "passwd"), whE("e", "passwd"), whE("l", "sub"), opqE("r"), opqE("l"), whE("..", "outside")},
		}},
		{name: "whiteout of the symlink itself removes only the link", layers: [][]ent{
			{symE("l", "OUT"), symE("sub", "OUT/sub")},
			{whE("", "l"), whE("", "sub"), opqE("sub")},
		}, inside: func(t *testing.T, s sandbox) {
			if exists(filepath.Join(s.root, "l")) {
				t.Error("whited-out symlink l still exists")
			}
		}},
		{name: "removing a tree does not follow symlinks in it", layers: [][]ent{
			{dirE("d"), symE("d/l", "OUT"), symE("d/sub", "OUT/sub"), symE("d/f", "OUT/secret"), dirE("e"), symE("e/l", "../../outside"), dirE("o"), symE("o/l", "OUT")},
			{fileE("d", "now a file"), whE("", "e"), opqE("o")},
		}, inside: func(t *testing.T, s sandbox) {
			if exists(filepath.Join(s.root, "e")) || exists(filepath.Join(s.root, "o/l")) {
				t.Error("whiteout or opaque marker left lower entries")
			}
		}},
		{name: "dir to symlink swap across layers", layers: [][]ent{
			{dirE("a"), fileE("a/x", "x")},
			{symE("a", "OUT")},
			{fileE("a/secret", "pwned"), dirE("a/sub"), fileE("a/sub/file", "pwned"), opqE("a"), whE("a", "passwd")},
		}},
		{name: "symlink named like a parent in the same layer", layers: [][]ent{{
			dirE("a"), fileE("a/f", "1"), symE("a", "OUT"), fileE("a/secret", "pwned"), symE("a/sub", "OUT/sub"), fileE("a/sub/file", "pwned"),
		}}},
		{name: "replace dir containing cached fds with symlink", layers: [][]ent{{
			dirE("a"), dirE("a/b"), fileE("a/b/f", "1"), symE("a", "OUT"), fileE("a/b/secret", "pwned"), fileE("a/b/f", "2"),
		}}},
		{name: "opaque dir whose parent is a symlink", layers: [][]ent{
			{symE("x", "OUT"), dirE("y"), symE("y/z", "OUT/sub")},
			{opqE("x/sub"), opqE("y/z"), opqE("x")},
		}},
		{name: "long and dotted names", layers: [][]ent{{
			fileE(strings.Repeat("../", 300)+"OUT/secret", "pwned").with(func(h *tar.Header) { h.Format = tar.FormatPAX }),
			fileE(strings.Repeat("./", 200)+"../outside/passwd", "pwned").with(func(h *tar.Header) { h.Format = tar.FormatGNU }),
		}}},
		{name: "odd entry names", layers: [][]ent{{
			fileE("..", ""), dirE("//"), dirE("/.."), fileE(".wh..", ""), fileE(".wh...", ""), whE("", "..."),
		}}},
	}
}

func (c evilCase) tars(t testing.TB, s sandbox) [][]byte {
	var out [][]byte
	for _, l := range c.layers {
		var ents []ent
		for _, e := range l {
			e.hdr.Name = strings.ReplaceAll(e.hdr.Name, "OUT", strings.TrimPrefix(s.outside, "/"))
			e.hdr.Linkname = strings.ReplaceAll(e.hdr.Linkname, "OUT", s.outside)
			if e.hdr.Typeflag == tar.TypeLink {
				e.hdr.Linkname = strings.ReplaceAll(e.hdr.Linkname, s.outside, strings.TrimPrefix(s.outside, "/"))
			}
			ents = append(ents, e)
		}
		out = append(out, mkTar(t, ents...))
	}
	return out
}

// TestEvilLayers applies each evil case (erroring or not) and checks that
// nothing outside the rootfs changed: the sandbox's outside/ tree (content,
// mode, owner, link count, mtime) and real host files like /etc/passwd.
func TestEvilLayers(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		for _, c := range evilCases() {
			name := c.name
			if fallback {
				name = "securejoin/" + name
			}
			t.Run(name, func(t *testing.T) { testEvil(t, c, Options{noOpenat2: fallback, Rootless: os.Geteuid() != 0}) })
		}
	}
}

func testEvil(t *testing.T, c evilCase, opts Options) {
	s := newSandbox(t)
	before, hostBefore := s.snap(t), hostSnap(t)
	err := applyAll(t, s.root, opts, c.tars(t, s)...)
	if d := diffSnap(before, s.snap(t)); len(d) > 0 {
		t.Fatalf("layer touched the host (err %v):\n%s", err, strings.Join(d, "\n"))
	}
	if d := diffSnap(hostBefore, hostSnap(t)); len(d) > 0 {
		t.Fatalf("layer touched host files:\n%s", strings.Join(d, "\n"))
	}
	if c.inside != nil {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		c.inside(t, s)
	}
}

// Every error path too: apply each layer of each case alone, in rootless mode,
// and through gzip with a flipped byte.
func TestEvilLayersVariants(t *testing.T) {
	for _, c := range evilCases() {
		t.Run(c.name, func(t *testing.T) {
			s := newSandbox(t)
			before := s.snap(t)
			for _, l := range c.tars(t, s) {
				Apply(context.Background(), s.root, bytes.NewReader(l), Options{Rootless: true}) //nolint:errcheck // only the host matters here
				var gz bytes.Buffer
				zw := gzip.NewWriter(&gz)
				zw.Write(l)
				zw.Close()
				b := gz.Bytes()
				b[len(b)/2] ^= 0x55
				for _, gunzip := range gunzips(t) {
					rc, _, err := Decompress(bytes.NewReader(b), inflater(gunzip))
					if err != nil {
						continue
					}
					_, err = Apply(context.Background(), s.root, rc, testOpts())
					rc.Close()
					if err == nil {
						t.Errorf("tampered gzip layer applied without error (gunzip %q)", gunzip)
					}
				}
			}
			if d := diffSnap(before, s.snap(t)); len(d) > 0 {
				t.Fatalf("layer touched the host:\n%s", strings.Join(d, "\n"))
			}
		})
	}
}

// Removing a directory must drop the cached fds of it and below, also when
// it was removed through a symlinked path; a stale fd would send later
// entries into a deleted directory.
func TestNoStaleDirCache(t *testing.T) {
	s := newSandbox(t)
	l1 := mkTar(t, dirE("a"), dirE("a/b"), dirE("x"), dirE("x/y"))
	l2 := mkTar(t,
		fileE("a/b/1", "1"),    // caches a and a/b
		fileE("a", "file now"), // replaces the tree
		fileE("a", "again"),
		dirE("a"), fileE("a/b/2", "2"), // needs a fresh a/b
		fileE("x/y/g", "g"),                 // caches x and x/y
		symE("al", "x"), fileE("al/y", "f"), // replaces dir x/y through the symlink
		dirE("x/y"), fileE("x/y/h", "h"),
	)
	if err := applyAll(t, s.root, testOpts(), l1, l2); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"a/b/2": "2", "x/y/h": "h"} {
		if got := readFile(t, filepath.Join(s.root, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if exists(filepath.Join(s.root, "a/b/1")) || exists(filepath.Join(s.root, "x/y/g")) {
		t.Error("removed entries came back")
	}
}
