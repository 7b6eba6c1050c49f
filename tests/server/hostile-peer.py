#!/usr/bin/env python3
"""hostile-peer.py MODE PORT [ARGS] - peers for capture-server's scenario tests
(tests/server/test-scenarios.sh): hostile ones (issue 15) and a replay of the
original Capture-HPC client's message formats.  Talks only to 127.0.0.1.

  attrs PORT            one message with 90,000 attributes after connect
  flood PORT N HOLD     N connections at once, held HOLD seconds
  slow PORT N SIZE T    N connections, each SIZE bytes of an unfinished
                        message, then one byte per second each for T seconds
  bulk PORT             a client of a bulk group: 4,096 events (a long
                        process chain) and a finish whose items carry
                        processId; items 0 and 7 are in the event's tree
  original PORT         the original C++ client's formats (string ids,
                        unescaped Windows paths, 8 KiB parts, NETWORK_ERROR
                        with an HRESULT minor code, EXCEPTION, reconnect)

Prints what happened, one line per fact, for the scenario to check.
"""
import base64
import re
import socket
import sys
import time
import urllib.parse
import xml.sax.saxutils as su

HOST = "127.0.0.1"


def connect(port):
    s = socket.create_connection((HOST, port), timeout=30)
    return s


class Peer:
    """One connection: server messages end with NUL, ours with CRLF."""

    def __init__(self, port, sock=None):
        self.s = sock or connect(port)
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def recv(self, timeout=30):
        """The next server message, or None when the connection closed."""
        self.s.settimeout(timeout)
        while b"\0" not in self.buf:
            try:
                d = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                return None
            if not d:
                return None
            self.buf += d
        m, self.buf = self.buf.split(b"\0", 1)
        return m.decode().strip()

    def expect(self, name, timeout=30):
        """Skips pings (answering them) and options until <name ...>."""
        while True:
            m = self.recv(timeout)
            if m is None:
                return None
            if m.startswith("<ping"):
                self.send("<pong/>")
                continue
            if m.startswith("<" + name):
                return m

    def closed(self, timeout=30):
        """True once the server closed the connection (answers pings)."""
        while True:
            m = self.recv(timeout)
            if m is None:
                return True
            if m.startswith("<ping"):
                self.send("<pong/>")


def attr(msg, name):
    m = re.search(r'\b' + re.escape(name) + r'="([^"]*)"', msg)
    return m.group(1) if m else None


def items(msg):
    return re.findall(r"<item ([^>]*)/>", msg)


def now():
    t = time.localtime()
    return f"{t.tm_mday}/{t.tm_mon}/{t.tm_year} {t.tm_hour}:{t.tm_min}:{t.tm_sec}.5"


def mode_attrs(port):
    p = Peer(port)
    p.expect("connect")
    p.send('<connect vm-server-id="9" vm-id="9"/>')
    body = " ".join(f'a{i}=""' for i in range(90000))
    t0 = time.time()
    p.send(f"<pong {body}/>")
    print("closed" if p.closed(60) else "open", f"after {time.time() - t0:.1f} s")


def mode_flood(port, n, hold):
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(connect(port))
        except OSError:
            refused += 1
    time.sleep(hold)
    greeted = 0
    for s in socks:
        s.settimeout(0.2)
        try:
            greeted += s.recv(100).startswith(b"<connect")
        except OSError:
            pass
        s.close()
    print(f"opened {len(socks)} greeted {greeted} refused {refused}")


def mode_slow(port, n, size, seconds):
    socks = []
    for i in range(n):
        s = connect(port)  # no connect message: a peer that never takes a group
        s.sendall(b'<pong a="' + b"x" * size)
        socks.append(s)
        time.sleep(0.05)
    closed = {}
    t0 = time.time()
    while time.time() - t0 < seconds and len(closed) < n:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                s.sendall(b"x")
                s.setblocking(False)
                try:
                    d = s.recv(65536)
                    while d:
                        d = s.recv(65536)
                    closed[i] = time.time() - t0
                except BlockingIOError:
                    pass
                finally:
                    s.setblocking(True)
            except OSError:
                closed[i] = time.time() - t0
        time.sleep(1)
    for i in range(n):
        print(f"conn {i} " + (f"closed {closed[i]:.0f}" if i in closed else "open"))


