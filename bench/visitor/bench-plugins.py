#!/usr/bin/env python3
"""Visitor and plugin benchmark (issue 5, docs/benchmarks.md "Visitor").

  bench-plugins.py BUILD [ROUNDS] [PLUGINS] [BULK]
      ROUNDS   rounds per plugin (default 12; Chromium gets twice as many)
      PLUGINS  comma list (default chromium,firefox,libreoffice,pdf,fetch,generic)
      BULK     "bulk" (default) or "nobulk": also find the largest bulk group

Per plugin, one URL of the bundled test web per visit, visit time 0, three
variants measured alternately in every round (the order rotates, so machine
noise hits all three):

  monitored   the real capture-client, standalone (--visit): sandbox,
              all four monitors, exclusion lists, packet capture, verdict
  sandbox     the same client with every monitor off (--no-monitor x4)
  host        the same application binary with the same flags and the same
              protocol conversation, outside any sandbox and without
              monitors: as uid 65534 (nobody) with a throw-away home on
              tmpfs (/dev/shm, as the sandbox's writable layer), in the
              gateway netns capture-gw (one veth hop nearer to the test
              web than a sandbox), /etc/hosts and an empty resolv.conf bind
              mounted as the sandbox has them

Times: "cold" = client started -> verdict (client start, exclusion lists,
sandbox build, monitors, visit); "warm" = the client's "visit 1: ... URL(s)"
log line (sandbox built, monitors started) -> its "visit 1: benign" line (the
visit, monitor drain, verdict): the sandbox was built ahead, as the client
does in server mode.  host = application started -> done and killed.
Ratio = warm / host of the same round; median and spread (min-max) over the
rounds.  Then bulk mode: sandbox memory peak per Chromium instance and the
largest group without errors, with the client's default --memory/--pids and
with raised ones.  Never fails on timing; exits non-zero only when the bench
itself cannot run.
"""
import base64
import ctypes
import glob
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

BUILD = os.path.realpath(sys.argv[1]) if len(sys.argv) > 1 else os.path.realpath("build")
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 12
PLUGINS = (sys.argv[3] if len(sys.argv) > 3 else
           "chromium,firefox,libreoffice,pdf,fetch,generic").split(",")
DO_BULK = (sys.argv[4] if len(sys.argv) > 4 else "bulk") == "bulk"
TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIENT = os.path.join(BUILD, "src", "client", "capture-client")
GW = "capture-gw"
WEB = "198.51.100.10"
NAMES = ["www.capture-test.example", "evil.capture-test.example", "ads.capture-test.example"]
W = "http://www.capture-test.example"
NOBODY = 65534
CHROMIUM = "/usr/lib/chromium/chromium"
FIREFOX = "/usr/lib/firefox-esr/firefox-esr"
SOFFICE = "/usr/lib/libreoffice/program/soffice"
PDFTOPPM = "/usr/bin/pdftoppm"
CURL = "/usr/bin/curl"

# plugin -> (program, URL path, client extra arguments)
CASES = {
    "chromium": ("chromium", "/plain.html", []),
    "firefox": ("firefox", "/plain.html", []),
    "libreoffice": ("libreoffice", "/doc/letter.fodt", []),
    "pdf": ("pdf", "/doc/benign.pdf", []),
    "fetch": ("fetch", "/plain.html", []),
    # generic: the "curl" entry of etc/applications.conf
    "generic": ("curl", "/plain.html", []),
}

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET, CLONE_NEWNS = 0x40000000, 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


def log(msg):
    print(f"# {msg}", file=sys.stderr, flush=True)


class Netns:
    """Sockets made in the gateway netns (the main thread switches there and
    back: a socket keeps the netns it was made in)."""

    def __init__(self, name):
        self.target = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
        self.home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self.lock = threading.Lock()

    def _setns(self, fd):
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def socket(self, *a):
        with self.lock:
            self._setns(self.target)
            try:
                return socket.socket(*a)
            finally:
                self._setns(self.home)


