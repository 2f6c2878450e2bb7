#!/usr/bin/env bash
# demo.sh: berth's main job, end to end: a compose project of a web server
# (busybox httpd, publishing a port), an app writing the page it serves, and
# a named volume between them, run as systemd-nspawn machines owned by
# systemd. Each step is printed, then run:
#   berth compose up -d, ps, curl the published port, logs, down
#
#   scripts/demo.sh                   on a fresh Debian 12 machine, as root
#   scripts/demo.sh --here [--registry ADDR]
#
# berth needs systemd as PID 1. Where it is (a real host), the demo installs
# what is needed (scripts/deps.sh), builds berth, builds a busybox image the
# way scripts/images.sh does, serves it from a registry on 127.0.0.1 and runs
# the project on this host (--here does that directly). Where PID 1 is not
# systemd (containers, CI, VMs booted without it) it says so and runs the
# same steps inside a systemd test host booted with systemd-nspawn --boot
# --private-network from a cached Debian tree (e2e/testhost, the harness the
# end-to-end tests use: its TestDemo boots the host, installs berth, starts a
# registry inside, pushes the image and runs `demo.sh --here`), then powers
# that host off. Nothing touches this machine's network.
#
# State lives in $BERTH_DEMO_DIR (default /var/tmp/berth-demo); the port is
# $BERTH_DEMO_PORT (default 8080).
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=${BERTH_DEMO_DIR:-/var/tmp/berth-demo}
port=${BERTH_DEMO_PORT:-8080}
here=false
registry=

step() { printf '\n==> %s\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}
# show CMD...: print a command as typed, then run it.
show() {
	printf '$ %s\n' "$*"
	"$@"
}

while (($#)); do
	case $1 in
	--here) here=true ;;
	--registry) registry=${2:?--registry needs host:port}; shift ;;
	*) die "unknown argument $1" ;;
	esac
	shift
done

[[ $(id -u) == 0 ]] || die "run as root: berth unpacks images with their owners and systemd-nspawn needs root"

if ! $here; then
	step "installing dependencies (scripts/deps.sh)"
	bash "$repo/scripts/deps.sh" >&2
	export PATH=$PATH:/usr/local/go/bin
	pid1=$(cat /proc/1/comm 2>/dev/null || echo unknown)
	if [[ ! -d /run/systemd/system ]]; then
		cache=${BERTH_CACHE:-$repo/.cache}
		step "PID 1 here is $pid1, not systemd: berth drives systemd, so the demo runs inside a systemd test host"
		cat <<-EOF
			The host is booted with
			  systemd-nspawn --boot --register=no --keep-unit --private-network -D <overlay of a Debian 12 tree>
			(the tree is debootstrap'd once and cached under ${BERTH_E2E_CACHE:-$cache/testhost}; the first run
			takes a minute or two). berth is built and copied in, the demo runs there through
			nsenter -t <its init> -a, and the host is powered off at the end. Its network is its own:
			this machine's is not touched.
		EOF
		cd "$repo"
		set +e
		BERTH_E2E=1 BERTH_DEMO=1 BERTH_E2E_CACHE=${BERTH_E2E_CACHE:-$cache/testhost} \
			go test -count=1 -timeout 20m -v -run '^TestDemo$' ./e2e/ 2>&1 |
			grep --line-buffered -v -E '^(=== (RUN|PAUSE|CONT)|--- PASS|PASS$|ok  )'
		status=${PIPESTATUS[0]}
		((status == 0)) || echo "demo: the demo in the test host failed (go test exit $status)" >&2
		exit "$status"
	fi

	step "PID 1 is systemd: running the demo on this host"
	step "building berth (CGO_ENABLED=0) -> $repo/bin/"
	(cd "$repo" && CGO_ENABLED=0 go build -o bin/ ./cmd/berth ./cmd/berth-init ./tools/mkimage)
	export PATH=$repo/bin:$PATH

	step "starting a registry on 127.0.0.1 (state in $demo/registry)"
	mkdir -p "$demo"
	trap '"$repo/scripts/registry.sh" stop "$demo/registry"' EXIT
	registry=$("$repo/scripts/registry.sh" start "$demo/registry")
	echo "registry at http://$registry"

	step "building the busybox image and pushing it to $registry/busybox:latest (scripts/images.sh)"
	"$repo/scripts/images.sh" "$registry" busybox
fi

[[ -n $registry ]] || die "--here needs --registry ADDR serving busybox:latest (or run without --here)"
command -v berth >/dev/null || die "berth is not on PATH"

project=$demo/site
mkdir -p "$project"
# $$ is a literal $ in compose files.
cat >"$project/compose.yaml" <<EOF
# A web server publishing 127.0.0.1:$port, and an app writing the page it
# serves into a volume they share.
services:
  web:
    image: $registry/busybox:latest
    entrypoint: ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
    ports: ["127.0.0.1:$port:80"]
    volumes: ["site:/www"]
    depends_on: [app]
  app:
    image: $registry/busybox:latest
    entrypoint: ["sh", "-c", "echo app: writing the page every second; while :; do echo \"hello from app, page written at \$\$(date +%T)\" > /out/index.html; sleep 1; done"]
    volumes: ["site:/out"]
volumes:
  site: {}
EOF
step "the project: $project/compose.yaml"
sed 's/^/    /' "$project/compose.yaml"
cd "$project"

step "berth compose up -d: pulls the image, writes units, starts the machines through systemd"
show berth compose up -d

step "berth compose ps"
show berth compose ps

step "curl http://127.0.0.1:$port/ (web serves what app wrote into the volume)"
page=
for ((i = 0; i < 60; i++)); do
	page=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) && [[ $page == hello* ]] && break
	sleep 0.5
done
printf '$ curl -fsS http://127.0.0.1:%s/\n%s\n' "$port" "$page"
[[ $page == "hello from app"* ]] || die "the page did not answer on 127.0.0.1:$port"

step "berth compose logs"
show berth compose logs --tail 5

step "the units systemd runs"
show systemctl list-units --no-pager --no-legend 'berth-site-*'

step "berth compose down"
show berth compose down

step "done: the project was $project/compose.yaml"
exit
}
