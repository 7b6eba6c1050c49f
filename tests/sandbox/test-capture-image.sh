#!/bin/sh
# test-capture-image.sh - capture-image's argument and mirror parsing, without
# running debootstrap (too slow for CI): fake apt roots in a temp dir, the
# commands checked with --dry-run.
set -u
img=${1:?usage: test-capture-image.sh PATH-TO-capture-image}
tmp=$(mktemp -d /tmp/sandbox-capture-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # name expected actual
	if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2] got [$3]"; fail=1; fi
}

# deb822 sources with a security entry first
mkdir -p "$tmp/a/etc/apt/sources.list.d"
cat > "$tmp/a/etc/apt/sources.list.d/debian.sources" <<'X'
Types: deb
URIs: http://security.example.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm

Types: deb
URIs: http://mirror.example.org/debian
Suites: bookworm bookworm-updates
Components: main
X
printf 'VERSION_CODENAME=trixie\n' > "$tmp/a/etc/os-release"
check "deb822 mirror" "http://mirror.example.org/debian" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" mirror)"

# one-line format with options
mkdir -p "$tmp/b/etc/apt"
cat > "$tmp/b/etc/apt/sources.list" <<'X'
# comment
deb-src http://src.example.org/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] https://deb.example.net/debian/ bookworm main
X
check "one-line mirror" "https://deb.example.net/debian/" \
	"$(CAPTURE_IMAGE_APT_ROOT=$tmp/b "$img" mirror)"

# no sources at all: a clear error, non-zero
mkdir -p "$tmp/c/etc/apt"
CAPTURE_IMAGE_APT_ROOT=$tmp/c "$img" mirror >/dev/null 2>"$tmp/err"
check "no mirror fails" "1" "$?"
grep -q "no deb mirror" "$tmp/err"; check "no mirror message" 0 $?

# dry run: debootstrap minbase with the host mirror and suite, apps, the user
out=$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" build /srv/guest --apps "chromium fonts-dejavu-core" --dry-run)
check "debootstrap line" "debootstrap --variant=minbase trixie /srv/guest http://mirror.example.org/debian" \
	"$(echo "$out" | sed -n 1p)"
check "apps line" "chroot /srv/guest apt-get install -y --no-install-recommends chromium fonts-dejavu-core" \
	"$(echo "$out" | sed -n 2p)"
check "user line" "chroot /srv/guest useradd -u 64000 -g 64000 -m -d /home/capture -s /bin/sh capture" \
	"$(echo "$out" | tail -n1)"
out=$(CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" build /srv/guest --mirror file:///srv/mirror --suite bookworm --dry-run)
check "explicit mirror" "debootstrap --variant=minbase bookworm /srv/guest file:///srv/mirror" \
	"$(echo "$out" | sed -n 1p)"

# bad input is refused
for args in "build relative/dir --dry-run" "build /x --apps evil;rm --dry-run" \
	    "build /x --suite ../x --dry-run" "build /x --mirror ftp://x --dry-run" "frobnicate"; do
	CAPTURE_IMAGE_APT_ROOT=$tmp/a "$img" $args >/dev/null 2>&1
	check "refused: $args" 1 $?
done
exit $fail
