package paths

import (
	"path"
	"strings"
)

// An installation (scripts/install.sh, the .deb) puts berth's programs
// under one prefix, at these paths relative to it. systemd looks for
// generators in /usr/lib/systemd/system-generators and
// /usr/local/lib/systemd/system-generators, so the prefixes /usr and
// /usr/local need nothing else.
const (
	BerthRel     = "bin/berth"
	InitRel      = "lib/berth/berth-init"
	GeneratorRel = "lib/systemd/system-generators/berth-generator"
)

// Installation is where one installation's berth and berth-init are.
type Installation struct {
	Berth, Init string
}

// Prefixed is the installation under prefix.
func Prefixed(prefix string) Installation {
	return Installation{Berth: path.Join(prefix, BerthRel), Init: path.Join(prefix, InitRel)}
}

// ForGenerator is the installation a generator running as exe (its
// os.Executable path) belongs to: for PREFIX/lib/systemd/system-generators/berth-generator
// the berth and berth-init under PREFIX. Any other path (a link in
// /etc/systemd/system-generators resolves to its target, say
// /usr/local/bin/berth-generator) gives DefaultBerth and DefaultInit. It
// reads nothing: the generator must stay free of side effects.
func ForGenerator(exe string) Installation {
	exe = path.Clean(exe)
	if prefix, ok := strings.CutSuffix(exe, "/"+GeneratorRel); ok && path.IsAbs(exe) {
		if prefix == "" {
			prefix = "/"
		}
		return Prefixed(prefix)
	}
	return Installation{Berth: DefaultBerth, Init: DefaultInit}
}

// InitCandidates are the places berth running as exe looks for berth-init,
// best first: beside it (a build directory such as bin/), the
// installation it belongs to (PREFIX/bin/berth → PREFIX/lib/berth/berth-init:
// /usr/lib/berth/berth-init for the .deb), then DefaultInit and the .deb's
// place for a berth installed elsewhere (go install puts it in
// ~/go/bin). Each appears once.
func InitCandidates(exe string) []string {
	var out []string
	add := func(p string) {
		for _, o := range out {
			if o == p {
				return
			}
		}
		out = append(out, p)
	}
	if path.IsAbs(exe) {
		dir := path.Dir(path.Clean(exe))
		add(path.Join(dir, "berth-init"))
		add(path.Join(dir, "..", InitRel))
	}
	add(DefaultInit)
	add(Prefixed("/usr").Init)
	return out
}
