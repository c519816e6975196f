#!/usr/bin/python3
"""Client limits under realistic and adversarial addressing.

* Realistic NAT (root): pupils in two client namespaces and a scraper
  in a third reach porter (in its own namespace) through a NAT
  namespace that masquerades with nftables, so all of them arrive from
  one address with ports conntrack picked: the classroom sees no 429,
  the scraper is banned on its own agent only.
* IPv4 spray (no root: 127.0.0.0/8 is all local): 200 000 distinct
  sources, one request each, against a small table: master and worker
  RSS stay flat (within 1 MiB once the table's pages are touched), a
  ban made before survives, a steady abuser keeps getting 429.
* IPv6 spray (root, a private namespace): 100 000 sources inside one
  /64 (a local route and ip_nonlocal_bind) are one client.

Namespaces and links are named h17-<pid>-..., private ranges only, and
removed at the end whatever happens. Every subprocess has a timeout.
The sprays take a minute or two each: set PORTER_SPRAY to a smaller
count to try them quicker (the assertions hold for any count).
"""

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PAGE = "GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: %s\r\n\r\n"


# ---- clients (also run inside namespaces: this file with --client) ---------

def read_response(s):
    """Status and whether the body says banned; None on a closed socket."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    n = 0
    for l in lines[1:]:
        if l.lower().startswith(b"content-length:"):
            n = int(l.split(b":", 1)[1])
    while len(body) < n:
        d = s.recv(65536)
        if not d:
            break
        body += d
    return status, b"blocked" in body


def get(s, path, ua):
    s.sendall((PAGE % (path, ua)).encode())
    return read_response(s)


def classroom(host, port, pupils, assets=30):
    """Pupils at once, each a page and its assets on one connection."""
    seen, lock = [], threading.Lock()
    agents = ["Mozilla/5.0 (X11) Firefox/128.0",
              "Mozilla/5.0 (Windows) Chrome/130.0"]

    def pupil(i):
        got = []
        s = socket.create_connection((host, port), timeout=30)
        for path in ["/index.html"] + ["/a%d.%s" % (a, ("css", "js", "png")[a % 3])
                                       for a in range(assets)]:
            r = get(s, path, agents[i % 7 == 0])
            if r is None:
                s.close()
                s = socket.create_connection((host, port), timeout=30)
                r = get(s, path, agents[i % 7 == 0])
            got.append([r[0], r[1]])
        s.close()
        with lock:
            seen.extend(got)
    ts = [threading.Thread(target=pupil, args=(i,)) for i in range(pupils)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return seen


def scraper(host, port, limit_s=30):
    """Distinct pages as fast as it can, until banned."""
    statuses = []
    s = socket.create_connection((host, port), timeout=30)
    end = time.monotonic() + limit_s
    i = 0
    while time.monotonic() < end:
        r = get(s, "/p%d.html" % (i % 500), "scrapy/2.11")
        if r is None:
            s.close()
            s = socket.create_connection((host, port), timeout=30)
            continue
        statuses.append([r[0], r[1]])
        i += 1
        if r[0] == 429 and r[1]:
            break
    s.close()
    return statuses


def client_main(argv):
    mode, host, port = argv[0], argv[1], int(argv[2])
    if mode == "classroom":
        out = classroom(host, port, int(argv[3]))
    else:
        out = scraper(host, port)
    print(json.dumps(out))


# ---- the server --------------------------------------------------------------

class Porter:
    """porter run with an optional command prefix (ip netns exec NS)."""

    def __init__(self, workdir, listen, limits, prefix=(), workers=2):
        self.workdir = workdir
        self.root = os.path.join(workdir, "root")
        os.makedirs(self.root, exist_ok=True)
        self.conf = os.path.join(workdir, "porter.conf")
        self.pid_file = os.path.join(workdir, "porter.pid")
        with open(self.conf, "w") as f:
            f.write(harness.render_config({
                "listen": [listen], "root": self.root, "workers": workers,
                "pid_file": self.pid_file,
                "log": {"error": "stderr", "access": "off"},
                "client_limits": limits}))
        self.prefix = list(prefix)
        self.lines = []
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            self.prefix + [harness.porter_bin(), "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        harness.wait_until(lambda: any("workers ready" in l for l in self.lines),
                           message="porter did not start:\n" + "\n".join(self.lines))

    def _read(self):
        for l in self.proc.stderr:
            self.lines.append(l.rstrip("\n"))

    def ctl(self, *args):
        r = subprocess.run(self.prefix + [harness.porter_bin(), "-c", self.conf,
                                          "-s"] + list(args),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError("porter -s %s: %s" % (" ".join(args), r.stderr))
        return r.stdout

    def pids(self):
        """The master and its workers."""
        m = self.master()
        with open("/proc/%d/task/%d/children" % (m, m)) as f:
            kids = f.read()
        return [m] + [int(x) for x in kids.split()]

    def master(self):
        with open(self.pid_file) as f:
            return int(f.read())

    def stop(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def site_files(root, pages=0):
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<p>home</p>\n")
    for a in range(30):
        with open(os.path.join(root, "a%d.%s" % (a, ("css", "js", "png")[a % 3])), "w") as f:
            f.write("x" * 100)
    for i in range(pages):
        with open(os.path.join(root, "p%d.html" % i), "w") as f:
            f.write("<p>page</p>")


def sh(*cmd, check=True):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60,
                          check=check)


class NetnsCase(unittest.TestCase):

    def setUp(self):
        harness.require_binary()
        self.workdir = tempfile.mkdtemp(prefix="porter-h17-")
        os.chmod(self.workdir, 0o755)
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.namespaces = []
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)

    def need_root(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (network namespaces): skipped")
        if shutil.which("ip") is None:
            self.skipTest("needs iproute2's ip: skipped")

    def netns(self, name):
        ns = "h17-%d-%s" % (os.getpid(), name)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def in_ns(self, ns, *cmd, timeout=300):
        return subprocess.run(["ip", "netns", "exec", ns] + list(cmd),
                              capture_output=True, text=True, timeout=timeout)


class NatTest(NetnsCase):

    def test_classroom_and_scraper_behind_real_nat(self):
        self.need_root()
        if shutil.which("nft") is None:
            self.skipTest("needs nftables (nft): skipped")
        tag = "%d" % (os.getpid() % 100000)
        srv, nat = self.netns("srv"), self.netns("nat")
        clients = [self.netns("c%d" % i) for i in range(3)]
        # srv <-> nat
        sh("ip", "link", "add", "h17s" + tag, "netns", srv, "type", "veth",
           "peer", "name", "h17n" + tag, "netns", nat)
        sh("ip", "-n", srv, "addr", "add", "10.77.0.1/24", "dev", "h17s" + tag)
        sh("ip", "-n", nat, "addr", "add", "10.77.0.2/24", "dev", "h17n" + tag)
        sh("ip", "-n", srv, "link", "set", "h17s" + tag, "up")
        sh("ip", "-n", nat, "link", "set", "h17n" + tag, "up")
        # a bridge made inside nat (a bridge cannot move between namespaces)
        sh("ip", "-n", nat, "link", "add", "h17br", "type", "bridge")
        sh("ip", "-n", nat, "addr", "add", "192.168.77.1/24", "dev", "h17br")
        sh("ip", "-n", nat, "link", "set", "h17br", "up")
        for i, c in enumerate(clients):
            a, b = "h17c%d" % i, "h17b%d%s" % (i, tag)
            sh("ip", "link", "add", a, "netns", c, "type", "veth", "peer",
               "name", b, "netns", nat)
            sh("ip", "-n", nat, "link", "set", b, "master", "h17br")
            sh("ip", "-n", nat, "link", "set", b, "up")
            sh("ip", "-n", c, "addr", "add", "192.168.77.%d/24" % (11 + i), "dev", a)
            sh("ip", "-n", c, "link", "set", a, "up")
            sh("ip", "-n", c, "route", "add", "default", "via", "192.168.77.1")
        r = self.in_ns(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = subprocess.run(["ip", "netns", "exec", nat, "nft", "-f", "-"], input=(
            "table ip h17nat {\n chain post {\n  type nat hook postrouting "
            "priority srcnat;\n  oifname \"h17n%s\" masquerade\n }\n}\n" % tag),
            capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

        port = 8077
        p = Porter(self.workdir, "10.77.0.1:%d" % port,
                   {"mode": "enforce", "ban": {"ignore_seconds": 2}},
                   prefix=["ip", "netns", "exec", srv])
        site_files(p.root, pages=500)
        self.servers.append(p)
        p.start()
        me = os.path.abspath(__file__)
        # the scraper next door, until banned
        r = self.in_ns(clients[2], sys.executable, me, "--client", "scraper",
                       "10.77.0.1", str(port))
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertIn(429, [s for s, _ in st])
        self.assertTrue(st[-1] == [429, True], "the scraper was never banned")
        bans = [l.split("\t") for l in p.ctl("bans").splitlines() if l]
        self.assertEqual(len(bans), 1, bans)
        # it came through the NAT: the ban is on the NAT's address, one agent
        self.assertTrue(bans[0][0].startswith("10.77.0.2/32 ua:"), bans)
        # the classroom, in two rooms behind the same NAT, at once
        procs = [subprocess.Popen(["ip", "netns", "exec", c, sys.executable, me,
                                   "--client", "classroom", "10.77.0.1",
                                   str(port), "15"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for c in clients[:2]]
        seen = []
        for pr in procs:
            out, err = pr.communicate(timeout=300)
            self.assertEqual(pr.returncode, 0, err)
            seen += json.loads(out)
        self.assertEqual(len(seen), 30 * 31)
        self.assertFalse(any(banned for _, banned in seen))
        self.assertLess(sum(1 for s, _ in seen if s == 429), len(seen) / 100)
        out = p.ctl("client", "10.77.0.2")
        self.assertIn("10.77.0.2/32\taddress", out)


def spray_count(default):
    return int(os.environ.get("PORTER_SPRAY", default))


class SprayTest(NetnsCase):

    def spray(self, family, port, sources, dst, every=None, each=None):
        """One request from each source address; calls each() every
        `every` sources. Returns the statuses' counts."""
        counts = {}
        req = (PAGE % ("/index.html", "spray")).encode()
        for i, src in enumerate(sources):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(30)
            s.bind((src, 0))
            s.connect((dst, port))
            s.sendall(req)
            r = read_response(s)
            s.close()
            st = r[0] if r else 0
            counts[st] = counts.get(st, 0) + 1
            if every and i % every == 0:
                each(i)
        return counts

    def test_ipv4_spray_keeps_memory_flat(self):
        n = spray_count(200000)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        p = Porter(self.workdir, "127.0.0.1:%d" % port,
                   {"mode": "enforce", "rate": 1.0, "burst": 5.0,
                    "table_size": 4096, "per_address_connections": 64})
        site_files(p.root)
        self.servers.append(p)
        p.start()
        p.ctl("ban", "127.0.0.9", "3600", "before the spray")
        abuser = {"codes": []}

        def abuse(i):
            s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                         source_address=("127.0.0.10", 0))
            abuser["codes"].append(get(s, "/index.html", "abuser")[0])
            s.close()
        for _ in range(10):
            abuse(0)
        self.assertEqual(abuser["codes"][-1], 429)

        def sources(start, count):
            for i in range(start, start + count):
                yield "127.%d.%d.%d" % (1 + (i >> 16) % 250, (i >> 8) & 255, i & 255)
        # warm up: every bucket of the table touched, every page mapped
        warm = min(n // 4, 20000)
        self.spray(socket.AF_INET, port, sources(0, warm), "127.0.0.1")
        before = {pid: rss_kib(pid) for pid in p.pids()}
        t0 = time.monotonic()
        counts = self.spray(socket.AF_INET, port, sources(warm, n - warm),
                            "127.0.0.1", every=100, each=abuse)
        elapsed = time.monotonic() - t0
        after = {pid: rss_kib(pid) for pid in p.pids() if pid in before}
        self.assertEqual(set(after), set(before), "a process was replaced")
        for pid in before:
            self.assertLessEqual(after[pid] - before[pid], 1024,
                                 "pid %d RSS %d -> %d KiB" % (pid, before[pid], after[pid]))
        self.assertEqual(counts.get(200, 0), n - warm, counts)
        # the abuser, faster than its rate all through the spray, kept
        # its entry: refused but for its rate's worth. Its bucket refilled
        # while the warm-up ran without it, so the bound is the burst (5)
        # plus the rate (1/s) over the spray, plus one for the edges.
        during = abuser["codes"][10:]
        self.assertLessEqual(during.count(200), 5 + 1.0 * elapsed + 1, during)
        self.assertIn(429, during[-len(during) // 4:])
        bans = p.ctl("bans")
        self.assertIn("127.0.0.9/32", bans)
        st = dict(l.split(": ", 1) for l in p.ctl("status").splitlines() if ": " in l)
        self.assertLessEqual(int(st["client_table_entries"]), int(st["client_table_capacity"]))
        self.assertGreater(int(st["client_evictions"]), 0)

    def test_ipv6_spray_in_one_64_is_one_client(self):
        self.need_root()
        n = spray_count(100000)
        ns = self.netns("v6")
        sh("ip", "-n", ns, "-6", "route", "add", "local", "fd99:0:0:1::/64", "dev", "lo")
        r = self.in_ns(ns, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1")
        self.assertEqual(r.returncode, 0, r.stderr)
        port = 8078
        p = Porter(self.workdir, "[::1]:%d" % port,
                   {"mode": "enforce", "rate": 1.0, "burst": 50.0,
                    "per_address_connections": 0},
                   prefix=["ip", "netns", "exec", ns])
        site_files(p.root)
        self.servers.append(p)
        p.start()
        me = os.path.abspath(__file__)
        start = time.monotonic()
        r = self.in_ns(ns, sys.executable, me, "--spray6", str(port), str(n),
                       timeout=1200)
        elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 0, r.stderr)
        counts = {int(k): v for k, v in json.loads(r.stdout).items()}
        self.assertEqual(sum(counts.values()), n)
        # one client: at most its burst plus its rate over the run pass
        self.assertLessEqual(counts.get(200, 0), 50 + 1.0 * elapsed + 1)
        clients = [l.split("\t") for l in p.ctl("clients", "10000").splitlines() if l]
        keys = sorted(c[0] for c in clients if c[0].startswith("fd99:"))
        # the address-wide key and one agent's: nothing per source
        self.assertEqual(len(keys), 2, clients)
        self.assertEqual(keys[0], "fd99:0:0:1::/64")
        self.assertTrue(keys[1].startswith("fd99:0:0:1::/64 ua:"), keys)


def spray6_main(port, n):
    counts = {}
    req = (PAGE % ("/index.html", "spray")).encode()
    for _ in range(n):
        src = "fd99:0:0:1:%x:%x:%x:%x" % tuple(random.getrandbits(16) for _ in range(4))
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(30)
        s.bind((src, 0))
        s.connect(("::1", port))
        s.sendall(req)
        r = read_response(s)
        s.close()
        st = r[0] if r else 0
        counts[st] = counts.get(st, 0) + 1
    print(json.dumps(counts))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--spray6":
        spray6_main(int(sys.argv[2]), int(sys.argv[3]))
    else:
        unittest.main()
