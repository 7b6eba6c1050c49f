#!/bin/bash
# test-scenarios.sh SERVER FAKE_CLIENT SCENARIO - protocol scenarios: the real
# capture-server on 127.0.0.1 (a free port) driven by the scripted fake
# client.  Each scenario checks the log/ files the server writes.
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") scenario=$3
top=$(cd "$(dirname "$0")/../.." && pwd)

work=$(mktemp -d /tmp/server-scenario-XXXXXX)
pids=()
mounted=0
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ "$mounted" = 1 ] && umount "$work/out/reports"
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work" || exit 1

fail() { echo "FAIL ($scenario): $*"; echo "--- server.err"; tail -30 server.err 2>/dev/null; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

config() { # algorithm group_size [extra global attributes] [backend element]
	cat > config.xml <<EOF
<config><global algorithm="$1" group_size="$2" client_inactivity_timeout="3" ${3:-}/>
${4:-<no-vm-server/>}</config>
EOF
}
urls() { # N [prefix]
	for i in $(seq 1 "$1"); do echo "http://${2:-site}$i.test/p?q=$i#frag"; done
}
start_server() { # extra args...
	"$server" -s "127.0.0.1:$port" -c config.xml -o out "$@" 2>>server.err &
	server_pid=$!
	pids+=("$server_pid")
}
client() { # args... (background)
	"$fake" -p "$port" "$@" 2>>client.err &
	pids+=($!)
}
wait_server() { # expected exit status
	local i
	for i in $(seq 1 300); do
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$server_pid" 2>/dev/null && fail "server did not finish"
	wait "$server_pid"
	local rc=$?
	[ "$rc" = "${1:-0}" ] || fail "server exited with $rc"
}
# SIGKILLs the first fake client that marks a visit in marks/ (--mark):
# its pid in $victim
kill_marked_client() {
	local i
	victim=""
	for i in $(seq 1 300); do
		victim=$(ls marks 2>/dev/null | head -1 | cut -d. -f1)
		[ -n "$victim" ] && break
		sleep 0.05
	done
	[ -n "$victim" ] || fail "no client started a visit"
	kill -9 "$victim"
}
end_all() { # ends this scenario's processes (between its phases)
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	pids=()
}
count() { [ -f "out/log/$1" ] && wc -l < "out/log/$1" || echo 0; }
# every URL of urls.txt exactly once in safe + malicious + error
exactly_once() {
	cat out/log/safe.log out/log/malicious.log out/log/error.log 2>/dev/null |
		grep -v INVALID_URL | cut -d, -f4 | tr -d '"' | sort > seen.txt
	grep -v '^end$' urls.txt | sort > want.txt
	diff -q want.txt seen.txt >/dev/null || { diff want.txt seen.txt | head; fail "URLs not exactly once"; }
}

case $scenario in
dac)
	config dac 20
	{ urls 20; echo end; } > urls.txt
	start_server -f urls.txt
	client -m site13.test
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log: $(count malicious.log) lines"
	grep -q '"http://site13.test/p?q=13#frag"' out/log/malicious.log || fail "wrong malicious URL"
	[ "$(count safe.log)" = 19 ] || fail "safe.log: $(count safe.log) lines"
	visits=$(grep 'URLs accepted' server.err | sed -n 's/.* \([0-9]*\) visits.*/\1/p')
	[ -n "$visits" ] && [ "$visits" -le 11 ] || fail "visits: $visits"
	ls out/reports/*.json >/dev/null || fail "no reports"
	grep -q '"verdict": *"malicious"' out/reports/http%3A%2F%2Fsite13*.json || fail "report"
	exactly_once
	;;
bulk)
	config bulk 10
	{ urls 10; echo end; } > urls.txt
	start_server -f urls.txt
	client -m 'q=3#' # site3 only; items attributed by process tree
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log: $(count malicious.log) lines"
	grep -q 'site3.test' out/log/malicious.log || fail "wrong malicious URL"
	[ "$(count safe.log)" = 9 ] || fail "safe.log"
	grep 'URLs accepted' server.err | grep -q ' 1 visits' || fail "bulk must visit once"
	exactly_once
	;;
bulk-attr)
	# our extension: the client attributes each item (malicious="0|1"); the
	# events' pids say nothing, so the process-tree rule alone would find none
	config bulk 10
	{ urls 10; echo end; } > urls.txt
	start_server -f urls.txt
	client -m 'q=3#' --attribute
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log: $(count malicious.log) lines"
	grep -q 'site3.test' out/log/malicious.log || fail "wrong malicious URL"
	[ "$(count safe.log)" = 9 ] || fail "safe.log"
	exactly_once
	;;
bulk-unattributed)
	# an event no item could be tied to (a flow whose owner was never seen)
	# flagged every URL of a bulk group: its undecided URLs are visited
	# again, split in halves, until the event can be tied to one
	config bulk 10
	{ urls 10; echo end; } > urls.txt
	start_server -f urls.txt
	client -m 'q=3#' --unattributed
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log: $(count malicious.log) lines"
	grep -q 'site3.test' out/log/malicious.log || fail "wrong malicious URL"
	[ "$(count safe.log)" = 9 ] || fail "safe.log $(count safe.log)"
	grep -q 'group 1: 1 unattributed events; its undecided URLs are visited again' server.err ||
		fail "no split"
	exactly_once
	;;
inactivity)
	config seq 5
	{ urls 5; echo end; } > urls.txt
	start_server -f urls.txt
	client -b 1 --silent-after 0 --once
	sleep 1
	client -b 2
	wait_server 0
	grep -q 'client 1:1 (127.0.0.1:[0-9]*): inactive' server.err || fail "no inactivity"
	[ "$(count safe.log)" = 5 ] || fail "group not retried: safe.log $(count safe.log)"
	[ "$(count error.log)" = 0 ] || fail "errors"
	exactly_once
	;;
retry)
	# a client that crashes on every group: retried once, then error.log
	config seq 4
	{ urls 4; echo end; } > urls.txt
	start_server -f urls.txt
	client --crash-after 0 --once
	sleep 0.5
	client --crash-after 0 --once
	wait_server 0
	[ "$(count error.log)" = 4 ] || fail "error.log: $(count error.log)"
	grep -q 'CONNECTION_RESET' out/log/error.log || fail "error code"
	exactly_once
	;;
garbage)
	config seq 2
	{ urls 40; echo end; } > urls.txt
	start_server -f urls.txt
	client -b 1 --delay 20
	client -b 2 --garbage --once
	client -b 3 --oversize --once
	wait_server 0
	grep -q 'client 1:2 (127.0.0.1:[0-9]*): bad message' server.err || fail "garbage not detected"
	grep -q 'client 1:3 (127.0.0.1:[0-9]*): message over the size limit' server.err || fail "oversize not detected"
	grep -q 'client 1:1 ' server.err && fail "the good client was disturbed"
	# a bad client may already hold a group when its bad message arrives: that
	# group is retried once; only if the retry also lands on the other bad
	# client does it end in error.log (at most one group of 2 URLs)
	[ "$(count error.log)" -le 2 ] || fail "error.log $(count error.log)"
	[ "$(( $(count safe.log) + $(count error.log) ))" = 40 ] || fail "safe.log $(count safe.log)"
	exactly_once
	;;
upload)
	config seq 1 'collect-modified-files="true"'
	{ urls 2; echo end; } > urls.txt
	start_server -f urls.txt
	client -m site1.test --upload
	wait_server 0
	zip=$(ls out/log/*.zip | head -1)
	[ -n "$zip" ] && [ "$(cat "$zip")" = hello ] || fail "upload not stored in log/"
	[ "$(ls out/log/*.zip | wc -l)" = 1 ] || fail "$(ls out/log/*.zip | wc -l) uploads for 1 malicious visit"
	[ -e out/etc/passwd ] || [ -e etc/passwd ] && fail "client path used"
	grep -q '\.zip' out/reports/http%3A%2F%2Fsite1.test*.json || fail "zip not in report"
	exactly_once
	;;
resume)
	config seq 1
	{ urls 300; echo end; } > urls.txt
	start_server -f urls.txt
	client -m 7.test --delay 5
	sleep 1.5
	kill -9 "$server_pid"
	wait "$server_pid" 2>/dev/null
	[ "$(cat out/log/safe.log out/log/malicious.log | wc -l)" -lt 300 ] || fail "run too fast to interrupt"
	start_server resume
	client -m 7.test
	wait_server 0
	exactly_once
	[ "$(count malicious.log)" = 30 ] || fail "malicious.log $(count malicious.log)"
	;;
upload-refused)
	# uploads only when the options asked for them, bounded per visit, and
	# never a partial file left behind
	config seq 1
	{ urls 3; echo end; } > urls.txt
	start_server -f urls.txt
	client -b 1 -m site1.test --upload --once       # polite, not asked: file-reject
	sleep 1
	client -b 2 -m site3.test --upload-unasked --once # streams without waiting: dropped
	sleep 1
	client -b 3 -m site3.test
	wait_server 0
	grep -q 'fake-client: upload file-reject' client.err || fail "no file-reject"
	grep -q 'refused: not requested' server.err || fail "server log"
	[ -z "$(ls out/log/*.zip 2>/dev/null)" ] || fail "uploads stored: $(ls out/log/*.zip)"
	grep -q 'site1.test' out/log/malicious.log || fail "site1 verdict"
	exactly_once
	# asked for, but the client goes away in the middle: no partial zip
	end_all
	rm -rf out; : > server.err; : > client.err
	config seq 1 'collect-modified-files="true" max-upload-per-visit="1000"'
	start_server -f urls.txt
	client -b 1 -m site2.test --upload-partial --once
	sleep 1
	client -b 2 -m site2.test
	wait_server 0
	grep -q 'fake-client: upload file-accept' client.err || fail "partial upload not accepted"
	[ -z "$(ls out/log/*.zip 2>/dev/null)" ] || fail "partial upload left: $(ls -l out/log/*.zip)"
	exactly_once
	# over max-upload-per-visit: refused
	end_all
	rm -rf out; : > server.err; : > client.err
	config seq 1 'collect-modified-files="true" max-upload-per-visit="4"'
	start_server -f urls.txt
	client -m site2.test --upload
	wait_server 0
	grep -q 'refused: over the bound per visit' server.err || fail "bound per visit"
	[ -z "$(ls out/log/*.zip 2>/dev/null)" ] || fail "upload over the bound stored"
	exactly_once
	;;
hostile-attrs)
	# 90,000 attributes in one message: refused before the parser (it was
	# quadratic: 13-16 s frozen), an honest client is not disturbed
	config seq 1
	{ urls 30; echo end; } > urls.txt
	start_server -f urls.txt
	client -m site7.test --delay 50
	python3 "$top/tests/server/hostile-peer.py" attrs "$port" > peer.out || fail "peer"
	grep -q '^closed' peer.out || fail "not closed: $(cat peer.out)"
	wait_server 0
	grep -q 'client 9:9 (127.0.0.1:[0-9]*): bad message (more than 64 attributes' server.err ||
		fail "not refused for its attributes"
	grep -q 'client 1:1 .*inactive' server.err && fail "the honest client was dropped"
	exactly_once
	;;
hostile-flood)
	# at the descriptor limit: no busy loop, a few log lines, and the server
	# serves again afterwards; over max-connections: closed as they come
	config seq 1
	{ urls 10; echo end; } > urls.txt
	prlimit --nofile=64 "$server" -s "127.0.0.1:$port" -c config.xml -o out -f urls.txt 2>>server.err &
	server_pid=$!
	pids+=("$server_pid")
	sleep 0.5
	python3 "$top/tests/server/hostile-peer.py" flood "$port" 200 3 > peer.out || fail "peer"
	cat peer.out
	client -m site3.test
	wait_server 0
	lines=$(wc -l < server.err)
	[ "$lines" -le 12 ] || { head -20 server.err; fail "$lines log lines"; }
	grep -q 'accept: out of file descriptors: .* connections closed as they came' server.err ||
		fail "EMFILE not reported"
	exactly_once
	# with descriptors to spare, max-connections closes the rest
	end_all
	rm -rf out; : > server.err
	config seq 1 'max-connections="40"'
	start_server -f urls.txt
	sleep 0.5
	python3 "$top/tests/server/hostile-peer.py" flood "$port" 100 2 > peer.out || fail "peer"
	grep -q 'opened 100 greeted 40 ' peer.out || fail "max-connections: $(cat peer.out)"
	grep -q 'max-connections reached: .* connections closed as they came' server.err ||
		fail "max-connections not reported"
	client -m site3.test
	wait_server 0
	exactly_once
	;;
hostile-slow)
	# slow senders: trickling bytes is not activity, and unfinished input is
	# bounded over all connections (the slowest sender goes first): 100
	# connections of 900,000 unfinished bytes each against an 8 MiB bound
	config seq 1 'max-pending-input="8388608"'
	{ urls 20; echo end; } > urls.txt
	# (in the ASan build: no quarantine, which would keep every freed buffer)
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
	start_server -f urls.txt
	python3 "$top/tests/server/hostile-peer.py" slow "$port" 100 900000 12 > peer.out || fail "peer"
	# within its memory bound: the peak resident size stays far below the
	# 90 MB the peers sent (ASan build: ~20 MB of its own)
	hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$server_pid/status")
	echo "server VmHWM ${hwm} kB"
	[ "$hwm" -lt 65536 ] || fail "VmHWM $hwm kB"
	client -m site3.test
	wait_server 0
	n=$(grep -c 'the slowest sender' server.err)
	[ "$n" -ge 90 ] || fail "bound applied $n times"
	for i in 0 1 2 3; do grep -q "conn $i closed" peer.out || fail "conn $i (the oldest) not closed"; done
	# the rest trickle a byte a second: inactive after 3 s all the same
	grep -q 'client #[0-9]* (127.0.0.1:[0-9]*): inactive' server.err || fail "trickle counted as activity"
	grep -q ' open$' peer.out && fail "a slow sender stayed connected"
	exactly_once
	;;
hostile-bulk)
	# a crafted bulk finish (1,000 items, 4,096 events in one long chain):
	# item matching is linear (it took ~0.3 s per item: this test's timeout)
	config bulk 1000
	{ urls 1000; echo end; } > urls.txt
	start_server -f urls.txt
	python3 "$top/tests/server/hostile-peer.py" bulk "$port" > peer.out || fail "peer"
	cat peer.out
	grep -q 'items 1000 events 4096' peer.out || fail "peer"
	grep -q '^closed' peer.out || fail "no revert after the malicious finish"
	kill -TERM "$server_pid"
	wait "$server_pid"
	[ "$(count malicious.log)" = 2 ] || fail "malicious.log: $(count malicious.log)"
	grep -q '"http://site1.test/p?q=1#frag"' out/log/malicious.log || fail "item 0"
	grep -q '"http://site8.test/p?q=8#frag"' out/log/malicious.log || fail "item 7"
	[ "$(count safe.log)" = 998 ] || fail "safe.log: $(count safe.log)"
	;;
original)
	# the original C++ client's messages, replayed: string ids, unescaped
	# Windows paths, an upload in 8 KiB parts, NETWORK_ERROR with an HRESULT
	# (a completed visit), EXCEPTION (error, retried once), reconnect in the
	# middle of a visit; URLs with + and %-escapes come back as given
	config seq 1 'collect-modified-files="true"'
	printf '%s\n' 'http://evil.test/x' 'http://neterr.test/a%2Fb+c?q=1+2&r=%41' \
		'http://reconnect.test/' 'http://exception.test/' 'http://plain.test/' end > urls.txt
	start_server -f urls.txt
	python3 "$top/tests/server/hostile-peer.py" original "$port" > peer.out &
	pids+=($!)
	wait_server 0
	cat peer.out
	grep -q 'client 10.1.1.2:winxp-sp2-1 (127.0.0.1:[0-9]*): reconnected; its visit goes on' server.err ||
		fail "reconnect did not keep the visit"
	grep -q 'url http://neterr.test/a%2Fb+c?q=1+2&r=%41$' peer.out || fail "url sent differently"
	grep -q '"http://evil.test/x"' out/log/malicious.log || fail "evil"
	grep -q '"benign","[0-9]*","http://neterr.test/a%2Fb+c?q=1+2&r=%41"' out/log/safe.log || fail "neterr"
	grep -q '"http://reconnect.test/"' out/log/safe.log || fail "reconnect"
	grep -q '"error:EXCEPTION-0","[0-9]*","http://exception.test/"' out/log/error.log || fail "exception"
	[ "$(grep -c 'url http://exception.test/' peer.out)" = 2 ] || fail "EXCEPTION not retried once"
	zip=$(ls out/log/http%3A%2F%2Fevil.test*.zip) || fail "no upload"
	[ "$(stat -c %s "$zip")" = 20480 ] || fail "upload size"
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(d != bytes(range(256))*80)' "$zip" ||
		fail "upload content"
	grep -qF 'C:\\Documents and Settings\\Admin\\a&b<c.exe' out/log/http%3A%2F%2Fevil.test*.log ||
		fail "the Windows path in the event log"
	exactly_once
	;;
resume-input)
	# killed while still reading its list: resume goes on from where the
	# list was accepted up to (the position is stored with the URLs)
	config dac 20
	urls 2000 > all.txt
	head -1000 all.txt > urls.txt # no end line yet: the server tails it
	start_server -f urls.txt
	python3 - out/results.db <<'PY' || fail "the first half was not accepted"
import sqlite3, sys, time
for _ in range(300):
    try:
        if sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM url").fetchone()[0] == 1000:
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.1)
sys.exit(1)
PY
	kill -9 "$server_pid"
	wait "$server_pid" 2>/dev/null
	{ tail -1000 all.txt; echo end; } >> urls.txt
	start_server resume
	client -n 4 -m site77.test
	wait_server 0
	grep -q 'resume: reading .*urls.txt on from line 1000' server.err || fail "not continued"
	exactly_once
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log $(count malicious.log)"
	# given again with -f (here a copy of it) on resume: URLs the run already
	# has are not visited again
	end_all
	rm -rf out; : > server.err
	config seq 1
	{ urls 40; echo end; } > urls.txt
	start_server -f urls.txt
	client -m site7.test --delay 100
	for i in $(seq 1 300); do [ "$(count safe.log)" -ge 10 ] && break; sleep 0.1; done
	kill -9 "$server_pid"
	wait "$server_pid" 2>/dev/null
	end_all
	cp urls.txt copy.txt
	start_server -f copy.txt resume
	client -m site7.test
	wait_server 0
	grep -q 'URLs the run already has are skipped' server.err || fail "no skip"
	exactly_once
	;;
resume-output)
	# a verdict's log line and JSON report are journaled with it: reports
	# that could not be written (a full disk here) and a log line a kill
	# interrupted are written by resume, and nothing twice
	config seq 1
	{ urls 20; echo end; } > urls.txt
	mkdir -p out/reports
	mount -t tmpfs -o size=4k,nr_inodes=8 capture-test out/reports || fail "mount tmpfs"
	mounted=1
	dd if=/dev/zero of=out/reports/fill bs=4k 2>/dev/null
	start_server -f urls.txt
	client -m 7.test --delay 100
	for i in $(seq 1 300); do [ "$(cat out/log/safe.log out/log/malicious.log 2>/dev/null | wc -l)" -ge 10 ] && break; sleep 0.1; done
	kill -9 "$server_pid"
	wait "$server_pid" 2>/dev/null
	umount out/reports && mounted=0
	[ -z "$(ls out/reports)" ] || fail "reports written on a full disk?"
	done1=$(cat out/log/safe.log out/log/malicious.log | wc -l)
	[ "$done1" -lt 20 ] || fail "run too fast to interrupt"
	sed -i '$d' out/log/safe.log # as if killed between the commit and the line
	start_server resume
	client -m 7.test
	wait_server 0
	exactly_once
	grep -q "resume: wrote 1 log lines and $done1 reports" server.err ||
		fail "resume did not write the journaled output ($done1 verdicts)"
	[ "$(ls out/reports | wc -l)" = 20 ] || fail "$(ls out/reports | wc -l) reports for 20 URLs"
	python3 - out/reports/*.json <<'PY' || fail "reports"
import collections, json, sys
urls = collections.Counter(json.load(open(f))["url"] for f in sys.argv[1:])
want = {f"http://site{i}.test/p?q={i}#frag" for i in range(1, 21)}
bad = {u: n for u, n in urls.items() if n != 1 or u not in want} or want - set(urls)
if bad:
    sys.exit(f"not one report per URL: {bad}")
PY
	;;
local)
	config dac 5 "" "<local-sandbox clients=\"2\" client-path=\"$fake\" client-args=\"-m site4.test\"/>"
	{ urls 10; echo end; } > urls.txt
	start_server -f urls.txt
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log $(count malicious.log)"
	[ "$(count safe.log)" = 9 ] || fail "safe.log"
	pgrep -f "fake-client -s 127.0.0.1 -p $port" && fail "clients left running"
	exactly_once
	;;
supervise)
	# local-sandbox: a client killed mid-visit is restarted; its group is
	# retried, no URL lost or duplicated
	mkdir marks
	config seq 1 "" "<local-sandbox clients=\"2\" client-path=\"$fake\" client-args=\"--delay 700 --mark $work/marks\"/>"
	{ urls 12; echo end; } > urls.txt
	start_server -f urls.txt
	kill_marked_client
	wait_server 0
	grep -q "(pid $victim) exited with status 137" server.err || fail "death not logged"
	grep -q 'restarting it in' server.err || fail "restart not logged"
	killed=$(grep 'error:CONNECTION_RESET' out/log/progress.log | cut -d, -f4)
	[ "$(echo "$killed" | grep -c .)" = 1 ] || fail "the killed visit left no error: $killed"
	# the group was visited again (by either client) and ended benign
	[ "$(grep -c "\"visiting\",\"[0-9]*\",$killed" out/log/progress.log)" = 2 ] || fail "not retried"
	grep -q "$killed" out/log/safe.log || fail "retried URL not in safe.log"
	[ "$(count error.log)" = 0 ] || fail "the retry failed: $(cat out/log/error.log)"
	[ "$(count safe.log)" = 12 ] || fail "safe.log $(count safe.log)"
	exactly_once
	;;
killed-after-events)
	# a client killed after it reported events of a one-URL group and
	# before its finish: the URL ends malicious (as the original since 2.1)
	# and keeps its event log
	mkdir marks
	config seq 1 "" "<local-sandbox clients=\"1\" client-path=\"$fake\" client-args=\"-m evil --delay 2000 --mark $work/marks\"/>"
	{ urls 1 evil; echo end; } > urls.txt
	start_server -f urls.txt
	# the mark appears after the events (1 s), the finish comes 1 s later
	kill_marked_client
	wait_server 0
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log $(count malicious.log)"
	ls out/log/ | grep -q '^http%3A%2F%2Fevil1\.test.*\.log$' ||
		fail "no event log for the URL: $(ls out/log)"
	grep -q '"process"' out/log/http%3A%2F%2Fevil1.test*.log || fail "event log without the event"
	exactly_once
	;;
backoff)
	# a client that dies at once: restarted with a growing delay, logged
	printf '#!/bin/sh\nexit 3\n' > dies.sh
	chmod +x dies.sh
	config seq 1 "" "<local-sandbox clients=\"1\" client-path=\"$work/dies.sh\"/>"
	{ urls 1; echo end; } > urls.txt
	start_server -f urls.txt
	sleep 8
	kill "$server_pid"
	wait_server 0
	n=$(grep -c 'client 1 (pid [0-9]*) exited with status 3' server.err)
	# restarts 1, 2, 4 s after consecutive quick deaths: at most 4 exits in 8 s
	[ "$n" -ge 2 ] && [ "$n" -le 4 ] || fail "$n restarts in 8 s"
	grep -q 'restarting it in 4 s' server.err || fail "no backoff"
	;;
stalled)
	# a client stuck in its revert (no reconnect after the close) is killed
	# after vm_stalled_after_revert_timeout and restarted
	config seq 1 'vm_stalled_after_revert_timeout="2" stats-interval="1"' "<local-sandbox clients=\"1\" client-path=\"$fake\" client-args=\"--hang-after-close -m site2.test\"/>"
	{ urls 4; echo end; } > urls.txt
	start_server -f urls.txt
	wait_server 0
	grep -q 'client 1 (pid [0-9]*) did not connect within 2 s after a revert (vm_stalled_after_revert_timeout); killing it' server.err ||
		fail "stall not detected"
	grep -q 'client 1 (pid [0-9]*) was killed with status 137' server.err || fail "not killed"
	[ "$(count malicious.log)" = 1 ] && [ "$(count safe.log)" = 3 ] || fail "verdicts"
	tail -1 out/log/stats.log | python3 -c 'import csv,sys; r=next(csv.reader(sys.stdin)); assert r[8]=="1", r' ||
		fail "vmStalled not counted"
	exactly_once
	;;
revert-timeout)
	# a client that never connects after its start is killed after revert_timeout
	printf '#!/bin/sh\n[ -e %s/started ] || { touch %s/started; exec sleep 600; }\nexec %s "$@"\n' \
		"$work" "$work" "$fake" > slow.sh
	chmod +x slow.sh
	config seq 1 'revert_timeout="2"' "<local-sandbox clients=\"1\" client-path=\"$work/slow.sh\"/>"
	{ urls 3; echo end; } > urls.txt
	start_server -f urls.txt
	wait_server 0
	grep -q 'client 1 (pid [0-9]*) did not connect within 2 s after its start (revert_timeout); killing it' server.err ||
		fail "start timeout not detected"
	[ "$(count safe.log)" = 3 ] || fail "safe.log $(count safe.log)"
	exactly_once
	;;
exclusions)
	# send-exclusion-lists: the lists' rules follow the options; bad lines and
	# Windows-only rules are reported with file:line and not sent
	T=$(printf '\t')
	cat > file.exl <<-XEOF
	# Linux rules
	+${T}Read${T}.*${T}.*
	+${T}Write${T}/usr/bin/firefox-esr${T}/root/\.mozilla/.*
	-${T}Write${T}.*${T}.+\.so
	not a rule
	+${T}Write${T}C:\\\\Program Files\\\\.*${T}.*
	XEOF
	cat > process.exl <<-XEOF
	+${T}sh${T}/usr/bin/firefox-esr${T}/bin/sh
	+${T}svchost.exe${T}.*${T}.*
	XEOF
	cat > registry.exl <<-XEOF
	+${T}SetValueKey${T}.*${T}HKLM\\\\Software\\\\.*
	+${T}SetValueKey${T}.*${T}cron:/root
	XEOF
	printf '+\ttcp-connection\t.*\t.*:53\n' > connection.exl
	cat > config.xml <<-XEOF
	<config><global algorithm="seq" send-exclusion-lists="true"/>
	<exclusion-list monitor="file" file="file.exl"/>
	<exclusion-list monitor="process" file="process.exl"/>
	<exclusion-list monitor="registry" file="registry.exl"/>
	<exclusion-list monitor="connection" file="connection.exl"/>
	<no-vm-server/></config>
	XEOF
	{ urls 2; echo end; } > urls.txt
	start_server -f urls.txt
	client -b 7
	wait_server 0
	grep 'fake-client 7:' client.err | sed 's/^fake-client 7: //' > got.txt
	cat > want.txt <<-'XEOF'
	file-exclusion +|Read|.*|.*
	file-exclusion +|Write|/usr/bin/firefox-esr|/root/\.mozilla/.*
	file-exclusion -|Write|.*|.+\.so
	process-exclusion +|sh|/usr/bin/firefox-esr|/bin/sh
	registry-exclusion +|SetValueKey|.*|cron:/root
	XEOF
	diff want.txt got.txt || fail "rules sent differ"
	grep -q 'file.exl:5: exclusion rule skipped: expected 4 TAB' server.err || fail "bad line not reported"
	grep -q 'file.exl:6: exclusion rule skipped: Windows-only (Windows drive path)' server.err || fail "drive path"
	grep -q 'process.exl:2: exclusion rule skipped: Windows-only (Windows image name' server.err || fail "image"
	grep -q 'registry.exl:1: exclusion rule skipped: Windows-only (Windows registry key)' server.err || fail "hive"
	grep -q 'connection.exl: connection exclusion list checked but not sent' server.err || fail "connection"
	[ "$(grep -c 'exclusion rule skipped' server.err)" = 4 ] || fail "each line reported once"
	exactly_once
	# a missing list is an error when the lists are sent
	rm process.exl
	"$server" -n -c config.xml 2> n.err && fail "-n accepted a missing list"
	grep -q 'process.exl' n.err || fail "missing list not named"
	;;
terminate)
	# terminate with a list that has no "end" line: after terminate-grace the
	# run ends once nothing was queued or running at two checks in a row
	config seq 2 'terminate-grace="2"'
	urls 6 > urls.txt
	start_server -f urls.txt
	client -b 1
	wait_server 0
	grep -q 'terminate: no "end" line' server.err || fail "not the grace rule"
	exactly_once
	;;
stats)
	# stats.log: the original header and columns, with the three averages
	config seq 1 'stats-interval="1"'
	{ urls 8; echo end; } > urls.txt
	start_server -f urls.txt
	client -b 1 -m site3.test --delay 300 --revert-ms 200
	wait_server 0
	head -1 out/log/stats.log | grep -qx '"time","visiting","visited","safe","malicious","urlError","vmRevert","clientInactivity","vmStalled","avgRevertTime","avgVisitingTime","avgFirstStateChangeTime","visitedUrlsPerDay"' ||
		fail "header: $(head -1 out/log/stats.log)"
	[ "$(grep -c '^"time"' out/log/stats.log)" = 1 ] || fail "header repeated"
	[ "$(wc -l < out/log/stats.log)" -ge 3 ] || fail "no periodic rows"
	last=$(tail -1 out/log/stats.log)
	echo "$last" | python3 -c '
import csv, sys
r = next(csv.reader(sys.stdin))
assert len(r) == 13, r
visited, safe, mal, err, rev = (int(x) for x in (r[2], r[3], r[4], r[5], r[6]))
assert (visited, safe, mal, err) == (8, 7, 1, 0), r
assert rev >= 1, r
avg_rev, avg_visit, avg_first = float(r[9]), float(r[10]), float(r[11])
# the fake client reconnects 0.2 s after a revert, sends events 0.15 s
# into a visit and finishes it 0.3 s after the start
assert 0.2 <= avg_rev < 60 and 0.3 <= avg_visit < 60 and 0.15 <= avg_first < 60, r
' || fail "last row: $last"
	exactly_once
	;;
status)
	# capture-server status: the running server's figures per host of clients
	config seq 1
	{ urls 40; echo end; } > urls.txt
	start_server -f urls.txt
	client -a a -n 3 -m site3.test --delay 200
	for i in $(seq 1 50); do
		"$server" -o out status > status.txt 2>status.err &&
			grep -q '^127.0.0.1 *3 ' status.txt && break
		sleep 0.2
	done
	grep -q '^127.0.0.1 *3 ' status.txt || fail "status: $(cat status.txt status.err)"
	grep -q '^HOST *CLIENTS *VISITS *URLS *MALICIOUS *ERRORS *LAST SEEN$' status.txt || fail "status: $(cat status.txt)"
	head -1 status.txt | grep -q 'run 1 (seq)' || fail "status header: $(cat status.txt)"
	wait_server 0
	grep -q 'hosts: 127.0.0.1 3 clients, 40 visits, 40 URLs (1 malicious, 0 errors)' server.err ||
		fail "no hosts line: $(grep hosts: server.err)"
	"$server" -o out status > status.txt || fail "final status"
	grep -q '^done 40 (benign 39, malicious 1, errors 0)' status.txt || fail "final status: $(cat status.txt)"
	grep -q '^127.0.0.1 *[0-9]* *40 *40 *1 *0 ' status.txt || fail "final status: $(cat status.txt)"
	"$server" -o nowhere status 2>/dev/null && fail "status without a server"
	exactly_once
	;;
compat)
	# a Capture-HPC config, URL list and .exl files in the original style,
	# unchanged: VMware/Windows entries reported (file:line) and ignored;
	# its PostgreSQL database is taken (docs/config.md)
	cp "$top"/tests/server/compat/* .
	"$server" -n -c config.xml 2> n.err || { cat n.err; fail "-n rejected the original config"; }
	for l in 27 31 32 33; do
		grep -q "^capture-server: config.xml:$l: .*ignored" n.err || fail "config.xml:$l not reported"
	done
	grep -q "config.xml:29: .*ignored" n.err && fail "the PostgreSQL database was ignored"
	# the run: there is no PostgreSQL at 127.0.0.1 here, so the results go
	# to SQLite (the only line changed)
	sed -i 's|<database database-type="PostgreSQL"[^>]*/>|<database/>|' config.xml
	grep -q 'PostgreSQL"' config.xml && fail "database line not replaced"
	for l in FileMonitor.exl:7 FileMonitor.exl:8 FileMonitor.exl:9 FileMonitor.exl:10 \
	         ProcessMonitor.exl:3 ProcessMonitor.exl:4 ProcessMonitor.exl:5 \
	         RegistryMonitor.exl:6 RegistryMonitor.exl:7 RegistryMonitor.exl:8; do
		grep -q "^capture-server: $l: exclusion rule skipped: Windows-only" n.err || fail "$l not reported"
	done
	[ "$(grep -c 'ignored\|skipped' n.err)" = 15 ] || { cat n.err; fail "unexpected reports"; }
	grep -q '4 entries ignored; exclusion lists: 10 rules to send, 10 lines skipped' n.err || fail "summary"
	# a short run: the default backend starts "capture-client" from PATH
	# (here the fake client), one per online CPU
	mkdir bin
	printf '#!/bin/sh\nexec %s "$@" -m evil.example.com\n' "$fake" > bin/capture-client
	chmod +x bin/capture-client
	PATH="$work/bin:$PATH" start_server -f urls.txt
	wait_server 0
	grep -q "local-sandbox: starting $(nproc) client" server.err || fail "default clients"
	grep -q 'urls.txt:10: invalid URL line' server.err || fail "invalid line"
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log $(count malicious.log)"
	grep -q '"http://evil.example.com/exploit.html","iexplore","30"' out/log/malicious.log || fail "malicious entry"
	grep -q '"http://WWW.Example.NET:8080/Path?Q=1#Frag","firefox","10"' out/log/safe.log || fail "case/port/fragment"
	[ "$(count safe.log)" = 6 ] || fail "safe.log $(count safe.log)"
	grep -q after.end out/log/*.log && fail "read past end"
	# the clients got the rules, none of the Windows ones
	grep -q '^fake-client [0-9]*: file-exclusion +|Read|' server.err || fail "rules not sent"
	grep -h '^fake-client .*exclusion' server.err | grep -q 'C:' && fail "a Windows rule was sent"
	cat out/log/safe.log out/log/malicious.log | cut -d, -f4 | tr -d '"' | sort > seen.txt
	printf '%s\n' http://www.example.com/ http://www.example.org/index.html \
		'http://WWW.Example.NET:8080/Path?Q=1#Frag' http://evil.example.com/exploit.html \
		http://www.example.com/a http://www.example.com/b ftp://ftp.example.com/pub/ | sort > want.txt
	diff want.txt seen.txt || fail "URLs not exactly once"
	;;
delays)
	# different_vm_revert_delay spaces the starts of different clients;
	# same_vm_revert_delay is the pause before a client is restarted
	printf '#!/bin/sh\necho "$(date +%%s.%%N) $*" >> %s/starts\nexec %s "$@"\n' "$work" "$fake" > wrap.sh
	chmod +x wrap.sh
	config seq 1 'same_vm_revert_delay="3" different_vm_revert_delay="2"' "<local-sandbox clients=\"2\" client-path=\"$work/wrap.sh\" client-args=\"--crash-after 2\"/>"
	{ urls 6; echo end; } > urls.txt
	start_server -f urls.txt
	wait_server 0
	grep -q 'restarting it in [0-9]* s' server.err || fail "no restart"
	python3 - "$work/starts" <<'XEOF' || fail "delays not respected: $(cat starts)"
import sys
rows = [l.split() for l in open(sys.argv[1])]
t = [(float(r[0]), r[r.index('-b') + 1]) for r in rows]
assert len(t) >= 3, t
# the times are taken by the wrapper, after fork and a shell start (jitter):
# any two consecutive starts of different clients are ~2 s apart (0 without
# the delay)
for (a, x), (b, y) in zip(t, t[1:]):
    assert x == y or b - a >= 1.5, (a, x, b, y)
# a client's restart comes ~3 s after its death, its death after its start
# (~1 s without the delay)
for c in set(x for _, x in t):
    ts = [a for a, x in t if x == c]
    for a, b in zip(ts, ts[1:]):
        assert b - a >= 2.5, (c, ts)
XEOF
	exactly_once
	;;
config)
	printf '<config>\n<global group_size="x"/>\n</config>\n' > bad.xml
	"$server" -n -c bad.xml 2> err.txt && fail "-n accepted a bad config"
	grep -q 'bad.xml:2:' err.txt || fail "error does not name the line: $(cat err.txt)"
	"$server" -n -c "$top/etc/config.xml" 2>/dev/null || fail "shipped config rejected"
	"$server" --help | grep -q resume || fail "--help"
	;;
tls)
	# mutual TLS: a farm CA from capture-server ca, hosts with string ids
	"$server" ca init ca 2>>server.err || fail "ca init"
	for h in host-a host-b host-c; do "$server" ca issue ca $h 2>>server.err || fail "ca issue $h"; done
	[ "$(stat -c %a ca)" = 700 ] && [ "$(stat -c %a ca/hosts/host-a.key)" = 600 ] || fail "modes"
	"$server" ca init ca 2>/dev/null && fail "ca init overwrote"
	config dac 5 'tls-dir="ca"'
	{ urls 60; echo end; } > urls.txt
	start_server -f urls.txt
	client --tls-dir ca -a host-a -b vm-1 -m site13.test
	client --tls-dir ca -a host-b -b vm-2 -m site13.test
	client --tls-dir ca -a host-c -b vm-3 -m site13.test
	wait_server 0
	grep -q 'mutual TLS with every client' server.err || fail "TLS not announced"
	[ "$(count malicious.log)" = 1 ] || fail "malicious.log: $(count malicious.log) lines"
	[ "$(count error.log)" = 0 ] || fail "error.log: $(count error.log) lines"
	grep -Eq 'refused|TLS error|TLS handshake failed' server.err && fail "a TLS client was refused"
	exactly_once
	;;
tls-refused)
	"$server" ca init ca 2>>server.err && "$server" ca init other 2>>server.err || fail "ca init"
	"$server" ca issue ca good 2>>server.err && "$server" ca issue other stranger 2>>server.err &&
		"$server" ca issue ca liar 2>>server.err && "$server" ca issue ca noise 2>>server.err &&
		"$server" ca issue ca old --not-after 20200101000000Z 2>>server.err || fail "ca issue"
	config seq 2 'tls-dir="ca"'
	urls 10 > urls.txt # no end line yet: the run lasts until the refusals are seen
	start_server -f urls.txt
	client --tls-ca ca/ca.pem --tls-cert other/hosts/stranger.pem --tls-key other/hosts/stranger.key -a stranger -b 9 --once
	client --tls-dir ca -a old -b 9 --once
	client --tls-ca ca/ca.pem --tls-cert ca/hosts/liar.pem --tls-key ca/hosts/liar.key -a good -b 9 --once
	client --tls-dir ca -a noise --tls-garbage -b 9 --once
	client -a plain -b 9 --once # plain text: never starts a handshake
	python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); s.sendall(b"<connect vm-server-id=\"x\"/>\r\n"); s.recv(100)' "$port" 2>/dev/null &
	pids+=($!)
	for i in $(seq 1 100); do # the refusals above first, then the flood
		[ "$(grep -c 'TLS handshake failed' server.err)" -ge 3 ] && break
		sleep 0.1
	done
	# a flood of failed handshakes: a few are logged one by one, the rest
	# counted into one line
	python3 -c '
import socket, sys
for i in range(40):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()' "$port" 2>/dev/null
	for i in $(seq 1 150); do
		grep -q 'no TLS handshake within' server.err && grep -q 'more connections refused' server.err && break
		sleep 0.1
	done
	[ "$(grep -c 'TLS handshake failed' server.err)" -le 5 ] ||
		fail "flood: $(grep -c 'TLS handshake failed' server.err) refusals logged one by one"
	grep -Eq 'TLS: [0-9]+ more connections refused in the last' server.err || fail "flood: no summary line"
	client --tls-dir ca -a good -b 1
	echo end >> urls.txt
	wait_server 0
	grep -q 'TLS handshake failed (certificate refused: unable to get local issuer' server.err || fail "other CA not refused"
	grep -q 'TLS handshake failed (certificate refused: certificate has expired' server.err || fail "expired not refused"
	grep -q 'vm-server-id "good" is not its certificate.s name "liar"; refused' server.err || fail "name mismatch not refused"
	grep -q 'TLS error (not a TLS record' server.err || fail "garbage after the handshake not refused"
	grep -q 'no TLS handshake within 10 s (a plain-text client?); refused' server.err || fail "silent plain client not refused"
	grep -q 'TLS handshake failed (not TLS: a plain-text client?)' server.err || fail "plain-text connect not refused"
	# no URL went to a refused client (all of them are vm-id 9): none connected
	grep -Eq 'client (stranger|old|noise|plain|good):9' server.err && fail "a refused client connected"
	[ "$(count safe.log)" = 10 ] || fail "safe.log: $(count safe.log)"
	exactly_once
	;;
tls-listen)
	# plain text off loopback: refused unless plaintext-clients="allow"; a
	# loose server key is refused.  A veth pair in a network namespace
	# of this test's own (gone with its process); nothing leaves it.
	unshare -n true 2>/dev/null || { echo "SKIP: no network namespaces (needs root)"; exit 77; }
	in_ns() {
		unshare -n sh -c 'ip link add v0 type veth peer name v1 &&
			ip addr add 192.0.2.1/24 dev v0 && ip link set lo up && exec "$@"' sh "$@"
	}
	config seq 2
	echo end > urls.txt
	in_ns "$server" -s "192.0.2.1:$port" -c config.xml -o out -f urls.txt 2>plain.err &&
		fail "started in plain text on 192.0.2.1"
	grep -q 'refusing to listen on 192.0.2.1 in plain text' plain.err || { cat plain.err; fail "no clear refusal"; }
	config seq 2 'plaintext-clients="allow"'
	in_ns "$server" -s "192.0.2.1:$port" -c config.xml -o out2 -f urls.txt 2>allow.err ||
		{ cat allow.err; fail "plaintext-clients=allow did not start"; }
	grep -q 'listening on 192.0.2.1 in plain text: clients are not authenticated' allow.err || fail "no warning"
	"$server" ca init ca 2>>server.err || fail "ca init"
	config seq 2 'tls-dir="ca"'
	in_ns "$server" -s "192.0.2.1:$port" -c config.xml -o out3 -f urls.txt 2>tls.err ||
		{ cat tls.err; fail "TLS did not start off loopback"; }
	chmod 644 ca/server.key
	"$server" -s "127.0.0.1:$port" -c config.xml -o out4 -f urls.txt 2>key.err && fail "loose key accepted"
	grep -q 'ca/server.key: private key is accessible by group or others' key.err || { cat key.err; fail "no clear key error"; }
	;;
*)
	fail "unknown scenario"
	;;
esac
echo "ok $scenario"
