#!/usr/bin/env bash
# fixture-tally.sh GITDIR...: run berth compose config and convert on every
# compose file in other projects' test suites and sort the outcomes into
#
#   converted  both commands succeed
#   located    rejected, and the message names a key and file:line
#   unlocated  rejected without naming key and file:line (the defects)
#
# GITDIR is a bare git directory, e.g. what the fetch tool gives for
# docker/compose or compose-spec/compose-go. Each is extracted (HEAD) into a
# scratch directory under /tmp; nothing is written into the repository. The
# normal test run does not need this script.
#
# Environment: KEEP=1 keeps the scratch directory; VERBOSE=1 prints every
# message, not only the unlocated ones.
set -euo pipefail

if [ $# -eq 0 ]; then
	echo "usage: $0 GITDIR..." >&2
	exit 2
fi

repo=$(cd "$(dirname "$0")/../../.." && pwd)
scratch=$(mktemp -d /tmp/berth-fixtures.XXXXXX)
if [ "${KEEP:-}" != 1 ]; then
	trap 'rm -rf "$scratch"' EXIT
fi

(cd "$repo" && go build -o "$scratch/berth" ./cmd/berth)

for g in "$@"; do
	name=$(basename "$(dirname "$g")")
	[ "$name" = . ] && name=$(basename "$g")
	mkdir -p "$scratch/src/$name"
	git --git-dir="$g" archive HEAD | tar -x -C "$scratch/src/$name"
done

# Compose files: YAML with a top-level services: or include: key, outside
# CI configuration and the Kubernetes manifests some fixtures expect.
mapfile -t files < <(cd "$scratch/src" && grep -rlE --include='*.yaml' --include='*.yml' '^(services|include):' . |
	grep -vE '/\.github/|/expected-(helm|kubernetes)/' | sort)

# A message is located when it names file:line and a key path.
located_re='\.ya?ml:[0-9]+:.*\b(services|networks|volumes|secrets|configs|include|models|name)\b'

berth() { # file verb [compose flags...]
	local f=$1 verb=$2
	shift 2
	# A private, empty state directory and no environment: no image is
	# pulled (berth says so naming image:'s line) and variables are unset.
	(cd "$(dirname "$f")" && env -i PATH="$PATH" HOME="$scratch" \
		"$scratch/berth" --root "$scratch/state" --machines-dir "$scratch/machines" \
		compose "$@" -f "$f" "$verb" 2>&1 >/dev/null)
}

run() { # file verb -> prints the error output, fails when the verb failed
	local f=$1 verb=$2 out
	if out=$(berth "$f" "$verb"); then
		return 0
	fi
	if grep -q 'project name must not be empty\|invalid project name' <<<"$out"; then
		if out=$(berth "$f" "$verb" -p fixture); then
			return 0
		fi
	fi
	printf '%s\n' "$out"
	return 1
}

converted=0 located=0 unlocated=0
unlocated_list=() located_list=()
for rel in "${files[@]}"; do
	f="$scratch/src/${rel#./}"
	verb=config
	if out=$(run "$f" config) && { verb=convert; out=$(run "$f" convert); }; then
		converted=$((converted + 1))
		[ "${VERBOSE:-}" = 1 ] && echo "converted: $rel"
		continue
	fi
	msg=$(grep -v '^berth: warning' <<<"$out" | sed "s|$scratch/src/||g")
	bad=0
	while IFS= read -r line; do
		case "$line" in
		# The heading of the findings, and the continuation lines of a
		# message of several lines (berth indents them with a tab).
		'' | 'berth: convert compose project '*': compose project uses unsupported keys:' | $'\t'*) continue ;;
		esac
		grep -qE "$located_re" <<<"$line" || bad=1
	done <<<"$msg"
	if [ $bad = 0 ]; then
		located=$((located + 1))
		located_list+=("$rel ($verb): $(head -3 <<<"$msg" | tr '\n' ' ')")
	else
		unlocated=$((unlocated + 1))
		unlocated_list+=("$rel ($verb): $(tr '\n' ' ' <<<"$msg")")
	fi
done

if [ "${VERBOSE:-}" = 1 ]; then
	printf 'located: %s\n' "${located_list[@]}"
fi
for l in "${unlocated_list[@]}"; do
	printf 'UNLOCATED: %s\n' "$l"
done
echo "tally: ${#files[@]} files: $converted converted, $located rejected with key and file:line, $unlocated rejected without"
