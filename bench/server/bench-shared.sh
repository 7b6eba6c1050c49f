#!/bin/bash
# bench-shared.sh SERVER FAKE_CLIENT [URLS] [CLIENTS] - one shared run in a
# PostgreSQL cluster this script starts (tests/lib/pg-cluster.sh, Unix
# socket, fsync off: the database's disk is not what is measured), finished
# by one server with CLIENTS fake clients, then the same number of URLs (a
# new run) by two servers with CLIENTS/2 fake clients each, side by side in
# one run of the script.  Fake clients answer at once (all benign, dac,
# group_size 20).  Prints a table: wall-clock URLs/s, the servers' CPU per
# URL, PostgreSQL's CPU per URL, and the ratio two/one.  On a machine with
# fewer cores than servers + PostgreSQL + clients need, the ratio measures
# the machine, not the design: the CPU columns say where the time went.
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") n=${3:-50000} clients=${4:-100}
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/server-bench-shared-XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
	{ for p in "${pids[@]}"; do kill -9 "$p"; wait "$p"; done; } 2>/dev/null
	bash "$top/tests/lib/pg-cluster.sh" stop "$work/pg" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1
conninfo=$(bash "$top/tests/lib/pg-cluster.sh" start "$work/pg") || exit 1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cat > config.xml <<EOF
<config><global algorithm="dac" group_size="20"/>
<database database-type="postgresql" database-url="$conninfo"/><no-vm-server/></config>
EOF
pg_cpu() { # user+sys seconds of every postgres process of this cluster
	local pm
	pm=$(head -1 "$work/pg/data/postmaster.pid" 2>/dev/null) || { echo 0; return; }
	python3 - "$pm" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK")
root = int(sys.argv[1]); tot = 0
kids = {}
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(f[1]), []).append((int(p), f))
todo = [root]
st = open(f"/proc/{root}/stat").read().rsplit(")", 1)[1].split()
tot += int(st[11]) + int(st[12]) + int(st[13]) + int(st[14])
while todo:
    for pid, f in kids.get(todo.pop(), []):
        tot += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])  # utime stime cutime cstime
        todo.append(pid)
print(tot / tick)
PY
}
# one phase: NSERVERS servers on a fresh run of n URLs; sets wall, scpu, pcpu
phase() {
	local ns=$1 tag=$2 i
	awk -v n="$n" -v t="$tag" 'BEGIN { for (i = 1; i <= n; i++) printf "http://%s%d.example.test/p%d.html\n", t, i, i; print "end" }' > "urls-$tag.txt"
	"$server" -c config.xml -o "imp-$tag" -i "urls-$tag.txt" 2>/dev/null || exit 1
	local p0 start end spids=()
	p0=$(pg_cpu)
	start=$(date +%s.%N)
	for i in $(seq 1 "$ns"); do
		local port
		port=$(free_port)
		/usr/bin/time -f '%U %S' -o "cpu-$tag-$i.txt" "$server" -s "127.0.0.1:$port" -c config.xml \
			-o "out-$tag-$i" --server-id "$tag-$i" resume 2> "server-$tag-$i.err" &
		spids+=($!)
		pids+=($!)
		"$fake" -p "$port" -a "h$i" -n $((clients / ns)) 2>/dev/null &
		pids+=($!)
	done
	for p in "${spids[@]}"; do wait "$p"; done
	end=$(date +%s.%N)
	wall=$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }')
	scpu=$(cat cpu-"$tag"-*.txt | awk '{ t += $1 + $2 } END { print t }')
	pcpu=$(awk -v a="$p0" -v b="$(pg_cpu)" 'BEGIN { print b - a }')
	done_n=$(cat out-"$tag"-*/log/safe.log | wc -l)
	[ "$done_n" = "$n" ] || { echo "bench-shared: $tag: $done_n of $n URLs in the logs" >&2; exit 1; }
}
phase 1 one; w1=$wall s1=$scpu p1=$pcpu
phase 2 two; w2=$wall s2=$scpu p2=$pcpu
printf '%-34s %14s %14s\n' measure "one server" "two servers"
printf '%-34s %14d %14d\n' "URLs (all benign, dac 20)" "$n" "$n"
printf '%-34s %14d %14d\n' "fake clients in all" "$clients" "$clients"
awk -v n="$n" -v a="$w1" -v b="$w2" 'BEGIN { printf "%-34s %12.2f s %12.2f s\n%-34s %14.0f %14.0f\n", "wall time", a, b, "URLs finished per second", n / a, n / b }'
awk -v n="$n" -v a="$s1" -v b="$s2" 'BEGIN { printf "%-34s %11.1f us %11.1f us\n", "servers CPU per URL", a * 1e6 / n, b * 1e6 / n }'
awk -v n="$n" -v a="$p1" -v b="$p2" 'BEGIN { printf "%-34s %11.1f us %11.1f us\n", "PostgreSQL CPU per URL", a * 1e6 / n, b * 1e6 / n }'
awk -v a="$w1" -v b="$w2" 'BEGIN { printf "%-34s %29.2f\n", "two servers / one (URLs/s)", a / b }'
echo "cores: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
