#!/usr/bin/env python3
"""End-to-end test (issue 6 item 4): capture-server with the local-sandbox
backend starts real capture-clients, which visit a list of 30 URLs of the
bundled test web (27 benign, 3 malicious) in sandboxes with real Chromium and
the test application.

  test-e2e.py BUILD MODE        MODE = seq | bulk | dac | kill-client | kill-server

Checks: every URL ends in exactly one of safe.log / malicious.log /
error.log with the right verdict; malicious URLs have an event log, an
evidence zip (dropped file, pcap) and a JSON report; reverts happen after
malicious visits only; killing a client (kill-client) or the server (then
`resume`, kill-server) in the middle loses no URL and duplicates none.
Needs root.  Uses only the test web's netns (scripts/testweb) and loopback.
"""
import csv
import glob
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile

BUILD = os.path.realpath(sys.argv[1])
MODE = sys.argv[2]
TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(BUILD, "e2e-" + MODE)
SERVER = os.path.join(BUILD, "src", "server", "capture-server")
W = "http://www.capture-test.example"
E = "http://evil.capture-test.example"

BENIGN_PAGES = ["/plain.html", "/js.html", "/iframe.html", "/redirect/301", "/redirect/302",
                "/images.html", "/no-such-page.html", "/download.html", "/slow?ms=500"]
MALICIOUS = [E + "/testapp/drop.html::testapp::0",
             E + "/testapp/listen.html::testapp::1",
             E + "/drive-by.html::chromium::2"]


def url_list():
    lines = []
    for i in range(27):
        page = BENIGN_PAGES[i % len(BENIGN_PAGES)]
        sep = "&" if "?" in page else "?"
        # unique URLs: the query makes every line a different URL
        if i % 9 == 8:
            lines.append(f"{W}/testapp/benign.html?n={i}::testapp::0")
        else:
            lines.append(f"{W}{page}{sep}n={i}::chromium::0")
    # spread the malicious ones through the list
    for k, m in enumerate(MALICIOUS):
        lines.insert(5 + k * 10, m)
    return lines


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, **kw)


def read_log(name):
    path = os.path.join(OUT, "log", name)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [row for row in csv.reader(f) if row]


def url_of(row):
    # "time","verdict","group","url","program","visit time"
    return row[3]


def fail(msg):
    print("FAIL:", msg)
    for n in ("safe.log", "malicious.log", "error.log"):
        print("---", n)
        for r in read_log(n):
            print(" ", r)
    sys.exit(1)


def start_server(cmd, log):
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=OUT,
                            start_new_session=True)


def wait_server(p, timeout):
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        fail(f"server did not finish within {timeout} s (see {OUT}/server.log)")


