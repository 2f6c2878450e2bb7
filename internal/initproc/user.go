package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// execUser is who the command runs as.
type execUser struct {
	Name   string // "" when the uid has no /etc/passwd entry
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups
	Home   string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// parsePasswd reads passwd(5) lines, skipping malformed ones as getpwent
// does; a machine's /etc files are the image's and may be sloppy.
func parsePasswd(r io.Reader) []passwdEntry {
	var out []passwdEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uint32(uid), gid: uint32(gid), home: f[5]})
	}
	return out
}

func parseGroup(r io.Reader) []groupEntry {
	var out []groupEntry
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 4 || strings.HasPrefix(f[0], "#") {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{name: f[0], gid: uint32(gid), members: members})
	}
	return out
}

var errUnknownUser = errors.New("no such user")

// resolveUser applies docker's rules for an image USER ("", "uid",
// "uid:gid", "name", "name:group", "uid:group", "name:gid") against the
// machine's own passwd and group files, never NSS: a numeric uid without an
// entry is fine (gid 0, home "/"), a name without one is an error.
func resolveUser(spec string, passwd []passwdEntry, group []groupEntry) (execUser, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u := execUser{Home: "/"}
	if n, err := strconv.ParseUint(userPart, 10, 32); err == nil {
		u.UID = uint32(n)
		for _, p := range passwd {
			if p.uid == u.UID {
				u.Name, u.GID, u.Home = p.name, p.gid, p.home
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == userPart {
				u.Name, u.UID, u.GID, u.Home, found = p.name, p.uid, p.gid, p.home, true
				break
			}
		}
		if !found {
			return execUser{}, fmt.Errorf("resolve user %q: %w in the machine's /etc/passwd", userPart, errUnknownUser)
		}
	}
	if hasGroup {
		if n, err := strconv.ParseUint(groupPart, 10, 32); err == nil {
			u.GID = uint32(n)
		} else {
			found := false
			for _, g := range group {
				if g.name == groupPart {
					u.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return execUser{}, fmt.Errorf("resolve group %q: no such group in the machine's /etc/group", groupPart)
			}
		}
	}
	if u.Name != "" {
		for _, g := range group {
			for _, m := range g.members {
				if m == u.Name && g.gid != u.GID {
					u.Groups = append(u.Groups, g.gid)
				}
			}
		}
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}
