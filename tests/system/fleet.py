#!/usr/bin/python3
"""Several porters behind HAProxy: the scale-out system test (root).

Topology, in network namespaces named h19* (removed on exit, whatever
happens):

    h19c1 10.19.1.2 ──┐                      ┌── 10.19.11.2 h19n1 (porter) ── 10.19.21.1 ── 10.19.21.2 h19x
    h19c2 10.19.2.2 ──┴── h19lb (haproxy) ───┴── 10.19.12.2 h19n2 (porter)

HAProxy (Debian's 2.6) in TCP mode with ``send-proxy-v2`` to each
node's PROXY listener (port 8080, trusted = the balancer's address), and
HTTP checks of ``/health`` on each node's status listener (port 9180),
every 500 ms, down after 2 failures (inter x fall = 1 s). Two clients
keep a constant load through the balancer, a new connection per request.
porter runs from this tree's build (PORTER_BIN or build/src/porter).

Checked, in order:
 1. each node's access log shows the clients' own addresses and ports
    (the ones the clients saw as their local ends);
 2. a content push (a new release directory, the ``current`` symlink
    swapped by rename, ``porter -s reload`` on both nodes) serves the new
    version everywhere: every request that starts after both reloads
    returned gets it, and each node, asked directly, serves it;
 3. ``porter -s drain`` on node 1: HAProxy marks it down after ``fall``
    failed checks, and no request that starts after that reaches node 1;
    ``porter -s undrain`` brings it back;
 4. SIGTERM to node 2 with ``health.shutdown_delay = 3``: node 2 exits,
    and the load goes on on node 1;
 5. a client that reaches node 1's PROXY port directly (h19x) with a
    forged header is closed without an answer, and node 1 says so;
and no request of the constant load fails, from start to end.

Skipped (exit 77, with a message) when not root or when network
namespaces or haproxy are not available. Prints PASS/FAIL per check and
exits non-zero on any failure. About a minute.

    sudo tests/system/fleet.py          (or from .ci/run)
"""

import csv
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.path.join(HERE, "..", ".."))
PORTER = os.environ.get("PORTER_BIN") or os.path.join(SRCDIR, "build", "src", "porter")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PY = "/usr/bin/python3"

NS = ["h19c1", "h19c2", "h19lb", "h19n1", "h19n2", "h19x"]
# (namespace a, address a, namespace b, address b), /24 each
LINKS = [
    ("h19c1", "10.19.1.2", "h19lb", "10.19.1.1"),
    ("h19c2", "10.19.2.2", "h19lb", "10.19.2.1"),
    ("h19n1", "10.19.11.2", "h19lb", "10.19.11.1"),
    ("h19n2", "10.19.12.2", "h19lb", "10.19.12.1"),
    ("h19x", "10.19.21.2", "h19n1", "10.19.21.1"),
]
NODES = {"n1": ("h19n1", "10.19.11.2", "10.19.11.1"),
         "n2": ("h19n2", "10.19.12.2", "10.19.12.1")}
CLIENTS = {"h19c1": ("10.19.1.2", "10.19.1.1"),
           "h19c2": ("10.19.2.2", "10.19.2.1")}
INTER_MS, FALL, RISE = 500, 2, 2
DEADLINE = 30.0   # a hang guard for every wait, never a speed claim

results = []
procs = []


def say(msg):
    print(msg, flush=True)


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    say("%s: %s%s" % ("PASS" if ok else "FAIL", name,
                      "" if ok or not detail else "\n    " + str(detail)))
    return ok


def run(*cmd, ns=None, check_rc=True, timeout=30):
    argv = (["ip", "netns", "exec", ns] if ns else []) + list(cmd)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s%s" % (" ".join(argv), p.returncode,
                                                  p.stdout, p.stderr))
    return p


