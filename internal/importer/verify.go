package importer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-sh/berth/internal/command"
)

// Verify is how an import is checked before anything is installed, as
// machinectl pull-tar --verify.
type Verify string

const (
	// VerifyNo checks nothing (but --sha256, when given).
	VerifyNo Verify = "no"
	// VerifyChecksum checks the file against its line in the SHA256SUMS
	// file next to it.
	VerifyChecksum Verify = "checksum"
	// VerifySignature checks SHA256SUMS.gpg against the keyring with gpgv
	// before trusting SHA256SUMS, then the checksum.
	VerifySignature Verify = "signature"
)

// DefaultKeyring is the keyring --verify=signature trusts unless told
// otherwise: the administrator's choice of signers, as apt's
// /etc/apt/trusted.gpg.d. It holds binary public keys (gpg --export).
const DefaultKeyring = "/etc/berth/import-keyring.gpg"

// Names of the checksum files next to an imported file.
const (
	sumsName = "SHA256SUMS"
	sigName  = "SHA256SUMS.gpg"
)

// Errors callers may test with errors.Is. Each means nothing was installed.
var (
	// ErrChecksum: the file does not hash to what it should.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNoChecksum: no checksum could be found for the file.
	ErrNoChecksum = errors.New("no checksum")
	// ErrSignature: SHA256SUMS.gpg is missing or does not verify.
	ErrSignature = errors.New("signature verification failed")
)

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// parseDigest parses a --sha256 value: 64 hex digits, optionally
// prefixed with "sha256:".
func parseDigest(s string) (v1.Hash, error) {
	s = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "sha256:"))
	if !hexDigest.MatchString(s) {
		return v1.Hash{}, fmt.Errorf("--sha256 %q: want 64 hex digits", s)
	}
	return v1.Hash{Algorithm: "sha256", Hex: s}, nil
}

// lookupSum finds the checksum of file name in a SHA256SUMS file, in
// sha256sum's format ("HEX  name", "HEX *name") or the BSD one
// ("SHA256 (name) = HEX").
func lookupSum(sums []byte, name string) (v1.Hash, error) {
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var sum, file string
		if rest, ok := strings.CutPrefix(line, "SHA256 ("); ok {
			f, s, ok := strings.Cut(rest, ") = ")
			if !ok {
				continue
			}
			sum, file = s, f
		} else {
			s, f, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			sum, file = s, strings.TrimPrefix(strings.TrimLeft(f, " "), "*")
		}
		if strings.TrimPrefix(file, "./") != name {
			continue
		}
		sum = strings.ToLower(sum)
		if !hexDigest.MatchString(sum) {
			return v1.Hash{}, fmt.Errorf("%w: the %s line for %s is malformed", ErrNoChecksum, sumsName, name)
		}
		return v1.Hash{Algorithm: "sha256", Hex: sum}, nil
	}
	return v1.Hash{}, fmt.Errorf("%w: %s has no line for %s", ErrNoChecksum, sumsName, name)
}

// checkSignature runs gpgv on SHA256SUMS and its detached signature, with
// only keyring trusted: a temporary home keeps the caller's
// ~/.gnupg/trustedkeys out of it.
func checkSignature(ctx context.Context, r command.Runner, keyring, sums, sig, tmp string) error {
	abs, err := filepath.Abs(keyring)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("%w: keyring %s: %w; pass --keyring FILE (binary public keys, gpg --export) or import with --verify=checksum", ErrSignature, abs, err)
	}
	home, err := os.MkdirTemp(tmp, ".gnupg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(home)
	err = r.Run(ctx, command.Command{Args: []string{"gpgv", "--homedir", home, "--keyring", abs, sig, sums}})
	if err != nil {
		return fmt.Errorf("%w: %s does not verify against keyring %s: %w", ErrSignature, sigName, abs, err)
	}
	return nil
}

// verifyFile checks the digest got of the file against want.
func verifyFile(what string, got, want v1.Hash) error {
	if got != want {
		return fmt.Errorf("%w: %s has sha256 %s, expected %s; the file is corrupt or was changed: download it again, or check where the checksum came from",
			ErrChecksum, what, got.Hex, want.Hex)
	}
	return nil
}
