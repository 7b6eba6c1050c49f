#!/bin/bash
# test-client-standalone.sh BUILD - capture-client without a server
# (--visit): options and --help, a benign and a malicious page of the test
# application, a fork bomb stopped by the sandbox's pids limit and reported
# as a WARNING, and the CSV output escaping.  Root; the test web's netns.
set -uo pipefail
build=$(realpath "$1")
top=$(cd "$(dirname "$0")/../.." && pwd)
client="$build/src/client/capture-client"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

BUILD="$build" "$top/scripts/testweb" --no-doc start >/dev/null || { echo "testweb failed"; exit 1; }
args=(--exclusions "$top/etc/exclusion" --applications "$top/etc/applications.conf"
      --bind "$build/tests/fixtures/capture-testapp:/usr/local/bin/capture-testapp"
      --work-dir "$build/client-standalone" --program testapp)
while read -r addr name; do args+=(--host "$addr=$name"); done < <(BUILD="$build" "$top/scripts/testweb" hosts)
W=http://www.capture-test.example
E=http://evil.capture-test.example

# (not `--help | grep -q`: with pipefail, grep's early exit can SIGPIPE the
# client and fail the pipeline)
help=$("$client" --help)
grep -q -- "--visit URL" <<<"$help" || fail "--help does not list --visit"
"$client" --bogus >/dev/null 2>&1; [ $? = 2 ] || fail "a bad option must exit 2"
"$client" --visit 'not a url' 2>/dev/null; [ $? = 2 ] || fail "a bad URL must exit 2"
out=$("$client" -s 127.0.0.1 --visit "$W/" 2>&1); [ $? = 2 ] || fail "-s with --visit must exit 2"
echo "$out" | grep -q "exclude each other" || fail "no message for -s with --visit: $out"

# An application without exclusion lists is named at start, with the
# command that writes them; one with lists is not.
apps2=$(mktemp /tmp/client-standalone-apps-XXXXXX)
{ cat "$top/etc/applications.conf"; printf 'lister\t/bin/ls\n'; } > "$apps2"
err=$("$client" "${args[@]}" --applications "$apps2" --visit "$W/testapp/benign.html" 2>&1 >/dev/null)
rm -f "$apps2"
grep -q "application lister has no exclusion lists .*capture-client --calibrate --program lister" <<<"$err" ||
	fail "no warning for an application without exclusion lists: $err"
grep -q "application testapp has no exclusion lists" <<<"$err" && fail "a warning for testapp, which has lists"

out=$("$client" "${args[@]}" --visit "$W/testapp/benign.html" 2>/dev/null); rc=$?
[ $rc = 0 ] || fail "benign testapp page: exit $rc"
echo "$out" | grep -q '^"verdict","'"$W"'/testapp/benign.html","safe"' || fail "benign verdict: $out"
echo "$out" | grep -q '^"event"' && fail "benign page gave events: $(grep '^"event"' <<<"$out")"

out=$("$client" "${args[@]}" --visit "$E/testapp/drop.html" 2>/dev/null); rc=$?
[ $rc = 1 ] || fail "drop.html: exit $rc, want 1"
echo "$out" | grep -q '^"event","[^"]*","file","Create","[0-9]*","/usr/local/bin/capture-testapp","/tmp/capture-testapp-drop.sh"' ||
	fail "drop.html: no Create of the dropped file: $out"
echo "$out" | grep -q '^"event","[^"]*","file","Chmod",.*"/tmp/capture-testapp-drop.sh","+x"' ||
	fail "drop.html: no Chmod +x: $out"
dir=$(echo "$out" | sed -n 's/^evidence,//p')
[ -s "$dir/events.csv" ] || fail "no events.csv in the evidence folder '$dir'"

# --no-monitor file: the dropped file is not seen (and nothing else acts)
out=$("$client" "${args[@]}" --no-monitor file --visit "$E/testapp/drop.html" 2>/dev/null); rc=$?
[ $rc = 0 ] || fail "drop.html without the file monitor: exit $rc, want 0"
grep -q '^"stats","file"' <<<"$out" && fail "--no-monitor file: the file monitor ran"
grep -q '^"stats","process"' <<<"$out" || fail "--no-monitor file: the process monitor did not run"
"$client" --no-monitor disk --visit "$W/" >/dev/null 2>&1; [ $? = 2 ] || fail "--no-monitor disk must exit 2"
"$client" --resolver dns.example --visit "$W/" >/dev/null 2>&1; [ $? = 2 ] || fail "--resolver NAME must exit 2"

# A name with a newline and a quote: one CSV line, escaped.
script=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("write /tmp/a\"b x"))')
out=$("$client" "${args[@]}" --visit "$E/testapp/run?script=$script" 2>/dev/null)
echo "$out" | grep -q '"/tmp/a""b"' || fail "a quote in a file name is not doubled: $out"

