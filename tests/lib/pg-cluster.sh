#!/bin/sh
# pg-cluster.sh - a throw-away PostgreSQL cluster for tests and benchmarks.
#
#   pg-cluster.sh start DIR   initdb + start in DIR (created, must be empty or
#                             absent); prints the conninfo on stdout
#   pg-cluster.sh stop DIR    stops the cluster of DIR and removes DIR
#   pg-cluster.sh run CMD...  a cluster in a new /tmp folder for the time of
#                             CMD, whose conninfo is in $CAPTURE_TEST_PG;
#                             stopped and removed however CMD ends
#
# The server listens only on a Unix socket inside DIR (no TCP port, so
# parallel clusters and the host's own PostgreSQL never collide) and runs
# with fsync off: nothing here must survive a power cut.  As root it runs as
# the postgres user (initdb refuses root), so DIR is chowned to it.  The
# binaries are the newest /usr/lib/postgresql/*/bin unless PG_BINDIR is set.
# Extra server settings: PG_CLUSTER_OPTS (e.g. "-c synchronous_commit=on").
set -eu

bindir() {
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
		echo "pg-cluster: no PostgreSQL server (apt-get install postgresql)" >&2
		exit 1
	fi
	echo "$d"
}

# Runs a command as the cluster's owner.
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

owner() {
	if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi
}

start() {
	dir=$1
	bin=$(bindir)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" = 0 ]; then
		chown postgres: "$dir"
		chmod 700 "$dir"
	fi
	as_owner "$bin/initdb" -D "$dir/data" -U "$(owner)" -A trust --no-sync -E UTF8 \
		>"$dir/initdb.log" 2>&1 || {
		cat "$dir/initdb.log" >&2
		exit 1
	}
	# shellcheck disable=SC2086 # PG_CLUSTER_OPTS is split on purpose
	as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -k $dir -c fsync=off -c full_page_writes=off \
-c max_connections=200 ${PG_CLUSTER_OPTS:-}" start >/dev/null || {
		cat "$dir/server.log" >&2
		exit 1
	}
	as_owner "$bin/createdb" -h "$dir" -U "$(owner)" capture
	echo "host=$dir dbname=capture user=$(owner)"
}

stop() {
	dir=$1
	[ -d "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ]; then
		bin=$(bindir)
		if ! as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop \
			>/dev/null 2>&1; then
			pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)
			[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
		fi
	fi
	rm -rf "$dir"
}

case "${1:-}" in
start)
	[ $# = 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }
	start "$2"
	;;
stop)
	[ $# = 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
	stop "$2"
	;;
run)
	shift
	[ $# -ge 1 ] || { echo "usage: $0 run CMD [ARG...]" >&2; exit 2; }
	dir=$(mktemp -d /tmp/capture-pg-XXXXXX)
	trap 'stop "$dir"' EXIT
	trap 'exit 130' INT TERM
	CAPTURE_TEST_PG=$(start "$dir")
	export CAPTURE_TEST_PG
	rc=0
	"$@" || rc=$?
	exit "$rc"
	;;
*)
	echo "usage: $0 start DIR | stop DIR | run CMD [ARG...]" >&2
	exit 2
	;;
esac
