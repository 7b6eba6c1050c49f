#!/bin/bash
# test-profiles.sh - the default exclusion profiles (etc/exclusion, docs/
# exclusion-lists.md "Default profiles") against real applications in real
# sandboxes visiting the bundled test web (docs/testweb.md).
#
#   test-profiles.sh lint|chromium|apps|firefox|libreoffice
#
# lint      the rule files: every line loads, no "+" rule for any process
#           (subject ".*"), no "+" Chmod or registry rule, the "-" guards.
# chromium  every benign page gives ZERO unauthorized events in seq and dac
#           (each run twice: noise is not deterministic), bulk and headful;
#           the drive-by pages still give their Downloads events.
# apps      capture-testapp (benign page: zero events; drop, exec, listen,
#           connect, persist: each flagged, in one bulk group so that every
#           URL gets its own verdict), fetch, pdf, and the applications.conf
#           entries curl and pdftotext (zero events).
# firefox   benign pages: zero events in seq, dac, headful, and with the
#           applications.conf entry firefox-plain.
# libreoffice  a benign document (twice, and once with the applications.conf
#           entry lowriter): nothing but LibreOffice's own
#           popen("paperconf") shell, see docs; the macro document: its
#           dropped script, shell and python listener are reported.
#
# Environment (set by meson): CLIENT (capture-client), TESTAPP
# (capture-testapp), SRCDIR (the source tree).  Needs root.  Uses the test
# web in netns capweb on the gateway capture-gw (what the client's sandboxes
# use): an instance already running is used as it is, otherwise one is
# started and stopped again at the end.  Serialized with the sandbox tests
# through their lock file.
set -u

PART=${1:-}
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CLIENT=${CLIENT:-}
TESTAPP=${TESTAPP:-}
EXCL=${EXCL:-$SRCDIR/etc/exclusion}
TESTWEB=$SRCDIR/scripts/testweb
STATE=/run/capture-testweb/capweb
W=http://www.capture-test.example
E=http://evil.capture-test.example
A=http://ads.capture-test.example
HOSTS=(--host 198.51.100.10=www.capture-test.example
       --host 198.51.100.10=evil.capture-test.example
       --host 198.51.100.10=ads.capture-test.example)
FAILS=0
TMP=""
STARTED_WEB=0

log() { printf '%s\n' "$*"; }
fail() {
	log "FAIL: $*"
	FAILS=$((FAILS + 1))
}
die() {
	log "ERROR: $*"
	exit 1
}

cleanup() {
	if [ "$STARTED_WEB" = 1 ]; then
		"$TESTWEB" stop >/dev/null 2>&1 || log "warning: testweb stop failed"
	fi
	[ -n "$TMP" ] && [ -z "${KEEP:-}" ] && rm -rf "$TMP"
}
trap cleanup EXIT

# ---- lint: the files themselves ----

