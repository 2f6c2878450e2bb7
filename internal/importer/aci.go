package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ACI is what an appc image manifest (the "manifest" file of an ACI)
// maps to in an OCI image.
type ACI struct {
	Config v1.Config
	// Platform is from the os and arch labels; a field the manifest does
	// not set is empty (the host's is used).
	Platform v1.Platform
	// Created is the "created" annotation, if any.
	Created time.Time
	// Warnings name every manifest key berth cannot map, by its path
	// (app.isolators, dependencies, ...), with what was dropped.
	Warnings []string
}

// aciKeys is the table of top-level manifest keys: each maps into out, or
// (nil) is reported as unsupported. A key not in the table is reported as
// unknown.
var aciKeys = map[string]func(raw json.RawMessage, out *ACI) error{
	"acKind":        func(json.RawMessage, *ACI) error { return nil }, // checked by ConvertACI
	"acVersion":     func(json.RawMessage, *ACI) error { return nil }, // every 0.x manifest maps the same
	"name":          aciName,
	"labels":        aciLabels,
	"app":           aciApp,
	"annotations":   aciAnnotations,
	"dependencies":  nil, // other ACIs to layer under this one: berth imports one tarball
	"pathWhitelist": nil, // only meaningful with dependencies
}

// aciAppKeys is the table of the app object's keys.
var aciAppKeys = map[string]func(raw json.RawMessage, out *ACI) error{
	"exec":              aciExec,
	"user":              func(json.RawMessage, *ACI) error { return nil }, // with group, in aciApp
	"group":             func(json.RawMessage, *ACI) error { return nil },
	"workingDirectory":  aciWorkdir,
	"environment":       aciEnv,
	"mountPoints":       aciMountPoints,
	"ports":             aciPorts,
	"isolators":         nil, // resource limits and capabilities: machine settings, not image config
	"eventHandlers":     nil, // pre-start/post-stop hooks have no OCI equivalent
	"supplementaryGIDs": nil, // the OCI config has one user:group
	"userAnnotations":   nil,
	"userLabels":        nil,
}

// ConvertACI maps an ACI manifest to an image config. It is a pure
// function: the manifest in, the config and the warnings out.
func ConvertACI(raw []byte) (*ACI, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("ACI manifest: %w", err)
	}
	var kind string
	if err := json.Unmarshal(top["acKind"], &kind); err != nil || kind != "ImageManifest" {
		return nil, fmt.Errorf("ACI manifest: acKind is %s, want \"ImageManifest\"", top["acKind"])
	}
	out := &ACI{}
	if err := convertKeys(top, aciKeys, "", out); err != nil {
		return nil, err
	}
	sort.Strings(out.Warnings)
	return out, nil
}

func convertKeys(obj map[string]json.RawMessage, table map[string]func(json.RawMessage, *ACI) error, prefix string, out *ACI) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		conv, known := table[k]
		switch {
		case !known:
			out.warn("%s%s: unknown key; ignored", prefix, k)
		case conv == nil:
			if !isEmptyJSON(obj[k]) {
				out.warn("%s%s: not supported by berth; ignored: %s", prefix, k, summary(obj[k]))
			}
		default:
			if err := conv(obj[k], out); err != nil {
				return fmt.Errorf("ACI manifest: %s%s: %w", prefix, k, err)
			}
		}
	}
	return nil
}

func (a *ACI) warn(format string, args ...any) {
	a.Warnings = append(a.Warnings, "ACI manifest: "+fmt.Sprintf(format, args...))
}

func (a *ACI) label(k, v string) {
	if a.Config.Labels == nil {
		a.Config.Labels = map[string]string{}
	}
	a.Config.Labels[k] = v
}

// isEmptyJSON: null, [], {} or "" say nothing worth a warning.
func isEmptyJSON(raw json.RawMessage) bool {
	switch string(bytes.TrimSpace(raw)) {
	case "", "null", "[]", "{}", `""`:
		return true
	}
	return false
}

// summary names what a dropped value held: the "name" of each element of
// a list of objects (isolators, dependencies), or the value, shortened.
func summary(raw json.RawMessage) string {
	var list []struct {
		Name    string `json:"name"`
		ImgName string `json:"imageName"`
	}
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		var names []string
		for _, e := range list {
			switch {
			case e.Name != "":
				names = append(names, e.Name)
			case e.ImgName != "":
				names = append(names, e.ImgName)
			}
		}
		if len(names) == len(list) {
			return strings.Join(names, ", ")
		}
	}
	s := string(bytes.TrimSpace(raw))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

type nameValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func aciName(raw json.RawMessage, out *ACI) error {
	var n string
	if err := json.Unmarshal(raw, &n); err != nil {
		return err
	}
	out.label("org.opencontainers.image.title", n)
	return nil
}

// aciArch maps appc arch labels to GOARCH and variant.
var aciArch = map[string][2]string{
	"amd64": {"amd64", ""}, "i386": {"386", ""}, "aarch64": {"arm64", ""}, "aarch64_be": {"arm64be", ""},
	"armv6l": {"arm", "v6"}, "armv7l": {"arm", "v7"}, "armv7b": {"armbe", "v7"},
	"ppc64": {"ppc64", ""}, "ppc64le": {"ppc64le", ""}, "s390x": {"s390x", ""},
}

