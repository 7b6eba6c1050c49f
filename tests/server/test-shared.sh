#!/bin/bash
# test-shared.sh SERVER FAKE_CLIENT SCENARIO - several capture-servers sharing
# one run in a real PostgreSQL cluster that this test starts (tests/lib/
# pg-cluster.sh: initdb in a temporary folder, a Unix socket only), each with
# its own fake clients on 127.0.0.1.
#   kill9: 500 URLs imported as one run, two servers; one is killed with
#          SIGKILL in the middle: the other finishes every URL (after the
#          lease of the dead one expired), none twice (counted in
#          PostgreSQL, and in the two servers' logs), `export` writes the
#          run's logs with every URL once and the right verdict.
#   break: the server's database connection is killed twice mid-run: it
#          connects again, nothing is lost or finished twice.
#   restart: a server stopped with SIGTERM gives its URLs back at once; one
#          killed and started again under the same --server-id takes its
#          URLs back without waiting for the lease.
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") scenario=$3
top=$(cd "$(dirname "$0")/../.." && pwd)

work=$(mktemp -d /tmp/server-shared-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	bash "$top/tests/lib/pg-cluster.sh" stop "$work/pg" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

fail() {
	echo "FAIL ($scenario): $*"
	for f in a.err b.err; do [ -f $f ] && { echo "--- $f"; tail -20 $f; }; done
	exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

conninfo=$(bash "$top/tests/lib/pg-cluster.sh" start "$work/pg") || fail "cannot start PostgreSQL"
psql_q() { psql "$conninfo" -XAtq -c "$1"; }

cat > config.xml <<EOF
<config><global algorithm="dac" group_size="5" client_inactivity_timeout="5"/>
<database database-type="postgresql" database-url="$conninfo" lease-seconds="3"/>
<no-vm-server/></config>
EOF
N=500
for i in $(seq 1 $N); do
	if [ $((i % 50)) = 0 ]; then echo "http://evil$i.test/x"; else echo "http://site$i.test/p?q=$i"; fi
done > urls.txt
echo end >> urls.txt
"$server" -c config.xml -o a -i urls.txt 2>import.err || { cat import.err; fail "import"; }
run=$(psql_q "SELECT max(id) FROM operation")
[ "$(psql_q "SELECT count(*) FROM url WHERE operation = $run")" = $N ] || fail "import: not $N URLs"

start() { # NAME [signal handling is by the caller]
	local port
	port=$(free_port)
	"$server" -s "127.0.0.1:$port" -c config.xml -o "$1" --server-id "srv-$1" resume 2>>"$1.err" &
	eval "pid_$1=$!"
	pids+=($!)
	"$fake" -p "$port" -a "host-$1" -n 3 -m evil --delay 40 2>>"$1-clients.err" &
	pids+=($!)
}
lines() { cat "$1"/log/safe.log "$1"/log/malicious.log "$1"/log/error.log 2>/dev/null | wc -l; }
wait_lines() { # DIR N: until DIR's logs hold N final lines
	local i
	for i in $(seq 1 600); do
		[ "$(lines "$1")" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 did not reach $2 final lines"
}
wait_exit() { # PID
	local i
	for i in $(seq 1 900); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$1" 2>/dev/null && fail "server $1 did not finish"
	wait "$1" || fail "server $1 exited with $?"
}
store_exact() { # every URL of the run final exactly once
	[ "$(psql_q "SELECT count(*) FROM url WHERE operation = $run")" = $N ] || fail "rows"
	[ "$(psql_q "SELECT count(DISTINCT url) FROM url WHERE operation = $run")" = $N ] || fail "dup rows"
	[ "$(psql_q "SELECT count(*) FROM url WHERE operation = $run AND status IS NULL")" = 0 ] ||
		fail "URLs without a final status"
	[ "$(psql_q "SELECT count(*) FROM url WHERE operation = $run AND status = 'M'")" = $((N / 50)) ] ||
		fail "malicious count: $(psql_q "SELECT count(*) FROM url WHERE operation = $run AND status = 'M'")"
}

case $scenario in
kill9)
	start a
	start b
	wait_lines a 60
	kill -9 "$pid_a"
	wait "$pid_a" 2>/dev/null
	wait_exit "$pid_b"
	store_exact
	# the servers' logs together: no URL in both (a URL is finished once)
	cat a/log/*.log b/log/*.log | grep -E '"(benign|malicious|error:[A-Z_]+-[0-9]+)"' |
		cut -d, -f4 | sort | uniq -d > twice.txt
	[ -s twice.txt ] && fail "URLs in the logs of both servers: $(head -3 twice.txt)"
	[ "$(lines b)" -gt 0 ] || fail "server b finished nothing"
	# export: the whole run from the store
	"$server" -c config.xml -o b export "$run" 2>export.err || { cat export.err; fail "export"; }
	ex=b/export/run-$run/log
	cat $ex/safe.log $ex/malicious.log $ex/error.log | cut -d, -f4 | tr -d '"' | sort > seen.txt
	grep -v '^end$' urls.txt | sort > want.txt
	diff -q want.txt seen.txt >/dev/null || { diff want.txt seen.txt | head; fail "export: not every URL once"; }
	[ "$(wc -l < $ex/malicious.log)" = $((N / 50)) ] || fail "export: malicious.log"
	grep -v evil $ex/malicious.log && fail "export: a benign URL in malicious.log"
	"$server" -c config.xml -o b export "$run" 2>/dev/null && fail "export over an export"
	;;
restart)
	start a
	wait_lines a 20
	kill -TERM "$pid_a"
	wait "$pid_a"
	[ "$(psql_q "SELECT count(*) FROM url WHERE operation = $run AND status IS NULL AND owner IS NOT NULL AND lease_until > extract(epoch from now())")" = 0 ] ||
		fail "SIGTERM: URLs still leased"
	grep -q "gave [0-9]* unfinished URLs back" a.err || fail "SIGTERM: no give-back line"
	before=$(lines a)
	start a
	wait_lines a $((before + 20))
	kill -9 "$pid_a"
	wait "$pid_a" 2>/dev/null
	held=$(psql_q "SELECT count(*) FROM url WHERE operation = $run AND status IS NULL AND owner = 'srv-a'")
	[ "$held" -gt 0 ] || fail "kill -9: the server held no URLs"
	start a
	wait_exit "$pid_a"
	grep -q "URLs this server held before are back" a.err || fail "restart: own URLs not taken back"
	store_exact
	# one server did the whole run: its logs hold every URL once, also the
	# lines a kill -9 had left in the journal (written by the restart)
	cat a/log/safe.log a/log/malicious.log a/log/error.log | cut -d, -f4 | tr -d '"' | sort > seen.txt
	grep -v '^end$' urls.txt | sort > want.txt
	diff -q want.txt seen.txt >/dev/null || { diff want.txt seen.txt | head; fail "a's logs: not every URL once"; }
	;;
break)
	# the database connection of the server is killed twice in the middle
	# of the run (pg_terminate_backend, as a restart or failover would): it
	# connects again; verdicts whose transaction broke are visited again;
	# nothing lost, nothing twice
	start a
	for n in 60 160; do
		wait_lines a $n
		psql_q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		        WHERE application_name = 'capture-server'" > /dev/null
	done
	wait_exit "$pid_a"
	grep -q "connection to the database broke and was made again" a.err ||
		fail "no reconnect logged"
	store_exact
	cat a/log/safe.log a/log/malicious.log a/log/error.log | cut -d, -f4 | tr -d '"' | sort > seen.txt
	grep -v '^end$' urls.txt | sort > want.txt
	diff -q want.txt seen.txt >/dev/null || { diff want.txt seen.txt | head; fail "a's logs: not every URL once"; }
	;;
*)
	echo "unknown scenario $scenario"
	exit 2
	;;
esac
echo "ok ($scenario)"
