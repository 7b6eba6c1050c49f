"""farm.py - a farm of "hosts" for tests: one server host and N client hosts,
each a network namespace of its own, on a test bridge (issue 12).

    with Farm(clients=3) as farm:
        srv = farm.run(farm.server, [SERVER, "-s", f"{farm.server.addr}:7070", ...])
        farm.run(farm.hosts[0], [CLIENT, "-s", farm.server.addr, ...])
        farm.lose(farm.hosts[0])          # kill -9 its processes, delete its veth and netns

Topology (all of it inside namespaces this module creates; nothing on the
machine's own network):

    netns <prefix>-lan:  bridge br0 (no address), veths h0, h1, ... enslaved
    netns <prefix>-srv:  eth0 192.0.2.1/24   (peer of h0)
    netns <prefix>-cK:   eth0 192.0.2.(10+K)/24 (peer of hK), K = 1..N

No default route anywhere: a host reaches only 192.0.2.0/24.  <prefix> is
"capture-farm<pid>", which scripts/reset-host removes (its `capture-`
namespaces) if a run is killed before its teardown.

Processes run in a host with `nsenter --net=/run/netns/NAME`, NOT `ip netns
exec`: the latter also unshares the mount namespace and mounts a fresh /sys
for the netns, which hides /sys/fs/cgroup (checked on 6.18: the cgroup
hierarchies are empty inside), and capture-client needs the cgroups of the
machine.  nsenter changes the network namespace only; the command is
exec'd, so the pid returned is the program's.

What a host namespace does NOT isolate: the mount namespace, the cgroups and
the named netns in /run/netns are the machine's.  A capture-client in a host
namespace therefore uses the machine's one sandbox gateway (`capture-gw`, a
named netns, brought up by whichever client comes first or by
scripts/testweb) and its sandboxes reach the test web through it as any
local client's do; only the client's control connection to the server goes
over the farm's bridge.  A "host" is a network identity, not a machine.

capture-client cannot run inside a host namespace at all today: its process
monitor's proc connector works only from the init network namespace (the
kernel's connector exists in init_net only; mon-process.c says so), and a
client started there exits with "monitor process: Connection refused".  So
a client "on" a host runs in the machine's namespace and reaches the server
through relay(): a relay process of that host, started in the host's netns,
accepts on 127.0.0.1 of the machine's namespace (a socket it opened there
before it entered the host's netns) and connects from the host's address over
the bridge.  The server sees the host's address; losing the host (veth
deleted first, then the relay and the clients kill -9'd) leaves the server's
connections without FIN or RST, as a power cut would.
"""
import os
import signal
import subprocess
import sys
import time

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "ip"
NSENTER = "/usr/bin/nsenter" if os.path.exists("/usr/bin/nsenter") else "nsenter"


