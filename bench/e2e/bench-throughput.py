#!/usr/bin/env python3
"""Throughput benchmark (issue 6): correctly classified URLs per hour on this
machine, capture-server + local capture-clients (one per core) + Chromium in
sandboxes, on the bundled test web (simple pages).

  bench-throughput.py BUILD [N_URLS] [VISIT_TIMES] [MODES]
      N_URLS       URLs per run (default 100: 1 % must be one URL)
      VISIT_TIMES  comma list (default 0; docs/benchmarks.md also has 5 with 40 URLs)
      MODES        comma list (default seq,bulk,dac)

For every mode x visit time x malicious share (0 %, 1 %, 10 %): URLs/hour,
time to the first verdict, whether every verdict was right, and per
malicious URL the extra visits and reverts compared with the 0 % run.  The
baseline, measured in the same run: the same benign URLs visited by the same
Chromium with no honeypot (a headless Chromium per URL, as many at a time as
there are clients, in the gateway netns, no sandbox, no monitors): the
physical limit of this machine.  Prints a Markdown table.
"""
import csv
import json
import os
import re
import select
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

BUILD = os.path.realpath(sys.argv[1])
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
VTIMES = [int(x) for x in (sys.argv[3] if len(sys.argv) > 3 else "0").split(",")]
MODES = (sys.argv[4] if len(sys.argv) > 4 else "seq,bulk,dac").split(",")
TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(BUILD, "bench-throughput")
SERVER = os.path.join(BUILD, "src", "server", "capture-server")
CLIENTS = os.cpu_count() or 2
W = "http://www.capture-test.example"
GROUP = {"seq": 1, "bulk": 5, "dac": 20}
E = "http://evil.capture-test.example"
RUN = 0


def url_list(n, share, vt):
    n_mal = round(n * share / 100)
    step = n // n_mal if n_mal else 0
    lines, mal = [], set()
    for i in range(n):
        if n_mal and i % step == step // 2 and len(mal) < n_mal:
            u = f"{E}/drive-by.html?n={i}"
            mal.add(u)
        else:
            u = f"{W}/plain.html?n={i}"
        lines.append(f"{u}::chromium::{vt}")
    return lines, mal


def read(out, name):
    p = os.path.join(out, "log", name)
    if not os.path.exists(p):
        return []
    return [r for r in csv.reader(open(p, newline="")) if len(r) > 3]


