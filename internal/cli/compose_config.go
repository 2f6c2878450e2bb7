package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/compose"
)

func newComposeConfigCmd(env Env, _ *Globals, cf *composeFlags) *cobra.Command {
	var format, hash, output string
	var services, volumes, images, networks, profiles, quiet bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print the normalized compose project, as docker compose config does",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := compose.Load(cmd.Context(), cf.loadOptions())
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			var lines []string
			switch {
			case services:
				lines = p.ServiceNames()
			case volumes:
				for n := range p.Volumes {
					lines = append(lines, n)
				}
				sort.Strings(lines)
			case networks:
				for n := range p.Networks {
					lines = append(lines, n)
				}
				sort.Strings(lines)
			case images:
				for _, n := range p.ServiceNames() {
					if img := p.Services[n].Image; img != "" {
						lines = append(lines, img)
					}
				}
			case profiles:
				seen := map[string]bool{}
				for _, s := range p.Services {
					for _, pr := range s.Profiles {
						seen[pr] = true
					}
				}
				for _, s := range p.DisabledServices {
					for _, pr := range s.Profiles {
						seen[pr] = true
					}
				}
				for pr := range seen {
					lines = append(lines, pr)
				}
				sort.Strings(lines)
			case hash != "":
				names := strings.Split(hash, ",")
				if hash == "*" {
					names = p.ServiceNames()
				}
				for _, n := range names {
					h, err := serviceHash(p, n)
					if err != nil {
						return err
					}
					lines = append(lines, n+" "+h)
				}
			default:
				b, err := compose.Marshal(p, format)
				if err != nil {
					return err
				}
				if output != "" {
					return os.WriteFile(output, b, 0o644)
				}
				_, err = env.Stdout.Write(b)
				return err
			}
			out := ""
			if len(lines) > 0 {
				out = strings.Join(lines, "\n") + "\n"
			}
			if output != "" {
				return os.WriteFile(output, []byte(out), 0o644)
			}
			_, err = fmt.Fprint(env.Stdout, out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "yaml", "output format: yaml or json")
	f.BoolVar(&services, "services", false, "print the service names, one per line")
	f.BoolVar(&volumes, "volumes", false, "print the volume names, one per line")
	f.BoolVar(&networks, "networks", false, "print the network names, one per line")
	f.BoolVar(&images, "images", false, "print the services' images, one per line")
	f.BoolVar(&profiles, "profiles", false, "print the profile names, one per line")
	f.StringVar(&hash, "hash", "", `print "SERVICE HASH" for the services named (comma-separated, or "*" for all)`)
	f.StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	f.BoolVarP(&quiet, "quiet", "q", false, "only validate; print nothing")
	rejectFlags(cmd, "config", []rejected{
		{"no-interpolate", false, "berth always interpolates, as it converts what it prints"},
		{"no-normalize", false, "berth always prints the normalized project"},
		{"no-path-resolution", false, "berth always resolves paths"},
		{"resolve-image-digests", false, "not implemented; berth compose images shows the digest of each machine's image"},
		{"lock-image-digests", false, "not implemented"},
		{"no-consistency", false, "berth always checks consistency"},
		{"variables", false, "not implemented"},
		{"environment", false, "not implemented"},
	})
	return cmd
}

// serviceHash is a digest of a service's normalized configuration
// without the keys that do not change a running machine (scale and
// replicas, build, pull_policy), as docker compose config --hash prints.
// It is stable across berth versions for the same compose-go model, but
// not byte-equal to docker's.
func serviceHash(p *compose.Project, name string) (string, error) {
	s, ok := p.Services[name]
	if !ok {
		return "", fmt.Errorf("config --hash: select service %q in project %s: %w", name, p.Name, compose.ErrNoService)
	}
	s.Scale, s.Build, s.PullPolicy = nil, nil, ""
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("config --hash %s: %w", name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
