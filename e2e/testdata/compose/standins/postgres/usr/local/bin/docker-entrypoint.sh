#!/bin/sh
# Stand-in for the official postgres image's entrypoint, on Debian's
# PostgreSQL: the same environment contract (POSTGRES_USER,
# POSTGRES_PASSWORD, POSTGRES_DB, PGDATA), the cluster created in the
# volume on first start, the server run as postgres.
set -eu
if [ "${1:-}" != postgres ]; then
	exec "$@"
fi
shift
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PGBIN=$(echo /usr/lib/postgresql/*/bin)
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	pw=$(mktemp)
	printf '%s\n' "${POSTGRES_PASSWORD:?the stand-in, like the official image, needs POSTGRES_PASSWORD}" >"$pw"
	"$PGBIN/initdb" --username="$POSTGRES_USER" --pwfile="$pw" --auth-host=scram-sha-256 --auth-local=trust >/dev/null
	rm -f "$pw"
	{
		echo "listen_addresses = '*'"
		echo "unix_socket_directories = '/tmp'"
		echo "jit = off"
	} >>"$PGDATA/postgresql.conf"
	echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
	if [ "$POSTGRES_DB" != postgres ]; then
		# The set-up server listens on a private socket only, so
		# nothing takes it for the real one.
		setup=$(mktemp -d)
		"$PGBIN/pg_ctl" -o "-c listen_addresses='' -c unix_socket_directories=$setup" -w start >/dev/null
		psql -h "$setup" -U "$POSTGRES_USER" -d postgres -qc "CREATE DATABASE \"$POSTGRES_DB\""
		"$PGBIN/pg_ctl" -m fast -w stop >/dev/null
		rmdir "$setup"
	fi
	echo "stand-in postgres: initialised $PGDATA for $POSTGRES_USER/$POSTGRES_DB"
fi
exec "$PGBIN/postgres" "$@"