def run(mode, vt, share):
    global RUN
    RUN += 1
    out = os.path.join(OUT, f"{mode}-{vt}-{share}")
    subprocess.run(["rm", "-rf", out], check=True)
    os.makedirs(out)
    group = GROUP[mode]
    with open(os.path.join(out, "config.xml"), "w") as f:
        subprocess.run([os.path.join(TOP, "scripts", "local-config"), BUILD, out, mode,
                        str(group), str(CLIENTS), str(vt)], stdout=f, check=True)
    lines, mal = url_list(N, share, vt)
    data = ("\n".join(lines) + "\n").encode()
    port = 18000 + RUN
    t0 = time.time()
    p = subprocess.Popen([SERVER, "-s", f"127.0.0.1:{port}", "-c", "config.xml", "-o", out,
                          "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, cwd=out)
    p.stdin.write(data)
    p.stdin.close()
    first = None
    text = b""
    while p.poll() is None:
        if first is None and (read(out, "safe.log") or read(out, "malicious.log")):
            first = time.time() - t0
        time.sleep(0.1)
    text = p.stdout.read().decode(errors="replace")
    elapsed = time.time() - t0
    if first is None:
        first = elapsed
    safe = {r[3] for r in read(out, "safe.log")}
    bad = {r[3] for r in read(out, "malicious.log")}
    err = {r[3] for r in read(out, "error.log")}
    urls = [x.split("::")[0] for x in lines]
    right = sum(1 for u in urls if (u in bad) == (u in mal) and u not in err and
                (u in safe or u in bad))
    m = re.search(r"(\d+) visits, (\d+) reverts", text)
    visits, reverts = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    return dict(mode=mode, vt=vt, share=share, n=len(urls), mal=len(mal), elapsed=elapsed,
                first=first, right=right, err=len(err), visits=visits, reverts=reverts)


class Pipe:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fds 3/4)."""

    def __init__(self, group, vt, udir):
        r_in, w_in = os.pipe()    # we write -> browser reads fd 3
        r_out, w_out = os.pipe()  # browser writes fd 4 -> we read
        hosts = "MAP *.capture-test.example 198.51.100.10"
        cmd = ["ip", "netns", "exec", "capture-gw", "/usr/lib/chromium/chromium",
               "--headless=new", "--no-sandbox", "--no-first-run", "--disable-gpu",
               "--remote-debugging-pipe", f"--user-data-dir={udir}",
               f"--host-resolver-rules={hosts}", "about:blank"]

        def fds():
            a, b = os.dup(r_in), os.dup(w_out)  # r_in/w_out may be 3 or 4
            os.dup2(a, 3)
            os.dup2(b, 4)
        # close_fds=False: the pipes are close-on-exec, only fds 3 and 4 (made
        # by dup2 in the child) are inherited
        self.p = subprocess.Popen(cmd, preexec_fn=fds, close_fds=False,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in)
        os.close(w_out)
        self.w, self.r, self.buf, self.id = w_in, r_out, b"", 0

    def send(self, method, params=None, session=None):
        self.id += 1
        m = {"id": self.id, "method": method, "params": params or {}}
        if session:
            m["sessionId"] = session
        os.write(self.w, json.dumps(m).encode() + b"\0")
        return self.id

    def recv(self):
        while b"\0" not in self.buf:
            if not select.select([self.r], [], [], 60)[0]:
                raise TimeoutError("no answer from the browser in 60 s")
            d = os.read(self.r, 65536)
            if not d:
                raise EOFError
            self.buf += d
        m, self.buf = self.buf.split(b"\0", 1)
        return json.loads(m)

    def close(self):
        self.p.kill()
        self.p.wait()
        os.close(self.w)
        os.close(self.r)


def visit_group(urls, vt, udir):
    """One browser, one tab per URL (the dac shape; a group of 1 = seq)."""
    b = Pipe(urls, vt, udir)
    try:
        pending, sessions = {}, {}
        for u in urls:
            pending[b.send("Target.createTarget", {"url": "about:blank"})] = ("create", u)
        loading = set()
        deadline = time.time() + 60
        while (pending or loading) and time.time() < deadline:
            m = b.recv()
            if "id" in m and m["id"] in pending:
                kind, u = pending.pop(m["id"])
                if kind == "create":
                    tid = m["result"]["targetId"]
                    pending[b.send("Target.attachToTarget",
                                   {"targetId": tid, "flatten": True})] = ("attach", u)
                elif kind == "attach":
                    sid = m["result"]["sessionId"]
                    sessions[sid] = u
                    # navigate only once Page events are on, or the load event is lost
                    pending[b.send("Page.enable", session=sid)] = ("enable", u)
                    loading.add(sid)
                elif kind == "enable":
                    b.send("Page.navigate", {"url": u}, session=m["sessionId"])
            elif m.get("method") == "Page.loadEventFired":
                loading.discard(m.get("sessionId"))
        time.sleep(vt)
    finally:
        b.close()


def baseline(vt, group):
    """The same benign URLs, the same Chromium driven the same way (DevTools
    over a pipe, one tab per URL, `group` URLs per browser), no sandbox, no
    monitors, as many browsers at a time as there are clients."""
    prof = os.path.join(OUT, "baseline-profiles")
    subprocess.run(["rm", "-rf", prof], check=True)
    urls = [f"{W}/plain.html?n={i}" for i in range(N)]
    groups = [urls[i:i + group] for i in range(0, N, group)]
    t0 = time.time()
    with ThreadPoolExecutor(CLIENTS) as ex:
        list(ex.map(lambda a: visit_group(a[1], vt, os.path.join(prof, str(a[0]))),
                    enumerate(groups)))
    return time.time() - t0


def main():
    os.makedirs(OUT, exist_ok=True)
    env = dict(os.environ, BUILD=BUILD)
    subprocess.run([os.path.join(TOP, "scripts", "testweb"), "--no-doc", "start"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    rows = []
    base = {}
    for vt in VTIMES:
        for mode in MODES:
            base[(mode, vt)] = baseline(vt, GROUP[mode] if mode != "bulk" else 1)
            for share in (0, 1, 10):
                r = run(mode, vt, share)
                rows.append(r)
                print(f"# {mode} vt={vt} {share}%: {r['n'] * 3600 / r['elapsed']:.0f} URLs/h, "
                      f"{r['right']}/{r['n']} right", file=sys.stderr, flush=True)
    print(f"\nThroughput, {N} URLs per run, {CLIENTS} clients, Chromium headless, "
          f"bundled test web (plain pages; malicious = drive-by download)\n")
    print("| mode | visit time | malicious | URLs/h | first verdict | right | errors |"
          " visits | reverts | extra visits / malicious URL | extra reverts / malicious URL |"
          " vs. no honeypot |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        zero = next(x for x in rows if x["mode"] == r["mode"] and x["vt"] == r["vt"]
                    and x["share"] == 0)
        ev = er = "-"
        if r["mal"]:
            ev = f"{(r['visits'] - zero['visits']) / r['mal']:.1f}"
            er = f"{(r['reverts'] - zero['reverts']) / r['mal']:.1f}"
        uph = r["n"] * 3600 / r["elapsed"]
        buph = N * 3600 / base[(r["mode"], r["vt"])]
        print(f"| {r['mode']} | {r['vt']} s | {r['share']} % ({r['mal']}) | {uph:.0f} |"
              f" {r['first']:.1f} s | {r['right']}/{r['n']} | {r['err']} | {r['visits']} |"
              f" {r['reverts']} | {ev} | {er} | {uph / buph:.2f} |")
    for (mode, vt), t in base.items():
        g = GROUP[mode] if mode != "bulk" else 1
        print(f"\nNo honeypot ({mode} shape: {g} URL(s) per browser, {CLIENTS} browsers at a "
              f"time), visit time {vt} s: {N} URLs in {t:.1f} s = {N * 3600 / t:.0f} URLs/h")


if __name__ == "__main__":
    main()
