#!/usr/bin/env bash
# registry.sh: run Debian's docker-registry (distribution v2) on 127.0.0.1
# with its storage, config, log and PID under one directory.
#
#   registry.sh start DIR [PORT]   start (or keep) a registry; prints host:port.
#                                  Without PORT: the first free one from 5000.
#   registry.sh stop DIR           stop exactly the registry started in DIR
#   registry.sh addr DIR           print host:port of the registry in DIR
#
# No auth, plain HTTP, delete enabled. The access log (DIR/registry.log) is
# how the benchmark counts blob downloads.
# The body is one block so bash reads all of it before running any: editing
# the file while it runs cannot derail a run in progress.
{
set -euo pipefail

die() {
	echo "registry.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: registry.sh start DIR [PORT] | stop DIR | addr DIR" >&2
	exit 2
}

# alive PID: is PID a running docker-registry? Guards against PID reuse.
alive() {
	[[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q docker-registry
}

# listening PORT: does anything listen on TCP PORT (any address)?
listening() {
	[[ -n $(ss -Hltn "sport = :$1") ]]
}

free_port() {
	local p
	for ((p = 5000; p < 6000; p++)); do
		if ! listening "$p"; then
			echo "$p"
			return
		fi
	done
	return 1
}

start() {
	local dir=$1 want=${2:-}
	local port=$want
	command -v docker-registry >/dev/null || die "docker-registry not found (apt-get install docker-registry)"
	[[ -z $want || $want =~ ^[0-9]+$ ]] || die "port must be a number, got '$want'"
	mkdir -p "$dir/storage"
	dir=$(cd "$dir" && pwd)
	if [[ -f $dir/registry.pid ]] && alive "$(cat "$dir/registry.pid")"; then
		local addr
		addr=$(cat "$dir/registry.addr")
		[[ -z $want || $addr == "127.0.0.1:$want" ]] ||
			die "a registry already runs from $dir on $addr; stop it first"
		echo "$addr"
		return
	fi
	if [[ -z $port ]]; then
		port=$(free_port) || die "no free TCP port in 5000-5999 on 127.0.0.1"
	elif listening "$port"; then
		die "port $port on 127.0.0.1 is already in use; pick another PORT"
	fi
	cat >"$dir/config.yml" <<CONF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$port
CONF
	nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$dir/registry.pid"
	echo "127.0.0.1:$port" >"$dir/registry.addr"
	# Wait until /v2/ answers: up to 10 s, which is ages for a local binary.
	local i
	for ((i = 0; i < 100; i++)); do
		if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/v2/"; then
			echo "127.0.0.1:$port"
			return
		fi
		alive "$pid" || break
		sleep 0.1
	done
	tail -n 20 "$dir/registry.log" >&2 || true
	if alive "$pid"; then
		kill "$pid"
	fi
	rm -f "$dir/registry.pid"
	die "registry in $dir did not answer on 127.0.0.1:$port (log above: $dir/registry.log)"
}

stop() {
	local dir=$1 pid i
	[[ -f $dir/registry.pid ]] || return 0
	pid=$(cat "$dir/registry.pid")
	if alive "$pid"; then
		kill "$pid"
		for ((i = 0; i < 100; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && die "registry PID $pid did not exit after SIGTERM"
	fi
	rm -f "$dir/registry.pid"
}

addr() {
	local dir=$1
	if ! [[ -f $dir/registry.pid ]] || ! alive "$(cat "$dir/registry.pid")"; then
		die "no registry running from $dir"
	fi
	cat "$dir/registry.addr"
}

(($# >= 2)) || usage
case $1 in
start) (($# <= 3)) || usage; start "$2" "${3:-}" ;;
stop) (($# == 2)) || usage; stop "$2" ;;
addr) (($# == 2)) || usage; addr "$2" ;;
*) usage ;;
esac
exit
}