# The relay (run with python3 -c): listen on 127.0.0.1 here, then enter the
# host's netns; every later socket (the connections out) is the host's.
_RELAY = r"""
import ctypes, os, socket, sys, threading
ns, addr, port, wfd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
fd = os.open(ns, os.O_RDONLY | os.O_CLOEXEC)
if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
    sys.exit("relay: setns: " + os.strerror(ctypes.get_errno()))
os.write(wfd, b"%d\n" % ls.getsockname()[1])
os.close(wfd)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = ls.accept()
    try:
        o = socket.create_connection((addr, port), timeout=5)
        o.settimeout(None)
    except OSError:
        c.close()
        continue
    for a, b in ((c, o), (o, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""


def _ip(*args):
    subprocess.run([IP, *args], check=True)


def _children():
    """ppid -> [pid] of every process of the machine."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _tree(pid):
    """pid and all its descendants (children first is not needed: SIGKILL)."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


class Host:
    def __init__(self, farm, name, index, addr):
        self.farm, self.name, self.index, self.addr = farm, name, index, addr
        self.netns = f"{farm.prefix}-{name}"
        self.procs = []  # Popen objects started in this host
        self.lost = False

    def __repr__(self):
        return f"<host {self.name} {self.addr}>"


class Farm:
    """A server host and `clients` client hosts on one bridge.  Use as a
    context manager (teardown even on failure) or call teardown()."""

    def __init__(self, clients, prefix=None):
        self.prefix = prefix or f"capture-farm{os.getpid()}"
        self.lan = f"{self.prefix}-lan"
        self.server = Host(self, "srv", 0, "192.0.2.1")
        self.hosts = [Host(self, f"c{k}", k, f"192.0.2.{10 + k}") for k in range(1, clients + 1)]
        self._made = []  # netns names created, in order

    # ---- set-up ----
    def __enter__(self):
        try:
            self.build()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc):
        self.teardown()
        return False

    def _netns_add(self, name):
        _ip("netns", "add", name)
        self._made.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def build(self):
        self._netns_add(self.lan)
        _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.lan, "link", "set", "br0", "up")
        for h in [self.server, *self.hosts]:
            self._netns_add(h.netns)
            dev = f"h{h.index}"
            # both ends are created inside namespaces: nothing on the machine
            _ip("-n", self.lan, "link", "add", dev, "type", "veth", "peer", "name", "eth0",
                "netns", h.netns)
            _ip("-n", self.lan, "link", "set", dev, "master", "br0", "up")
            _ip("-n", h.netns, "addr", "add", f"{h.addr}/24", "dev", "eth0")
            _ip("-n", h.netns, "link", "set", "eth0", "up")

    # ---- processes ----
    def run(self, host, argv, **kw):
        """Starts argv in host's network namespace (its own session); returns
        the Popen.  kw go to Popen (stdout, cwd, env...)."""
        if host.lost:
            raise RuntimeError(f"{host} is lost")
        kw.setdefault("start_new_session", True)
        p = subprocess.Popen([NSENTER, f"--net=/run/netns/{host.netns}", "--", *argv], **kw)
        host.procs.append(p)
        return p

    def relay(self, host, addr, port):
        """A TCP relay of host: returns the port on 127.0.0.1 (machine's
        netns) whose connections go to addr:port from host's address."""
        r, w = os.pipe()
        p = subprocess.Popen([sys.executable, "-c", _RELAY, f"/run/netns/{host.netns}", addr,
                              str(port), str(w)], pass_fds=(w,), start_new_session=True)
        os.close(w)
        host.procs.append(p)
        with os.fdopen(r) as f:
            line = f.readline().strip()
        if not line:
            raise RuntimeError(f"relay of {host} did not start")
        return int(line)

    def pids(self, host):
        """Pids of host's started processes that still run (with descendants)."""
        out = []
        for p in host.procs:
            if p.poll() is None:
                out.extend(_tree(p.pid))
        return out

    def _kill(self, host):
        # the whole trees (a client's sandboxes and visitors too), by pid
        for pid in self.pids(host):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in host.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def lose(self, host):
        """The host is gone at once, as if its power were cut: kill -9 of
        every process it runs (by pid, with descendants), its veth and its
        netns deleted.  The server gets no FIN or RST from its clients."""
        # the link first: what the killed processes' sockets send on close
        # (FIN, RST) must not reach the server
        subprocess.run([IP, "-n", self.lan, "link", "del", f"h{host.index}"],
                       stderr=subprocess.DEVNULL)
        self._kill(host)
        host.lost = True
        self._netns_del(host.netns)

    def _netns_del(self, name):
        if name in self._made:
            subprocess.run([IP, "netns", "delete", name], stderr=subprocess.DEVNULL)
            self._made.remove(name)

    # ---- teardown ----
    def teardown(self):
        """Ends every process started (by pid) and deletes every namespace
        (the veths go with them).  Idempotent."""
        for h in [*self.hosts, self.server]:
            if not h.lost:
                self._kill(h)
        for name in list(reversed(self._made)):
            self._netns_del(name)


def wait_until(pred, timeout, step=0.2):
    """True as soon as pred() is, False after timeout seconds."""
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())
