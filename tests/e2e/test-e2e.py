#!/usr/bin/env python3
"""End-to-end test (issue 6 item 4): capture-server with the local-sandbox
backend starts real capture-clients, which visit a list of 30 URLs of the
bundled test web (27 benign, 3 malicious) in sandboxes with real Chromium and
the test application.

  test-e2e.py BUILD MODE        MODE = seq | bulk | dac | kill-client | kill-server
                                       | pushed-rules

Checks: every URL ends in exactly one of safe.log / malicious.log /
error.log with the right verdict; malicious URLs have an event log, an
evidence zip (dropped file, pcap) and a JSON report; reverts happen after
malicious visits only; killing a client (kill-client) or the server (then
`resume`, kill-server) in the middle loses no URL and duplicates none.
pushed-rules: exclusion lists pushed by the server (send-exclusion-lists)
take effect in the client: the same three URLs are scanned twice with one
client, first without and then with the server's rules; a URL whose file and
process events are exactly what the pushed rules exclude goes from malicious
to safe (also after a revert, when the client reconnects and the rules come
again), while a URL doing something the rules do not cover stays malicious.
The process events also carry their command line (our system-event extension
`command-line`, docs/protocol.md), which the server keeps in the event log.
Needs root.  Uses only the test web's netns (scripts/testweb) and loopback.
"""
import csv
import glob
import json
import os
import re
import signal
import sqlite3
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


def quote(script):
    import urllib.parse
    return urllib.parse.quote(script)


