#!/bin/bash
# test-calibrate.sh BUILD - the calibration command as `make check` runs it
# (docs/exclusion-lists.md, "Calibration"): scripts/calibrate visits every
# page of etc/calibration.txt with every program there, twice, each visit in
# a fresh sandbox on this host, and must find no event the default profiles
# do not exclude.  Every program of the list must have been calibrated (none
# skipped as not installed: make check installs them all).  Root; takes the
# sandbox tests' lock.
set -uo pipefail
build=$(realpath "${1:?usage: test-calibrate.sh BUILD}")
top=$(cd "$(dirname "$0")/../.." && pwd)
list=$top/etc/calibration.txt
mkdir -p /run/capture
exec 9>>/run/capture/sandbox-test.lock
flock 9
out=$(mktemp /tmp/test-calibrate.XXXXXX)
trap 'rm -f "$out"' EXIT
t0=$SECONDS
"$top/scripts/calibrate" --build "$build" --rounds "${ROUNDS:-2}" >"$out" 2>"$out.err"
rc=$?
cat "$out"
echo "# exit $rc in $((SECONDS - t0)) s"
fails=0
if [ $rc != 0 ]; then
	echo "not ok - calibrate: exit $rc (1: candidates above, 2: a visit failed)"
	grep -E 'ERROR|warn|fail' "$out.err" | head -20
	fails=1
fi
for p in $(grep -vE '^\s*(#|$)' "$list" | sed 's/.*:://' | sort -u); do
	grep -q "^# program $p (profile [^)]*): [0-9]* URL(s) x [0-9]* round(s): 0 candidate(s)$" "$out" &&
		echo "ok - $p: no candidate" || { echo "not ok - $p: not calibrated or candidates"; fails=1; }
done
rm -f "$out.err"
exit $fails