def client_pids():
    out = subprocess.run(["pgrep", "-f", os.path.join(BUILD, "src/client/capture-client")],
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def done_count():
    return sum(len(read_log(n)) for n in ("safe.log", "malicious.log", "error.log"))


def main():
    sh("rm", "-rf", OUT)
    os.makedirs(OUT)
    env = dict(os.environ, BUILD=BUILD)
    sh(os.path.join(TOP, "scripts", "testweb"), "--no-doc", "start", env=env,
       stdout=subprocess.DEVNULL)
    alg = {"seq": "seq", "bulk": "bulk"}.get(MODE, "dac")
    group = {"seq": "1", "bulk": "5"}.get(MODE, "5")
    with open(os.path.join(OUT, "config.xml"), "w") as f:
        sh(os.path.join(TOP, "scripts", "local-config"), BUILD, OUT, alg, group, "2", "0",
           stdout=f, env=env)
    urls = url_list()
    with open(os.path.join(OUT, "urls.txt"), "w") as f:
        f.write("\n".join(urls) + "\nend\n")
    port = 17000 + os.getpid() % 1000
    cmd = [SERVER, "-s", f"127.0.0.1:{port}", "-c", "config.xml", "-o", OUT, "-f", "urls.txt"]
    log = open(os.path.join(OUT, "server.log"), "ab")
    t0 = time.time()
    p = start_server(cmd, log)
    if MODE == "kill-client":
        while done_count() < 8 and p.poll() is None:
            time.sleep(0.2)
        pids = client_pids()
        if not pids:
            fail("no capture-client running to kill")
        os.kill(pids[0], signal.SIGKILL)
        print(f"killed capture-client {pids[0]} after {done_count()} URLs")
    if MODE == "kill-server":
        while done_count() < 8 and p.poll() is None:
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGKILL)  # the server and its clients, as a crash would
        p.wait()
        print(f"killed capture-server after {done_count()} URLs")
        time.sleep(1)
        # the sandboxes of the killed clients are gone with their processes? wait for them
        for pid in client_pids():
            os.kill(pid, signal.SIGKILL)
        p = start_server([SERVER, "-s", f"127.0.0.1:{port}", "-c", "config.xml", "-o", OUT,
                          "resume"], log)
    rc = wait_server(p, 600)
    elapsed = time.time() - t0
    if rc != 0:
        fail(f"capture-server exited with {rc}")
    if client_pids():
        fail("capture-clients still running after the server ended")

    safe = [url_of(r) for r in read_log("safe.log")]
    mal = [url_of(r) for r in read_log("malicious.log")]
    err = [url_of(r) for r in read_log("error.log")]
    every = safe + mal + err
    want = [line.split("::")[0] for line in urls]
    for u in want:
        n = every.count(u)
        if n != 1:
            fail(f"{u} is in the logs {n} times (want exactly once)")
    if len(every) != len(want):
        fail(f"{len(every)} verdicts for {len(want)} URLs")
    want_mal = [m.split("::")[0] for m in MALICIOUS]
    for u in want_mal:
        if u not in mal:
            fail(f"malicious URL {u} not in malicious.log")
    for u in mal:
        if u not in want_mal:
            fail(f"benign URL {u} classified malicious")
    if err:
        fail(f"URLs in error.log: {err}")

    # evidence of each malicious URL: event log, zip, JSON report
    logdir = os.path.join(OUT, "log")
    reports = {}
    for path in glob.glob(os.path.join(OUT, "reports", "*.json")):
        with open(path) as f:
            r = json.load(f)
        reports[r.get("url")] = r
    for u in want_mal:
        r = reports.get(u)
        if not r:
            fail(f"no JSON report for {u}")
        if r.get("verdict") != "malicious" or not r.get("events"):
            fail(f"report of {u}: verdict {r.get('verdict')}, {len(r.get('events') or [])} events")
        ev = [e for e in r.get("evidence", []) if e.endswith(".log")]
        zips = [e for e in r.get("evidence", []) if e.endswith(".zip")]
        if not ev or not os.path.exists(os.path.join(OUT, ev[0])):
            fail(f"no event log for {u}: {r.get('evidence')}")
        if not zips:
            fail(f"no evidence zip for {u}: {r.get('evidence')}")
        names = zipfile.ZipFile(os.path.join(OUT, zips[0])).namelist()
        if "capture.pcap" not in names:
            fail(f"zip of {u} has no capture.pcap: {names}")
        if u.endswith("drop.html") and "files/tmp/capture-testapp-drop.sh" not in names:
            fail(f"zip of {u} lacks the dropped file: {names}")
    for u in want:
        if u not in reports:
            fail(f"no JSON report for {u}")

    # reverts: a client connects once at start and once after every revert
    with open(os.path.join(OUT, "server.log"), errors="replace") as f:
        text = f.read()
    m = re.search(r"(\d+) visits, (\d+) reverts", text)
    visits, reverts = (int(m.group(1)), int(m.group(2))) if m else (-1, -1)
    print(f"{MODE}: {len(want)} URLs, {len(mal)} malicious, {visits} visits, {reverts} reverts,"
          f" {elapsed:.1f} s ({len(want) * 3600 / elapsed:.0f} URLs/h)")
    if MODE == "seq" and visits != len(want):
        fail(f"seq: {visits} visits for {len(want)} URLs")
    visiting = {}
    for row in read_log("progress.log"):
        if len(row) > 3 and row[1] == "visiting":
            visiting[row[3]] = visiting.get(row[3], 0) + 1
    if MODE == "bulk":
        # bulk attributes events to URLs exactly: nothing is visited twice
        again = [u for u in want if visiting.get(u, 0) != 1]
        if again:
            fail(f"bulk: visited more than once (or never): {again}")
    if MODE in ("seq", "bulk") and reverts != len(want_mal):
        # one revert per malicious visit: benign visits go on in the same sandbox
        fail(f"{MODE}: {reverts} reverts for {len(want_mal)} malicious URLs")
    print("ok")


if __name__ == "__main__":
    main()
