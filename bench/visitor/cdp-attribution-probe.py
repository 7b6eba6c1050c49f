#!/usr/bin/env python3
"""Throw-away probe for issue 13 item 1 (per-URL attribution in one Chromium).

Measures, against Debian's Chromium driven over --remote-debugging-pipe
(as the client does) and pages served only on 127.0.0.1 by a small server
this script starts itself:

  1. which CDP calls say which renderer pid hosts which target
     (Target.getTargetInfo, SystemInfo.getProcessInfo, Page.getFrameTree,
     Runtime.evaluate, trace events), whether two browser contexts ever share
     a renderer, what cross-site iframes (site isolation) do;
  2. downloads with one browser context and one download folder per URL
     (Browser.setDownloadBehavior with browserContextId), the fields of
     Browser.downloadWillBegin/downloadProgress, which process writes the file;
  3. what lands on disk (profile, HOME, /tmp, /dev/shm) for a visit in the
     default context and in createBrowserContext contexts, and which process
     writes it (strace -f, if strace is installed and we are root);
  4. timing: 20 URLs in one browser (a context + a tab each) against one
     browser per URL.

Findings are written up in docs/attribution-research.md.

Usage: python3 bench/visitor/cdp-attribution-probe.py [--no-strace] [--urls N]
Runs Chromium as the unprivileged user "nobody" when started as root (so that
Chromium's own sandbox stays on, as in the client); python3 stdlib only.
Everything it starts (server, browsers, strace) is ended by its pid.
"""

import argparse
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROUNDS = 2
CHROMIUM = "/usr/lib/chromium/chromium"
if not os.path.exists(CHROMIUM):
    CHROMIUM = shutil.which("chromium") or "chromium"

FLAGS = [
    "--headless=new", "--remote-debugging-pipe", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--password-store=basic",
    "--window-size=1280,1024", "--disable-blink-features=AutomationControlled",
]

SERVER = r'''
import sys, time, http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def send(self, body, ctype="text/html", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        p = self.path
        port = self.server.server_address[1]
        if p.startswith("/page"):
            self.send(b"<html><body><h1>page %s</h1><script>localStorage.x=1;"
                      b"document.cookie='c=1';</script></body></html>" % p.encode())
        elif p.startswith("/xframe"):
            # main page on 127.0.0.1, iframe on localhost: another site
            self.send(b"<html><body>x<iframe src='http://localhost:%d/page?in-frame'>"
                      b"</iframe></body></html>" % port)
        elif p.startswith("/dl"):
            body = b"MZ" + b"A" * 4000
            self.send(body, "application/octet-stream",
                      [("Content-Disposition", "attachment; filename=\"payload-%s.exe\""
                        % p.split("=")[-1])])
        elif p.startswith("/slowdl"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Disposition", "attachment; filename=\"slow.bin\"")
            self.send_header("Content-Length", str(40 * 1024))
            self.end_headers()
            for i in range(40):
                self.wfile.write(b"B" * 1024); self.wfile.flush(); time.sleep(0.1)
        else:
            self.send(b"", extra=())
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    def handle_error(self, *a): pass  # a browser that drops a connection
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
'''


def log(*a):
    print(*a, flush=True)