def run_pushed(sub, push, urls, port):
    """One server run of `urls` (seq, one client); push: send the rules."""
    out = os.path.join(OUT, sub)
    os.makedirs(out)
    env = dict(os.environ, BUILD=BUILD)
    cfg = subprocess.run([os.path.join(TOP, "scripts", "local-config"), BUILD, out, "seq", "1",
                          "1", "0"], check=True, capture_output=True, text=True, env=env).stdout
    # Exactly the events of the "excluded" URL: its file (Create, Write of
    # one path by capture-testapp) and its process (sleep started by it).
    app = "/usr/local/bin/capture-testapp"
    with open(os.path.join(out, "file.exl"), "w") as f:
        f.write("# pushed by the server (test-e2e.py pushed-rules)\n")
        f.write(f"+\tCreate\t{re.escape(app)}\t/tmp/capture-pushed-ok\n")
        f.write(f"+\tWrite\t{re.escape(app)}\t/tmp/capture-pushed-ok\n")
    with open(os.path.join(out, "process.exl"), "w") as f:
        f.write(f"+\tsleep\t{re.escape(app)}\t/usr/bin/sleep\n")
    if push:
        cfg = cfg.replace('terminate="true"/>', 'terminate="true"\n          send-exclusion-lists="true"/>')
    cfg = cfg.replace("</config>", '  <exclusion-list monitor="file" file="file.exl"/>\n'
                      '  <exclusion-list monitor="process" file="process.exl"/>\n</config>')
    with open(os.path.join(out, "config.xml"), "w") as f:
        f.write(cfg)
    with open(os.path.join(out, "urls.txt"), "w") as f:
        f.write("\n".join(urls) + "\nend\n")
    with open(os.path.join(out, "server.log"), "ab") as log:
        p = subprocess.Popen([SERVER, "-s", f"127.0.0.1:{port}", "-c", "config.xml", "-o", out,
                              "-f", "urls.txt"], stdout=log, stderr=subprocess.STDOUT, cwd=out,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            rc = -1

    def verdicts(name):
        path = os.path.join(out, "log", name)
        if not os.path.exists(path):
            return []
        with open(path, newline="") as f:
            return [url_of(r) for r in csv.reader(f) if r]
    if rc != 0:
        fail(f"{sub}: capture-server exited with {rc} (see {out}/server.log)")
    with open(os.path.join(out, "server.log"), errors="replace") as f:
        text = f.read()
    return verdicts("safe.log"), verdicts("malicious.log"), verdicts("error.log"), text, out


def main_pushed():
    sh("rm", "-rf", OUT)
    os.makedirs(OUT)
    env = dict(os.environ, BUILD=BUILD)
    sh(os.path.join(TOP, "scripts", "testweb"), "--no-doc", "start", env=env,
       stdout=subprocess.DEVNULL)
    # sleep lives long enough for its command line to be read (a process
    # that has exited by then is reported without one)
    ok = quote("write /tmp/capture-pushed-ok x; exec /usr/bin/sleep 2")
    other = quote("write /tmp/capture-pushed-other x")
    excl = [f"{E}/testapp/run?n=1&script={ok}", f"{E}/testapp/run?n=2&script={ok}"]
    flagged = f"{E}/testapp/run?n=3&script={other}"
    # excluded, then malicious (a revert: the client reconnects and gets
    # the rules again), then excluded again
    urls = [excl[0] + "::testapp::0", flagged + "::testapp::0", excl[1] + "::testapp::0"]
    port = 17000 + os.getpid() % 1000
    for push in (False, True):
        sub = "pushed" if push else "local-only"
        safe, mal, err, log, out = run_pushed(sub, push, urls, port + (1 if push else 0))
        print(f"{sub}: safe {len(safe)}, malicious {len(mal)}, error {len(err)}")
        if err:
            fail(f"{sub}: URLs in error.log: {err}")
        want_mal = [flagged] + ([] if push else excl)
        want_safe = excl if push else []
        if sorted(mal) != sorted(want_mal) or sorted(safe) != sorted(want_safe):
            fail(f"{sub}: malicious {mal}, safe {safe}; want malicious {want_mal}, "
                 f"safe {want_safe}")
        m = re.search(r"send-exclusion-lists: (\d+) rules", log)
        if push and (not m or int(m.group(1)) != 3):
            fail(f"{sub}: the server did not announce 3 rules to send: {m and m.group(0)}")
        if not push and m:
            fail(f"{sub}: rules sent although send-exclusion-lists is false")
        m = re.search(r"(\d+) visits, (\d+) reverts", log)
        if not m or int(m.group(2)) < 1:
            fail(f"{sub}: no revert after the malicious URL: {m and m.group(0)}")
        # the event logs of the malicious URLs: what was (not) excluded
        reports = {}
        for path in glob.glob(os.path.join(out, "reports", "*.json")):
            with open(path) as f:
                r = json.load(f)
            reports[r.get("url")] = r
        ev = "\n".join(reports.get(flagged, {}).get("events") or [])
        if "/tmp/capture-pushed-other" not in ev:
            fail(f"{sub}: the flagged URL's events lack its file: {ev}")
        if not push:
            # without the rules: the file and the process, with its command
            # line (the command-line extension, kept in the event log)
            evs = ["\n".join(reports.get(u, {}).get("events") or []) for u in excl]
            for want in ('"Create","/tmp/capture-pushed-ok"', '"Write","/tmp/capture-pushed-ok"',
                         '"created","', '"terminated","'):
                for u, ev in zip(excl, evs):
                    if want not in ev:
                        fail(f"{sub}: {want} missing from the events of {u}: {ev}")
            # the command line is read while sleep runs (2 s): in at least
            # one of the two visits even on a loaded machine
            if not any('"/usr/bin/sleep","/usr/bin/sleep 2"' in ev for ev in evs):
                fail(f"{sub}: no command line on the process events: {evs}")
            # and in the results database, with the event's time and pid
            db = sqlite3.connect(os.path.join(out, "results.db"))
            rows = db.execute("SELECT time, process_id FROM event WHERE type = 'process'"
                              " AND command_line = '/usr/bin/sleep 2'").fetchall()
            db.close()
            if not rows or not all(t and p for t, p in rows):
                fail(f"{sub}: results.db: process events with the command line: {rows}")
    print("ok")


def main():
    if MODE == "pushed-rules":
        return main_pushed()
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
        killed = pids[0]
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
    if MODE == "kill-client":
        # the restarted client removed the killed one's sandboxes (tmpfs, cgroups)
        left = [n for n in os.listdir("/run/capture/sandbox") if n.startswith(f"sb{killed}-")]
        if left:
            fail(f"sandboxes of the killed client left behind: {left}")

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
