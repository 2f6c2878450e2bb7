package machines

import (
	"bytes"
	"io"
)

// nspawnNoise are lines systemd-nspawn writes to its stderr that mean
// nothing to a berth user, each as the start and the end of the line.
//
// "Attempted to remove disk file system ...": on exit nspawn removes its
// mount propagation directory with rm_rf(), which refuses to touch
// anything on a physical file system; where /run is not a tmpfs (hosts
// not booted with systemd, some containers) it says so, though the
// directory is empty and left behind harmlessly.
//
// "Using default interface naming scheme ..." and "Network interface name
// ... has been changed to ... to fit length constraints.": nspawn's
// udev-style naming of the host side of a machine's veth, logged at info
// level despite --quiet; the name is berth's business, not the user's.
var nspawnNoise = []struct{ start, end string }{
	{`Attempted to remove disk file system under "/run/systemd/nspawn/propagate/`, `", and we can't allow that.`},
	{`Using default interface naming scheme '`, `'.`},
	{`Network interface name 've-`, `' to fit length constraints.`},
}

// maxNoiseLine bounds how much of a line is held back while it may still
// be noise: a longer line is passed on.
const maxNoiseLine = 4096

// noiseFilter passes nspawn's stderr (which carries the machine's command's
// stderr too, with --console=pipe) on to w, dropping nspawnNoise lines.
// Only the start of a line that may still be noise is held back; once a
// line differs from every noise line, it and the rest of it are written
// through at once, so output (prompts included) is not delayed.
type noiseFilter struct {
	w    io.Writer
	held []byte // the current line so far, while it may be noise
	pass bool   // the current line is not noise: write through to its end
}

func newNoiseFilter(w io.Writer) *noiseFilter { return &noiseFilter{w: w} }

func (f *noiseFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		seg, eol := p, false
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			seg, eol = p[:i+1], true
		}
		p = p[len(seg):]
		if f.pass {
			if _, err := f.w.Write(seg); err != nil {
				return n - len(p) - len(seg), err
			}
			f.pass = !eol
			continue
		}
		f.held = append(f.held, seg...)
		switch {
		case eol && isNoise(f.held[:len(f.held)-1]):
			f.held = f.held[:0]
		case eol || !mayBeNoise(f.held):
			out := f.held
			f.held, f.pass = f.held[:0], !eol
			if _, err := f.w.Write(out); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// Flush writes what is held: the start of a last line without a newline.
func (f *noiseFilter) Flush() error {
	if len(f.held) == 0 {
		return nil
	}
	out := f.held
	f.held = nil
	_, err := f.w.Write(out)
	return err
}

func isNoise(line []byte) bool {
	for _, nl := range nspawnNoise {
		if len(line) > len(nl.start)+len(nl.end) && bytes.HasPrefix(line, []byte(nl.start)) && bytes.HasSuffix(line, []byte(nl.end)) {
			return true
		}
	}
	return false
}

// mayBeNoise says whether a line starting with b could still be noise.
func mayBeNoise(b []byte) bool {
	if len(b) > maxNoiseLine {
		return false
	}
	for _, nl := range nspawnNoise {
		if len(b) <= len(nl.start) && nl.start[:len(b)] == string(b) || bytes.HasPrefix(b, []byte(nl.start)) {
			return true
		}
	}
	return false
}