class Browser:
    """Chromium over --remote-debugging-pipe (fd 3: commands in, fd 4: out)."""

    def __init__(self, home, extra=(), strace_out=None):
        self.home = home
        r_in, w_in = os.pipe()    # we write, Chromium reads on fd 3
        r_out, w_out = os.pipe()  # Chromium writes on fd 4, we read
        uid = gid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            uid, gid = pw.pw_uid, pw.pw_gid

        def child():
            os.dup2(r_in, 3)
            os.dup2(w_out, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
            if uid is not None and strace_out is None:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)

        argv = [CHROMIUM] + FLAGS + ["--user-data-dir=%s/profile" % home] + list(extra) \
            + ["about:blank"]
        if strace_out is not None:
            # strace runs as root, Chromium under it as nobody (-u)
            argv = ["strace", "-f", "-qq", "-ttt", "-o", strace_out, "-u", "nobody",
                    "-e", "trace=openat,open,creat,rename,renameat,renameat2,mkdir,mkdirat,"
                    "unlink,unlinkat,execve,clone,clone3,fork,vfork"] + argv
        env = {"HOME": home, "USER": "nobody", "LOGNAME": "nobody",
               "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "SHELL": "/bin/sh"}
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, env=env, cwd=home, preexec_fn=child,
                                     pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in)
        os.close(w_out)
        self.w = w_in
        self.r = r_out
        self.next_id = 0
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.results = {}
        self.events = []
        self.alive = True
        threading.Thread(target=self._reader, daemon=True).start()
        self.browser_pid = None

    def _reader(self):
        buf = b""
        while True:
            try:
                d = os.read(self.r, 1 << 20)
            except OSError:
                d = b""
            if not d:
                with self.cv:
                    self.alive = False
                    self.cv.notify_all()
                return
            buf += d
            while b"\0" in buf:
                m, buf = buf.split(b"\0", 1)
                msg = json.loads(m)
                with self.cv:
                    if "id" in msg:
                        self.results[msg["id"]] = msg
                    else:
                        msg["_t"] = time.monotonic()
                        self.events.append(msg)
                    self.cv.notify_all()

    def send(self, method, params=None, session=None):
        with self.lock:
            self.next_id += 1
            i = self.next_id
        m = {"id": i, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.w, json.dumps(m).encode() + b"\0")
        return i

    def wait(self, i, timeout=20):
        end = time.monotonic() + timeout
        with self.cv:
            while i not in self.results:
                if not self.alive or time.monotonic() > end:
                    raise RuntimeError("no answer to %d" % i)
                self.cv.wait(0.2)
            msg = self.results.pop(i)
        if "error" in msg:
            raise RuntimeError(msg["error"])
        return msg["result"]

    def call(self, method, params=None, session=None, timeout=20):
        return self.wait(self.send(method, params, session), timeout)

    def wait_event(self, pred, timeout=20):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for e in self.events:
                    if pred(e):
                        return e
                if not self.alive or time.monotonic() > end:
                    return None
                self.cv.wait(0.2)

    def pid(self):
        """The browser process: Popen's pid, or under strace its child."""
        if self.browser_pid:
            return self.browser_pid
        info = self.call("SystemInfo.getProcessInfo")
        for p in info["processInfo"]:
            if p["type"] == "browser":
                self.browser_pid = p["id"]
        return self.browser_pid

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass


