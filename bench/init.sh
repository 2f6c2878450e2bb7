#!/usr/bin/env bash
# bench/init.sh: what a machine's init costs, side by side in one run:
#
#   - start latency: `berth run --rm bb true` with the lean berth-init as the
#     machine's init, the same with berth itself as the init (a `go install`ed
#     berth, no berth-init anywhere), and raw
#     `systemd-nspawn --register=no --keep-unit -q -D TREE true` on the same
#     tree; interleaved, $RUNS (default 30) runs each, medians and spread;
#   - peak RSS (VmHWM) of the machine's PID 1 for both inits, as the command
#     inside reads it from /proc/1/status, median of 9 runs.
#
#   bench/init.sh        as root; prints a markdown table (docs/benchmarks.md)
#
# Builds berth and berth-init with CGO_ENABLED=0 into a temporary directory,
# serves the busybox test image (scripts/images.sh) from a registry on
# 127.0.0.1 and pulls it into a scratch root under $BERTH_CACHE (default
# /var/cache/berth-bench)/init. BERTH_INIT picks the init for a berth run.
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=$PATH:/usr/local/go/bin
runs=${RUNS:-30}
work=${BERTH_CACHE:-/var/cache/berth-bench}/init
mkdir -p "$work"
bin=$(mktemp -d)
trap 'scripts/registry.sh stop "$work/registry" >/dev/null 2>&1 || true; rm -rf "$bin"' EXIT

CGO_ENABLED=0 go build -o "$bin/" ./cmd/berth ./cmd/berth-init
addr=$(scripts/registry.sh start "$work/registry")
scripts/images.sh "$addr" busybox >/dev/null
berth=("$bin/berth" --root "$work/root" --machines-dir "$work/machines")
# berth looks for berth-init beside itself first: hide it for the self runs
# by pointing BERTH_INIT at the berth binary itself.
"${berth[@]}" rm -f bb >/dev/null 2>&1 || true
"${berth[@]}" pull -q --name bb "$addr/busybox:latest" >/dev/null
tree=$work/machines/bb
[[ -x $tree/bin/true ]] || { echo "no $tree/bin/true" >&2; exit 1; }

# ms CMD...: wall time of one run in milliseconds (3 decimals); the
# command's output is discarded, its failure is fatal.
ms() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>"$work/last.err" || { echo "failed: $*" >&2; cat "$work/last.err" >&2; exit 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000))
}
lean() { BERTH_INIT=$bin/berth-init "${berth[@]}" run --rm bb "$@"; }
self() { BERTH_INIT=$bin/berth "${berth[@]}" run --rm bb "$@"; }
raw() { systemd-nspawn --register=no --keep-unit -q -D "$tree" "$@"; }

# One warm-up each (page cache, first overlay).
lean true >/dev/null; self true >/dev/null; raw true >/dev/null 2>&1

: >"$work/lean.us"; : >"$work/self.us"; : >"$work/raw.us"
for ((i = 0; i < runs; i++)); do
	ms lean true >>"$work/lean.us"
	ms self true >>"$work/self.us"
	ms raw true >>"$work/raw.us"
done

# stats FILE: "median min max" in ms.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f %.1f\n", m / 1000, v[1] / 1000, v[NR] / 1000 }'
}
# hwm RUNNER: median VmHWM and VmRSS (kB) of PID 1 over 9 runs.
hwm() {
	local i
	for ((i = 0; i < 9; i++)); do
		"$@" cat /proc/1/status | awk '/^VmHWM:/ { h = $2 } /^VmRSS:/ { r = $2 } END { print h, r }'
	done | sort -n | sed -n 5p
}

read -r lm lmin lmax < <(stats "$work/lean.us")
read -r sm smin smax < <(stats "$work/self.us")
read -r rm rmin rmax < <(stats "$work/raw.us")
read -r lh lr < <(hwm lean)
read -r sh sr < <(hwm self)
size() { stat -c %s "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }

cat <<EOF
$(nproc)-core $(uname -m), $(systemd-nspawn --version | head -1), $runs runs each, interleaved

| what | median | min | max | over raw nspawn | init peak RSS (VmHWM) | init RSS | init binary |
|------|-------:|----:|----:|----------------:|----------------------:|---------:|------------:|
| raw \`systemd-nspawn --register=no --keep-unit -q -D TREE true\` | $rm ms | $rmin ms | $rmax ms | | | | |
| \`berth run --rm bb true\`, berth-init as init | $lm ms | $lmin ms | $lmax ms | $(awk -v a="$lm" -v b="$rm" 'BEGIN { printf "%+.1f ms", a - b }') | $lh kB | $lr kB | $(size "$bin/berth-init") |
| \`berth run --rm bb true\`, berth itself as init | $sm ms | $smin ms | $smax ms | $(awk -v a="$sm" -v b="$rm" 'BEGIN { printf "%+.1f ms", a - b }') | $sh kB | $sr kB | $(size "$bin/berth") |
EOF
exit
}
