package machine

import (
	"fmt"
	"strings"

	"github.com/berth-sh/berth/internal/unit"
)

// nspawnFlags maps each .nspawn setting RenderNspawn writes to the
// systemd-nspawn option that says the same on the command line
// (systemd.nspawn(5) lists both). An empty flag with a value in skip means
// "that value is the default: no option".
var nspawnFlags = map[string]struct {
	flag string
	skip string // the value that needs no option
	bare string // the value that is written as the bare flag
}{
	"Boot":                  {flag: "--boot", skip: "no", bare: "yes"},
	"LinkJournal":           {flag: "--link-journal"},
	"KillSignal":            {flag: "--kill-signal"},
	"Environment":           {flag: "--setenv"},
	"PrivateUsers":          {flag: "--private-users"},
	"PrivateUsersOwnership": {flag: "--private-users-ownership"},
	"Hostname":              {flag: "--hostname"},
	"Capability":            {flag: "--capability"},
	"DropCapability":        {flag: "--drop-capability"},
	"NoNewPrivileges":       {flag: "--no-new-privileges"},
	"OOMScoreAdjust":        {flag: "--oom-score-adjust"},
	"ResolvConf":            {flag: "--resolv-conf"},
	"Volatile":              {flag: "--volatile"},
	"Bind":                  {flag: "--bind"},
	"BindReadOnly":          {flag: "--bind-ro"},
	"ReadOnly":              {flag: "--read-only", bare: "yes"},
	"TemporaryFileSystem":   {flag: "--tmpfs"},
	"VirtualEthernet":       {flag: "--network-veth", skip: "no", bare: "yes"},
	"Private":               {flag: "--private-network", skip: "no", bare: "yes"},
	"Zone":                  {flag: "--network-zone"},
	"Bridge":                {flag: "--network-bridge"},
	"Port":                  {flag: "--port"},
	"Timezone":              {flag: "--timezone"},
	"Inaccessible":          {flag: "--inaccessible"},
}

// CommandLine is the machine's systemd-nspawn command line with every
// setting as an option and no settings file read (--settings=no). Units
// that cannot rely on a NAME.nspawn in /etc/systemd/nspawn or
// /run/systemd/nspawn (the generator's: it may write nothing but units)
// carry the machine this way; the settings are the same RenderNspawn
// writes, option for option.
func CommandLine(s *Spec) ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("render %s command line: %w", s.Name, err)
	}
	return commandLine(s)
}

// commandLine is CommandLine of a validated Spec. Each value is checked
// where the caller marshals the unit that carries it.
func commandLine(s *Spec) ([]string, error) {
	f := nspawnFile(s)
	argv := serviceCommand(s, "--settings=no")
	var params []string
	for _, sec := range f.Sections {
		for _, e := range sec.Entries {
			switch {
			case e.Key == "Parameters":
				params = e.Values
				continue
			case strings.HasPrefix(e.Key, "Limit"):
				argv = append(argv, "--rlimit=RLIMIT_"+strings.TrimPrefix(e.Key, "Limit")+"="+e.Values[0])
				continue
			}
			fl, ok := nspawnFlags[e.Key]
			if !ok {
				return nil, fmt.Errorf("render %s command line: no systemd-nspawn option for %s=", s.Name, e.Key)
			}
			switch {
			case e.Kind == unit.Bind:
				v, err := unit.BindArg(e.Values[0], e.Values[1], e.Values[2:]...)
				if err != nil {
					return nil, fmt.Errorf("render %s command line: %s: %w", s.Name, e.Key, err)
				}
				argv = append(argv, fl.flag+"="+v)
			case e.Values[0] == fl.skip:
			case e.Values[0] == fl.bare:
				argv = append(argv, fl.flag)
			default:
				for _, v := range e.Values {
					argv = append(argv, fl.flag+"="+v)
				}
			}
		}
	}
	if len(params) > 0 {
		argv = append(append(argv, "--"), params...)
	}
	return argv, nil
}