def spawn(argv, ns, out):
    f = open(out, "ab")
    p = subprocess.Popen(["ip", "netns", "exec", ns] + argv, stdin=subprocess.DEVNULL,
                         stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    return p


def wait_until(pred, what, timeout=DEADLINE, interval=0.05):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(interval)


def skip(why):
    say("SKIP: tests/system/fleet.py: " + why)
    sys.exit(77)


# ---- the network --------------------------------------------------------

def teardown_net():
    for ns in NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def setup_net():
    teardown_net()
    for ns in NS:
        run("ip", "netns", "add", ns)
        run("ip", "link", "set", "lo", "up", ns=ns)
    for i, (na, aa, nb, ab) in enumerate(LINKS):
        ea, eb = "h19v%da" % i, "h19v%db" % i
        run("ip", "link", "add", ea, "netns", na, "type", "veth",
            "peer", "name", eb, "netns", nb)
        run("ip", "addr", "add", aa + "/24", "dev", ea, ns=na)
        run("ip", "addr", "add", ab + "/24", "dev", eb, ns=nb)
        run("ip", "link", "set", ea, "up", ns=na)
        run("ip", "link", "set", eb, "up", ns=nb)


# ---- porter nodes ---------------------------------------------------------

def release(node_dir, version):
    d = os.path.join(node_dir, "releases", version)
    os.makedirs(d)
    with open(os.path.join(d, "version.txt"), "w") as f:
        f.write(version + "\n")
    os.chmod(d, 0o755)
    # the swap: a new symlink renamed over the old one (atomic)
    tmp = os.path.join(node_dir, "current.new")
    os.symlink(os.path.join("releases", version), tmp)
    os.rename(tmp, os.path.join(node_dir, "current"))


def node_conf(node_dir, addr, lb):
    return """
listen = ( { address = "0.0.0.0:8080"; proxy_protocol = true; trusted = [ "%(lb)s" ]; } );
status: { listen = [ "%(addr)s:9180" ]; allow = [ "%(lb)s/32" ]; };
health: { shutdown_delay = 3; };
root = "%(dir)s/current";
workers = 2;
shutdown_timeout = 10;
pid_file = "%(dir)s/porter.pid";
log: { error = "stderr"; access = "%(dir)s/access.log"; };
""" % {"dir": node_dir, "addr": addr, "lb": lb}


def start_node(work, name):
    ns, addr, lb = NODES[name]
    d = os.path.join(work, name)
    os.makedirs(d)
    os.chmod(d, 0o755)
    release(d, "v1")
    conf = os.path.join(d, "porter.conf")
    with open(conf, "w") as f:
        f.write(node_conf(d, addr, lb))
    p = spawn([PORTER, "-c", conf], ns, os.path.join(d, "stderr.log"))
    return {"name": name, "ns": ns, "addr": addr, "dir": d, "conf": conf,
            "proc": p, "stderr": os.path.join(d, "stderr.log"),
            "access": os.path.join(d, "access.log")}


def access_records(node):
    """(host, port) of every access-log line of node, in order."""
    out = []
    try:
        with open(node["access"]) as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and parts[-1].isdigit():
                    out.append((parts[0], int(parts[-1])))
    except FileNotFoundError:
        pass
    return out


def access_ids(node):
    """The "?r=" ids of the requests in node's access log."""
    try:
        with open(node["access"]) as f:
            return set(re.findall(r"[?&]r=([\w.-]+)[ &]", f.read()))
    except FileNotFoundError:
        return set()


def ctl(node, cmd):
    return run(PORTER, "-c", node["conf"], "-s", cmd, check_rc=False)


def direct_get(node, path):
    """GET through node's PROXY port from the balancer's namespace (a
    trusted peer), with curl's v1 header."""
    p = run("curl", "-sS", "--max-time", "10", "--haproxy-protocol",
            "http://%s:8080%s" % (node["addr"], path), ns="h19lb", check_rc=False)
    return p.stdout if p.returncode == 0 else "curl: " + p.stderr


# ---- haproxy ---------------------------------------------------------------

def haproxy_conf(work):
    servers = "\n".join(
        "    server %s %s:8080 send-proxy-v2 check port 9180" % (n, a)
        for n, (_, a, _) in sorted(NODES.items()))
    return """
global
    stats socket %(work)s/haproxy.sock mode 600 level admin
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    retries 0
frontend fe
    bind :80
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter %(inter)dms fall %(fall)d rise %(rise)d
%(servers)s
""" % {"work": work, "inter": INTER_MS, "fall": FALL, "rise": RISE,
       "servers": servers}


def haproxy_stat(work):
    """{server: row dict} from 'show stat' on the stats socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(os.path.join(work, "haproxy.sock"))
    s.sendall(b"show stat\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    text = data.decode().lstrip("# ")
    return {r["svname"]: r for r in csv.DictReader(io.StringIO(text))
            if r["pxname"] == "be"}


def server_status(work, name):
    try:
        return haproxy_stat(work)[name]["status"]
    except (OSError, KeyError):
        return None


# ---- load ----------------------------------------------------------------

def start_load(work):
    stop = os.path.join(work, "load.stop")
    outs = []
    for ns, (_, vip) in sorted(CLIENTS.items()):
        out = os.path.join(work, "load-%s.jsonl" % ns)
        spawn([PY, os.path.join(HERE, "fleet_load.py"), vip, "80",
               "/version.txt", out, stop, "2"], ns, out + ".stderr")
        outs.append((ns, out))
    return stop, outs


def load_records(outs):
    recs = []
    for ns, out in outs:
        try:
            with open(out) as f:
                for line in f:
                    if line.endswith("\n"):
                        r = json.loads(line)
                        r["client"] = CLIENTS[ns][0]
                        recs.append(r)
        except FileNotFoundError:
            pass
    return recs


def more_requests(outs, n, since):
    """Wait for n more completed requests that started after since."""
    wait_until(lambda: len([r for r in load_records(outs) if r["t0"] > since]) >= n,
               "%d requests after t=%.3f" % (n, since))


# ---- the test --------------------------------------------------------------

def main():
    if os.geteuid() != 0:
        skip("needs root (network namespaces)")
    if not os.access(PORTER, os.X_OK):
        skip("no porter binary at %s (./dev build)" % PORTER)
    if not os.access(HAPROXY, os.X_OK) or not shutil.which("curl"):
        skip("needs haproxy and curl (./dev installs them)")
    if subprocess.run(["ip", "netns", "add", "h19probe"], capture_output=True).returncode:
        skip("cannot make network namespaces here")
    subprocess.run(["ip", "netns", "del", "h19probe"], capture_output=True)

    work = tempfile.mkdtemp(prefix="porter-fleet-")
    os.chmod(work, 0o755)
    # This porter must know the keys the nodes use (the status listener
    # and health came with the same issue as the PROXY protocol).
    probe = os.path.join(work, "probe.conf")
    with open(probe, "w") as f:
        f.write(node_conf(work, "127.0.0.1", "127.0.0.1").replace(
            "%s/current" % work, work))
    p = subprocess.run([PORTER, "-t", "-c", probe], capture_output=True, text=True)
    if p.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        if "unknown" in p.stderr and ("'status'" in p.stderr or "'health'" in p.stderr):
            skip("this porter has no status listener or health yet: " + p.stderr.strip())
        check("a node's configuration is valid", False, p.stderr)
        return 1
    try:
        setup_net()
        nodes = {n: start_node(work, n) for n in sorted(NODES)}
        for n in nodes.values():
            wait_until(lambda n=n: "workers ready" in open(n["stderr"]).read(),
                       n["name"] + " ready")
        with open(os.path.join(work, "haproxy.cfg"), "w") as f:
            f.write(haproxy_conf(work))
        spawn([HAPROXY, "-db", "-f", os.path.join(work, "haproxy.cfg")], "h19lb",
              os.path.join(work, "haproxy.log"))
        for n in nodes:
            wait_until(lambda n=n: server_status(work, n) == "UP", "HAProxy: %s UP" % n)
        stop, outs = start_load(work)
        fleet(work, nodes, outs)
        open(stop, "w").close()
        for p in procs[-2:]:
            p.wait(timeout=DEADLINE)
        recs = load_records(outs)
        bad = [r for r in recs if r["error"] is not None]
        check("constant load: no failed request (%d requests)" % len(recs),
              recs and not bad, bad[:5])
    except Exception as e:  # a setup step or a wait failed: say what
        check("the fleet ran to the end", False, "%s: %s" % (type(e).__name__, e))
        for name in ("n1", "n2"):
            p = os.path.join(work, name, "stderr.log")
            if os.path.exists(p):
                say("--- %s stderr\n%s" % (name, open(p).read()[-3000:]))
        if os.path.exists(os.path.join(work, "haproxy.log")):
            say("--- haproxy\n" + open(os.path.join(work, "haproxy.log")).read()[-3000:])
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)
        teardown_net()
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    failed = [n for n, ok in results if not ok]
    say("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
    return 1 if failed else 0


def fleet(work, nodes, outs):
    n1, n2 = nodes["n1"], nodes["n2"]

    # 1. the clients' own addresses and ports, on both nodes
    wait_until(lambda: all(len(access_records(n)) >= 20 for n in nodes.values()),
               "20 requests on each node")
    logged = {n["name"]: access_records(n) for n in nodes.values()}

    def strangers(recs):
        # a client writes its record once it has read the response, so
        # a logged request may be a moment ahead of it
        seen = {(r["client"], r["port"]) for r in load_records(outs) if r["port"]}
        return [x for x in recs if x not in seen]
    try:
        wait_until(lambda: not any(strangers(r) for r in logged.values()),
                   "the clients' records of the logged requests", timeout=10)
    except TimeoutError:
        pass
    for n in nodes.values():
        recs = logged[n["name"]]
        hosts = {h for h, _ in recs}
        odd = strangers(recs)
        check("%s's access log shows the clients' addresses and ports" % n["name"],
              hosts == set(a for a, _ in CLIENTS.values()) and not odd,
              "hosts %s, not a client's end: %s" % (sorted(hosts), odd[:5]))

    # 2. a content push under load
    for n in nodes.values():
        release(n["dir"], "v2")
    for n in nodes.values():
        p = ctl(n, "reload")
        check("porter -s reload on %s" % n["name"], p.returncode == 0, p.stderr)
    pushed = time.time()
    more_requests(outs, 40, pushed)
    after = [r for r in load_records(outs) if r["t0"] > pushed]
    old = [r for r in after if r["body"] != "v2\n"]
    check("after the push every request gets v2 (%d requests)" % len(after),
          not old, old[:5])
    for n in nodes.values():
        body = direct_get(n, "/version.txt")
        check("%s serves v2 when asked directly" % n["name"], body == "v2\n", body)

    # 3. drain node 1: HAProxy takes it out after `fall` failed checks
    before = haproxy_stat(work)["n1"]
    p = ctl(n1, "drain")
    check("porter -s drain on n1", p.returncode == 0, p.stderr)
    t_drain = time.monotonic()
    wait_until(lambda: server_status(work, "n1") not in ("UP", "UP 1/2", None)
               and server_status(work, "n1").startswith(("DOWN", "NOLB", "MAINT")),
               "HAProxy: n1 down")
    took = time.monotonic() - t_drain
    down_at = time.time()
    row = haproxy_stat(work)["n1"]
    fails = int(row["chkfail"]) - int(before["chkfail"])
    check("HAProxy marks n1 down after %d failed checks (%d counted, %.1f s; "
          "inter x fall = %.1f s)" % (FALL, fails, took, INTER_MS * FALL / 1000),
          fails == FALL and int(row["chkdown"]) > int(before["chkdown"]), row)
    more_requests(outs, 40, down_at)
    late = {r["id"] for r in load_records(outs) if r["t0"] > down_at}
    # Requests are told apart by their own "?r=" id: a client's port is
    # reused over a run, and n1's access log reaches the disk up to a
    # second late. A direct request to n1 after the late ones, once in
    # its log, shows that the log holds everything n1 served before it.
    probe = "probe-%d" % os.getpid()
    direct_get(n1, "/version.txt?r=" + probe)
    wait_until(lambda: probe in access_ids(n1), "n1 logged the probe")
    on_n1 = sorted(late & access_ids(n1))
    check("no request started after n1 went down reached n1 (%d requests)" % len(late),
          not on_n1, on_n1[:5])
    p = ctl(n1, "undrain")
    check("porter -s undrain on n1", p.returncode == 0, p.stderr)
    wait_until(lambda: server_status(work, "n1") == "UP", "HAProxy: n1 UP again")

    # 4. SIGTERM with shutdown_delay under load
    t_term = time.time()
    n2["proc"].send_signal(signal.SIGTERM)
    n2["proc"].wait(timeout=DEADLINE)
    check("n2 exits after SIGTERM (status %s)" % n2["proc"].returncode,
          n2["proc"].returncode == 0)
    more_requests(outs, 40, time.time())
    during = [r for r in load_records(outs) if r["t0"] > t_term]
    bad = [r for r in during if r["error"]]
    check("SIGTERM with shutdown_delay: no failed request (%d requests)" % len(during),
          not bad, bad[:5])

    # 5. a forged header straight to a node
    s = None
    p = run(PY, "-c", """
import socket, sys
s = socket.create_connection(("10.19.21.1", 8080), timeout=10)
s.sendall(b"PROXY TCP4 203.0.113.66 10.19.21.1 4444 8080\\r\\nGET /version.txt HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
try:
    d = s.recv(100)
except ConnectionResetError:
    d = b""
sys.stdout.write(repr(d))
""", ns="h19x", check_rc=False)
    check("a forged header sent straight to n1 is closed unanswered",
          p.returncode == 0 and p.stdout == "b''", p.stdout + p.stderr)
    wait_until(lambda: "PROXY protocol from 10.19.21.2" in open(n1["stderr"]).read(),
               "n1's line about 10.19.21.2")
    check("n1 logs the untrusted peer", "untrusted peer" in open(n1["stderr"]).read())
    del s


if __name__ == "__main__":
    sys.exit(main())
