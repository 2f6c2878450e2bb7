#!/usr/bin/env bash
# bench/pull.sh: time `berth pull` against skopeo+umoci, podman and a plain
# gzip|tar floor, cold and warm, on the standard test images served by
# docker-registry on 127.0.0.1. Run by hand as root (not part of CI):
#
#   bench/pull.sh [-n RUNS] [-o FILE] [--drop-caches] [--profile] [IMAGE...]
#
#   -n RUNS        runs per tool and image (default 5); medians are reported
#   -o FILE        also write the report there (default docs/benchmarks.md;
#                  "-" for stdout only)
#   --drop-caches  drop the page cache before every cold run (default: keep
#                  it, see below)
#   --profile      after the runs, pull each image once more under
#                  bench/pullprof (CPU profile + execution trace) and print
#                  its timeline, the CPU top and the syscall-blocking top
#   IMAGE          busybox, debian, manyfiles (default: all three)
#
# Method. Every tool writes to a fresh, journaled ext4 filesystem on a loop
# device under .cache/bench (this machine's root fs is ext4 without a journal,
# whose inode allocator makes delete-then-unpack timings drift). Per run and
# tool: remove that tool's previous output, sync and freeze/thaw the scratch
# filesystem (untimed; freezing checkpoints the journal), time a cold
# pull into empty state, time a warm re-pull of the unchanged image into the
# state the cold pull left, remove the output again. Tools take turns within a
# run so that drift hits all alike. Time is wall clock (bash EPOCHREALTIME),
# peak RSS is /usr/bin/time's %M (the largest process of a pipeline). The
# page cache is kept by default: the registry's blobs then come from memory,
# standing in for a fast local network, and nothing measures the disk the
# registry happens to sit on. Timed commands run at nice -10 and best-effort
# I/O priority 0, all alike, to damp other load on a shared machine. The floor
# is `gzip -dc LAYER | tar -x` of the same layer blobs, in order, read from the
# registry's storage: no network, no verification, no whiteouts, no sync.
# berth syncs the new tree (syncfs) before renaming it into place and the
# peers do not; the "floor + sync -f" row shows what that costs the floor.
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BERTH_CACHE:-$repo/.cache}
bench=$cache/bench
runs=5
report=$repo/docs/benchmarks.md
drop_caches=0
profile=0
images=()

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

while (($#)); do
	case $1 in
	-n) runs=${2:?-n needs a number}; shift 2 ;;
	-o) report=${2:?-o needs a file}; shift 2 ;;
	--drop-caches) drop_caches=1; shift ;;
	--profile) profile=1; shift ;;
	busybox | debian | manyfiles) images+=("$1"); shift ;;
	*) die "unknown argument '$1' (see the header of $0)" ;;
	esac
done
((${#images[@]})) || images=(busybox debian manyfiles)
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number, got '$runs'"
[[ $(id -u) == 0 ]] || die "run as root (loop mount, chown while unpacking)"
export PATH=$PATH:/usr/local/go/bin
for tool in go skopeo umoci podman docker-registry mkfs.ext4 fsfreeze gzip tar curl jq ss; do
	command -v "$tool" >/dev/null || die "$tool not found (bash scripts/deps.sh installs it)"
done
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found (apt-get install time)"

mnt=$bench/mnt
regdir=$bench/registry
scratch_img=$bench/scratch.ext4
mounted=0

# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
	set +e
	if ((mounted)); then
		umount "$mnt" # the loop device goes with it (autoclear)
	fi
	"$repo/scripts/registry.sh" stop "$regdir"
}
trap cleanup EXIT

mkdir -p "$bench" "$mnt"
if mountpoint -q "$mnt"; then
	umount "$mnt" # left over from an interrupted run
fi
log "building berth and the test images"
(cd "$repo" && go build -o bin/berth ./cmd/berth)
berth=$repo/bin/berth
"$berth" pull --help >/dev/null 2>&1 || die "this berth has no pull command yet"
addr=$("$repo/scripts/registry.sh" start "$regdir")
"$repo/scripts/images.sh" "$addr" "${images[@]}" >&2

log "making a journaled ext4 scratch filesystem ($scratch_img)"
rm -f "$scratch_img"
truncate -s 8G "$scratch_img"
mkfs.ext4 -q -F "$scratch_img"
mount -o loop "$scratch_img" "$mnt"
mounted=1
S=$mnt
results=$bench/results
rm -rf "$results"
mkdir -p "$results"
cmdlog=$bench/commands.log
: >"$cmdlog"

repo_of() { # image -> repository:tag as images.sh pushes it
	case $1 in
	debian) echo debian:bookworm ;;
	*) echo "$1:latest" ;;
	esac
}

