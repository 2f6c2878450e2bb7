#!/usr/bin/env bash
# e2e.sh: run berth's end-to-end tests, each on a real systemd test host
# booted in systemd-nspawn (package e2e/testhost; docs/testing.md).
#
#   scripts/e2e.sh [go test flags]   run the suite, e.g. scripts/e2e.sh -run TestTwoHosts
#   scripts/e2e.sh stop              power off hosts kept with BERTH_E2E_KEEP=1
#
# Needs root, debootstrap, systemd-container and network access to a Debian
# mirror for the first run (the host rootfs is cached in .cache/testhost/).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

# stop_kept powers off the hosts that BERTH_E2E_KEEP=1 left running: each
# host dir records the PID of its systemd-nspawn, which the test started.
stop_kept() {
	local f pid dir i name h
	for f in "${TMPDIR:-/tmp}"/berth-testhost-*/nspawn.pid; do
		[[ -e $f ]] || continue
		dir=${f%/nspawn.pid}
		pid=$(<"$f")
		# Only a systemd-nspawn that runs this host's tree: the PID may
		# have been reused since.
		if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--directory=$dir/mnt"; then
			echo "e2e: powering off test host in $dir (systemd-nspawn pid $pid)" >&2
			kill -TERM "$pid"
			for ((i = 0; i < 600; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				echo "e2e: systemd-nspawn $pid still running after 60s; killing it" >&2
				kill -KILL "$pid"
			fi
		fi
		rm -rf "$dir"
		# Its now empty cgroups (named after the machine, bt<pid>-<n>).
		name=${dir##*/berth-testhost-}
		name=${name%-*}
		for h in /sys/fs/cgroup /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
			if [[ -d $h/berth-testhost/$name ]]; then
				find "$h/berth-testhost/$name" -depth -type d -exec rmdir {} + 2>/dev/null || true
			fi
		done
	done
}

if [[ ${1:-} == stop ]]; then
	stop_kept
	exit 0
fi

export BERTH_E2E=1
# A missing tool fails the suite instead of skipping it.
export BERTH_TEST_REQUIRE_TOOLS=1
exec go test -count=1 -timeout 45m -v "$@" ./e2e/...