def mode_bulk(port):
    p = Peer(port)
    p.expect("connect")
    p.send('<connect vm-server-id="1" vm-id="1"/>')
    g = p.expect("visit-event")
    ident = attr(g, "identifier")
    its = items(g)
    p.send(f'<visit-event identifier="{ident}" time="{now()}" type="start" malicious="0"/>')
    ev = 0

    def created(parent, child):
        nonlocal ev
        ev += 1
        p.send(f'<system-event time="{now()}" type="process" processId="{parent}" '
               f'process="/usr/bin/x" action="created" object1="{child}" object2="/tmp/y"/>')

    created(100, 60000)   # item 0's process started something
    created(107, 60007)   # item 7's too
    pid = 70000          # and a chain no item owns: the cost of the old walk
    while ev < 4096:
        created(pid, pid + 1)
        pid += 1
    out = []
    for i, it in enumerate(its):
        url = attr(it, "url")
        iid = attr(it, "id")
        out.append(f'<item id="{iid}" url="{url}" processId="{100 + i}" '
                   f'major-error-code="0" minor-error-code="0"/>')
    t0 = time.time()
    p.send(f'<visit-event identifier="{ident}" time="{now()}" type="finish" malicious="1">'
           + "".join(out) + "</visit-event>")
    print(f"items {len(its)} events {ev}")
    print("closed" if p.closed(600) else "open", f"after {time.time() - t0:.1f} s")


def visit_event(ident, typ, mal, its, code=None, minor=0):
    """As the original client wrote it (Element::toString, no escaping)."""
    e = f' error-code="{code}"' if code is not None else ""
    body = "".join(
        f'<item url="{attr(it, "url")}" processId="0" program="iexplore" '
        f'major-error-code="{code or 0}" minor-error-code="{minor}" time="{now()}" '
        f'visited="1"/>' for it in its)
    return (f'<visit-event identifier="{ident}" program="iexplore" time="{now()}" '
            f'algorithm="seq" type="{typ}" malicious="{mal}"{e}>{body}</visit-event>')


def mode_original(port):
    """Visits until the server has nothing more: see the module doc."""
    ids = '<connect vm-server-id="10.1.1.2" vm-id="winxp-sp2-1"/>'
    p = Peer(port)
    if not p.expect("connect"):
        return
    p.send(ids)
    while True:
        g = p.expect("visit-event", timeout=60)
        if g is None:
            # a revert: the original client is started again in a fresh VM
            try:
                p = Peer(port)
            except OSError:
                print("server gone")
                return
            if not p.expect("connect", timeout=5):
                print("server gone")
                return
            p.send(ids)
            continue
        ident = attr(g, "identifier")
        its = items(g)
        url = urllib.parse.unquote_plus(su.unescape(attr(its[0], "url")))  # as it did
        print("group", ident, "url", url)
        p.send(visit_event(ident, "start", 0, its))
        if "evil" in url:
            # unescaped Windows paths, an 8 KiB-part upload, finish malicious
            p.send(f'<system-event time="{now()}" type="file" processId="1234" '
                   f'process="C:\\Program Files\\Internet Explorer\\iexplore.exe" '
                   f'action="Write" object1="C:\\Documents and Settings\\Admin\\a&b<c.exe" '
                   f'object2="-1"/>')
            data = bytes(range(256)) * 80  # 20,480 bytes: three parts
            p.send(f'<file name="C:\\capture\\logs\\evidence.zip" size="{len(data)}" type="zip"/>')
            a = p.expect("file-")
            print("upload", a.split()[0])
            for off in range(0, len(data), 8192):
                part = data[off:off + 8192]
                p.send(f'<part name="C:\\capture\\logs\\evidence.zip" part-start="{off}" '
                       f'part-end="{off + len(part)}" encoding="base64">'
                       + base64.b64encode(part).decode() + "</part>")
            p.send(f'<file-finished name="C:\\capture\\logs\\evidence.zip" size="{len(data)}" '
                   f'type="zip"/>')
            p.send(visit_event(ident, "finish", 1, its))
        elif "neterr" in url:
            # NETWORK_ERROR with an HRESULT (INET_E_RESOURCE_NOT_FOUND): a
            # completed visit, no revert
            p.send(visit_event(ident, "error", 0, its, 0x10000110, 0x800C0005))
        elif "exception" in url:
            p.send(visit_event(ident, "error", 0, its, 0x10000200, 0))
        elif "reconnect" in url:
            # the socket drops in the middle of the visit; the client sends
            # reconnect on a new one and finishes the same visit there
            p.s.close()
            time.sleep(0.5)
            p = Peer(port)
            p.expect("connect")
            p.send(ids.replace("<connect", "<reconnect"))
            p.send(visit_event(ident, "finish", 0, its))
            print("reconnected")
        else:
            p.send(visit_event(ident, "finish", 0, its))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    a = [int(x) for x in sys.argv[3:]]
    {"attrs": mode_attrs, "flood": mode_flood, "slow": mode_slow, "bulk": mode_bulk,
     "original": mode_original}[mode](port, *a)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