# layer_files IMAGE: the registry's storage paths of IMAGE's layer blobs.
layer_files() {
	local r=$1 d
	r=$(repo_of "$r")
	for d in $(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$addr/v2/${r%:*}/manifests/${r#*:}" | jq -r '.layers[].digest'); do
		d=${d#sha256:}
		echo "$regdir/storage/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data"
	done
}

# blob_gets IMAGE: how many blob GETs the registry has logged for IMAGE.
blob_gets() {
	local r
	r=$(repo_of "$1")
	grep -c "\"GET /v2/${r%:*}/blobs/" "$regdir/registry.log" || true
}

# prepare: before every cold run, bring the scratch filesystem to rest. The
# previous run deleted a large tree; sync writes that out, and freezing the
# filesystem makes ext4 checkpoint its journal (jbd2_journal_flush), which
# the next tool would otherwise pay for when the journal runs out of space
# (a tool that syncs pays most). Unlike a remount it keeps the caches warm.
prepare() {
	sync
	fsfreeze --freeze "$mnt"
	fsfreeze --unfreeze "$mnt"
	if ((drop_caches)); then
		echo 3 >/proc/sys/vm/drop_caches
	fi
}

# measure KEY CMD...: time CMD (output to the command log), append
# "seconds rss_kib" to results/KEY.
measure() {
	local key=$1 t0 t1
	shift
	echo "+ $*" >>"$cmdlog"
	t0=$EPOCHREALTIME
	if ! nice -n -10 ionice -c 2 -n 0 /usr/bin/time -f %M -o "$bench/rss" "$@" >>"$cmdlog" 2>&1; then
		tail -n 20 "$cmdlog" >&2
		die "'$*' failed (full log: $cmdlog)"
	fi
	t1=$EPOCHREALTIME
	echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }') $(tail -n 1 "$bench/rss")" >>"$results/$key"
}

run_berth() {
	local img=$1 ref=$2 before after
	rm -rf "$S/berth"
	prepare
	measure "$img.berth.cold" "$berth" --root "$S/berth/root" --machines-dir "$S/berth/machines" -q pull "$ref"
	before=$(blob_gets "$img")
	measure "$img.berth.warm" "$berth" --root "$S/berth/root" --machines-dir "$S/berth/machines" -q pull "$ref"
	after=$(blob_gets "$img")
	echo $((after - before)) >>"$results/$img.berth.warmblobs"
	rm -rf "$S/berth"
}

run_skopeo() {
	local img=$1 ref=$2
	rm -rf "$S/skopeo"
	mkdir -p "$S/skopeo"
	prepare
	# shellcheck disable=SC2016 # $1.. expand in the inner shell
	measure "$img.skopeo.cold" sh -c 'skopeo copy -q --src-tls-verify=false "docker://$1" "oci:$2:bench" &&
		umoci raw unpack --image "$2:bench" "$3"' sh "$ref" "$S/skopeo/oci" "$S/skopeo/rootfs"
	measure "$img.skopeo.warm" skopeo copy -q --src-tls-verify=false "docker://$ref" "oci:$S/skopeo/oci:bench"
	rm -rf "$S/skopeo"
}

run_floor() {
	local img=$1 files
	mapfile -t files < <(layer_files "$img")
	rm -rf "$S/floor"
	mkdir -p "$S/floor"
	prepare
	# shellcheck disable=SC2016 # $f expands in the inner shell
	measure "$img.floor.cold" bash -o pipefail -c 'for f; do gzip -dc <"$f" | tar --numeric-owner -xf - -C "$0" || exit 1; done' \
		"$S/floor" "${files[@]}"
	# berth syncs the new tree before renaming it into place; the floor
	# plus a syncfs is the fair comparison for that part.
	measure "$img.floor.sync" sync -f "$S/floor"
	paste -d' ' <(tail -n 1 "$results/$img.floor.cold") <(tail -n 1 "$results/$img.floor.sync") |
		awk '{ printf "%.4f %d\n", $1 + $3, ($2 > $4 ? $2 : $4) }' >>"$results/$img.floorsync.cold"
	rm -rf "$S/floor"
}

# podman with all its state on the scratch fs; a script, not a function,
# because /usr/bin/time runs programs.
cat >"$bench/podman-s" <<EOF
#!/bin/sh
exec podman --root "$S/podman/root" --runroot "$S/podman/run" --storage-driver overlay \\
	--cgroup-manager cgroupfs --events-backend file "\$@"
EOF
chmod +x "$bench/podman-s"
run_podman() {
	local img=$1 ref=$2
	rm -rf "$S/podman"
	prepare
	measure "$img.podman.cold" "$bench/podman-s" pull -q --tls-verify=false "$ref"
	measure "$img.podman.warm" "$bench/podman-s" pull -q --tls-verify=false "$ref"
	rm -rf "$S/podman"
}

load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)
for img in "${images[@]}"; do
	ref=$addr/$(repo_of "$img")
	for ((i = 1; i <= runs; i++)); do
		log "$img: run $i/$runs"
		run_berth "$img" "$ref"
		run_skopeo "$img" "$ref"
		run_podman "$img" "$ref"
		run_floor "$img"
	done
done

# summary KEY FIELD WHAT: median|min|max of column FIELD of results/KEY.
summary() {
	sort -n -k"$2,$2" "$results/$1" | awk -v f="$2" -v what="$3" '
		{ v[NR] = $f }
		END {
			if (what == "min") print v[1]
			else if (what == "max") print v[NR]
			else if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

fmt_s() { awk -v s="$1" 'BEGIN { if (s < 1) printf "%.0f ms", s * 1000; else printf "%.2f s", s }'; }
fmt_mb() { awk -v k="$1" 'BEGIN { printf "%.0f MB", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
mark() { if "$@"; then echo "✓"; else echo "✗"; fi; }

failed=0
table() {
	echo "| image | tool | median | min | max | peak RSS | peer ÷ berth | target |"
	echo "|---|---|---:|---:|---:|---:|---:|---|"
	local img b bw key label med target want r blobs rss
	for img in "${images[@]}"; do
		b=$(summary "$img.berth.cold" 1 median)
		bw=$(summary "$img.berth.warm" 1 median)
		for key in berth.cold skopeo.cold podman.cold floor.cold floorsync.cold berth.warm skopeo.warm podman.warm; do
			case $key in
			berth.cold) label="berth pull" ;;
			skopeo.cold) label="skopeo copy + umoci raw unpack" ;;
			podman.cold) label="podman pull" ;;
			floor.cold) label="floor: gzip -dc \| tar -x" ;;
			floorsync.cold) label="floor + sync -f" ;;
			berth.warm) label="warm: berth pull" ;;
			skopeo.warm) label="warm: skopeo copy" ;;
			podman.warm) label="warm: podman pull" ;;
			esac
			med=$(summary "$img.$key" 1 median)
			rss=$(summary "$img.$key" 2 max)
			r="" target=""
			case $key in
			berth.cold)
				target="RSS < 64 MB $(mark awk -v k="$rss" 'BEGIN { exit !(k < 65536) }')"
				[[ $(mark awk -v k="$rss" 'BEGIN { exit !(k < 65536) }') == ✓ ]] || failed=1
				;;
			skopeo.cold | podman.cold)
				r=$(ratio "$med" "$b")
				want=""
				case $img.$key in
				debian.skopeo.cold) want=3 ;;
				manyfiles.skopeo.cold) want=4 ;;
				debian.podman.cold | manyfiles.podman.cold) want=1.5 ;;
				esac
				if [[ -n $want ]]; then
					target="≥ ${want}× $(mark ge "$r" "$want")"
					ge "$r" "$want" || failed=1
				fi
				r="${r}×"
				;;
			floor.cold)
				r="$(ratio "$med" "$b")×"
				if [[ $img != busybox ]]; then
					target="berth ≤ 1.3× floor $(mark ge "$(ratio "$med" "$b")" "$(awk 'BEGIN { print 1 / 1.3 }')")"
					ge "$(ratio "$med" "$b")" "$(awk 'BEGIN { print 1 / 1.3 }')" || failed=1
				fi
				;;
			berth.warm)
				blobs=$(summary "$img.berth.warmblobs" 1 max)
				target="< 30 ms $(mark awk -v s="$med" 'BEGIN { exit !(s < 0.030) }'), $blobs blobs fetched $(mark test "$blobs" = 0)"
				awk -v s="$med" 'BEGIN { exit !(s < 0.030) }' || failed=1
				[[ $blobs == 0 ]] || failed=1
				;;
			floorsync.cold)
				r="$(ratio "$med" "$b")×"
				;;
			skopeo.warm | podman.warm)
				r="$(ratio "$med" "$bw")×"
				;;
			esac
			echo "| $img | $label | $(fmt_s "$med") | $(fmt_s "$(summary "$img.$key" 1 min)") | $(fmt_s "$(summary "$img.$key" 1 max)") | $(fmt_mb "$rss") | $r | $target |"
		done
	done
}