lint() {
	local f n=0
	for f in "$EXCL"/*/*.exl; do
		n=$((n + 1))
		# Four TAB-separated columns (runs of TABs are one separator).
		awk -F'\t+' -v f="$f" '
			/^[ \t]*(#|$)/ { next }
			{ sub(/\r$/, "") }
			NF != 4 { printf "%s:%d: %d columns\n", f, NR, NF; bad = 1; next }
			$1 != "+" && $1 != "-" { printf "%s:%d: sign %s\n", f, NR, $1; bad = 1 }
			$1 == "+" && ($3 == ".*" || $3 == ".+" || $3 == "(.*)") {
				printf "%s:%d: + rule for any process\n", f, NR; bad = 1 }
			$1 == "+" && tolower($2) == "chmod" {
				printf "%s:%d: + Chmod rule\n", f, NR; bad = 1 }
			$1 == "+" && f ~ /RegistryMonitor/ {
				printf "%s:%d: + registry rule\n", f, NR; bad = 1 }
			END { exit bad }' "$f" || fail "lint: $f"
	done
	[ "$n" -ge 20 ] || fail "lint: only $n rule files under $EXCL"
	# The guards that keep malware's favourite places reported.
	local g
	for g in 'Downloads/' 'autostart|systemd|dconf' 'var/spool/cron' 'ld\\.so\\.preload'; do
		grep -qE "^-	(Create|Write)	.*$g" "$EXCL/system/FileMonitor.exl" ||
			fail "lint: no - guard for $g in system/FileMonitor.exl"
	done
	grep -qE '^-	Chmod	' "$EXCL/system/FileMonitor.exl" || fail "lint: no - Chmod guard"
}

# ---- running the client ----

# visit NAME PROGRAM ALGORITHM VISIT_TIME URL... ; sets RC, OUT (csv), ERR.
visit() {
	local name=$1 prog=$2 alg=$3 vt=$4
	shift 4
	local v=() u t0=$SECONDS
	for u in "$@"; do v+=(--visit "$u"); done
	OUT=$TMP/$name.csv
	ERR=$TMP/$name.err
	"$CLIENT" --program "$prog" --algorithm "$alg" --visit-time "$vt" "${v[@]}" "${HOSTS[@]}" \
		${HEADFUL:+--headful} \
		--exclusions "$EXCL" --applications "$TMP/applications.conf" \
		--bind "$TESTAPP:/usr/local/bin/capture-testapp" \
		--work-dir "$TMP/work-$name" --all-events -v >"$OUT" 2>"$ERR"
	RC=$?
	rm -rf "$TMP/work-$name"
	if grep -q '(line skipped)' "$ERR"; then
		fail "$name: a rule file line was skipped:"
		grep '(line skipped)' "$ERR" | head -5
	fi
	local ev ex
	ev=$(grep -c '^"event"' "$OUT")
	ex=$(grep -c '^"excluded"' "$OUT")
	log "  $name: $prog $alg exit $RC, $ev unauthorized, $ex excluded ($((SECONDS - t0)) s)"
}

show_events() {
	grep '^"event"' "$OUT" | head -${1:-20}
}

# benign NAME PROGRAM ALGORITHM URL...: exit 0, no unauthorized event, no
# URL in error.
benign() {
	visit "$@"
	if [ "$RC" != 0 ] || grep -q '^"event"' "$OUT"; then
		fail "$1: benign visit gave exit $RC"
		show_events
		grep '^"verdict"' "$OUT" | grep -v '"safe"'
		tail -3 "$ERR"
	fi
}

# expect_events NAME PATTERN...: every extended regex matches an
# unauthorized event line of the last visit.
expect_events() {
	local name=$1 p
	shift
	for p in "$@"; do
		grep '^"event"' "$OUT" | grep -qE "$p" || {
			fail "$name: no unauthorized event matching $p"
			show_events 40
		}
	done
}

# verdict URL WANT: the last visit's verdict of URL is WANT.
verdict() {
	local got
	got=$(grep -F "\"verdict\",\"$1\"," "$OUT" | head -1 | cut -d, -f3 | tr -d '"')
	[ "$got" = "$2" ] || fail "verdict of $1 is '${got}', want $2"
}

setup() {
	[ "$(id -u)" = 0 ] || die "needs root"
	[ -x "$CLIENT" ] || die "CLIENT not set or not executable"
	[ -x "$TESTAPP" ] || die "TESTAPP not set or not executable"
	TMP=$(mktemp -d /tmp/test-profiles.XXXXXX) || die "mktemp"
	# The entries of etc/applications.conf the profiles were written for.
	printf '%s\n' 'testapp	/usr/local/bin/capture-testapp	no	browse	{url}' \
		'curl	/usr/bin/curl	no	--max-time	30	--location	--max-redirs	5	--output	{home}/curl-download	{url}' \
		'pdftotext	/usr/bin/pdftotext	yes	{file}	{home}/document.txt' \
		'firefox-plain	/usr/lib/firefox-esr/firefox-esr	no	--headless	--no-remote	--screenshot	{home}/screenshot.png	{url}' \
		'lowriter	/usr/lib/libreoffice/program/soffice	yes	--headless	--norestore	--writer	{file}' \
		>"$TMP/applications.conf"
	mkdir -p /run/capture
	exec 9>/run/capture/sandbox-test.lock
	local t0=$SECONDS
	flock 9 || die "sandbox test lock"
	log "  sandbox test lock after $((SECONDS - t0)) s"
	if ! "$TESTWEB" status >/dev/null 2>&1; then
		"$TESTWEB" --no-doc start >/dev/null || die "testweb start"
		STARTED_WEB=1
	fi
}

# The macro document is generated at test time (never committed) into the
# test web's document folder, as "testweb start" without --no-doc does.
macro_doc() {
	[ -s "$STATE/docs/invoice.odt" ] && return 0
	mkdir -p "$STATE/docs"
	timeout 180 /usr/bin/python3 "$SRCDIR/tests/fixtures/make-macro-doc.py" \
		--out "$TMP/invoice.odt" >"$TMP/macro-doc.log" 2>&1 ||
		{ cat "$TMP/macro-doc.log"; die "could not generate the macro document"; }
	cp "$TMP/invoice.odt" "$STATE/docs/.invoice.odt.$$" &&
		mv -f "$STATE/docs/.invoice.odt.$$" "$STATE/docs/invoice.odt" || die "macro document"
}

BENIGN=("$W/plain.html" "$W/js.html" "$W/iframe.html" "$W/redirect/301" "$W/redirect/302"
	"$W/redirect-js.html" "$W/images.html" "$W/no-such-page.html" "$W/slow?ms=1500"
	"$W/large?mb=4" "$W/download.html" "$A/ad.html" "http://www.capture-test.example:8080/plain.html"
	"$W/")

part_chromium() {
	local i
	for i in 1 2; do
		benign chr-seq-$i chromium seq 0 "${BENIGN[@]}"
		benign chr-dac-$i chromium dac 0 "${BENIGN[@]}"
	done
	# bulk: one browser per URL, four or five at a time (the sandbox has
	# 1 GiB; the 4 MiB page is left to seq and dac: five browsers with it
	# need longer than the 30 s load timeout on two cores)
	benign chr-bulk-a chromium bulk 0 "${BENIGN[@]:0:4}"
	benign chr-bulk-b chromium bulk 0 "${BENIGN[@]:4:5}"
	benign chr-bulk-c chromium bulk 0 "${BENIGN[@]:10:4}"
	# headful: Xvfb inside the sandbox (system profile) and Mesa's cache
	HEADFUL=1 benign chr-headful chromium dac 0 "${BENIGN[@]:0:3}"
	# Drive-by downloads: the browser saves the ELF in ~/Downloads.
	local p
	for p in drive-by drive-by-blob; do
		visit chr-$p chromium dac 3 "$E/$p.html"
		[ "$RC" = 1 ] || fail "chr-$p: exit $RC, want 1 (malicious)"
		expect_events chr-$p '"file","Create",.*"/home/capture/Downloads/[^"]+"'
	done
}

part_apps() {
	benign ta-benign testapp seq 2 "$W/testapp/benign.html"
	# One bulk group: each URL has its own testapp in its own cgroup, so
	# each gets its own verdict.  (connect.html is visited alone: its
	# sockets are too short-lived to have an owner, and an event without a
	# cgroup marks every URL of the group, docs/client.md "Attribution".)
	visit ta-bulk testapp bulk 3 "$W/testapp/benign.html" "$E/testapp/drop.html" \
		"$E/testapp/exec.html" "$E/testapp/listen.html" "$E/testapp/persist.html"
	[ "$RC" = 1 ] || fail "ta-bulk: exit $RC, want 1"
	verdict "$W/testapp/benign.html" safe
	local p
	for p in drop exec listen persist; do verdict "$E/testapp/$p.html" malicious; done
	expect_events ta-bulk \
		'"Chmod",.*"/tmp/capture-testapp-drop.sh","\+x"' \
		'"process","created",.*"/usr/bin/true"' \
		'"Create",.*"/tmp/capture-testapp-daemon"' \
		'"tcp-listening",.*"0.0.0.0:4444"' \
		'"registry","CreateKey",.*"systemd:/user/capture-testapp.service"' \
		'"registry","CreateKey",.*"autostart:/user/capture-testapp.desktop"'
	visit ta-connect testapp seq 3 "$E/testapp/connect.html"
	[ "$RC" = 1 ] || fail "ta-connect: exit $RC, want 1"
	expect_events ta-connect '"tcp-connection",.*"198.51.100.10:8080"' \
		'"udp-connection",.*"198.51.100.10:53"'
	benign fetch-1 fetch seq 0 "$W/plain.html" "$W/large?mb=4"
	benign fetch-2 fetch seq 0 "$W/plain.html"
	benign pdf-1 pdf seq 0 "$W/doc/benign.pdf"
	benign pdf-2 pdf bulk 0 "$W/doc/benign.pdf" "$W/doc/benign.pdf"
	benign curl curl seq 1 "$W/plain.html" "$W/redirect/302"
	benign pdftotext pdftotext seq 1 "$W/doc/benign.pdf"
}

# LibreOffice runs popen("paperconf") at every start unless its profile has
# a locale (soffice.bin -> /bin/sh, the very event a macro's Shell() gives).
# The libreoffice plugin's guest profile sets ooSetupSystemLocale, so a
# benign document must give no event at all there ...
lo_benign() {
	local other
	other=$(grep '^"event"' "$OUT")
	if [ -n "$other" ]; then
		fail "$1: unauthorized events on a benign document:"
		printf '%s\n' "$other" | head -20
	fi
	[ "$RC" = 0 ] || fail "$1: exit $RC, want 0"
}

# ... while the generic lowriter entry (no guest profile) may give that
# pair and nothing else.
lo_only_paperconf() {
	local other
	other=$(grep '^"event"' "$OUT" |
		grep -vE '^"event","[^"]*","process","(created|terminated)","[0-9]+","/usr/lib/libreoffice/program/soffice\.bin","[0-9]+","/usr/bin/dash"(,"[^"]*")?$')
	if [ -n "$other" ]; then
		fail "$1: unauthorized events besides soffice.bin's shell:"
		printf '%s\n' "$other" | head -20
	fi
	[ "$RC" = 0 ] || [ "$RC" = 1 ] || fail "$1: exit $RC"
}

part_firefox() {
	benign ff-seq firefox seq 0 "$W/plain.html" "$W/js.html" "$W/images.html"
	benign ff-dac firefox dac 0 "$W/iframe.html" "$W/redirect/301" "$W/large?mb=4"
	benign ff-plain firefox-plain seq 2 "$W/plain.html" "$W/js.html"
	HEADFUL=1 benign ff-headful firefox seq 0 "$W/plain.html"
}

part_libreoffice() {
	local i
	for i in 1 2; do
		visit lo-benign-$i libreoffice seq 0 "$W/doc/letter.fodt"
		lo_benign lo-benign-$i
	done
	visit lowriter lowriter seq 2 "$W/doc/letter.fodt"
	lo_only_paperconf lowriter
	macro_doc
	visit lo-macro libreoffice seq 5 "$E/doc/invoice.odt"
	[ "$RC" = 1 ] || fail "lo-macro: exit $RC, want 1"
	expect_events lo-macro \
		'"file","(Create|Write)",.*"/tmp/capture-macro-dropped.sh"' \
		'"process","created",.*"/usr/lib/libreoffice/program/soffice.bin","[0-9]+","/usr/bin/dash"' \
		'"tcp-listening",.*"0.0.0.0:4445"'
}

case "$PART" in
lint) lint ;;
chromium | apps | firefox | libreoffice)
	lint
	setup
	part_"$PART"
	;;
*) die "usage: test-profiles.sh lint|chromium|apps|firefox|libreoffice" ;;
esac

if [ "$FAILS" -gt 0 ]; then
	log "$FAILS failure(s)"
	exit 1
fi
log "ok"
exit 0
