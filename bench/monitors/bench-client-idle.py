#!/usr/bin/env python3
"""CPU used by capture-client while its sandbox is idle (issue 4 benchmark,
target < 1 % of one core).

  bench-client-idle.py BUILD [SECONDS]

Runs the real capture-client (standalone, all four monitors, packet capture
on) on a test-web page whose only instruction makes capture-testapp sleep:
the sandbox holds one sleeping process for the whole visit time.  After the
visit has started and settled, the client's CPU time (utime + stime of
/proc/PID/stat, all its threads) is read twice, SECONDS apart (default 30),
and printed as a percentage of one core.  The same is done with monitors
switched off one after the other (network: its sock_diag poll every 50 ms is
the only periodic work; process: the proc connector carries every fork,
exec and exit of the whole host, so its cost follows the host's process
churn, not the sandbox's), so the table shows what each costs.  The sandbox's pid 1 (a separate
process, the client binary waiting for its children) and the client's packet
capture process (its other child) are measured too, and the host's fork
rate during the window (/proc/stat `processes`): the process monitor's cost
follows it.

Root; uses only the test web's netns (scripts/testweb).  Prints the load
average before and after: the figures are only meaningful on a quiet machine.
"""
import os
import subprocess
import sys
import time

BUILD = os.path.realpath(sys.argv[1])
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
TOP = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLIENT = os.path.join(BUILD, "src", "client", "capture-client")
W = "http://www.capture-test.example"
TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def host_forks():
    """Processes forked on the whole host since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def sandbox_init(client_pid):
    """The client's child running the client binary (the sandbox's pid 1)."""
    exe = os.path.realpath(CLIENT)
    for c in children(client_pid):
        try:
            if os.path.realpath(f"/proc/{c}/exe") == exe:
                return c
        except OSError:
            pass
    return None


def run(extra, label):
    env = dict(os.environ, BUILD=BUILD)
    hosts = subprocess.run([os.path.join(TOP, "scripts", "testweb"), "hosts"], env=env,
                           check=True, capture_output=True, text=True).stdout.split("\n")
    args = [CLIENT, "--exclusions", os.path.join(TOP, "etc", "exclusion"),
            "--applications", os.path.join(TOP, "etc", "applications.conf"),
            "--bind", os.path.join(BUILD, "tests", "fixtures", "capture-testapp") +
            ":/usr/local/bin/capture-testapp",
            "--work-dir", os.path.join(BUILD, "bench-client-idle"), "--program", "testapp",
            "--visit-time", str(int(SECONDS + 20))]
    for h in hosts:
        if h.strip():
            a, n = h.split()
            args += ["--host", f"{a}={n}"]
    args += extra
    ms = int((SECONDS + 30) * 1000)
    args += ["--visit", f"{W}/testapp/run?script=sleep%20{ms}"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        # the visit has started when the testapp runs; then let it settle
        t0 = time.time()
        while time.time() - t0 < 60:
            if p.poll() is not None:
                raise SystemExit(f"capture-client ended early: {p.stderr.read()}")
            init = sandbox_init(p.pid)
            if init and any(os.path.basename(os.path.realpath(f"/proc/{c}/exe")) ==
                            "capture-testapp" for c in children(init)
                            if os.path.exists(f"/proc/{c}/exe")):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the visit did not start within 60 s")
        time.sleep(5)
        # the client's other children: the packet capture process
        helpers = [c for c in children(p.pid) if c != init]
        a0, b0, w0 = cpu_ticks(p.pid), cpu_ticks(init), time.monotonic()
        c0 = sum(cpu_ticks(c) for c in helpers)
        f0 = host_forks()
        time.sleep(SECONDS)
        f1 = host_forks()
        a1, b1, w1 = cpu_ticks(p.pid), cpu_ticks(init), time.monotonic()
        c1 = sum(cpu_ticks(c) for c in helpers)
        if p.poll() is not None:
            raise SystemExit("capture-client ended during the measurement")
    finally:
        try:
            os.killpg(p.pid, 15)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
    wall = w1 - w0
    client = 100.0 * (a1 - a0) / TCK / wall
    pid1 = 100.0 * (b1 - b0) / TCK / wall
    cap = 100.0 * (c1 - c0) / TCK / wall
    print(f"| {label:<20} | {wall:5.1f} s | {a1 - a0:5d} | {client:6.3f} % | {cap:6.3f} %"
          f" ({len(helpers)}) | {pid1:6.3f} % | {(f1 - f0) / wall:7.0f} |")
    return client


def main():
    env = dict(os.environ, BUILD=BUILD)
    subprocess.run([os.path.join(TOP, "scripts", "testweb"), "--no-doc", "start"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    print("load before:", os.getloadavg())
    print(f"CPU of capture-client while its sandbox is idle (one sleeping process),"
          f" over {SECONDS:.0f} s; CLK_TCK {TCK}")
    print("| monitors on          | window  | ticks | client     | capture (procs) | sandbox pid 1 |"
          " host forks/s |")
    print("|---|---|---|---|---|---|---|")
    full = run([], "all four")
    run(["--no-monitor", "network"], "all but network")
    run(["--no-monitor", "network", "--no-monitor", "process"], "file + registry")
    run(["--no-monitor", "network", "--no-monitor", "process", "--no-monitor", "file",
         "--no-monitor", "registry"], "none (capture only)")
    print("load after:", os.getloadavg())
    print(f"idle CPU: {full:.3f} % of one core (target < 1 %):",
          "ok" if full < 1.0 else "ABOVE TARGET")


if __name__ == "__main__":
    main()
