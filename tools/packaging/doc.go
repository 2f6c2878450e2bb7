// Package packaging holds the tests of berth's installers,
// scripts/install.sh and scripts/deb.sh: what they install, with which
// modes, and that an uninstall leaves nothing behind. It has no code of
// its own.
package packaging
