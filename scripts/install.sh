#!/usr/bin/env bash
# install.sh: build berth and install it where systemd and shells find it.
#
#   scripts/install.sh [--prefix PREFIX] [--destdir DIR]     build and install
#   scripts/install.sh [--prefix PREFIX] [--destdir DIR] --uninstall
#
# Installs, under PREFIX (default /usr/local):
#   bin/berth                                      the CLI
#   lib/berth/berth-init                           PID 1 of app machines
#   lib/systemd/system-generators/berth-generator  systemd runs it (for /usr and /usr/local)
#   share/bash-completion/completions/berth        bash completion
#   share/zsh/site-functions/_berth                zsh (vendor-completions/ for /usr)
#   share/fish/vendor_completions.d/berth.fish     fish
#   share/man/man1/berth*.1                        man pages
#   lib/berth/install-manifest                     what was installed, for --uninstall
#
# --destdir DIR stages everything under DIR (paths inside stay PREFIX/...), as
# packagers do. --uninstall removes exactly what the manifest lists: the
# files and the directories install.sh created. Without --destdir, on a host
# running systemd, `systemctl daemon-reload` follows so the generator runs.
#
# Options for packaging (scripts/deb.sh): --bin DIR installs the binaries
# berth, berth-init, berth-generator from DIR instead of building them (and
# runs DIR/mangen, tools/mangen, for the man pages, or builds it);
# --package writes no manifest, compresses man pages (gzip -9n) and does not
# reload systemd, since the package manager tracks files and runs hooks.
#
# The binaries are built with CGO_ENABLED=0: berth-init runs in images
# without a C library, and so can berth itself (it is its own init when no
# berth-init is installed beside it).
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=/usr/local
destdir=
uninstall=false
bin=
package=false

die() {
	echo "install: $*" >&2
	exit 1
}
usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" | sed '/^$/q' >&2
	exit 2
}

while (($#)); do
	case $1 in
	--prefix) prefix=${2:?--prefix needs a value}; shift ;;
	--prefix=*) prefix=${1#*=} ;;
	--destdir) destdir=${2:?--destdir needs a value}; shift ;;
	--destdir=*) destdir=${1#*=} ;;
	--bin) bin=${2:?--bin needs a value}; shift ;;
	--uninstall) uninstall=true ;;
	--package) package=true ;;
	-h | --help) usage ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done
[[ $prefix == /* ]] || die "--prefix $prefix is not absolute"
prefix=$(realpath -m "$prefix")
[[ -z $destdir ]] || destdir=$(realpath -m "$destdir")
[[ $prefix == / ]] && prefix=

manifest=$prefix/lib/berth/install-manifest

# reload: systemd reruns its generators (ours appeared or went away).
reload() {
	if [[ -z $destdir && $package == false && -d /run/systemd/system ]]; then
		systemctl daemon-reload || echo "install: systemctl daemon-reload failed" >&2
	fi
}

if $uninstall; then
	[[ -f $destdir$manifest ]] || die "$destdir$manifest does not exist: nothing installed under $prefix${destdir:+ in $destdir}"
	mapfile -t lines <"$destdir$manifest"
	# Files first, then the directories install.sh made, deepest first
	# (they were recorded parents first).
	for l in "${lines[@]}"; do
		[[ $l == f\ /* ]] || continue
		rm -f -- "$destdir${l#f }"
		echo "removed ${l#f }" >&2
	done
	for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
		l=${lines[i]}
		[[ $l == d\ /* ]] || continue
		rmdir --ignore-fail-on-non-empty -- "$destdir${l#d }" 2>/dev/null || true
	done
	reload
	exit 0
fi

[[ -z $destdir ]] || mkdir -p -- "$destdir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ -z $bin ]]; then
	export PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null || die "go is not installed (scripts/deps.sh installs it)"
	echo "install: building berth, berth-init, berth-generator (CGO_ENABLED=0)" >&2
	bin=$work/bin
	mkdir -p "$bin"
	(cd "$repo" && CGO_ENABLED=0 go build -trimpath -o "$bin/" ./cmd/berth ./cmd/berth-init ./cmd/berth-generator ./tools/mangen)
fi
for b in berth berth-init berth-generator; do
	[[ -x $bin/$b ]] || die "$bin/$b is missing"
done
mangen=$bin/mangen
if [[ ! -x $mangen ]]; then
	export PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null || die "$bin has no mangen and go is not installed to build it"
	mangen=$work/mangen
	(cd "$repo" && go build -o "$mangen" ./tools/mangen)
fi

# Generated files: completions from cobra's generators, man pages from
# tools/mangen (berth itself does not link the man page renderer).
mkdir -p "$work/gen/man"
"$bin/berth" completion bash >"$work/gen/berth.bash"
"$bin/berth" completion zsh >"$work/gen/_berth"
"$bin/berth" completion fish >"$work/gen/berth.fish"
"$mangen" "$work/gen/man"
if $package; then
	gzip -9n "$work/gen/man"/*.1
fi

# zsh's own fpath has /usr/local/share/zsh/site-functions; Debian's zsh
# reads packages' completions from /usr/share/zsh/vendor-completions.
zshdir=$prefix/share/zsh/site-functions
[[ $prefix == /usr ]] && zshdir=$prefix/share/zsh/vendor-completions

# entries: "f PATH" per file and "d PATH" per directory made here, paths as
# on the target (without destdir), parents before children. A directory
# an earlier install made stays recorded.
entries=()
if ! $package && [[ -f $destdir$manifest ]]; then
	while read -r kind p; do
		[[ $kind == d ]] && entries+=("d $p")
	done <"$destdir$manifest"
fi

# mkdirs DIR: create DIR and missing parents, recording the ones made.
mkdirs() {
	local d=$1 missing=()
	while [[ -n $d && $d != / && ! -d $destdir$d ]]; do
		missing=("$d" "${missing[@]}")
		d=$(dirname "$d")
	done
	for d in "${missing[@]}"; do
		mkdir -m 0755 -- "$destdir$d"
		entries+=("d $d")
	done
}

# put SRC DST MODE: install one file atomically (a running berth keeps its
# old inode).
put() {
	local src=$1 dst=$2 mode=$3
	mkdirs "$(dirname "$dst")"
	install -m "$mode" -T -- "$src" "$destdir$dst.new-$$"
	mv -f -- "$destdir$dst.new-$$" "$destdir$dst"
	entries+=("f $dst")
	echo "installed $dst" >&2
}

put "$bin/berth" "$prefix/bin/berth" 0755
put "$bin/berth-init" "$prefix/lib/berth/berth-init" 0755
put "$bin/berth-generator" "$prefix/lib/systemd/system-generators/berth-generator" 0755
put "$work/gen/berth.bash" "$prefix/share/bash-completion/completions/berth" 0644
put "$work/gen/_berth" "$zshdir/_berth" 0644
put "$work/gen/berth.fish" "$prefix/share/fish/vendor_completions.d/berth.fish" 0644
for m in "$work/gen/man"/*; do
	put "$m" "$prefix/share/man/man1/${m##*/}" 0644
done

if ! $package; then
	mkdirs "$(dirname "$manifest")"
	entries+=("f $manifest")
	printf '%s\n' "${entries[@]}" | awk '!seen[$0]++' >"$work/manifest"
	install -m 0644 -T -- "$work/manifest" "$destdir$manifest"
	echo "installed $manifest (scripts/install.sh --uninstall${prefix:+ --prefix $prefix} removes it all)" >&2
fi
reload
exit
}
