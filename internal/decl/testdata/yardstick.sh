#!/bin/sh
# yardstick.sh DIR: run berth-generator --dry-run over podman's quadlet test
# declarations (test/e2e/quadlet of containers/podman, extracted to DIR,
# never into this repository) and tally the .container files:
#   converted   a unit was made
#   rejected    skipped with an error that names a key and file:line
#   defects     skipped with an error that names no key (fix those)
# It is not run by the tests: the declarations are podman's, not berth's.
set -eu
dir=$(cd "${1:?usage: yardstick.sh DIR}" && pwd)
here=$(cd "$(dirname "$0")/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$here" && go build -o "$work/berth-generator" ./cmd/berth-generator)
# Each .container alone, as podman's tests run them, beside the other
# kinds of declaration it may name (.network, .volume, .image).
mkdir "$work/d"
for f in "$dir"/*; do
	case $f in *.container) ;; *) [ -f "$f" ] && cp "$f" "$work/d/" ;; esac
done
converted=0 rejected=0 defects=0
: >"$work/allerr"
for f in "$dir"/*.container; do
	rm -f "$work/d"/*.container
	cp "$f" "$work/d/"
	f=$work/d/$(basename "$f")
	BERTH_UNIT_DIRS=$work/d "$work/berth-generator" --dry-run >"$work/out" 2>"$work/err" || true
	errs=$(grep -F "berth-generator: $f" "$work/err" | grep ': error: ' || true)
	printf '%s\n' "$errs" >>"$work/allerr"
	if [ -z "$errs" ] && grep -qF "(from $f)" "$work/out"; then
		converted=$((converted + 1))
	elif [ -n "$errs" ] && ! printf '%s\n' "$errs" | grep -qv ':[0-9][0-9]*: error: \[[A-Za-z-]*\] [A-Za-z0-9]*: '; then
		rejected=$((rejected + 1))
	else
		defects=$((defects + 1))
		printf 'defect: %s\n%s\n' "$f" "$errs"
	fi
done
echo "converted $converted, rejected naming key and file:line $rejected, defects $defects"
echo "keys rejected (files):"
grep ': error: \[' "$work/allerr" | sed 's/.*: error: \(\[[A-Za-z-]*\] [A-Za-z0-9]*\):.*/\1/' | sort | uniq -c | sort -rn
