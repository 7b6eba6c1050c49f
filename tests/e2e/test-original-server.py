#!/usr/bin/env python3
"""test-original-server.py BUILD - the real capture-client against a server
that speaks as the original Capture-HPC server (and HSN Capture-HPC NG) do:
no `algorithm` attribute, URLs form-encoded (Java URLEncoder), ids that are
strings.  Checks what such a server needs from a client (docs/protocol.md,
"Compatibility rules"):

  - every item's url comes back exactly as it was sent;
  - every item of finish carries processId, major- and minor-error-code;
  - a multi-URL group without `algorithm` is never visited in bulk and is
    reported as dac, and a malicious page in it makes the visit-event
    malicious="1";
  - upload parts carry at most 8,192 bytes;
  - a file-reject makes the client go on at once (finish follows).

The server side listens on 127.0.0.1 only; the pages come from the bundled
test web (scripts/testweb), as in the other end-to-end tests.  Root.
"""
import base64
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse

BUILD = os.path.realpath(sys.argv[1])
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
CLIENT = os.path.join(BUILD, "src", "client", "capture-client")
W = "http://www.capture-test.example"
E = "http://evil.capture-test.example"
fails = []


def fail(msg):
    print("FAIL:", msg)
    fails.append(msg)


def java_encode(url):
    """java.net.URLEncoder.encode(url, "UTF-8")."""
    return urllib.parse.quote_plus(url, safe="*-._")


class Conn:
    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def send(self, text):
        self.s.sendall(text.encode() + b"\0")

    def recv(self, timeout=120):
        """The next client message (a CRLF line); None at EOF."""
        self.s.settimeout(timeout)
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                return None
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode().rstrip("\r")

    def until(self, pred, timeout=120):
        """Messages until one satisfies pred; all of them, in order."""
        seen = []
        end = time.time() + timeout
        while time.time() < end:
            m = self.recv(max(1, end - time.time()))
            if m is None:
                break
            seen.append(m)
            if pred(m):
                break
        return seen


def attr(msg, name):
    m = re.search(r'\b' + re.escape(name) + r'="([^"]*)"', msg)
    return m.group(1) if m else None


def session(srv, urls, options, reject_upload=False):
    """One connection: connect, options, one group; returns the messages."""
    sock, _ = srv.accept()
    c = Conn(sock)
    c.send('<connect server="2.5"/>')
    hello = c.recv()
    if not hello or not hello.startswith("<connect"):
        fail(f"no connect from the client: {hello}")
        return []
    for name, value in options:
        c.send(f'<option name="{name}" value="{value}"/>')
    items = "".join(f'<item id="{i + 1}" url="{java_encode(u)}"/>' for i, u in enumerate(urls))
    c.send(f'<visit-event identifier="-4711" program="testapp" time="1">{items}</visit-event>')
    msgs = []

    def done(m):
        return m.startswith("<visit-event") and attr(m, "type") in ("finish", "error")

    while True:
        got = c.until(lambda m: done(m) or m.startswith("<file "))
        msgs += got
        if not got or done(got[-1]):
            break
        # an upload: accept or reject it
        if reject_upload:
            c.send(f'<file-reject name="{attr(got[-1], "name")}"/>')
        else:
            c.send('<file-accept name="log/x.zip"/>')
    sock.close()
    return msgs


def main():
    env = dict(os.environ, BUILD=BUILD)
    subprocess.run([os.path.join(TOP, "scripts", "testweb"), "--no-doc", "start"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    hosts = subprocess.run([os.path.join(TOP, "scripts", "testweb"), "hosts"], env=env,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(300)  # a client that exits fails the test, never hangs it
    port = srv.getsockname()[1]
    work = f"/tmp/original-server-{os.getpid()}"
    args = [CLIENT, "-s", "127.0.0.1", "-p", str(port), "-a", "10.1.1.2", "-b", "winxp-1",
            "--exclusions", os.path.join(TOP, "etc", "exclusion"),
            "--applications", os.path.join(TOP, "etc", "applications.conf"),
            "--bind", os.path.join(BUILD, "tests", "fixtures", "capture-testapp")
            + ":/usr/local/bin/capture-testapp", "--work-dir", work]
    for h in hosts:
        if h.strip():
            addr, name = h.split()
            args += ["--host", f"{addr}={name}"]
    client = subprocess.Popen(args, stderr=open(f"{work}.log", "w"))
    try:
        # 1: a group of two, one page drops a file; the server asks for files
        urls = [f"{W}/testapp/benign.html?a=1+2&b=%41", f"{E}/testapp/drop.html"]
        msgs = session(srv, urls, [("collect-modified-files", "true"),
                                   ("capture-network-packets-malicious", "true"),
                                   ("capture-network-packets-benign", "false")])
        start = next((m for m in msgs if attr(m, "type") == "start"), "")
        finish = msgs[-1] if msgs else ""
        if attr(start, "algorithm") != "dac" or attr(finish, "algorithm") != "dac":
            # never bulk; a group of more than one URL reported as dac, so
            # that an original server splits it (docs/client.md)
            fail(f"a group of 2 without algorithm not reported as dac: {start}")
        if attr(finish, "malicious") != "1":
            fail(f"the group with the dropping page is not malicious: {finish}")
        items = re.findall(r"<item ([^>]*)/>", finish)
        wires = [attr(i, "url") for i in items]
        if wires != [java_encode(u) for u in urls]:
            fail(f"urls not echoed as sent: {wires}")
        for i in items:
            for a in ("processId", "major-error-code", "minor-error-code"):
                if attr(i, a) is None:
                    fail(f"item without {a}: {i}")
        parts = [m for m in msgs if m.startswith("<part ")]
        if not parts:
            fail("no upload of the malicious visit's evidence")
        for p in parts:
            data = base64.b64decode(re.search(r">([^<]*)</part>", p).group(1))
            if len(data) > 8192:
                fail(f"a part of {len(data)} bytes (the original: 8,192)")
        print(f"group 1: {len(msgs)} messages, {len(parts)} parts, finish "
              f"algorithm={attr(finish, 'algorithm')} malicious={attr(finish, 'malicious')}")
        # 2: the client reverts and connects again; the upload is refused
        t0 = time.time()
        msgs = session(srv, [f"{E}/testapp/drop.html?again"],
                       [("collect-modified-files", "true")], reject_upload=True)
        if not msgs or attr(msgs[-1], "type") != "finish":
            fail(f"no finish after a file-reject: {msgs[-3:]}")
        if any(m.startswith("<part ") for m in msgs):
            fail("parts sent after a file-reject")
        print(f"group 2: finish {time.time() - t0:.1f} s after the group, upload refused")
    finally:
        client.kill()
        client.wait()
        subprocess.run(["rm", "-rf", work])
    if fails:
        print(open(f"{work}.log").read()[-3000:])
        sys.exit(1)
    os.unlink(f"{work}.log")
    print("ok")


if __name__ == "__main__":
    main()
