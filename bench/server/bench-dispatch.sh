#!/bin/bash
# bench-dispatch.sh SERVER FAKE_CLIENT [URLS] [CLIENTS] - URLs dispatched per
# second: the real capture-server with CLIENTS fake clients that answer at
# once (all benign, dac, group_size 20).  Prints a table.  The machine is
# shared: besides the wall-clock rate it reports the server's own CPU time
# (user + sys, all threads) per URL, which load from others does not change
# much; "CPU-bound rate" = URLs / server CPU seconds.  With BENCH_PG set to
# a libpq conninfo the run's store is that PostgreSQL database instead of
# SQLite (bench-store.sh runs both in a throw-away cluster).
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") n=${3:-200000} clients=${4:-100}
work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/server-bench-XXXXXX") # BENCH_TMPDIR=/dev/shm: no disk noise
trap 'kill -9 ${fpid:-} ${spid:-} 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
db=
[ -n "${BENCH_PG:-}" ] && db="<database database-type=\"postgresql\" database-url=\"$BENCH_PG\"/>"
printf '<config><global algorithm="dac" group_size="20"/>%s<no-vm-server/></config>\n' "$db" > config.xml
awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "http://host%d.example.test/page%d.html\n", i, i; print "end" }' > urls.txt
start=$(date +%s.%N)
/usr/bin/time -f '%U %S' -o cpu.txt "$server" -s "127.0.0.1:$port" -c config.xml -o out -f urls.txt 2> server.err &
spid=$!
"$fake" -p "$port" -n "$clients" 2>/dev/null &
fpid=$!
wait "$spid"
end=$(date +%s.%N)
rss=$(grep -h VmHWM /proc/$spid/status 2>/dev/null || true)
wait "$fpid" 2>/dev/null
safe=$(wc -l < out/log/safe.log)
printf '%-40s %14s\n' measure value
printf '%-40s %14d\n' "URLs (all benign)" "$n"
printf '%-40s %14d\n' "fake clients" "$clients"
printf '%-40s %14s\n' "store" "$([ -n "${BENCH_PG:-}" ] && echo postgresql || echo sqlite)"
printf '%-40s %14d\n' "URLs in safe.log" "$safe"
awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN { printf "%-40s %12.2f s\n%-40s %14.0f\n", "wall time (start to exit)", e - s, "URLs dispatched per second", n / (e - s) }'
read -r cu cs < cpu.txt
awk -v n="$n" -v u="$cu" -v s="$cs" 'BEGIN { printf "%-40s %12.2f s\n%-40s %12.1f us\n%-40s %14.0f\n", "server CPU (user + sys)", u + s, "server CPU per URL", (u + s) * 1e6 / n, "CPU-bound rate (URLs / server CPU s)", n / (u + s) }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
tail -1 server.err
[ "$safe" = "$n" ]
