// Package testhost boots a real systemd host for berth's end-to-end tests.
//
// The machine the tests run on need not run systemd as PID 1, so the
// harness debootstraps a Debian rootfs with systemd and systemd-container
// (cached under the repository's .cache/testhost/), gives every test its own
// copy-on-write overlay of it, and boots that with
//
//	systemd-nspawn -b --register=no --keep-unit --private-network
//
// Scenarios run inside with nsenter, so berth sees real units, a real
// machined and real nested machines, while the outer machine's network and
// mounts are never touched: the overlay is mounted in a private mount
// namespace that dies with the host, and the host's only network interface is
// its own loopback.
//
// Tests call Boot, which skips unless BERTH_E2E=1 (scripts/e2e.sh sets it).
// Cleanup powers the host off, kills what is left by PID and cgroup, and
// keeps the journal as an artifact when the test failed. BERTH_E2E_KEEP=1
// leaves hosts running for debugging and logs the nsenter command to enter
// them. docs/testing.md describes the workflow.
package testhost
