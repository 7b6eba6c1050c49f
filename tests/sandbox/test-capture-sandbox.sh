#!/bin/sh
# test-capture-sandbox.sh - the capture-sandbox command line that other areas'
# scripts use (scripts/testweb): gateway up/down (idempotent, with the egress
# table) and run (exit status, user, network).  Own gateway name.
set -u
cs=${1:?usage: test-capture-sandbox.sh PATH-TO-capture-sandbox}
gw=sbt-cli-gw
fail=0
# the lock of the C sandbox tests (sbt_lock): runs from other build dirs wait
mkdir -p /run/capture
exec 9>>/run/capture/sandbox-test.lock
flock 9
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2] got [$3]"; fail=1; fi; }
img=/run/capture/sbt-cli-image
trap '"$cs" gateway down $gw >/dev/null 2>&1; "$cs" gateway down $gw-nat >/dev/null 2>&1; ip netns del sbt-cli-up 2>/dev/null; rm -rf $img' EXIT

"$cs" gateway down $gw
"$cs" gateway up $gw; check "gateway up" 0 $?
"$cs" gateway up $gw; check "gateway up again" 0 $?
ip netns exec $gw nft list table inet capture_egress >/dev/null 2>&1; check "egress table" 0 $?
check "forwarding" 1 "$(ip netns exec $gw cat /proc/sys/net/ipv4/ip_forward)"
"$cs" run -- /bin/sh -c 'exit 7'; check "exit status" 7 $?
# a command name is looked up in the sandbox's PATH; a relative path is refused
"$cs" run -- sh -c 'exit 5'; check "command name" 5 $?
check "command name's path" "64000" "$("$cs" run -- id -u)"
"$cs" run -- ./sh -c true 2>/dev/null; check "relative path refused" 2 $?
"$cs" run -- no-such-command-here 2>/dev/null; check "unknown name" 2 $?
"$cs" 2>&1 | grep -q "or a name looked up in its PATH"; check "usage names the lookup" 0 $?
# ... in the sandbox's own root: in an image whose command is an absolute
# symlink (as Debian's alternatives are) the link is the image's, not the
# host's (this host has no /etc/alternatives/sbt-alt), and a name only the
# host has is not found
rm -rf $img && mkdir -p $img/usr/bin $img/etc/alternatives $img/usr/local/bin &&
	cp "${SBT_PROBE_STATIC:?}" $img/usr/bin/sbt-real &&
	ln -s /etc/alternatives/sbt-alt $img/usr/bin/sbt-alt &&
	ln -s /usr/bin/sbt-real $img/etc/alternatives/sbt-alt
check "name in the image, absolute symlinks" "64000" \
	"$("$cs" run -i $img -- sbt-alt id | cut -d' ' -f1)"
"$cs" run -i $img -- sh -c true 2>/dev/null; check "host's name not in the image" 2 $?
# vsock is refused by the seccomp filter (not namespaced: the host's)
check "vsock refused" "97" "$("$cs" run -- /usr/bin/python3 -c 'import socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); print(0)
except OSError as e:
    print(e.errno)')"
check "user" "64000" "$("$cs" run -- /usr/bin/id -u)"
check "root with -r" "0" "$("$cs" run -r -- /usr/bin/id -u)"
check "eth0 with -n" "eth0" "$("$cs" run -n -g $gw -- /bin/sh -c 'ls /sys/class/net | grep eth0')"
check "no eth0 without -n" "" "$("$cs" run -- /bin/sh -c 'ls /sys/class/net | grep eth0')"
"$cs" run -i /nonexistent -- /bin/true 2>/dev/null; check "bad image fails" 1 $?
# seccomp: on by default (Seccomp: 2), off with -S; user namespaces denied with -U
check "seccomp on" "2" "$("$cs" run -- /bin/sh -c 'grep ^Seccomp: /proc/self/status | cut -f2')"
check "seccomp off with -S" "0" "$("$cs" run -S -- /bin/sh -c 'grep ^Seccomp: /proc/self/status | cut -f2')"
"$cs" run -- /usr/bin/unshare -U /bin/true; check "userns allowed" 0 $?
"$cs" run -U -- /usr/bin/unshare -U /bin/true 2>/dev/null; check "userns denied with -U" 1 $?
"$cs" run -r -- /bin/mount -t tmpfs x /mnt 2>/dev/null; check "mount denied even as root" 32 $?
# NAT to a fake uplink (netns sbt-cli-up with a default route into a veth of its own)
ip netns add sbt-cli-up && ip -n sbt-cli-up link add up0 type veth peer name up1 && ip -n sbt-cli-up link set up0 up &&
	ip -n sbt-cli-up addr add 203.0.113.9/24 dev up0 && ip -n sbt-cli-up route add default via 203.0.113.1
"$cs" gateway up $gw-nat nat sbt-cli-up; check "gateway up nat" 0 $?
ip netns exec sbt-cli-up nft list table ip capture_nat_sbt_cli_gw_nat >/dev/null 2>&1; check "nat table" 0 $?
check "nat default route" "default via 10.200.255.1 dev uplink0" "$(ip -n $gw-nat -4 route show default | sed 's/ *$//')"
"$cs" gateway down $gw-nat; check "gateway down nat" 0 $?
ip netns exec sbt-cli-up nft list tables | grep -q capture_nat; check "nat table gone" 1 $?
"$cs" gateway up $gw-nat nat sbt-cli-up extra 2>/dev/null; check "usage nat" 2 $?
ip netns del sbt-cli-up
"$cs" gateway down $gw; check "gateway down" 0 $?
[ -e /run/netns/$gw ]; check "gateway gone" 1 $?
"$cs" frobnicate 2>/dev/null; check "usage" 2 $?
exit $fail
