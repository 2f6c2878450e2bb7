#!/bin/sh
# bench/generator.sh: 100 declarations → units, whole process. Builds
# berth-generator, writes 100 realistic .container files (see writeDecls in
# cmd/berth-generator/bench_test.go), runs the binary on them into a fresh
# output directory 200 times and prints the median (target: < 20 ms on the
# 2-core test machine; docs/benchmarks.md).
set -eu
cd "$(dirname "$0")/.."
go test -run '^$' -bench 'Generate100$' -benchtime 200x ./cmd/berth-generator