class Env:
    def __init__(self):
        self.dir = f"/dev/shm/visbench-{os.getpid()}"
        os.makedirs(self.dir)
        self.hosts = os.path.join(self.dir, "hosts")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
            for n in NAMES:
                f.write(f"{WEB}\t{n}\n")
        self.resolv = os.path.join(self.dir, "resolv.conf")
        open(self.resolv, "w").close()
        self.ns = Netns(GW)
        self.gw_fd = self.ns.target
        self.n = 0

    def home(self):
        self.n += 1
        h = os.path.join(self.dir, f"home-{self.n}")
        os.makedirs(h)
        os.chown(h, NOBODY, NOBODY)
        return h

    def preexec(self, fds=None):
        """Runs in the child: gateway netns, private mounts with the sandbox's
        /etc/hosts and resolv.conf, fds 3/4, then uid/gid nobody."""
        gw, hosts, resolv = self.gw_fd, self.hosts.encode(), self.resolv.encode()

        def f():
            # first: the netns fd may be 3 or 4
            if libc.setns(gw, CLONE_NEWNET) != 0 or libc.unshare(CLONE_NEWNS) != 0:
                os._exit(126)
            if fds is not None:
                a = os.dup(fds)
                os.dup2(a, 3)
                os.dup2(a, 4)
                os.close(a)
            libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
            if (libc.mount(hosts, b"/etc/hosts", None, MS_BIND, None) != 0 or
                    libc.mount(resolv, b"/etc/resolv.conf", None, MS_BIND, None) != 0):
                os._exit(126)
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        return f

    def spawn(self, argv, home, extra_env=(), fds=None):
        env = {"HOME": home, "USER": "nobody", "LOGNAME": "nobody",
               "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "SHELL": "/bin/sh"}
        env.update(dict(extra_env))
        return subprocess.Popen(argv, env=env, cwd=home, preexec_fn=self.preexec(fds),
                                close_fds=False, start_new_session=True,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


SWEEP = []


def kill_all(p, home):
    """Kills the instance's session and waits for it (as the plugins'
    cgroup.kill); what escaped the session is swept after the timing."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    SWEEP.append(home)


def sweep():
    """Kills anything left that runs with one of the homes (Chromium's
    zygotes, soffice.bin): outside the timed part."""
    homes = [f"HOME={h}\0".encode() for h in SWEEP]
    SWEEP.clear()
    for _ in range(2):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                env = open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                continue
            if any(h in env for h in homes):
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)


# ---- host (no sandbox, no monitors) ----

class Cdp:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fds 3/4, one
    socketpair end, as the plugin), NUL-terminated JSON."""

    def __init__(self, sock):
        self.s, self.buf, self.id, self.queue = sock, b"", 0, []

    def send(self, method, params=None, session=None):
        self.id += 1
        m = {"id": self.id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        self.s.sendall(json.dumps(m).encode() + b"\0")
        return self.id

    def recv(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                raise TimeoutError("browser")
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("browser")
            self.buf += d
        m, self.buf = self.buf.split(b"\0", 1)
        return json.loads(m)

    def call(self, method, params=None, session=None, deadline=None):
        i = self.send(method, params, session)
        while True:
            m = self.recv(deadline)
            if m.get("id") == i:
                return m
            self.queue.append(m)


def host_chromium(env, url):
    home = env.home()
    ours, theirs = socket.socketpair()
    argv = [CHROMIUM, "--headless=new", "--remote-debugging-pipe",
            f"--user-data-dir={home}/.config/chromium-capture", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--password-store=basic",
            "--window-size=1280,1024", "about:blank"]
    p = env.spawn(argv, home, fds=theirs.fileno())
    theirs.close()
    ok = False
    try:
        c = Cdp(ours)
        dl = time.monotonic() + 60
        c.send("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath":
                                               f"{home}/Downloads", "eventsEnabled": True})
        tid = c.call("Target.createTarget", {"url": "about:blank"}, deadline=dl)
        tid = tid["result"]["targetId"]
        sid = c.call("Target.attachToTarget", {"targetId": tid, "flatten": True},
                     deadline=dl)["result"]["sessionId"]
        a = c.send("Page.enable", session=sid)
        b = c.send("Network.enable", {"maxTotalBufferSize": 1 << 20,
                                      "maxResourceBufferSize": 1 << 19}, session=sid)
        got = set()
        while got != {a, b}:
            m = c.recv(dl)
            if m.get("id") in (a, b):
                got.add(m["id"])
        nav = c.send("Page.navigate", {"url": url}, session=sid)
        answered = loaded = False
        c.queue.clear()
        while not (answered and loaded):
            m = c.recv(dl)
            if m.get("id") == nav:
                answered = True
                if m.get("result", {}).get("errorText"):
                    break
            elif m.get("sessionId") == sid and m.get("method") == "Page.loadEventFired":
                loaded = True
        ok = answered and loaded
        shot = c.call("Page.captureScreenshot", {"format": "png"}, session=sid, deadline=dl)
        png = base64.b64decode(shot["result"]["data"], validate=True)
        ok = ok and png[:4] == b"\x89PNG"
        with open(os.path.join(home, "0.png"), "wb") as f:
            f.write(png)
        c.call("Target.closeTarget", {"targetId": tid}, deadline=dl)
    except (OSError, EOFError, TimeoutError, KeyError, ValueError):
        ok = False
    finally:
        ours.close()
        kill_all(p, home)
    return ok


def firefox_user_js():
    """The plugin's user.js, read from its source (so both stay the same)."""
    src = open(os.path.join(TOP, "src", "client", "plugins", "app-firefox.c")).read()
    body = src[src.index("user_js[]"):]
    body = body[:body.index(";\n\n")]
    lines = re.findall(r'^\s*"(user_pref\(.*\);)\\n"', body, re.M)
    if len(lines) < 20:
        raise SystemExit("could not read user.js from app-firefox.c")
    return "".join(l.replace('\\"', '"') + "\n" for l in lines)


class Marionette:
    def __init__(self, sock):
        self.s, self.buf, self.id = sock, b"", 0

    def _read(self, deadline):
        while True:
            if b":" in self.buf:
                n, rest = self.buf.split(b":", 1)
                n = int(n)
                if len(rest) >= n:
                    self.buf = rest[n:]
                    return json.loads(rest[:n])
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.s], [], [], left)[0]:
                raise TimeoutError("marionette")
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("marionette")
            self.buf += d

    def call(self, name, params, deadline):
        self.id += 1
        d = json.dumps([0, self.id, name, params]).encode()
        self.s.sendall(str(len(d)).encode() + b":" + d)
        while True:
            m = self._read(deadline)
            if isinstance(m, list) and m[1] == self.id:
                if m[2]:
                    raise ValueError(str(m[2]))
                return m[3]


FF_JS = None
FF_PORT = 28300


def host_firefox(env, url):
    global FF_JS, FF_PORT
    if FF_JS is None:
        FF_JS = firefox_user_js()
    FF_PORT += 1  # a fresh port per run: no clash with a dying instance
    home = env.home()
    prof = os.path.join(home, ".ff-capture-0")
    os.makedirs(prof)
    with open(os.path.join(prof, "user.js"), "w") as f:
        f.write(FF_JS + f'user_pref("marionette.port", {FF_PORT});\n')
    os.chown(prof, NOBODY, NOBODY)
    os.chown(os.path.join(prof, "user.js"), NOBODY, NOBODY)
    p = env.spawn([FIREFOX, "--headless", "--no-remote", "--marionette", "--profile", prof],
                  home, extra_env=[("MOZ_REMOTE_SETTINGS_DEVTOOLS", "1"),
                                   ("MOZ_CRASHREPORTER_DISABLE", "1")])
    ok = False
    s = None
    try:
        dl = time.monotonic() + 60
        while True:
            s = env.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.connect(("127.0.0.1", FF_PORT))
                break
            except ConnectionRefusedError:
                s.close()
                s = None
                if p.poll() is not None or time.monotonic() > dl:
                    raise EOFError("firefox")
                time.sleep(0.02)
        m = Marionette(s)
        m._read(dl)  # hello
        m.call("WebDriver:NewSession", {}, dl)
        m.call("WebDriver:SetTimeouts", {"pageLoad": 30000}, dl)
        m.call("WebDriver:Navigate", {"url": url}, dl)
        st = m.call("WebDriver:ExecuteScript", {
            "script": "let e = performance.getEntriesByType('navigation')[0];"
                      "return e && e.responseStatus ? e.responseStatus : 0;", "args": []}, dl)
        shot = m.call("WebDriver:TakeScreenshot", {"full": False, "hash": False}, dl)
        png = base64.b64decode(shot["value"], validate=True)
        with open(os.path.join(home, "firefox-0.png"), "wb") as f:
            f.write(png)
        ok = st.get("value") == 200 and png[:4] == b"\x89PNG"
    except (OSError, EOFError, TimeoutError, KeyError, ValueError):
        ok = False
    finally:
        if s:
            s.close()
        kill_all(p, home)
    return ok


def download(env, url, path):
    """GET through the gateway netns (the client downloads through the
    sandbox's netns): status and body length; body to path if given."""
    host = url.split("/")[2]
    s = env.ns.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect((WEB, 80))
    c = http.client.HTTPConnection(host)
    c.sock = s
    c.request("GET", "/" + url.split("/", 3)[3])
    r = c.getresponse()
    body = r.read()
    c.close()
    if path:
        with open(path, "wb") as f:
            f.write(body)
        os.chown(path, NOBODY, NOBODY)
    return r.status, len(body)


XCU = ('<?xml version="1.0" encoding="UTF-8"?>\n'
       '<oor:items xmlns:oor="http://openoffice.org/2001/registry" '
       'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n'
       '<item oor:path="/org.openoffice.Office.Common/Security/Scripting">'
       '<prop oor:name="MacroSecurityLevel" oor:op="fuse"><value>0</value></prop></item>\n'
       '<item oor:path="/org.openoffice.Office.Common/Security/Scripting">'
       '<prop oor:name="DisableMacrosExecution" oor:op="fuse"><value>false</value></prop>'
       '</item>\n<item oor:path="/org.openoffice.Setup/L10N"><prop '
       'oor:name="ooSetupSystemLocale" oor:op="fuse"><value>en-US</value></prop></item>\n'
       '</oor:items>\n')


def host_libreoffice(env, url):
    home = env.home()
    doc = os.path.join(home, "letter.fodt")
    if download(env, url, doc)[0] != 200:
        return False
    prof = os.path.join(home, ".lo-capture")
    os.makedirs(os.path.join(prof, "user"))
    with open(os.path.join(prof, "user", "registrymodifications.xcu"), "w") as f:
        f.write(XCU)
    for d, _, fs in os.walk(prof):
        os.chown(d, NOBODY, NOBODY)
        for x in fs:
            os.chown(os.path.join(d, x), NOBODY, NOBODY)
    p = env.spawn([SOFFICE, "--headless", "--norestore", "--nologo",
                   f"-env:UserInstallation=file://{prof}", doc], home)
    lock = os.path.join(home, ".~lock.letter.fodt#")
    ok = False
    dl = time.monotonic() + 30
    while time.monotonic() < dl:
        if os.path.exists(lock):
            ok = True
            break
        if p.poll() is not None:
            break
        time.sleep(0.02)
    kill_all(p, home)
    return ok


def host_pdf(env, url):
    home = env.home()
    doc = os.path.join(home, "benign.pdf")
    if download(env, url, doc)[0] != 200:
        return False
    os.makedirs(os.path.join(home, ".pdf-view-0"))
    os.chown(os.path.join(home, ".pdf-view-0"), NOBODY, NOBODY)
    p = env.spawn([PDFTOPPM, "-png", "-r", "72", "-f", "1", "-l", "10", doc,
                   os.path.join(home, ".pdf-view-0", "page")], home)
    ok = p.wait() == 0
    kill_all(p, home)
    return ok and bool(glob.glob(os.path.join(home, ".pdf-view-0", "page-*.png")))


def host_fetch(env, url):
    return download(env, url, None)[0] == 200


def host_generic(env, url):
    home = env.home()
    p = env.spawn([CURL, "--max-time", "30", "--location", "--max-redirs", "5", "--output",
                   f"{home}/curl-download", url], home)
    ok = p.wait() == 0
    kill_all(p, home)
    return ok


HOST = {"chromium": host_chromium, "firefox": host_firefox, "libreoffice": host_libreoffice,
        "pdf": host_pdf, "fetch": host_fetch, "generic": host_generic}


# ---- through the real client ----

def client_hosts():
    a = []
    for n in NAMES:
        a += ["--host", f"{WEB}={n}"]
    return a


def find_cgroup(pid):
    """The sandbox's v1 memory cgroup (sb<client pid>-*), or the v2 one."""
    for pat in (f"/sys/fs/cgroup/memory/**/capture/sb{pid}-*",
                f"/sys/fs/cgroup/unified/capture/sb{pid}-*"):
        g = glob.glob(pat, recursive=True)
        if g:
            return g[0]
    return None


def read_int(path):
    try:
        return int(open(path).read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def run_client(program, urls, work, extra=(), algorithm=None, sample_memory=False):
    """One standalone visit through the real client.  Returns cold and warm
    seconds, the number of URLs that are safe without error, unauthorized
    events, and the sandbox memory peak in bytes (if sampled)."""
    argv = [CLIENT, "--program", program, "--work-dir", work, "--visit-time", "0"]
    argv += client_hosts() + list(extra)
    if algorithm:
        argv += ["--algorithm", algorithm]
    for u in urls:
        argv += ["--visit", u]
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err, start, end, unauth = b"", b"", None, None, None
    peak, cg = 0, None
    fds = {p.stdout.fileno(): "o", p.stderr.fileno(): "e"}
    ebuf = b""
    while fds:
        r = select.select(list(fds), [], [], 0.1)[0]
        if sample_memory:
            if cg is None:
                cg = find_cgroup(p.pid)
            if cg:
                peak = max(peak, read_int(os.path.join(cg, "memory.max_usage_in_bytes")),
                           read_int(os.path.join(cg, "memory.usage_in_bytes")),
                           read_int(os.path.join(cg, "memory.peak")))
        for fd in r:
            d = os.read(fd, 65536)
            now = time.monotonic()
            if not d:
                del fds[fd]
                continue
            if fds[fd] == "o":
                out += d
                continue
            ebuf += d
            while b"\n" in ebuf:
                line, ebuf = ebuf.split(b"\n", 1)
                err += line + b"\n"
                s = line.decode(errors="replace")
                if re.search(r"visit 1: \d+ URL\(s\) with", s):
                    start = now
                m = re.search(r"visit 1: (benign|malicious) \((\d+) unauthorized", s)
                if m:
                    end, unauth = now, int(m.group(2))
    p.wait()
    safe = 0
    for line in out.decode(errors="replace").splitlines():
        f = [x.strip('"') for x in line.split('","')]
        if line.startswith('"verdict"') and len(f) >= 4 and f[2] == "safe" and f[3] == "":
            safe += 1
    shutil.rmtree(work, ignore_errors=True)
    if start is None or end is None:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
        return None
    return dict(cold=end - t0, warm=end - start, safe=safe, unauth=unauth, peak=peak)


NO_MON = ["--no-monitor", "file", "--no-monitor", "process", "--no-monitor", "registry",
          "--no-monitor", "network"]


def stats(xs):
    if not xs:
        return "-"
    d = 3 if statistics.median(xs) < 0.1 else 2
    return f"{statistics.median(xs):.{d}f} ({min(xs):.{d}f}-{max(xs):.{d}f})"


def bench_plugin(env, name, rounds):
    program, path, extra = CASES[name]
    res = {"mon": [], "nomon": [], "host": [], "cold": [], "cold_nomon": [], "r_mon": [],
           "r_nomon": [], "errors": 0, "unauth": 0}
    work = os.path.join(env.dir, "work")
    for i in range(rounds):
        url = f"{W}{path}?r={i}" if name not in ("libreoffice", "pdf") else f"{W}{path}"
        order = ["mon", "nomon", "host"]
        order = order[i % 3:] + order[:i % 3]
        got = {}
        for v in order:
            if v == "host":
                t0 = time.monotonic()
                ok = HOST[name](env, url)
                got[v] = time.monotonic() - t0
                sweep()
                res["errors"] += not ok
            else:
                r = run_client(program, [url], work, extra + (NO_MON if v == "nomon" else []))
                if r is None:
                    res["errors"] += 1
                    continue
                got[v] = r["warm"]
                res["cold" if v == "mon" else "cold_nomon"].append(r["cold"])
                res["errors"] += r["safe"] != 1
                if v == "mon":
                    res["unauth"] += r["unauth"] or 0
        for v, t in got.items():
            res[v].append(t)
        if "host" in got and got["host"] > 0:
            if "mon" in got:
                res["r_mon"].append(got["mon"] / got["host"])
            if "nomon" in got:
                res["r_nomon"].append(got["nomon"] / got["host"])
    return res


def bulk_group(n, raised):
    extra = ["--memory", "8192", "--pids", "16384"] if raised else []
    urls = [f"{W}/plain.html?b={i}" for i in range(n)]
    r = run_client("chromium", urls, f"/var/tmp/visbench-bulk-{os.getpid()}", extra,
                   algorithm="bulk", sample_memory=True)
    return r


def main():
    if os.geteuid() != 0:
        print("bench-plugins: needs root", file=sys.stderr)
        return 77
    if not os.access(CLIENT, os.X_OK):
        print(f"bench-plugins: no {CLIENT}", file=sys.stderr)
        return 1
    env_tw = dict(os.environ, BUILD=BUILD)
    tw = os.path.join(TOP, "scripts", "testweb")
    started = subprocess.run([tw, "status"], env=env_tw, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0
    if started:
        subprocess.run([tw, "--no-doc", "start"], env=env_tw, check=True,
                       stdout=subprocess.DEVNULL)
    env = Env()
    load0 = os.getloadavg()
    t_begin = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rows = []
    try:
        for name in PLUGINS:
            n = ROUNDS * 2 if name == "chromium" else ROUNDS
            log(f"{name}: {n} rounds")
            rows.append((name, n, bench_plugin(env, name, n)))
        bulk = []
        if DO_BULK:
            # 32 = the client's --visit limit (CLIENT_MAX_LIST)
            for raised, sizes in ((False, (4, 5, 6, 8)), (True, (10, 16, 24, 32))):
                for n in sizes:
                    log(f"bulk {n} ({'raised' if raised else 'default'} limits)")
                    r = bulk_group(n, raised)
                    bulk.append((raised, n, r))
    finally:
        env.cleanup()
        if started:
            subprocess.run([tw, "stop"], env=env_tw, stdout=subprocess.DEVNULL)
    load1 = os.getloadavg()
    print(f"\nVisitor plugins, {t_begin}, one URL per visit, visit time 0, rounds alternate "
          f"monitored / sandbox without monitors / host; load average "
          f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end, "
          f"{os.cpu_count()} CPUs\n")
    print("| plugin | rounds | cold s (monitored) | warm s (monitored) | warm s (no monitors)"
          " | host s | monitored / host | no monitors / host | ratio of medians |"
          " errors | unauthorized events |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, n, r in rows:
        rm = (f"{statistics.median(r['mon']) / statistics.median(r['host']):.2f}"
              if r["mon"] and r["host"] and statistics.median(r["host"]) > 0 else "-")
        print(f"| {name} | {n} | {stats(r['cold'])} | {stats(r['mon'])} | {stats(r['nomon'])}"
              f" | {stats(r['host'])} | {stats(r['r_mon'])} | {stats(r['r_nomon'])} | {rm} |"
              f" {r['errors']} | {r['unauth']} |")
    print("\nmedian (min-max) in seconds; ratios per round (warm / host of the same round),"
          " then median (min-max); ratio of medians = median warm monitored / median host.")
    if DO_BULK:
        print("\nChromium bulk mode, one visit per group, visit time 0 "
              "(default limits: --memory 1024 --pids 1024; raised: --memory 8192 "
              "--pids 16384)\n")
        print("| limits | URLs | seconds | loaded without error | sandbox memory peak MiB |"
              " MiB per instance |")
        print("|---|---|---|---|---|---|")
        best = {}
        for raised, n, r in bulk:
            lim = "raised" if raised else "default"
            if r is None:
                print(f"| {lim} | {n} | - | client failed | - | - |")
                continue
            mib = r["peak"] / (1 << 20)
            print(f"| {lim} | {n} | {r['warm']:.1f} | {r['safe']}/{n} | {mib:.0f} |"
                  f" {mib / n:.0f} |")
            if r["safe"] == n:
                best[lim] = max(best.get(lim, 0), n)
        for lim in ("default", "raised"):
            print(f"\nLargest bulk group without errors, {lim} limits: "
                  f"{best.get(lim, 0) or 'none'} (of the sizes tried)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