# Fork bomb (20 double-forked sleepers) against a pids limit of 16.
bomb=$(python3 -c 'import urllib.parse; print(urllib.parse.quote("; ".join(["doublefork { sleep 3000 }"] * 20)))')
err=$("$client" "${args[@]}" --pids 16 --visit "$E/testapp/run?script=$bomb" 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] || fail "fork bomb: exit $rc, want 1 (its processes are events)"
echo "$err" | grep -q "sandbox limits reached: processes" || fail "fork bomb: limit not reported: $err"

# Bulk, 10 URLs, 2 malicious ones that double-fork: exactly those two are
# attributed (one child cgroup per URL; the grandchild stays in it).
visits=()
for i in 0 1 2 3 4 5 6 7 8 9; do
	case $i in
	3 | 7) visits+=(--visit "$E/testapp/exec.html?n=$i") ;;
	*) visits+=(--visit "$W/testapp/benign.html?n=$i") ;;
	esac
done
# visit time 1: the grandchild of exec.html sleeps 200 ms before it writes,
# and a visit whose program has ended may end at once (visit time 0)
out=$("$client" "${args[@]}" --algorithm bulk --visit-time 1 "${visits[@]}" 2>/dev/null); rc=$?
[ $rc = 1 ] || fail "bulk: exit $rc, want 1"
for i in 0 1 2 3 4 5 6 7 8 9; do
	case $i in
	3 | 7) want="$E/testapp/exec.html?n=$i\",\"malicious" ;;
	*) want="$W/testapp/benign.html?n=$i\",\"safe" ;;
	esac
	grep -qF "\"verdict\",\"$want\"" <<<"$out" || fail "bulk: URL $i: want $want"
done
grep -q '^"event","'"$E"'/testapp/exec.html?n=3","file","Create",.*"/tmp/capture-testapp-daemon"' <<<"$out" ||
	fail "bulk: the double-forked grandchild's file is not attributed to its URL"
grep '^"event"' <<<"$out" | grep -vq '^"event","'"$E"'/testapp/exec.html?n=[37]"' &&
	fail "bulk: an event attributed to another URL: $(grep '^"event"' <<<"$out" | grep -v 'exec.html')"

# Names through the test web's DNS (--resolver, no --host entries): the
# client's own download of a document (through a CNAME), Chromium inside the
# sandbox (its resolv.conf), and an unknown name.
dns=(--exclusions "$top/etc/exclusion" --applications "$top/etc/applications.conf"
     --work-dir "$build/client-standalone" --resolver 198.51.100.10)
out=$("$client" "${dns[@]}" --program pdf --visit "http://cname.capture-test.example/doc/benign.pdf" 2>&1); rc=$?
[ $rc = 0 ] || fail "pdf through DNS: exit $rc: $out"
grep -q '^"verdict","http://cname.capture-test.example/doc/benign.pdf","safe"' <<<"$out" ||
	fail "pdf through DNS: $out"
out=$("$client" "${dns[@]}" --program chromium --visit "$W/plain.html" 2>&1); rc=$?
[ $rc = 0 ] || fail "chromium through DNS: exit $rc: $out"
grep -q '^"verdict","'"$W"'/plain.html","safe"' <<<"$out" || fail "chromium through DNS: $out"
out=$("$client" "${dns[@]}" --program pdf --visit "http://nx.example.invalid/a.pdf" 2>&1)
grep -q '^"verdict","http://nx.example.invalid/a.pdf","safe","NETWORK_ERROR","2"' <<<"$out" ||
	fail "pdf of an unknown name (NETWORK_ERROR, minor ENOENT): $out"

# Chromium bulk, 8 URLs with the default sandbox limits (1 GiB fits about
# 5 instances): the client raises the limits for the group; all load.
v=()
for i in 1 2 3 4 5 6 7 8; do v+=(--visit "$W/plain.html?b=$i"); done
out=$("$client" "${dns[@]}" --program chromium --algorithm bulk "${v[@]}" 2>&1); rc=$?
[ $rc = 0 ] || fail "chromium bulk of 8: exit $rc: $(grep -v '^"excluded"' <<<"$out")"
grep -q "bulk group of 8: sandbox memory 2304 MiB, 2112 processes" <<<"$out" ||
	fail "chromium bulk of 8: limits not raised: $(grep capture-client <<<"$out")"
[ "$(grep -c '^"verdict","'"$W"'/plain.html?b=[1-8]","safe","","0"' <<<"$out")" = 8 ] ||
	fail "chromium bulk of 8: not every URL loaded: $(grep '^"verdict"' <<<"$out")"

[ $fails = 0 ] && echo ok
exit $((fails > 0))
