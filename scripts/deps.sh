#!/usr/bin/env bash
# deps.sh: install what berth's build, demo and tests need on a fresh Debian 12
# machine (run as root). Idempotent: skips apt when everything is present.
set -euo pipefail

packages=(
	systemd-container # systemd-nspawn, machinectl
	debootstrap       # test host and Debian test images
	docker-registry   # a real registry on 127.0.0.1 for tests and the demo
	busybox-static    # the smallest useful test image
	umoci             # differential tests of the layer applier
	skopeo            # benchmark peer
	podman            # benchmark peer
	zstd
	isal              # igzip: berth pipes gzip layers through it (2.5x Go's inflate)
	iproute2          # veths, bridges, netns for compose networks
	nftables          # masquerading and isolation of compose networks
	procps
	util-linux        # nsenter, unshare
	systemd           # systemd-analyze verify, systemd-socket-proxyd
	curl
	jq
	time # /usr/bin/time for peak RSS in benchmarks
	e2fsprogs
	gpg   # berth import tests: sign SHA256SUMS with a throwaway key
	gpgv  # berth import --verify=signature
	xz-utils # berth import tests: xz-compressed tarballs
	bzip2    # berth import tests: bzip2-compressed tarballs
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
	export PATH=$PATH:/usr/local/go/bin
fi
go version >/dev/null