func aciLabels(raw json.RawMessage, out *ACI) error {
	var ls []nameValue
	if err := json.Unmarshal(raw, &ls); err != nil {
		return err
	}
	for _, l := range ls {
		switch l.Name {
		case "os":
			out.Platform.OS = l.Value
		case "arch":
			a, ok := aciArch[l.Value]
			if !ok {
				return fmt.Errorf("arch %q is not an appc architecture", l.Value)
			}
			out.Platform.Architecture, out.Platform.Variant = a[0], a[1]
		case "version":
			out.label("org.opencontainers.image.version", l.Value)
		default:
			out.label(l.Name, l.Value)
		}
	}
	return nil
}

// aciAnnotationLabels are the appc annotations with an OCI label.
var aciAnnotationLabels = map[string]string{
	"authors":       "org.opencontainers.image.authors",
	"homepage":      "org.opencontainers.image.url",
	"documentation": "org.opencontainers.image.documentation",
}

func aciAnnotations(raw json.RawMessage, out *ACI) error {
	var as []nameValue
	if err := json.Unmarshal(raw, &as); err != nil {
		return err
	}
	for _, a := range as {
		if a.Name == "created" {
			t, err := time.Parse(time.RFC3339, a.Value)
			if err != nil {
				return fmt.Errorf("created: %w", err)
			}
			out.Created = t
			continue
		}
		if k, ok := aciAnnotationLabels[a.Name]; ok {
			out.label(k, a.Value)
			continue
		}
		out.label(a.Name, a.Value)
	}
	return nil
}

func aciApp(raw json.RawMessage, out *ACI) error {
	if isEmptyJSON(raw) {
		return nil
	}
	var app map[string]json.RawMessage
	if err := json.Unmarshal(raw, &app); err != nil {
		return err
	}
	var user, group string
	if err := unmarshalOpt(app["user"], &user); err != nil {
		return fmt.Errorf("user: %w", err)
	}
	if err := unmarshalOpt(app["group"], &group); err != nil {
		return fmt.Errorf("group: %w", err)
	}
	// appc allows a path instead of a name or number: the owner of that
	// file in the image. Resolving it needs the tree; leave the user unset.
	switch {
	case strings.HasPrefix(user, "/") || strings.HasPrefix(group, "/"):
		out.warn("app.user/app.group: a file path (%q, %q) is not supported; the image runs as root", user, group)
	case user != "" && group != "":
		out.Config.User = user + ":" + group
	default:
		out.Config.User = user
	}
	return convertKeys(app, aciAppKeys, "app.", out)
}

func unmarshalOpt(raw json.RawMessage, v any) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

// aciExec: exec is the whole command line, which a run's command replaces
// (rkt run --exec), so it is the Cmd, not an Entrypoint that would take a
// run's command as its arguments.
func aciExec(raw json.RawMessage, out *ACI) error {
	return json.Unmarshal(raw, &out.Config.Cmd)
}

func aciWorkdir(raw json.RawMessage, out *ACI) error {
	return json.Unmarshal(raw, &out.Config.WorkingDir)
}

func aciEnv(raw json.RawMessage, out *ACI) error {
	var env []nameValue
	if err := json.Unmarshal(raw, &env); err != nil {
		return err
	}
	for _, e := range env {
		out.Config.Env = append(out.Config.Env, e.Name+"="+e.Value)
	}
	return nil
}

func aciMountPoints(raw json.RawMessage, out *ACI) error {
	var mps []struct {
		Name     string `json:"name"`
		Path     string `json:"path"`
		ReadOnly bool   `json:"readOnly"`
	}
	if err := json.Unmarshal(raw, &mps); err != nil {
		return err
	}
	for _, m := range mps {
		if !strings.HasPrefix(m.Path, "/") {
			return fmt.Errorf("%s: path %q is not absolute", m.Name, m.Path)
		}
		if out.Config.Volumes == nil {
			out.Config.Volumes = map[string]struct{}{}
		}
		out.Config.Volumes[m.Path] = struct{}{}
		if m.ReadOnly {
			out.warn("app.mountPoints.%s.readOnly: an image volume has no read-only flag; mount it read-only when creating the machine", m.Name)
		}
	}
	return nil
}

func aciPorts(raw json.RawMessage, out *ACI) error {
	var ps []struct {
		Name            string `json:"name"`
		Protocol        string `json:"protocol"`
		Port            uint   `json:"port"`
		Count           uint   `json:"count"`
		SocketActivated bool   `json:"socketActivated"`
	}
	if err := json.Unmarshal(raw, &ps); err != nil {
		return err
	}
	for _, p := range ps {
		if p.Protocol != "tcp" && p.Protocol != "udp" {
			return fmt.Errorf("%s: protocol %q is not tcp or udp", p.Name, p.Protocol)
		}
		n := max(p.Count, 1)
		if p.Port == 0 || p.Port+n-1 > 65535 {
			return fmt.Errorf("%s: port %d (count %d) is out of range", p.Name, p.Port, n)
		}
		if out.Config.ExposedPorts == nil {
			out.Config.ExposedPorts = map[string]struct{}{}
		}
		for i := range n {
			out.Config.ExposedPorts[strconv.FormatUint(uint64(p.Port+i), 10)+"/"+p.Protocol] = struct{}{}
		}
		if p.SocketActivated {
			out.warn("app.ports.%s.socketActivated: socket activation is not supported; the port is only exposed", p.Name)
		}
	}
	return nil
}