image_facts() {
	local img
	for img in "${images[@]}"; do
		local unc=0 comp=0 entries=0 f n
		for f in $(layer_files "$img"); do
			comp=$((comp + $(stat -c %s "$f")))
			unc=$((unc + $(gzip -dc <"$f" | wc -c)))
			entries=$((entries + $(gzip -dc <"$f" | tar -t | wc -l)))
		done
		n=$(layer_files "$img" | wc -l)
		echo "- \`$img\`: $n layer(s), $(awk -v b="$comp" 'BEGIN { printf "%.1f", b / 1048576 }') MiB compressed, $(awk -v b="$unc" 'BEGIN { printf "%.1f", b / 1048576 }') MiB of tar, $entries tar entries"
	done
}

{
	echo "# Pull benchmark"
	echo
	echo "Measured by \`bench/pull.sh -n $runs\` on $(date -u '+%Y-%m-%d %H:%M UTC'), berth $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo ' (uncommitted changes)')."
	echo "Medians of $runs runs each; \"peer ÷ berth\" is how many times longer the peer took than berth (cold rows against berth's cold pull, warm rows against berth's warm re-pull, the floor rows against berth's cold pull). berth syncs the unpacked tree before it becomes visible, the peers and the floor do not; \"floor + sync -f\" adds that sync to the floor."
	echo "Load average when the runs started: $load_at_start (2 cores shared with other work makes medians noisy; compare rows of one run, not runs of different days)."
	echo
	echo "## Machine"
	echo
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; RAM $(free -g | awk '/^Mem:/ { print $2 }') GiB; kernel $(uname -r)"
	echo "- Scratch: journaled ext4 on a loop device (8 GiB sparse file on $(findmnt -no FSTYPE -T "$bench") $(findmnt -no SOURCE -T "$bench"))"
	echo "- Registry: docker-registry $(docker-registry --version | awk '{ print $3 }') on 127.0.0.1, page cache $( ((drop_caches)) && echo dropped before each cold run || echo kept)"
	echo "- Peers: $(skopeo --version), $(umoci --version), $(podman --version) (overlay driver), $(gzip --version | head -n 1), $(tar --version | head -n 1)"
	echo
	echo "## Images"
	echo
	image_facts
	echo
	echo "## Results"
	echo
	table
	echo
	echo "Targets: cold berth pull ≥ 3× faster than skopeo+umoci on debian and ≥ 4× on manyfiles, ≥ 1.5× faster than podman on both, within 1.3× of the gzip|tar floor; warm re-pull < 30 ms with zero blob downloads (counted in the registry's access log); peak RSS < 64 MB."
	echo "How it is measured: see the header of bench/pull.sh."
} >"$bench/report.md"

cat "$bench/report.md"
if [[ $report != - ]]; then
	cp "$bench/report.md" "$report"
	log "wrote $report"
fi

if ((profile)); then
	(cd "$repo" && go build -o bin/pullprof ./bench/pullprof)
	for img in "${images[@]}"; do
		rm -rf "$S/berth"
		sync
		p=$bench/berth-$img
		log "profiled cold pull of $img (timeline; profiles in $p.cpu, $p.trace):"
		"$repo/bin/pullprof" -root "$S/berth/root" -machines-dir "$S/berth/machines" \
			-cpuprofile "$p.cpu" -trace "$p.trace" "$addr/$(repo_of "$img")"
		log "CPU top:"
		go tool pprof -top -nodecount=20 "$repo/bin/pullprof" "$p.cpu" 2>/dev/null | sed -n '4,28p' >&2
		log "time blocked in syscalls:"
		go tool trace -pprof=syscall "$p.trace" >"$p.syscall" 2>/dev/null &&
			go tool pprof -top -nodecount=12 "$p.syscall" 2>/dev/null | sed -n '2,16p' >&2
		rm -rf "$S/berth"
	done
fi

((failed == 0)) || die "some targets were missed (✗ above)"
exit
}
