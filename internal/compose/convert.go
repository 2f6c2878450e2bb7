package compose

import (
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"sort"

	"github.com/berth-sh/berth/internal/paths"
)

// ConvertOptions are the host facts a conversion depends on. They are
// passed in so the conversion stays a pure function.
type ConvertOptions struct {
	// Root is berth's state directory (volumes, secrets, hosts files live
	// under Root/compose/PROJECT). Default /var/lib/berth.
	Root string
	// MachinesDir holds the machines' root filesystems. Default
	// /var/lib/machines.
	MachinesDir string
	// UnitDir is where unit files go. Default /etc/systemd/system.
	UnitDir string
	// NspawnDir is where .nspawn files go; only /etc/systemd/nspawn and
	// /run/systemd/nspawn are trusted for privileged settings. Default
	// /etc/systemd/nspawn.
	NspawnDir string
	// Berth is the absolute path of the berth binary the helper commands
	// in units run. Default /usr/local/bin/berth.
	Berth string
	// Init is the host path of berth-init, bind-mounted into every machine
	// as its PID 1. Default /usr/local/lib/berth/berth-init.
	Init string
	// SocketProxyd is systemd-socket-proxyd's path. Default
	// /usr/lib/systemd/systemd-socket-proxyd.
	SocketProxyd string
	// TakenSubnets are prefixes automatic subnets must not overlap: the
	// networks of the host's other projects and its routes (berth compose
	// up reads them under a host-wide lock, so two projects coming up at
	// once never pick the same one). Explicit ipam subnets are not
	// checked against them here; up checks every subnet against the
	// routes.
	TakenSubnets []netip.Prefix
	// Images returns what is known about an image (its VOLUMEs and
	// HEALTHCHECK). Nil or ok=false: the image is not known, which is a
	// warning.
	Images ImageInfo
}

func (o *ConvertOptions) fill() {
	if o.Root == "" {
		o.Root = paths.Root
	}
	if o.MachinesDir == "" {
		o.MachinesDir = paths.Machines
	}
	if o.UnitDir == "" {
		o.UnitDir = paths.UnitDir
	}
	if o.NspawnDir == "" {
		o.NspawnDir = paths.NspawnDir
	}
	if o.Berth == "" {
		o.Berth = paths.Berth
	}
	if o.Init == "" {
		o.Init = paths.Init
	}
	if o.SocketProxyd == "" {
		o.SocketProxyd = paths.SocketProxyd
	}
}

// File is one entry of a converted project: a file with content, a file
// copied from the host at install time, or a directory to create.
type File struct {
	// Path is absolute on the target host.
	Path string
	Mode fs.FileMode
	// Dir asks for a directory (with Mode) instead of a file, created
	// only when missing; an existing one is never changed.
	Dir bool
	// SeedFrom, for a Dir, is a directory in a machine's root filesystem
	// whose content fills the new directory when it is created (a new
	// volume gets the image's files, as under docker). It comes from an
	// image: copy through securejoin.
	SeedFrom string
	Data     []byte
	// CopyFrom is a host file whose content is installed at Path (secrets
	// and configs with file:). The conversion never reads it.
	CopyFrom string
	// Secret marks content that must never be printed or logged.
	Secret bool
	// UID and GID (numeric strings, empty: root) own the installed file.
	UID, GID string
}

// Result is a converted project.
type Result struct {
	Plan     *Plan
	Files    []File // sorted by Path
	Findings Findings
}

// Convert turns a loaded project into the files that run it. It reads
// nothing: the same project and options always give the same bytes.
// Warnings are in Result.Findings; if any finding is an error, the error
// wraps ErrUnsupported and lists them all, and Result still holds the
// findings.
func Convert(p *Project, opts ConvertOptions) (*Result, error) {
	opts.fill()
	for _, d := range []string{opts.Root, opts.MachinesDir, opts.UnitDir, opts.NspawnDir, opts.Berth, opts.Init, opts.SocketProxyd} {
		if !path.IsAbs(d) || path.Clean(d) != d {
			return nil, fmt.Errorf("convert compose project: %q is not an absolute clean path", d)
		}
	}
	plan, fnd := newPlan(p, opts)
	res := &Result{Plan: plan, Findings: fnd}
	if err := fnd.Err(); err != nil {
		return res, fmt.Errorf("convert compose project %s: %w", p.Name, err)
	}
	files, err := render(plan, opts)
	if err != nil {
		return res, fmt.Errorf("convert compose project %s: %w", p.Name, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for i := 1; i < len(files); i++ {
		if files[i].Path == files[i-1].Path {
			return res, fmt.Errorf("convert compose project %s: two files at %s", p.Name, files[i].Path)
		}
	}
	res.Files = files
	return res, nil
}

// fsMode turns a compose/unix permission number into an fs.FileMode,
// keeping the setuid/setgid/sticky bits where the number has them.
func fsMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
