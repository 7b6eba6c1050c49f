#!/usr/bin/python3
"""server.py - the bundled test web's HTTP server (python3 stdlib only).

Owns the answers of the test web: static pages from tests/web/site/ and a
few generated ones (redirects, slow, large, images, the ELF payload, the
testapp script page, the macro document).  scripts/testweb runs it inside
its own network namespace; it binds 0.0.0.0 on the given ports.

Every answer is bounded and deterministic (same request, same bytes), every
request is appended to a log file (tab-separated: epoch ms, client address,
Host, method, path, status, body bytes, User-Agent) so that tests can count visits.
Host names: every page is served on every name; only "/" depends on the
Host header (evil.* gets the malicious index).  docs/testweb.md lists it all.
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlsplit

SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "site")
SLOW_MAX_MS = 30000
LARGE_MAX_MB = 32
SCRIPT_MAX = 4096
TYPES = {".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8",
         ".svg": "image/svg+xml", ".js": "application/javascript",
         ".css": "text/css"}


def elf_payload():
    """A minimal x86-64 ELF executable: writes a line to stdout, exits 0."""
    msg = b"capture-testweb payload ran\n"
    code = (b"\xb8\x01\x00\x00\x00"            # mov eax, 1 (write)
            b"\xbf\x01\x00\x00\x00"            # mov edi, 1
            b"\x48\x8d\x35\x10\x00\x00\x00"    # lea rsi, [rip+16] -> msg
            + b"\xba" + struct.pack("<I", len(msg)) +  # mov edx, len
            b"\x0f\x05"                        # syscall
            b"\xb8\x3c\x00\x00\x00"            # mov eax, 60 (exit)
            b"\x31\xff"                        # xor edi, edi
            b"\x0f\x05")                       # syscall
    base, off = 0x400000, 64 + 56
    body = code + msg
    size = off + len(body)
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                       2, 0x3e, 1, base + off, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + body


def png_image(w=16, h=16):
    """A deterministic 16x16 RGB checkerboard PNG."""
    rows = b"".join(b"\x00" + b"".join(
        (b"\xcc\x22\x22" if (x // 4 + y // 4) % 2 else b"\xee\xee\xee")
        for x in range(w)) for y in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def large_page(mb):
    """Exactly mb MiB of HTML, generated in 64 KiB pieces."""
    total = mb * 1024 * 1024
    head = b"<!DOCTYPE html><html><head><title>large</title></head><body>\n"
    tail = b"</body></html>\n"
    line = b"<p>capture test web: a very large page, line of filler text.</p>\n"
    fill = total - len(head) - len(tail)
    block = line * (65536 // len(line))
    yield head
    while fill > 0:
        piece = block[:min(fill, len(block))]
        fill -= len(piece)
        yield piece
    yield tail


def load_site(root):
    """Every file under root, by URL path, read once (fixed, small)."""
    files = {}
    for d, _, names in os.walk(root):
        for n in names:
            full = os.path.join(d, n)
            rel = "/" + os.path.relpath(full, root).replace(os.sep, "/")
            with open(full, "rb") as f:
                files[rel] = f.read()
    return files


class Web:
    """Immutable content plus the request log (shared by handler threads)."""

    def __init__(self, site, log_path, doc_dir):
        self.files = load_site(site)
        self.elf = elf_payload()
        self.png = png_image()
        self.doc_dir = doc_dir
        self.log_lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1) if log_path else None

    def record(self, client, host, method, path, status, size, agent=""):
        if not self.log:
            return
        clean = lambda s: "".join(c if c.isprintable() and c != "\t" else "?" for c in s)[:512]
        with self.log_lock:
            self.log.write(f"{int(time.time() * 1000)}\t{client}\t{clean(host)}\t"
                           f"{clean(method)}\t{clean(path)}\t{status}\t{size}\t"
                           f"{clean(agent)}\n")


class Handler(BaseHTTPRequestHandler):
    server_version = "capture-testweb/1"
    sys_version = ""
    timeout = 15  # a stalled client cannot hold a thread for long

    def log_message(self, fmt, *args):  # our own log instead of stderr
        pass

    def send(self, status, body, ctype="text/html; charset=utf-8", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.done(status, len(body))

    def done(self, status, size):
        host = self.headers.get("Host", "") if self.headers else ""
        agent = self.headers.get("User-Agent", "") if self.headers else ""
        self.server.web.record(self.client_address[0], host, self.command,
                               self.path, status, size, agent)

    def redirect(self, status, where):
        self.send(status, f'<a href="{where}">moved</a>\n', headers=(("Location", where),))

    def not_found(self):
        self.send(404, "<!DOCTYPE html><title>404</title><h1>not found</h1>\n")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        web = self.server.web
        url = urlsplit(self.path)
        path, query = unquote_plus(url.path), parse_qs(url.query)
        host = self.headers.get("Host", "").split(":")[0].lower()
        if ".." in path or "\0" in path:
            return self.send(400, "bad path\n", "text/plain")
        if path == "/":
            page = "/evil/index.html" if host.startswith("evil.") else "/index.html"
            return self.send(200, web.files[page])
        route = ROUTES.get(path)
        if route:
            return route(self, query)
        if path in web.files:
            ext = os.path.splitext(path)[1]
            return self.send(200, web.files[path], TYPES.get(ext, "application/octet-stream"))
        return self.not_found()

    def int_arg(self, query, name, default, lo, hi):
        try:
            v = int(query.get(name, [str(default)])[0])
        except ValueError:
            return default
        return max(lo, min(hi, v))

    def r_slow(self, query):
        ms = self.int_arg(query, "ms", 3000, 0, SLOW_MAX_MS)
        time.sleep(ms / 1000)
        self.send(200, f"<!DOCTYPE html><title>slow</title><p>slow page, {ms} ms</p>\n")

    def r_large(self, query):
        mb = self.int_arg(query, "mb", 4, 1, LARGE_MAX_MB)
        size = mb * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        if self.command != "HEAD":
            for piece in large_page(mb):
                self.wfile.write(piece)
        self.done(200, size)

    def r_payload(self, query):
        ms = self.int_arg(query, "ms", 0, 0, SLOW_MAX_MS)
        if not ms:
            return self.send(200, self.server.web.elf, "application/octet-stream",
                             (("Content-Disposition", 'attachment; filename="update.bin"'),))
        # Headers first, the body after ms: a download in flight that long.
        body = self.server.web.elf
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Disposition", 'attachment; filename="update.bin"')
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.flush()
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            time.sleep(ms / 1000)
            self.wfile.write(body[half:])
        self.done(200, len(body))

    def r_readme(self, query):
        self.send(200, "A harmless text file from the capture test web.\n",
                  "text/plain; charset=utf-8",
                  (("Content-Disposition", 'attachment; filename="readme.txt"'),))

    def r_png(self, query):
        self.send(200, self.server.web.png, "image/png")

    def r_doc(self, query):
        d = self.server.web.doc_dir
        p = os.path.join(d, "invoice.odt") if d else ""
        if not p or not os.path.isfile(p):
            return self.not_found()
        with open(p, "rb") as f:
            body = f.read(16 * 1024 * 1024)
        self.send(200, body, "application/vnd.oasis.opendocument.text",
                  (("Content-Disposition", 'inline; filename="invoice.odt"'),))

    def r_testapp_run(self, query):
        """A page whose instructions are the `script` query parameter."""
        script = query.get("script", [""])[0]
        if len(script) > SCRIPT_MAX or "-->" in script or "\0" in script:
            return self.send(400, "bad script\n", "text/plain")
        self.send(200, "<!DOCTYPE html><title>testapp run</title>\n"
                  f"<!--capture-testapp {script} -->\n<p>instructions inside</p>\n")


DNS_ZONE = "capture-test.example"


def dns_answer(query, addr):
    """The answer to one DNS query (bytes) or None for a message to drop.
    Names in DNS_ZONE: A = addr (cname.DNS_ZONE is a CNAME to www.DNS_ZONE
    first), other types no data; every other name NXDOMAIN."""
    if len(query) < 17 or len(query) > 512:
        return None
    qid, flags, qd = struct.unpack(">HHH", query[:6])
    if flags & 0x8000 or (flags >> 11) & 0xf or qd != 1:
        return None
    labels, pos = [], 12
    while True:
        if pos >= len(query):
            return None
        n = query[pos]
        if n == 0:
            pos += 1
            break
        if n > 63 or pos + 1 + n > len(query):
            return None  # no compression in a question
        labels.append(query[pos + 1:pos + 1 + n])
        pos += 1 + n
    if pos + 4 > len(query):
        return None
    qtype, qclass = struct.unpack(">HH", query[pos:pos + 4])
    question = query[12:pos + 4]
    name = b".".join(labels).decode("ascii", "replace").lower()
    ours = name == DNS_ZONE or name.endswith("." + DNS_ZONE)
    rcode = 0 if ours else 3
    records = []
    if ours and qtype == 1 and qclass == 1:
        owner = b"\xc0\x0c"  # the question's name
        if name == "cname." + DNS_ZONE:
            target = b"".join(bytes([len(x)]) + x for x in
                              [b"www"] + DNS_ZONE.encode().split(b".")) + b"\0"
            records.append(owner + struct.pack(">HHIH", 5, 1, 60, len(target)) + target)
            owner = target
        records.append(owner + struct.pack(">HHIH", 1, 1, 60, 4) + bytes(map(int, addr.split("."))))
    head = struct.pack(">HHHHHH", qid, 0x8180 | (flags & 0x0100) | rcode, 1, len(records), 0, 0)
    return head + question + b"".join(records)


def dns_serve(s, addr, stop):
    while not stop.is_set():
        try:
            query, peer = s.recvfrom(2048)
        except socket.timeout:
            continue
        try:
            answer = dns_answer(query, addr)
        except (ValueError, struct.error):
            answer = None
        if answer:
            s.sendto(answer, peer)
    s.close()


ROUTES = {
    "/redirect/301": lambda h, q: h.redirect(301, "/plain.html"),
    "/redirect/302": lambda h, q: h.redirect(302, "/plain.html"),
    "/redirect/evil": lambda h, q: h.redirect(302, "http://evil.capture-test.example/drive-by.html"),
    "/slow": Handler.r_slow,
    "/large": Handler.r_large,
    "/payload/update.bin": Handler.r_payload,
    "/files/readme.txt": Handler.r_readme,
    "/img/checker.png": Handler.r_png,
    "/doc/invoice.odt": Handler.r_doc,
    "/testapp/run": Handler.r_testapp_run,
}


def main():
    # A server that outlives its starter must not keep the starter's other
    # files open: a test holding the sandbox-test lock (fd 9) that started
    # the test web left the lock held for as long as the server ran.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    ap = argparse.ArgumentParser(description="capture test web server")
    ap.add_argument("--port", type=int, action="append", default=[])
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--log", default="")
    ap.add_argument("--doc-dir", default="")
    ap.add_argument("--site", default=SITE_DIR)
    ap.add_argument("--pidfile", default="")
    ap.add_argument("--dns", default="", metavar="ADDR",
                    help="also answer DNS on ADDR:53 (UDP) for *.capture-test.example")
    a = ap.parse_args()
    web = Web(a.site, a.log, a.doc_dir)
    servers = []
    for port in a.port or [80]:
        s = ThreadingHTTPServer((a.bind, port), Handler)
        s.daemon_threads = True
        s.web = web
        servers.append(s)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    stop = threading.Event()
    if a.dns:  # bound before the pidfile says ready
        dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dns.bind((a.dns, 53))
        dns.settimeout(1.0)
        threading.Thread(target=dns_serve, args=(dns, a.dns, stop), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if a.pidfile:  # written once every port is bound: the readiness signal
        with open(a.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(a.pidfile + ".tmp", a.pidfile)
    while not stop.wait(3600):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    if a.pidfile:
        try:
            os.unlink(a.pidfile)
        except FileNotFoundError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
