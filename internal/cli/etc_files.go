package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-sh/berth/internal/etcfiles"
	"github.com/berth-sh/berth/internal/fsutil"
)

// hostResolvConfs are where the host's resolver configuration is read
// from, first found wins: systemd-resolved's uplink servers (its stub at
// 127.0.0.53 is unreachable from a machine's own network), then the file.
var hostResolvConfs = []string{"/run/systemd/resolve/resolv.conf", "/etc/resolv.conf"}

// newEtcFilesCmd is the helper a generated unit runs as ExecStartPre= to
// write the machine's own /etc/hosts and /etc/resolv.conf (AddHost=, DNS=,
// ...), which nspawn then binds in: the generator itself writes only units.
func newEtcFilesCmd() *cobra.Command {
	var hostsFile, hostname, resolvFile string
	var addHosts, dns, search, options []string
	var noSearch bool
	cmd := &cobra.Command{
		Use:    "_etc-files [--hosts FILE [--hostname NAME] [--add-host NAME:ADDR]...] [--resolv-conf FILE [--dns ADDR]... [--dns-search DOMAIN]... [--dns-option OPT]...]",
		Short:  "Write a machine's /etc/hosts and /etc/resolv.conf (run by generated units before the machine starts)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hostsFile != "" {
				var extra []etcfiles.Host
				for _, v := range addHosts {
					h, err := etcfiles.ParseHost(v)
					if err != nil {
						return fmt.Errorf("write hosts file: %w", err)
					}
					extra = append(extra, h)
				}
				if err := writeEtcFile(hostsFile, etcfiles.Hosts(hostname, extra)); err != nil {
					return err
				}
			}
			if resolvFile == "" {
				return nil
			}
			var r etcfiles.Resolv
			for _, v := range dns {
				a, err := netip.ParseAddr(v)
				if err != nil {
					return fmt.Errorf("write resolv.conf: --dns: %w", err)
				}
				r.Nameservers = append(r.Nameservers, a)
			}
			r.Search, r.Options = search, options
			if noSearch {
				r.Search = []string{}
			}
			host, err := readHostResolvConf()
			if err != nil {
				return err
			}
			return writeEtcFile(resolvFile, etcfiles.ResolvConf(r, host))
		},
	}
	f := cmd.Flags()
	f.StringVar(&hostsFile, "hosts", "", "hosts file to write")
	f.StringVar(&hostname, "hostname", "", "the machine's own name, for its hosts file")
	f.StringArrayVar(&addHosts, "add-host", nil, "extra hosts entry NAME[;NAME...]:ADDRESS (repeatable)")
	f.StringVar(&resolvFile, "resolv-conf", "", "resolv.conf to write")
	f.StringArrayVar(&dns, "dns", nil, "name server address (repeatable; default: the host's)")
	f.StringArrayVar(&search, "dns-search", nil, "search domain (repeatable; default: the host's)")
	f.BoolVar(&noSearch, "no-dns-search", false, "no search domains at all")
	f.StringArrayVar(&options, "dns-option", nil, "resolver option (repeatable; default: the host's)")
	return cmd
}

func readHostResolvConf() ([]byte, error) {
	for _, p := range hostResolvConfs {
		b, err := os.ReadFile(p)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("read host resolver configuration: %w", err)
		}
	}
	return nil, nil
}

// writeEtcFile writes a file nspawn binds into the machine read-only:
// world-readable, since the machine's users are not the host's.
func writeEtcFile(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := fsutil.AtomicWrite(p, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}
