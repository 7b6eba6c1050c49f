#!/bin/bash
# test-units.sh BUILD SRC - the systemd units are installed by meson install
# with their paths substituted, and systemd-analyze verify (if present)
# finds nothing wrong in them but the binaries that a DESTDIR install cannot
# put at their final path.
set -euo pipefail
build=$1
tmp=$(mktemp -d /tmp/capture-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --no-rebuild --quiet >"$tmp.log" 2>&1 ||
	{ cat "$tmp.log"; rm -f "$tmp.log"; echo "FAIL: meson install"; exit 1; }
rm -f "$tmp.log"
prefix=$(meson introspect "$build" --buildoptions |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))')
client=$(find "$tmp" -name 'capture-client@.service')
server=$(find "$tmp" -name 'capture-server.service')
[ -n "$client" ] && [ -n "$server" ] || { echo "FAIL: units not installed under $tmp"; exit 1; }
case $client in */systemd/system/capture-client@.service) ;; *) echo "FAIL: $client"; exit 1 ;; esac
want="ExecStart=$prefix/bin/capture-client --config "
grep -q "^$want.*/capture/client.conf --vm-id %i\$" "$client" ||
	{ echo "FAIL: $client: no '$want... --vm-id %i'"; grep ExecStart "$client"; exit 1; }
grep -q '^Restart=always$' "$client" || { echo "FAIL: no Restart=always"; exit 1; }
grep -q "^ExecStart=$prefix/bin/capture-server " "$server" || { echo "FAIL: $server ExecStart"; exit 1; }
if grep -n '@[a-z]*@' "$client" "$server"; then echo "FAIL: unsubstituted"; exit 1; fi
for bad in PrivateNetwork ProtectSystem ProtectControlGroups RestrictNamespaces; do
	if grep -q "^$bad=" "$client"; then echo "FAIL: $bad breaks the client"; exit 1; fi
done
if command -v systemd-analyze >/dev/null; then
	# a copy named as an instance; missing executables (DESTDIR) and the
	# absence of a running systemd are not the units' fault
	cp "$client" "$tmp/capture-client@1.service"
	cp "$server" "$tmp/capture-server.service"
	out=$(cd "$tmp" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
		./capture-client@1.service ./capture-server.service 2>&1 || true)
	bad=$(printf '%s\n' "$out" | grep -v -e 'is not executable' -e 'No such file or directory' \
		-e 'System has not been booted with systemd' -e 'Failed to connect to bus' \
		-e 'Failed to prepare filename' -e 'Failed to create .*: Command .* is not' \
		-e '^$' || true)
	if [ -n "$bad" ]; then echo "FAIL: systemd-analyze verify:"; echo "$out"; exit 1; fi
	echo "systemd-analyze verify: ok${out:+ (ignored: $(printf '%s' "$out" | wc -l) lines about paths)}"
else
	echo "systemd-analyze not installed: verify skipped"
fi
echo ok
