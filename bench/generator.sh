#!/bin/sh
# bench/generator.sh: 100 declarations → units, whole process, beside
# podman's quadlet. Builds berth-generator and quadlet (podman v5.7.1's
# cmd/quadlet, from the Go module proxy, into $BERTH_CACHE or
# /var/cache/berth-bench), writes 100 realistic .container files (writeDecls
# in cmd/berth-generator/bench_test.go), runs both on them, alternating,
# each into a fresh output directory, 200 times, and prints the medians and
# their ratio (target: < 20 ms on the 2-core test machine;
# docs/benchmarks.md). BERTH_BENCH_QUADLET= (empty) skips quadlet.
set -eu
cd "$(dirname "$0")/.."
cache=${BERTH_CACHE:-/var/cache/berth-bench}
quadlet=${BERTH_BENCH_QUADLET-$cache/quadlet-v5.7.1}
if [ -n "$quadlet" ] && [ ! -x "$quadlet" ]; then
	mod=$(mktemp -d)
	trap 'rm -rf "$mod"' EXIT
	mkdir -p "$(dirname "$quadlet")"
	printf 'module quadletbuild\n\ngo 1.26\n\nrequire github.com/containers/podman/v5 v5.7.1\n' >"$mod/go.mod"
	printf 'package main\n\nimport _ "github.com/containers/podman/v5/pkg/systemd/quadlet"\n\nfunc main() {}\n' >"$mod/main.go"
	(cd "$mod" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$quadlet" github.com/containers/podman/v5/cmd/quadlet)
fi
BERTH_BENCH_QUADLET=$quadlet go test -run '^$' -bench 'Generate100$' -benchtime 200x ./cmd/berth-generator
