#!/bin/sh
# test-capture-image.sh - capture-image's argument and mirror parsing, without
# running debootstrap: fake apt roots in a temp dir, the commands checked with
# --dry-run.  The real build is test-capture-image-build.sh.
set -u
img=${1:?usage: test-capture-image.sh PATH-TO-capture-image}
tmp=$(mktemp -d /tmp/sandbox-capture-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2] got [$3]"; fail=1; fi
}

# deb822 sources: a third-party repository (another suite) and a security
# entry before the Debian mirror of the host's suite, a disabled stanza
mkdir -p "$tmp/a/etc/apt/sources.list.d"
cat > "$tmp/a/etc/apt/sources.list.d/a-vendor.sources" <<'X'
Types: deb
URIs: https://vendor.example.com/apt
Suites: nodistro
Components: main

Types: deb
URIs: http://disabled.example.org/debian
Suites: trixie
Enabled: no
X
cat > "$tmp/a/etc/apt/sources.list.d/debian.sources" <<'X'
Types: deb
URIs: http://security.example.org/debian-security
Suites: trixie-security
Components: main

Types: deb-src
URIs: http://src.example.org/debian
Suites: trixie

# a comment
Types: deb
URIs: http://mirror.example.org/debian
Suites: trixie trixie-updates
Components: main
X
printf 'VERSION_CODENAME=trixie\n' > "$tmp/a/etc/os-release"
check "deb822 mirror" "http://mirror.example.org/debian" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" mirror)"

# one-line format with options; a third-party line first
mkdir -p "$tmp/b/etc/apt"
cat > "$tmp/b/etc/apt/sources.list" <<'X'
# comment
deb https://vendor.example.com/apt stable main
deb-src http://src.example.org/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] https://deb.example.net/debian/ bookworm main
X
printf 'VERSION_CODENAME=bookworm\n' > "$tmp/b/etc/os-release"
check "one-line mirror" "https://deb.example.net/debian/" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/b "$img" mirror)"
# without a codename: the first deb entry
rm "$tmp/b/etc/os-release"
check "no codename: first entry" "https://vendor.example.com/apt" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/b "$img" mirror)"
CAPTURE_IMAGE_APT_ROOT=$tmp/b "$img" build /srv/guest --dry-run >/dev/null 2>"$tmp/err"
check "no codename: build needs --suite" 1 $?
grep -q "give --suite" "$tmp/err"; check "no codename message" 0 $?

# sources.list.d in apt's order (by name, .list and .sources together), and
# entries without the component main skipped: a vendor's "bookworm stable"
# (docker.list) and a contrib-only line sort first but cannot serve a base
mkdir -p "$tmp/d/etc/apt/sources.list.d"
printf 'Types: deb\nURIs: http://deb.example.org/debian\nSuites: bookworm\nComponents: main\n' \
	> "$tmp/d/etc/apt/sources.list.d/debian.sources"
echo 'deb [arch=amd64] https://download.example.com/linux/debian bookworm stable' \
	> "$tmp/d/etc/apt/sources.list.d/docker.list"
echo 'deb http://contrib.example.org/debian bookworm contrib' > "$tmp/d/etc/apt/sources.list.d/a.list"
printf 'VERSION_CODENAME=bookworm\n' > "$tmp/d/etc/os-release"
check "vendor and contrib-only entries skipped" "http://deb.example.org/debian" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/d "$img" mirror)"
echo 'deb http://first.example.org/debian bookworm contrib main' > "$tmp/d/etc/apt/sources.list.d/a.list"
check "a .list before a .sources by name" "http://first.example.org/debian" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/d "$img" mirror)"

# no sources at all: a clear error, non-zero
mkdir -p "$tmp/c/etc/apt"
CAPTURE_IMAGE_APT_ROOT=$tmp/c "$img" mirror >/dev/null 2>"$tmp/err"
check "no mirror fails" "1" "$?"
grep -q "no deb mirror" "$tmp/err"; check "no mirror message" 0 $?

# dry run: debootstrap minbase into DIR.tmp with the host mirror and suite,
# the apps (commas or spaces) in a clean environment, the user, the rename
out=$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" build /srv/guest --apps "chromium,fonts-dejavu-core" --dry-run)
in="env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot /srv/guest.tmp"
check "dry run" "debootstrap --force-check-gpg --variant=minbase trixie /srv/guest.tmp http://mirror.example.org/debian
mount -t proc -o nosuid,nodev,noexec proc /srv/guest.tmp/proc
$in apt-get -q update
$in apt-get install -q -y --no-install-recommends chromium fonts-dejavu-core
$in apt-get clean
umount /srv/guest.tmp/proc
$in groupadd -K GID_MAX=65533 -g 64000 capture
$in useradd -K UID_MAX=65533 -u 64000 -g 64000 -c Capture sandbox user -m -d /home/capture -s /bin/sh capture
chmod 0750 /srv/guest.tmp/home/capture
mv -T /srv/guest.tmp /srv/guest" "$out"
out=$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" build /srv/guest --dry-run | grep 'apt-get install')
check "default apps" "$in apt-get install -q -y --no-install-recommends chromium fonts-liberation" "$out"
out=$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" build /srv/guest --mirror file:///srv/mirror --suite bookworm --apps "" --dry-run)
check "explicit mirror, no apps" "debootstrap --force-check-gpg --variant=minbase bookworm /srv/guest.tmp file:///srv/mirror" \
	"$(echo "$out" | sed -n 1p)"
check "no apps: no apt" "" "$(echo "$out" | grep apt-get)"

# bad input is refused
for args in "build relative/dir --dry-run" "build /x --apps evil;rm --dry-run" \
	    "build /x --apps -oAPT::x --dry-run" "build /x --suite ../x --dry-run" \
	    "build /x --mirror ftp://x --dry-run" "build /x --mirror http://u:p@x/debian --dry-run" \
	    "build /x --mirror file:///srv/m --dry-run" "build /a/../b --dry-run" "build /x/ --dry-run" \
	    "build /a\$b --dry-run" "build / --dry-run" "mirror extra" "frobnicate"; do
	CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" $args >/dev/null 2>&1
	check "refused: $args" 1 $?
done
exit $fail
