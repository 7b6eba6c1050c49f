#!/bin/sh
# test-capture-sandbox.sh - the capture-sandbox command line that other areas'
# scripts use (scripts/testweb): gateway up/down (idempotent, with the egress
# table) and run (exit status, user, network).  Own gateway name.
set -u
cs=${1:?usage: test-capture-sandbox.sh PATH-TO-capture-sandbox}
gw=sbt-cli-gw
fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2] got [$3]"; fail=1; fi; }
trap '"$cs" gateway down $gw >/dev/null 2>&1' EXIT

"$cs" gateway down $gw
"$cs" gateway up $gw; check "gateway up" 0 $?
"$cs" gateway up $gw; check "gateway up again" 0 $?
ip netns exec $gw nft list table inet capture_egress >/dev/null 2>&1; check "egress table" 0 $?
check "forwarding" 1 "$(ip netns exec $gw cat /proc/sys/net/ipv4/ip_forward)"
"$cs" run -- /bin/sh -c 'exit 7'; check "exit status" 7 $?
check "user" "64000" "$("$cs" run -- /usr/bin/id -u)"
check "root with -r" "0" "$("$cs" run -r -- /usr/bin/id -u)"
check "eth0 with -n" "eth0" "$("$cs" run -n -g $gw -- /bin/sh -c 'ls /sys/class/net | grep eth0')"
check "no eth0 without -n" "" "$("$cs" run -- /bin/sh -c 'ls /sys/class/net | grep eth0')"
"$cs" run -i /nonexistent -- /bin/true 2>/dev/null; check "bad image fails" 1 $?
"$cs" gateway down $gw; check "gateway down" 0 $?
[ -e /run/netns/$gw ]; check "gateway gone" 1 $?
"$cs" frobnicate 2>/dev/null; check "usage" 2 $?
exit $fail
