#!/usr/bin/env bash
# demo.sh: berth's main job, end to end, on a fresh Debian 12 machine (root):
# install what is needed, build berth, build a busybox image and serve it
# from a registry on 127.0.0.1, `berth pull` it, run it once with
# systemd-nspawn. Safe to run again; the registry is stopped on exit.
#
#   scripts/demo.sh
#
# State lives in $BERTH_DEMO_DIR (default /var/tmp/berth-demo): registry
# storage, berth's store (root/) and the machine (machines/busybox). Remove
# that directory to start from scratch.
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=${BERTH_DEMO_DIR:-/var/tmp/berth-demo}

step() { printf '\n==> %s\n' "$*" >&2; }
die() {
	echo "demo: $*" >&2
	exit 1
}

[[ $(id -u) == 0 ]] || die "run as root: berth unpacks images with their owners and systemd-nspawn needs root"

step "installing dependencies (scripts/deps.sh)"
bash "$repo/scripts/deps.sh"
export PATH=$PATH:/usr/local/go/bin

step "building berth -> $repo/bin/berth"
(cd "$repo" && go build -o bin/berth ./cmd/berth)
berth=$repo/bin/berth

step "starting a registry on 127.0.0.1 (state in $demo/registry)"
mkdir -p "$demo"
trap '"$repo/scripts/registry.sh" stop "$demo/registry"' EXIT
addr=$("$repo/scripts/registry.sh" start "$demo/registry")
echo "registry at http://$addr" >&2

step "building the busybox test image and pushing it to $addr/busybox:latest"
"$repo/scripts/images.sh" "$addr" busybox >&2

step "berth pull $addr/busybox:latest"
(
	set -x
	"$berth" --root "$demo/root" --machines-dir "$demo/machines" pull "$addr/busybox:latest"
)
rootfs=$demo/machines/busybox
[[ -x $rootfs/bin/busybox ]] || die "berth pull did not produce $rootfs/bin/busybox"

step "running it once: systemd-nspawn -D $rootfs"
(
	set -x
	# shellcheck disable=SC2016 # expands inside the machine
	systemd-nspawn --register=no --keep-unit -q -D "$rootfs" \
		/bin/sh -c 'echo "hello from $(hostname), a berth machine: $(uname -sm), $(ls /bin | wc -l) commands in /bin"'
)

step "done"
cat >&2 <<EOF
The machine's root filesystem is $rootfs; berth's store is $demo/root.
Run a shell in it:  systemd-nspawn --register=no --keep-unit -D $rootfs /bin/sh
Start over:         rm -rf $demo
EOF
exit
}
