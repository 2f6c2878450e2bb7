#!/usr/bin/env bash
# deb.sh: build a Debian package of berth from this repository.
#
#   scripts/deb.sh [--out DIR] [--bin DIR]
#
# Writes DIR/berth_VERSION_ARCH.deb (DIR defaults to the repository's bin/, git-ignored)
# and prints its path. The files are those of `scripts/install.sh --prefix
# /usr` (berth in /usr/bin, berth-init in /usr/lib/berth, the generator in
# /usr/lib/systemd/system-generators, completions, gzipped man pages), plus
# /usr/share/doc/berth/copyright. VERSION comes from a VERSION file at the
# repository's root, else `git describe`; ARCH is `go env GOARCH` in
# Debian's naming. postinst and postrm run `systemctl daemon-reload` when
# systemd runs (/run/systemd/system exists), so the generator is (un)loaded.
# --bin DIR packs prebuilt binaries (see install.sh) instead of building.
# Needs dpkg-deb (in every Debian) and, without --bin, go.
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/bin
bin=

die() {
	echo "deb: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--out) out=${2:?--out needs a value}; shift ;;
	--bin) bin=${2:?--bin needs a value}; shift ;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" | sed '/^$/q' >&2
		exit 2
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed"
export PATH=$PATH:/usr/local/go/bin
# git only reads here: no index refresh behind the back of other work.
export GIT_OPTIONAL_LOCKS=0

# version: VERSION, else git describe made a Debian version (it must start
# with a digit): v1.2.3 → 1.2.3, v1.2.3-4-gabc → 1.2.3+4.gabc, a bare
# commit abc → 0.0~gitabc.
version() {
	local v
	if [[ -f $repo/VERSION ]]; then
		v=$(tr -d ' \n' <"$repo/VERSION")
	elif v=$(git -C "$repo" describe --tags --dirty 2>/dev/null); then
		v=$(sed -E 's/^v//; s/-([0-9]+)-g/+\1.g/; s/-dirty$/.dirty/' <<<"$v")
	else
		v=$(git -C "$repo" describe --always --dirty 2>/dev/null) || v=unknown
		v=0.0~git${v//-/.}
	fi
	[[ $v =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "version $v is not a Debian version"
	echo "$v"
}

# arch: Go's GOARCH in Debian's naming.
arch() {
	local goarch
	goarch=${GOARCH:-$(go env GOARCH 2>/dev/null || dpkg --print-architecture)}
	case $goarch in
	amd64 | arm64 | s390x | riscv64 | loong64) echo "$goarch" ;;
	386) echo i386 ;;
	arm) echo armhf ;;
	ppc64le) echo ppc64el ;;
	mips64le) echo mips64el ;;
	mipsle) echo mipsel ;;
	*) die "no Debian architecture for GOARCH $goarch" ;;
	esac
}

ver=$(version)
deb_arch=$(arch)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

# Fixed timestamps in man pages (and nothing else carries one).
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
bash "$repo/scripts/install.sh" --prefix /usr --destdir "$stage" --package ${bin:+--bin "$bin"}

install -d -m 0755 "$stage/usr/share/doc/berth"
cat >"$stage/usr/share/doc/berth/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: berth
Source: https://github.com/berth-sh/berth

Files: *
Copyright: the berth authors
License: see the upstream repository
EOF
chmod 0644 "$stage/usr/share/doc/berth/copyright"

install -d -m 0755 "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: berth
Version: $ver
Architecture: $deb_arch
Maintainer: berth developers <berth@berth.sh>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: systemd-container
Recommends: isal
Section: admin
Priority: optional
Homepage: https://github.com/berth-sh/berth
Description: run OCI images and compose projects as systemd-nspawn machines
 berth pulls OCI and Docker images, turns image configs and docker compose
 projects into systemd-nspawn machines and their units, and drives them
 through systemd: no container daemon. A systemd generator turns
 quadlet-style declarations under /etc/berth/systemd into units at boot.
EOF
# The hooks: systemd reruns generators (berth's appeared or went away).
for hook in postinst postrm; do
	cat >"$stage/DEBIAN/$hook" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
exit 0
EOF
	chmod 0755 "$stage/DEBIAN/$hook"
done

mkdir -p "$out"
deb=$out/berth_${ver}_${deb_arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >&2
echo "$deb"
exit
}
