#!/bin/bash
# test-scenarios.sh SERVER FAKE_CLIENT SCENARIO - protocol scenarios: the real
# capture-server on 127.0.0.1 (a free port) driven by the scripted fake
# client.  Each scenario checks the log/ files the server writes.
set -uo pipefail
server=$(realpath "$1") fake=$(realpath "$2") scenario=$3
top=$(cd "$(dirname "$0")/../.." && pwd)

work=$(mktemp -d /tmp/server-scenario-XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
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
	visits=$(sed -n 's/.* \([0-9]*\) visits.*/\1/p' server.err)
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
	grep -q ' 1 visits' server.err || fail "bulk must visit once"
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
	grep -q 'client 1:1: inactive' server.err || fail "no inactivity"
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
	grep -q 'client 1:2: bad message' server.err || fail "garbage not detected"
	grep -q 'client 1:3: message over the size limit' server.err || fail "oversize not detected"
	grep -q 'client 1:1:' server.err && fail "the good client was disturbed"
	[ "$(count safe.log)" = 40 ] || fail "safe.log $(count safe.log)"
	exactly_once
	;;
upload)
	config seq 1
	{ urls 2; echo end; } > urls.txt
	start_server -f urls.txt
	client -m site1.test --upload
	wait_server 0
	zip=$(ls out/log/*.zip | head -1)
	[ -n "$zip" ] && [ "$(cat "$zip")" = hello ] || fail "upload not stored in log/"
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
config)
	printf '<config>\n<global group_size="x"/>\n</config>\n' > bad.xml
	"$server" -n -c bad.xml 2> err.txt && fail "-n accepted a bad config"
	grep -q 'bad.xml:2:' err.txt || fail "error does not name the line: $(cat err.txt)"
	"$server" -n -c "$top/etc/config.xml" 2>/dev/null || fail "shipped config rejected"
	"$server" --help | grep -q resume || fail "--help"
	;;
*)
	fail "unknown scenario"
	;;
esac
echo "ok $scenario"
