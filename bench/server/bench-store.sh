#!/bin/bash
# bench-store.sh SERVER FAKE_CLIENT [URLS] [CLIENTS] - bench-dispatch.sh once
# with the SQLite store and once with PostgreSQL (a throw-away local cluster
# of tests/lib/pg-cluster.sh, Unix socket, fsync off as SQLite's
# synchronous=NORMAL does not sync each commit either), then both rates side
# by side.  Exits non-zero if either run lost a URL.
set -uo pipefail
here=$(dirname "$(realpath "$0")")
server=$(realpath "$1") fake=$(realpath "$2") n=${3:-200000} clients=${4:-100}
out=$(mktemp -d /tmp/server-bench-store-XXXXXX)
trap 'rm -rf "$out"' EXIT
"$here/bench-dispatch.sh" "$server" "$fake" "$n" "$clients" > "$out/sqlite" 2>&1
rs=$?
"$here/../../tests/lib/pg-cluster.sh" run sh -c \
	'BENCH_PG=$CAPTURE_TEST_PG exec "$0" "$@"' "$here/bench-dispatch.sh" \
	"$server" "$fake" "$n" "$clients" > "$out/pg" 2>&1
rp=$?
pick() { # FILE MEASURE
	grep -F "$2" "$1" | awk '{print $NF == "s" || $NF == "us" ? $(NF-1) " " $NF : $NF}'
}
printf '%-40s %14s %14s\n' measure sqlite postgresql
for m in "URLs in safe.log" "wall time (start to exit)" "URLs dispatched per second" \
	"server CPU per URL" "CPU-bound rate (URLs / server CPU s)"; do
	printf '%-40s %14s %14s\n' "$m" "$(pick "$out/sqlite" "$m")" "$(pick "$out/pg" "$m")"
done
printf '%-40s %14d\n%-40s %14d\n' "URLs (all benign)" "$n" "fake clients" "$clients"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ $rs != 0 ] || [ $rp != 0 ]; then
	echo "bench-store: a run failed:" >&2
	tail -3 "$out/sqlite" "$out/pg" >&2
	exit 1
fi
