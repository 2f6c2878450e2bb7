#!/usr/bin/env bash
# test.sh: run every berth test on this machine (as root): unit and
# integration tests, then the end-to-end suite on a real systemd test host.
# Installs what the tests need first (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
export PATH=$PATH:/usr/local/go/bin

# Debootstrapped trees and built test images are cached outside the checkout,
# so a fresh clone on the same machine does not rebuild them (cache keys cover
# the package lists; delete the directory to start cold).
export BERTH_CACHE=${BERTH_CACHE:-/var/cache/berth-test}
export BERTH_E2E_CACHE=${BERTH_E2E_CACHE:-$BERTH_CACHE/testhost}

# Integration tests fail (not skip) when a tool they need is missing.
export BERTH_TEST_REQUIRE_TOOLS=1

echo "== go vet" >&2
go vet ./...

echo "== go test (unit + integration)" >&2
go test -count=1 -timeout 30m ./...

if [[ -x scripts/e2e.sh ]]; then
	echo "== end-to-end suite (systemd test host)" >&2
	bash scripts/e2e.sh
fi
