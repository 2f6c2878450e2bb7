#!/usr/bin/env bash
# images.sh: build berth's standard test images and push them to a registry.
#
#   images.sh REGISTRY IMAGE...     REGISTRY is host:port (plain HTTP), IMAGE
#                                   is busybox, debian, manyfiles or all
#
# Pushes REGISTRY/busybox:latest, REGISTRY/debian:bookworm and
# REGISTRY/manyfiles:latest and prints "NAME DIGEST" per image on stdout.
# Source trees are cached under .cache/ in the repository (git-ignored), so a
# rebuild is quick and yields the same digests. Needs root (debootstrap,
# overlayfs, systemd-nspawn for the Debian image, chown for the others).
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${BERTH_CACHE:-$repo/.cache}
mkimage=$repo/bin/mkimage
# Fixed mtime for generated trees: same inputs, same digests.
epoch=1767225600 # 2026-01-01T00:00:00Z
mirror=${BERTH_DEBIAN_MIRROR:-http://deb.debian.org/debian}

log() { echo "images: $*" >&2; }
die() {
	echo "images: $*" >&2
	exit 1
}

build_mkimage() {
	export PATH=$PATH:/usr/local/go/bin
	(cd "$repo" && go build -o "$mkimage" ./tools/mkimage)
}

# push NAME REPO:TAG MKIMAGE-ARGS...: build and push unless the registry
# already serves what the same inputs (this script, mkimage's sources and the
# cached trees) pushed last time; prints "NAME DIGEST".
push() {
	local name=$1 ref=$2 stamp=$cache/images/$1.stamp inputs s_inputs s_digest digest
	shift 2
	inputs=$(cat "${BASH_SOURCE[0]}" "$repo"/tools/mkimage/*.go | sha256sum | cut -d' ' -f1)
	if [[ -f $stamp ]] && read -r s_inputs s_digest <"$stamp" &&
		[[ $s_inputs == "$inputs" && $(served_digest "$ref") == "$s_digest" ]]; then
		echo "$name $s_digest"
		return
	fi
	digest=$("$mkimage" image --push "$registry/$ref" "$@")
	echo "$inputs $digest" >"$stamp"
	echo "$name $digest"
}

# served_digest REPO:TAG: the manifest digest the registry serves, if any.
served_digest() {
	curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$registry/v2/${1%:*}/manifests/${1##*:}" |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

# fix_mtimes DIR: give every entry under DIR the fixed mtime.
fix_mtimes() {
	find "$1" -mindepth 1 -print0 | xargs -0 touch -h -d "@$epoch"
}

busybox_tree() {
	local root=$cache/images/busybox
	[[ -f $root.done ]] && return
	dpkg-query -S /bin/busybox 2>/dev/null | grep -q '^busybox-static:' ||
		die "/bin/busybox is not from busybox-static (apt-get install busybox-static)"
	rm -rf "$root" "$root.done"
	mkdir -p "$root"/{bin,etc,dev,proc,sys,tmp,root,home/user,usr/bin,var}
	cp /bin/busybox "$root/bin/busybox"
	local applet
	for applet in $("$root/bin/busybox" --list); do
		[[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
	done
	ln -s ../../bin/busybox "$root/usr/bin/env"
	cat >"$root/etc/passwd" <<-'PW'
		root:x:0:0:root:/root:/bin/sh
		user:x:1000:1000:user:/home/user:/bin/sh
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	PW
	cat >"$root/etc/group" <<-'GR'
		root:x:0:
		user:x:1000:
		nogroup:x:65534:
	GR
	echo busybox >"$root/etc/hostname"
	chmod 0700 "$root/root"
	chmod 1777 "$root/tmp"
	chown -R 0:0 "$root"
	chown 1000:1000 "$root/home/user"
	fix_mtimes "$root"
	touch "$root.done"
}

build_busybox() {
	busybox_tree
	push busybox busybox:latest \
		--layer "dir:$cache/images/busybox" \
		--cmd '["sh"]' --env PATH=/usr/bin:/bin --label org.opencontainers.image.title=busybox
}

debian_trees() {
	local base=$cache/debootstrap
	mkdir -p "$base"
	if [[ ! -d $base/minbase ]]; then
		log "debootstrap --variant=minbase bookworm (cached in $base/minbase)"
		rm -rf "$base/minbase.tmp"
		debootstrap --variant=minbase bookworm "$base/minbase.tmp" "$mirror" >"$base/minbase.log" 2>&1 ||
			die "debootstrap failed; see $base/minbase.log"
		mv "$base/minbase.tmp" "$base/minbase"
	fi
	if [[ ! -d $base/extra.upper ]]; then
		# Layer 2 is what apt-get install changes on top of minbase: an
		# overlayfs upper dir, whose whiteouts mkimage turns into OCI ones.
		log "installing layer-2 packages (cached in $base/extra.upper)"
		local t=$base/extra.tmp
		if mountpoint -q "$t/merged"; then umount "$t/merged"; fi
		rm -rf "$t"
		mkdir -p "$t"/{upper,work,merged}
		# metacopy and redirect_dir would leave upper entries that point into
		# the lower dir; mkimage refuses those.
		mount -t overlay overlay -o "lowerdir=$base/minbase,upperdir=$t/upper,workdir=$t/work,metacopy=off,redirect_dir=off" "$t/merged"
		local rc=0
		systemd-nspawn -q --register=no --keep-unit -D "$t/merged" \
			--setenv=DEBIAN_FRONTEND=noninteractive sh -c \
			'apt-get install -y -qq --no-install-recommends gcc libc6-dev make python3 perl git curl ca-certificates && apt-get clean' \
			>"$base/extra.log" 2>&1 || rc=$?
		umount "$t/merged"
		((rc == 0)) || die "apt-get install in the layer-2 overlay failed; see $base/extra.log"
		mv "$t/upper" "$base/extra.upper"
		rm -rf "$t"
	fi
	local l3=$cache/images/debian-layer3
	if [[ ! -f $l3.done ]]; then
		rm -rf "$l3"
		mkdir -p "$l3"/{etc,opt/app,usr/share/man}
		echo "berth test image layer 3" >"$l3/etc/berth-release"
		printf '#!/bin/sh\necho hello from layer 3\n' >"$l3/opt/app/hello.sh"
		chmod 0755 "$l3/opt/app/hello.sh"
		echo "man pages removed by an opaque whiteout" >"$l3/usr/share/man/README"
		chown -R 0:0 "$l3"
		fix_mtimes "$l3"
		touch "$l3.done"
	fi
}

build_debian() {
	debian_trees
	local base=$cache/debootstrap
	# Layer 1: minbase without device nodes, kernel mounts and apt caches.
	# Layer 2: the packages; layer 3: new files, whiteouts of a file from
	# layer 1 and of directories from layers 1 and 2, and an opaque dir.
	push debian debian:bookworm \
		--layer "dir:$base/minbase" \
		--exclude 'dev/*' --exclude 'proc/*' --exclude 'sys/*' --exclude 'run/*' --exclude 'tmp/*' \
		--exclude 'var/cache/apt/*.bin' --exclude 'var/cache/apt/archives/*' --exclude 'var/lib/apt/lists/*' \
		--layer "overlay:$base/extra.upper" \
		--exclude 'var/cache/apt/*.bin' --exclude 'var/cache/apt/archives/*' --exclude 'var/lib/apt/lists/*' \
		--exclude 'var/log/*' --exclude 'tmp/*' \
		--layer "dir:$cache/images/debian-layer3" \
		--whiteout /etc/motd --whiteout /usr/share/doc/git --whiteout /usr/share/doc/perl \
		--whiteout /usr/share/doc/apt --opaque /usr/share/man \
		--cmd '["bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--label org.opencontainers.image.title=debian
}

manyfiles_tree() {
	local root=$cache/images/manyfiles
	[[ -f $root.done ]] && return
	rm -rf "$root" "$root.done"
	# 100 x 143 directories with 7 files each: 100,100 files of 1 B to 1 KiB
	# and 14,400 directories, about 114,500 entries.
	mkdir -p "$root"/d{00..99}/s{000..142}
	awk -v root="$root" 'BEGIN {
		n = 0
		for (d = 0; d < 100; d++) for (s = 0; s < 143; s++) for (f = 0; f < 7; f++) {
			path = sprintf("%s/d%02d/s%03d/f%d.txt", root, d, s, f)
			size = (n * 7919) % 1024 + 1
			line = sprintf("file %d in d%02d/s%03d\n", n, d, s)
			body = ""
			while (length(body) < size) body = body line
			printf "%s", substr(body, 1, size) > path
			close(path)
			n++
		}
	}'
	chown -R 0:0 "$root"
	fix_mtimes "$root"
	touch "$root.done"
}

build_manyfiles() {
	manyfiles_tree
	push manyfiles manyfiles:latest \
		--layer "dir:$cache/images/manyfiles" --label org.opencontainers.image.title=manyfiles
}

(($# >= 2)) || die "usage: images.sh REGISTRY busybox|debian|manyfiles|all..."
[[ $(id -u) == 0 ]] || die "run as root (chown, debootstrap, overlayfs)"
registry=$1
shift
curl -sf -o /dev/null --max-time 5 "http://$registry/v2/" || die "no registry answers at http://$registry/v2/ (scripts/registry.sh start DIR PORT)"
build_mkimage
for img in "$@"; do
	case $img in
	busybox) build_busybox ;;
	debian) build_debian ;;
	manyfiles) build_manyfiles ;;
	all) build_busybox && build_debian && build_manyfiles ;;
	*) die "unknown image '$img' (busybox, debian, manyfiles or all)" ;;
	esac
done
exit
}
