#!/bin/bash
# bench-tls.sh SERVER FAKE_CLIENT [URLS] [CLIENTS] [HANDSHAKES] - mutual TLS
# against plain text in the same run: the dispatch rate with CLIENTS fake
# clients (dac, group_size 20, all benign) once in plain text and once over
# TLS, and the server's CPU per TLS handshake (a loop of connect + handshake
# + close from Python's ssl against an idle server; the server's user + sys
# from /proc/PID/stat before and after).  Prints a table.  Targets: TLS rate
# >= 0.8 x plain; <= 2 ms of server CPU per handshake.
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") n=${3:-100000} clients=${4:-100} hs=${5:-2000}
work=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/server-bench-tls-XXXXXX")
trap 'kill -9 ${fpid:-} ${spid:-} 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" ca init ca 2>/dev/null && "$server" ca issue ca bench 2>/dev/null || exit 1
awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) printf "http://host%d.example.test/page%d.html\n", i, i; print "end" }' > urls.txt
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }

dispatch() { # mode -> "wall cpu"
	local extra="" fargs=()
	[ "$1" = tls ] && extra='tls-dir="ca"' && fargs=(--tls-dir ca)
	printf '<config><global algorithm="dac" group_size="20" %s/><no-vm-server/></config>\n' "$extra" > config.xml
	rm -rf out
	local start end
	start=$(date +%s.%N)
	/usr/bin/time -f '%U %S' -o cpu.txt "$server" -s "127.0.0.1:$port" -c config.xml -o out -f urls.txt 2> server.err &
	spid=$!
	"$fake" -p "$port" -n "$clients" -a bench "${fargs[@]}" 2>/dev/null &
	fpid=$!
	wait "$spid"
	end=$(date +%s.%N)
	wait "$fpid" 2>/dev/null
	[ "$(wc -l < out/log/safe.log)" = "$n" ] || { echo "$1: not every URL in safe.log" >&2; exit 1; }
	read -r cu cs < cpu.txt
	awk -v s="$start" -v e="$end" -v u="$cu" -v c="$cs" 'BEGIN { printf "%.3f %.3f\n", e - s, u + c }'
}
read -r pw pc < <(dispatch plain)
read -r tw tc < <(dispatch tls)

# handshakes against an idle TLS server (no end line: it waits)
printf '<config><global algorithm="dac" group_size="20" tls-dir="ca"/><no-vm-server/></config>\n' > config.xml
rm -rf out
echo "http://idle.example.test/" > idle.txt
"$server" -s "127.0.0.1:$port" -c config.xml -o out -f idle.txt 2> server.err &
spid=$!
sleep 0.5
c0=$(cpu "$spid")
hw=$(python3 - "$port" "$hs" <<'PY'
import socket, ssl, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_verify_locations("ca/ca.pem")
ctx.load_cert_chain("ca/hosts/bench.pem", "ca/hosts/bench.key")
t = time.monotonic()
for _ in range(n):
    with socket.create_connection(("127.0.0.1", port)) as s:
        with ctx.wrap_socket(s, server_hostname="capture-server") as t_s:
            t_s.recv(64)  # the server's connect: the handshake is done on both sides
print(time.monotonic() - t)
PY
)
c1=$(cpu "$spid")
kill "$spid"; wait "$spid" 2>/dev/null

printf '%-44s %12s %12s\n' measure plain tls
printf '%-44s %12d %12d\n' "URLs (all benign), fake clients $clients" "$n" "$n"
awk -v n="$n" -v pw="$pw" -v tw="$tw" -v pc="$pc" -v tc="$tc" 'BEGIN {
	printf "%-44s %12.2f %12.2f\n", "wall time (s)", pw, tw
	printf "%-44s %12.0f %12.0f\n", "URLs dispatched per second", n / pw, n / tw
	printf "%-44s %12.2f %12.2f\n", "server CPU user+sys (s)", pc, tc
	printf "%-44s %12.1f %12.1f\n", "server CPU per URL (us)", pc * 1e6 / n, tc * 1e6 / n
	printf "%-44s %25.2f\n", "TLS rate / plain rate (target >= 0.8)", pw / tw }'
awk -v h="$hs" -v a="$c0" -v b="$c1" -v w="$hw" 'BEGIN {
	printf "%-44s %25d\n", "TLS handshakes (connect+handshake+close)", h
	printf "%-44s %25.3f\n", "server CPU per handshake (ms, target <= 2)", (b - a) * 1000 / h
	printf "%-44s %25.0f\n", "handshakes per second (one client)", h / w }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