def proc_tree(root):
    """{pid: (ppid, type, cmdline)} of root and its descendants (from /proc)."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rfind(")") + 2:].split()[1])
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        cmd = [c.decode(errors="replace") for c in cmd if c]
        if len(cmd) == 1:  # children rewrite their title: one string, spaces
            cmd = cmd[0].split(" ")
        procs[int(d)] = (ppid, cmd)
    out = {}
    todo = [root]
    while todo:
        p = todo.pop()
        if p not in procs or p in out:
            continue
        ppid, cmd = procs[p]
        typ = "browser"
        for c in cmd:
            if c.startswith("--type="):
                typ = c[7:]
        for c in cmd:
            if c.startswith("--utility-sub-type="):
                typ += ":" + c.split("=", 1)[1].split(".")[-1]
        out[p] = (ppid, typ, cmd)
        todo += [q for q, (pp, _) in procs.items() if pp == p]
    return out


def tid_types(root):
    """{tid: process type} for every thread of the tree (strace -f logs tids)."""
    out = {}
    for p, (pp, typ, cmd) in proc_tree(root).items():
        try:
            for t in os.listdir("/proc/%d/task" % p):
                out[int(t)] = typ
        except OSError:
            pass
    return out


def renderers(root):
    return {p: v for p, v in proc_tree(root).items() if v[1] == "renderer"}


def client_id(cmd):
    for c in cmd:
        if c.startswith("--renderer-client-id="):
            return int(c.split("=")[1])
    return None


def new_tab(b, url, context=None):
    """Context (optional) + tab + attach + Page.enable; returns (targetId, session)."""
    p = {"url": "about:blank"}
    if context:
        p["browserContextId"] = context
    tid = b.call("Target.createTarget", p)["targetId"]
    sess = b.call("Target.attachToTarget", {"targetId": tid, "flatten": True})["sessionId"]
    b.call("Page.enable", session=sess)
    return tid, sess


def navigate(b, sess, url, wait_load=True):
    t = time.monotonic()
    r = b.call("Page.navigate", {"url": url}, session=sess)
    if wait_load:
        b.wait_event(lambda e: e.get("sessionId") == sess and e["method"] == "Page.loadEventFired"
                     and e["_t"] >= t, 15)
    return r


def tracing_frames(b, action):
    """Record trace events around action(); return [(event, frame, pid, url)]:
    every trace event that names a frame carries the pid of the process that
    emitted it (a renderer for the devtools.timeline events of a frame)."""
    b.events.clear()
    b.call("Tracing.start", {"traceConfig": {"includedCategories": [
        "devtools.timeline"]}, "transferMode": "ReportEvents"})
    action()
    b.call("Tracing.end")
    b.wait_event(lambda e: e["method"] == "Tracing.tracingComplete", 20)
    out = []
    for e in b.events:
        if e["method"] != "Tracing.dataCollected":
            continue
        for ev in e["params"]["value"]:
            name = ev.get("name")
            args = ev.get("args", {})
            data = args.get("data", {}) if isinstance(args.get("data"), dict) else {}
            frame = data.get("frame") or args.get("frame")
            if name in ("CommitLoad", "MarkLoad") and frame:
                out.append((name, frame, ev.get("pid"), data.get("url")))
    return out


def frame_pids(fr):
    """frame id -> set of pids from CommitLoad/MarkLoad trace events."""
    m = {}
    for name, f, pid, url in fr:
        m.setdefault(f, set()).add(pid)
    return m


def start_server():
    p = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    port = int(p.stdout.readline())
    return p, port


def make_home():
    home = tempfile.mkdtemp(prefix="cdp-probe-")
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        pw = pwd.getpwnam("nobody")
        os.chown(home, pw.pw_uid, pw.pw_gid)
    return home


def snapshot(dirs):
    """{path: (size, mtime_ns)} of every file under dirs."""
    out = {}
    for d in dirs:
        for root, ds, fs in os.walk(d):
            for f in fs:
                p = os.path.join(root, f)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if not p.startswith(dirs[0]) and st.st_uid != 65534:
                    continue  # /tmp, /dev/shm: only Chromium's (nobody's) files
                out[p] = (st.st_size, st.st_mtime_ns)
    return out


def diff(a, b):
    new = sorted(p for p in b if p not in a)
    changed = sorted(p for p in b if p in a and a[p] != b[p])
    gone = sorted(p for p in a if p not in b)
    return new, changed, gone


def short(home, p):
    return p.replace(home, "$HOME")


# ---------------------------------------------------------------- experiments

def exp_pids(port):
    log("\n=== 1. renderer pid <-> target ===")
    home = make_home()
    b = Browser(home)
    try:
        bp = b.pid()
        log("chromium:", b.call("Browser.getVersion")["product"], " browser pid", bp)
        log("processes after start:",
            sorted((v[1], p) for p, v in proc_tree(bp).items()))
        tabs = []
        seen = set(renderers(bp))
        for i in range(3):
            ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                "browserContextId"]
            tid, sess = new_tab(b, None, ctx)
            navigate(b, sess, "http://127.0.0.1:%d/page?n=%d" % (port, i))
            now = renderers(bp)
            newp = sorted(set(now) - seen)
            seen |= set(now)
            tabs.append((ctx, tid, sess, newp))
            log("tab %d ctx=%s target=%s: new renderer pids %s (client ids %s)" % (
                i, ctx[:8], tid[:8], newp, [client_id(now[p][2]) for p in newp]))
        info = b.call("Target.getTargetInfo", {"targetId": tabs[0][1]})["targetInfo"]
        log("Target.getTargetInfo fields:", sorted(info), "->", {k: info[k] for k in info
                                                                  if k not in ("url", "title")})
        tg = b.call("Target.getTargets")["targetInfos"]
        log("Target.getTargets:", [(t["type"], t.get("browserContextId", "")[:8],
                                    t.get("pid")) for t in tg])
        pi = b.call("SystemInfo.getProcessInfo")["processInfo"]
        log("SystemInfo.getProcessInfo entry fields:", sorted(pi[0]), "->",
            sorted((p["type"], p["id"]) for p in pi))
        ft = b.call("Page.getFrameTree", session=tabs[0][2])["frameTree"]["frame"]
        log("Page.getFrameTree main frame fields:", sorted(ft), "frame id == target id:",
            ft["id"] == tabs[0][1])
        ev = b.call("Runtime.evaluate", {"expression":
                                         "JSON.stringify([typeof process, performance.timeOrigin])",
                                         "returnByValue": True}, session=tabs[0][2])
        log("Runtime.evaluate in the page (no pid available to JS):", ev["result"].get("value"))
        try:
            h = b.call("Browser.getHistograms", {"query": "Renderer", "delta": False})
            log("Browser.getHistograms('Renderer'): %d histograms, none name a pid"
                % len(h["histograms"]))
        except Exception as e:
            log("Browser.getHistograms:", e)

        # trace events: frame -> processId
        ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})["browserContextId"]
        tid, sess = new_tab(b, None, ctx)
        before = set(renderers(bp))
        fr = tracing_frames(b, lambda: navigate(b, sess, "http://127.0.0.1:%d/xframe" % port))
        time.sleep(0.5)
        now = renderers(bp)
        newp = sorted(set(now) - before)
        log("cross-site iframe page in a 4th context: target=%s new renderers %s" % (
            tid[:8], [(p, client_id(now[p][2])) for p in newp]))
        for name, f, pid, url in fr:
            log("   trace %s frame=%s pid=%s (%s, client id %s) url=%s %s" % (
                name, (f or "")[:8], pid, now[pid][1] if pid in now else "NOT a renderer",
                client_id(now[pid][2]) if pid in now else "-", url,
                "(= target id)" if f == tid else ""))
        ft = b.call("Page.getFrameTree", session=sess)["frameTree"]
        log("   Page.getFrameTree children (OOPIFs are not in it):",
            [(c["frame"]["id"][:8], c["frame"]["url"]) for c in ft.get("childFrames", [])])
        log("   Page.frameAttached on the tab's session: %s" % [
            (e["params"]["frameId"][:8], e["params"].get("parentFrameId", "")[:8])
            for e in b.events if e["method"] == "Page.frameAttached"
            and e.get("sessionId") == sess])
        # OOPIF as its own target with auto-attach
        b.call("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False,
                                        "flatten": True}, session=sess)
        time.sleep(0.5)
        att = [e for e in b.events if e["method"] == "Target.attachedToTarget"
               and e.get("sessionId") == sess]
        for e in att:
            ti = e["params"]["targetInfo"]
            log("   auto-attached child target type=%s id=%s ctx=%s url=%s" % (
                ti["type"], ti["targetId"][:8], ti.get("browserContextId", "")[:8], ti["url"]))

        # Same site in two contexts: one renderer each, or shared?
        log("all renderers now:", sorted((p, client_id(v[2])) for p, v in renderers(bp).items()))
        # A target closed: its renderer exits?
        b.call("Target.closeTarget", {"targetId": tabs[0][1]})
        time.sleep(1)
        log("after closing tab 0: its renderer(s) %s still alive: %s" % (
            tabs[0][3], [p for p in tabs[0][3] if os.path.exists("/proc/%d" % p)]))

        # Many tabs of the same site in many contexts: ever shared?
        log("renderer-process-limit check: 12 contexts, same site")
        before = set(renderers(bp))
        sess_ctx = []
        for i in range(12):
            ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                "browserContextId"]
            tid, sess = new_tab(b, None, ctx)
            sess_ctx.append((ctx, tid, sess))
        fr = tracing_frames(b, lambda: [navigate(b, s, "http://127.0.0.1:%d/page?m=%d" % (
            port, i)) for i, (_, _, s) in enumerate(sess_ctx)])
        now = renderers(bp)
        newp = sorted(set(now) - before)
        tids = {t for _, t, _ in sess_ctx}
        pid_of = {f: min(p) for f, p in frame_pids(fr).items() if f in tids}
        log("   12 tabs -> %d new renderers; trace gave a pid for %d tabs, %d distinct pids,"
            " all among the new renderers: %s" % (
                len(newp), len(pid_of), len(set(pid_of.values())),
                set(pid_of.values()) <= set(newp)))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)

    # the same, with --renderer-process-limit=2: do contexts then share?
    home = make_home()
    b = Browser(home, ["--renderer-process-limit=2"])
    try:
        bp = b.pid()
        sc = []
        for i in range(6):
            ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                "browserContextId"]
            tid, sess = new_tab(b, None, ctx)
            sc.append((ctx, tid, sess))
        fr = tracing_frames(b, lambda: [navigate(b, s, "http://127.0.0.1:%d/page?k=%d" % (
            port, i)) for i, (_, _, s) in enumerate(sc)])
        pid_of = {f: min(p) for f, p in frame_pids(fr).items()}
        log("--renderer-process-limit=2, 6 contexts same site: renderers %d, tab->pid %s" % (
            len(renderers(bp)), [pid_of.get(t) for _, t, _ in sc]))
        # default context, 6 tabs of the same site: shared?
        sc = [new_tab(b, None, None) for i in range(4)]
        fr = tracing_frames(b, lambda: [navigate(b, s, "http://127.0.0.1:%d/page?d=%d" % (
            port, i)) for i, (_, s) in enumerate(sc)])
        pid_of = {f: min(p) for f, p in frame_pids(fr).items()}
        log("   + 4 tabs same site in the default context: tab->pid %s" % (
            [pid_of.get(t) for t, _ in sc]))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)


def find_open(bp, needle):
    """pids of the browser tree holding a file whose path contains needle."""
    out = []
    for p, (pp, typ, cmd) in proc_tree(bp).items():
        try:
            for fd in os.listdir("/proc/%d/fd" % p):
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (p, fd))
                except OSError:
                    continue
                if needle in t:
                    out.append((p, typ, t))
        except OSError:
            pass
    return out


def exp_downloads(port):
    log("\n=== 2. downloads per browser context ===")
    home = make_home()
    b = Browser(home)
    try:
        bp = b.pid()
        tabs = []
        for i in range(3):
            ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                "browserContextId"]
            d = os.path.join(home, "dl-%d" % i)
            os.mkdir(d)
            os.chmod(d, 0o777)
            b.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": d,
                                                   "browserContextId": ctx,
                                                   "eventsEnabled": True})
            tid, sess = new_tab(b, None, ctx)
            tabs.append((ctx, tid, sess, d))
        # a default-context folder too, to see that it is not used
        dd = os.path.join(home, "dl-default")
        os.mkdir(dd)
        os.chmod(dd, 0o777)
        b.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": dd,
                                               "eventsEnabled": True})
        b.events.clear()
        for i, (ctx, tid, sess, d) in enumerate(tabs):
            r = b.call("Page.navigate", {"url": "http://127.0.0.1:%d/dl?n=%d" % (port, i)},
                       session=sess)
            log("tab %d Page.navigate answer: %s" % (i, r))
        for i in range(3):
            b.wait_event(lambda e: e["method"] == "Browser.downloadProgress"
                         and e["params"]["state"] == "completed"
                         and sum(1 for x in b.events if x["method"] == "Browser.downloadProgress"
                                 and x["params"]["state"] == "completed") >= 3, 15)
        for e in b.events:
            if e["method"] == "Browser.downloadWillBegin":
                p = e["params"]
                which = [i for i, t in enumerate(tabs) if t[1] == p["frameId"]]
                log("downloadWillBegin fields %s frameId=%s (tab %s) guid=%s file=%s"
                    " sessionId=%s" % (sorted(p), p["frameId"][:8], which, p["guid"][:8],
                                       p["suggestedFilename"], e.get("sessionId")))
            elif e["method"] == "Browser.downloadProgress" and e["params"]["state"] != \
                    "inProgress":
                log("downloadProgress fields %s %s" % (sorted(e["params"]), {
                    k: v for k, v in e["params"].items() if k != "guid"}))
        for i, (_, _, _, d) in enumerate(tabs):
            log("dl-%d holds %s" % (i, sorted(os.listdir(d))))
        log("dl-default holds %s; anything in $HOME/Downloads: %s" % (
            sorted(os.listdir(dd)), os.path.exists(os.path.join(home, "Downloads"))))
        for i, (_, _, _, d) in enumerate(tabs):
            for f in os.listdir(d):
                st = os.stat(os.path.join(d, f))
                log("   %s owner uid %d size %d" % (f, st.st_uid, st.st_size))
        # which process has the file open while it downloads
        ctx, tid, sess, d = tabs[0]
        b.call("Page.navigate", {"url": "http://127.0.0.1:%d/slowdl" % port}, session=sess)
        holders = set()
        for _ in range(25):
            time.sleep(0.1)
            for p, typ, t in find_open(bp, d):
                holders.add((p, typ, short(home, t)))
        log("while a slow download runs, files under dl-0 are held open by:", sorted(holders))
        b.wait_event(lambda e: e["method"] == "Browser.downloadProgress"
                     and e["params"]["state"] == "completed"
                     and e["params"].get("totalBytes") == 40 * 1024, 15)
        log("dl-0 after: %s" % sorted(os.listdir(d)))
        # a download from a tab of a context WITHOUT its own behaviour
        ctx2 = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
            "browserContextId"]
        tid2, sess2 = new_tab(b, None, ctx2)
        b.events.clear()
        r = b.call("Page.navigate", {"url": "http://127.0.0.1:%d/dl?n=nobehaviour" % port},
                   session=sess2)
        time.sleep(2)
        log("context without setDownloadBehavior: navigate %s, events %s, dl-default %s,"
            " $HOME/Downloads %s" % (r, [e["method"] for e in b.events
                                         if e["method"].startswith("Browser.download")],
                                     sorted(os.listdir(dd)),
                                     os.path.exists(os.path.join(home, "Downloads"))))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)


def exp_disk(port, use_strace):
    log("\n=== 3. what a visit writes to disk ===")
    for label, incognito in (("default context", False), ("createBrowserContext", True)):
        home = make_home()
        strace_out = os.path.join(tempfile.mkdtemp(prefix="cdp-strace-"), "s") \
            if use_strace else None
        b = Browser(home, strace_out=strace_out)
        try:
            bp = b.pid()
            ctx = None
            if incognito:
                ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                    "browserContextId"]
            tid, sess = new_tab(b, None, ctx)
            time.sleep(2)  # let start-up writes settle
            dirs = [home, "/dev/shm", "/tmp"]
            s0 = snapshot(dirs)
            mark = time.time()
            tids = tid_types(bp)
            navigate(b, sess, "http://127.0.0.1:%d/page?disk" % port)
            tids.update(tid_types(bp))
            time.sleep(3)
            tids.update(tid_types(bp))
            b.call("Target.closeTarget", {"targetId": tid})
            if ctx:
                b.call("Target.disposeBrowserContext", {"browserContextId": ctx})
            time.sleep(1)
            s1 = snapshot(dirs)
            tids.update(tid_types(bp))
            end_mark = time.time()
            new, changed, gone = diff(s0, s1)
            log("[%s] new files: %d, changed: %d, removed: %d" % (
                label, len(new), len(changed), len(gone)))
            for p in new[:40]:
                log("   +", short(home, p))
            for p in changed[:40]:
                log("   ~", short(home, p))
            for p in gone[:10]:
                log("   -", short(home, p))
        finally:
            b.close()
        if strace_out:
            writers_report(strace_out, home, mark, end_mark, tids)
        shutil.rmtree(home, ignore_errors=True)


def writers_report(strace_dir_file, home, mark, end_mark, typ_of):
    """Which process types open files for writing (from the strace log)."""
    d = os.path.dirname(strace_dir_file)
    w = {}
    try:
        with open(strace_dir_file, errors="replace") as f:
            for line in f:
                m = re.match(r"(\d+)\s+([\d.]+)\s+(openat|open|creat|rename\w*|mkdir\w*|unlink\w*)"
                             r"\((.*)", line)
                if not m:
                    continue
                if not mark <= float(m.group(2)) <= end_mark:
                    continue
                pid, call, rest = int(m.group(1)), m.group(3), m.group(4)
                if call.startswith("open") and not re.search(r"O_WRONLY|O_RDWR|O_CREAT", rest):
                    continue
                if "= -1" in rest:
                    continue
                paths = re.findall(r'"([^"]*)"', rest)
                if not paths:
                    continue
                path = paths[-1]
                if path.startswith(("/proc", "/sys", "/dev/null")):
                    continue
                k = (typ_of.get(pid, "thread-not-seen"), call.split("at")[0],
                     re.sub(r"[0-9a-f]{8,}|\d{3,}", "N", short(home, path)))
                w[k] = w.get(k, 0) + 1
    finally:
        shutil.rmtree(d, ignore_errors=True)
    log("   strace -f, writes (open for write/creat/rename/mkdir/unlink) by process type,"
        " from the navigation to the context's disposal:")
    for (typ, call, path), n in sorted(w.items()):
        log("     %-22s %-7s %3d %s" % (typ, call, n, path))


def timing_contexts(port, n, trace):
    home = make_home()
    t0 = time.monotonic()
    b = Browser(home)
    try:
        b.pid()
        t_start = time.monotonic() - t0
        t1 = time.monotonic()
        tabs = []
        t_ctx = 0
        for i in range(n):
            tc = time.monotonic()
            ctx = b.call("Target.createBrowserContext", {"disposeOnDetach": True})[
                "browserContextId"]
            t_ctx += time.monotonic() - tc
            tabs.append((ctx,) + new_tab(b, None, ctx))
        t_setup = time.monotonic() - t1
        if trace:
            b.call("Tracing.start", {"traceConfig": {"includedCategories": [
                "devtools.timeline"]}, "transferMode": "ReportEvents"})
        t2 = time.monotonic()
        for i, (_, _, s) in enumerate(tabs):
            b.send("Page.navigate", {"url": "http://127.0.0.1:%d/page?t=%d" % (port, i)}, s)
        sess = {s for _, _, s in tabs}
        end = time.monotonic() + 60
        while time.monotonic() < end:
            done = {e.get("sessionId") for e in b.events if e["method"] == "Page.loadEventFired"
                    and e["_t"] >= t2}
            if sess <= done:
                break
            time.sleep(0.02)
        t_load = time.monotonic() - t2
        if trace:
            b.call("Tracing.end")
            b.wait_event(lambda e: e["method"] == "Tracing.tracingComplete", 20)
            t_load = time.monotonic() - t2
        t3 = time.monotonic()
        for ctx, tid, s in tabs:
            b.call("Target.disposeBrowserContext", {"browserContextId": ctx})
        t_dispose = time.monotonic() - t3
        log("one browser, a context per URL%s: start %.2f s, %d x (createBrowserContext +"
            " createTarget + attach + Page.enable) %.2f s (%.3f s each, createBrowserContext"
            " alone %.3f s each), all %d navigations"
            " loaded %.2f s, dispose %.2f s; total %.2f s = %.3f s/URL (renderers: %d)" % (
                " + tracing (devtools.timeline)" if trace else "", t_start, n, t_setup, t_setup / n, t_ctx / n, n, t_load, t_dispose,
                time.monotonic() - t0, (time.monotonic() - t0) / n,
                len(renderers(b.pid()))))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)



def exp_timing(port, n):
    log("\n=== 4. timing, %d URLs ===" % n)
    timing_webui()
    for r in range(ROUNDS):  # alternate: the machine's load changes
        log("round %d, load average %s" % (r + 1, open("/proc/loadavg").read().split()[0]))
        timing_contexts(port, n, False)
        timing_contexts_parallel(port, n)
        timing_default(port, n)
        timing_contexts(port, n, True)
        timing_per_url(port, n)



def timing_contexts_parallel(port, n):
    """The same, but every step sent for all URLs at once (as app-chromium.c
    runs its tabs), each step timed."""
    home = make_home()
    t0 = time.monotonic()
    b = Browser(home)
    try:
        b.pid()
        steps = []

        def step(name, reqs):
            t = time.monotonic()
            ids = [b.send(*r) for r in reqs]
            res = [b.wait(i, 120) for i in ids]
            steps.append("%s %.2f s" % (name, time.monotonic() - t))
            return res
        ctxs = [r["browserContextId"] for r in step("createBrowserContext", [
            ("Target.createBrowserContext", {"disposeOnDetach": True})] * n)]
        tids = [r["targetId"] for r in step("createTarget", [
            ("Target.createTarget", {"url": "about:blank", "browserContextId": c})
            for c in ctxs])]
        sess = [r["sessionId"] for r in step("attachToTarget", [
            ("Target.attachToTarget", {"targetId": t, "flatten": True}) for t in tids])]
        step("Page.enable", [("Page.enable", {}, s) for s in sess])
        t2 = time.monotonic()
        step("Page.navigate", [("Page.navigate", {"url": "http://127.0.0.1:%d/page?p=%d" % (
            port, i)}, s) for i, s in enumerate(sess)])
        end = time.monotonic() + 120
        while time.monotonic() < end:
            done = {e.get("sessionId") for e in b.events if e["method"] == "Page.loadEventFired"
                    and e["_t"] >= t2}
            if set(sess) <= done:
                break
            time.sleep(0.02)
        steps.append("all loaded %.2f s after the first navigate" % (time.monotonic() - t2))
        log("one browser, a context per URL, each step for all %d at once: %s; total %.2f s"
            " = %.3f s/URL" % (n, ", ".join(steps), time.monotonic() - t0,
                               (time.monotonic() - t0) / n))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)


WEBUI_OFF = "--disable-features=PreloadTopChromeWebUI,WebUIOmniboxAimPopup"


def timing_webui(k=4):
    """Each context opens a window with its own omnibox-popup WebUI
    (browser_ui targets, a --top-chrome-webui renderer): try without some."""
    for extra in ([], [WEBUI_OFF]):
        home = make_home()
        b = Browser(home, extra)
        try:
            bp = b.pid()
            ts = []
            for i in range(k):
                t = time.monotonic()
                ctx = b.call("Target.createBrowserContext")["browserContextId"]
                new_tab(b, None, ctx)
                ts.append(round(time.monotonic() - t, 2))
            bu = [t for t in b.call("Target.getTargets")["targetInfos"]
                  if t["type"] == "browser_ui"]
            r = renderers(bp)
            log("%s: context+tab s %s, browser_ui targets %d (%s), renderers %d, of them"
                " --top-chrome-webui %d" % (
                    extra or "default flags", ts, len(bu), sorted({t["url"] for t in bu}),
                    len(r), sum(1 for v in r.values() if "--top-chrome-webui" in v[2])))
        finally:
            b.close()
            shutil.rmtree(home, ignore_errors=True)


def timing_default(port, n):
    # the same with 20 tabs in the default context (today's dac shape)
    home = make_home()
    t0 = time.monotonic()
    b = Browser(home)
    try:
        b.pid()
        tabs = [new_tab(b, None, None) for i in range(n)]
        t2 = time.monotonic()
        for i, (_, s) in enumerate(tabs):
            b.send("Page.navigate", {"url": "http://127.0.0.1:%d/page?u=%d" % (port, i)}, s)
        sess = {s for _, s in tabs}
        end = time.monotonic() + 60
        while time.monotonic() < end:
            done = {e.get("sessionId") for e in b.events if e["method"] == "Page.loadEventFired"
                    and e["_t"] >= t2}
            if sess <= done:
                break
            time.sleep(0.02)
        log("one browser, %d tabs in the default context (today's dac): total %.2f s ="
            " %.3f s/URL (renderers: %d)" % (n, time.monotonic() - t0,
                                             (time.monotonic() - t0) / n,
                                             len(renderers(b.pid()))))
    finally:
        b.close()
        shutil.rmtree(home, ignore_errors=True)



def timing_per_url(port, n):
    # one browser per URL, in sequence
    k = min(n, 5)
    t0 = time.monotonic()
    for i in range(k):
        home = make_home()
        b = Browser(home)
        try:
            tid, sess = new_tab(b, None, None)
            navigate(b, sess, "http://127.0.0.1:%d/page?b=%d" % (port, i))
        finally:
            b.close()
            shutil.rmtree(home, ignore_errors=True)
    per = (time.monotonic() - t0) / k
    log("one browser per URL, sequential (start + tab + load + close, %d runs): %.3f s/URL,"
        " so %.1f s for %d URLs" % (k, per, per * n, n))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--urls", type=int, default=20)
    ap.add_argument("--only", default="1234")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    global ROUNDS
    ROUNDS = a.rounds
    use_strace = not a.no_strace and shutil.which("strace") and os.geteuid() == 0
    ver = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip()
    log("%s (%s), %d CPUs, uid %d (Chromium runs as %s)" % (
        ver, CHROMIUM, os.cpu_count(), os.geteuid(),
        "nobody" if os.geteuid() == 0 else "this user"))
    srv, port = start_server()
    log("loopback server pid %d on 127.0.0.1:%d" % (srv.pid, port))
    try:
        if "1" in a.only:
            exp_pids(port)
        if "2" in a.only:
            exp_downloads(port)
        if "3" in a.only:
            exp_disk(port, use_strace)
        if "4" in a.only:
            exp_timing(port, a.urls)
    finally:
        os.kill(srv.pid, signal.SIGTERM)
        srv.wait()


if __name__ == "__main__":
    main()
