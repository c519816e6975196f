#!/usr/bin/python3
"""porter over TLS against nginx, lighttpd and h2o, in one run
(the HTTPS issue's performance targets; bench/README.md, "TLS").

    bench/tls.py [--servers porter,nginx,lighttpd,h2o] [--rounds 3]
                 [--duration 5] [--idle 1000] [--porter PATH]

Every server gets 1 worker pinned to CPU 0, the same ECDSA P-256
certificate (a throwaway CA made for the run by
tests/unit/fixtures/tls-mkca.sh), TLS 1.2 and 1.3, and its own defaults
for everything else (session tickets on in all four). Clients run on
CPU 1. Cases, each a median over the rounds, servers interleaved and
their order turned every round:

  ka1k     1 KiB page, keep-alive, wrk -c50: req/s and server CPU/request
  100k     100 KiB image, keep-alive, wrk -c10: req/s (from bytes)
  8m       8 MiB file, keep-alive, wrk -c4: req/s (from bytes)
  full     full handshake per connection (openssl s_time -new -www):
           server CPU per connection
  resumed  resumed handshakes (openssl s_time -reuse -www): server CPU per
           connection

Then, once per server: the share of 20 resumption attempts (Python's ssl
with the first connection's session) that resumed, before and after a
SIGHUP reload; memory per idle TLS connection (PSS of the server's
processes with --idle connections open after one request each, minus
before, divided by --idle; measured first, on fresh servers); system calls per keep-alive 1 KiB request
(strace -c -f on the worker during wrk -c4).

Ratios are porter's figure over each peer's (higher is better for req/s
and resumption; for CPU, memory and syscalls lower is better, so the
ratio shown is peer/porter: above 1.0 means porter is ahead).
"""

import argparse
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(BENCH, "lib"))

import porterbench as pb  # noqa: E402


TEMPLATES = {
    "porter": """listen = ( { address = "127.0.0.1:@PORT@"; tls = true; } );
root = "@ROOT@";
workers = 1;
pid_file = "off";
log: { error = "@RUNDIR@/porter-error.log"; access = "off"; };
limits: { keepalive_timeout = 60; keepalive_requests = 1000000; max_connections = 20000; };
tls: { certificate = "@CERT@"; key = "@KEY@"; };
""",
    "nginx": """daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile @MAX_FDS@;
pid @RUNDIR@/nginx.pid;
error_log @RUNDIR@/error.log warn;
events { use epoll; worker_connections 20000; }
http {
	include /etc/nginx/mime.types;
	default_type application/octet-stream;
	access_log off;
	server_tokens off;
	sendfile on; tcp_nopush on; tcp_nodelay on;
	keepalive_timeout 60s; keepalive_requests 1000000;
	open_file_cache max=10000 inactive=60s; open_file_cache_valid 60s;
	open_file_cache_min_uses 1;
	client_body_temp_path @RUNDIR@/client_body; proxy_temp_path @RUNDIR@/proxy;
	fastcgi_temp_path @RUNDIR@/fastcgi; uwsgi_temp_path @RUNDIR@/uwsgi;
	scgi_temp_path @RUNDIR@/scgi;
	server {
		listen 127.0.0.1:@PORT@ ssl backlog=4096;
		ssl_certificate @CERT@;
		ssl_certificate_key @KEY@;
		ssl_protocols TLSv1.2 TLSv1.3;
		root @ROOT@;
		index index.html;
	}
}
""",
    "lighttpd": """server.modules = ( "mod_indexfile", "mod_staticfile", "mod_openssl" )
server.document-root = "@ROOT@"
server.bind = "127.0.0.1"
server.port = @PORT@
server.errorlog = "@RUNDIR@/error.log"
server.pid-file = "@RUNDIR@/lighttpd.pid"
server.listen-backlog = 4096
server.max-worker = 1
server.event-handler = "linux-sysepoll"
server.network-backend = "sendfile"
server.max-fds = @MAX_FDS@
server.max-connections = 10000
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 60
index-file.names = ( "index.html" )
ssl.engine = "enable"
ssl.pemfile = "@CERT@"
ssl.privkey = "@KEY@"
ssl.openssl.ssl-conf-cmd = ("MinProtocol" => "TLSv1.2")
include_shell "/usr/share/lighttpd/create-mime.conf.pl"
""",
    "h2o": """num-threads: 1
max-connections: 20000
error-log: "@RUNDIR@/error.log"
send-server-name: OFF
file.dirlisting: OFF
file.index: [ "index.html" ]
listen:
  host: 127.0.0.1
  port: @PORT@
  ssl:
    certificate-file: "@CERT@"
    key-file: "@KEY@"
    minimum-version: TLSv1.2
hosts:
  default:
    paths:
      "/":
        file.dir: "@ROOT@"
""",
}

EXES = {
    "porter": None,
    "nginx": "/usr/sbin/nginx",
    "lighttpd": "/usr/sbin/lighttpd",
    "h2o": "/usr/bin/h2o",
}


def command(name, exe, conf, rundir):
    if name == "porter":
        return [exe, "-c", conf]
    if name == "nginx":
        return [exe, "-p", rundir + "/", "-e", os.path.join(rundir, "error.log"), "-c", conf]
    if name == "lighttpd":
        return [exe, "-D", "-f", conf]
    return [exe, "-c", conf]


def client_ctx(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    return ctx


def tls_get(port, path, ctx, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="example.org", session=session)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n"
              % path.encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    reused, sess = s.session_reused, s.session
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, reused, sess


class Srv:
    def __init__(self, name, exe, port, tmp, docroot, cert, key):
        self.name, self.exe, self.port = name, exe, port
        self.rundir = os.path.join(tmp, name)
        os.makedirs(self.rundir, exist_ok=True)
        text = TEMPLATES[name]
        for k, v in (("PORT", str(port)), ("ROOT", docroot), ("RUNDIR", self.rundir),
                     ("CERT", cert), ("KEY", key),
                     ("MAX_FDS", str(pb.resource.getrlimit(pb.resource.RLIMIT_NOFILE)[0]))):
            text = text.replace("@%s@" % k, v)
        self.conf = os.path.join(self.rundir, name + ".conf")
        with open(self.conf, "w") as f:
            f.write(text)
        self.proc = None

    def start(self, ca):
        cmd = ["taskset", "-c", pb.SERVER_CPU] + command(self.name, self.exe, self.conf,
                                                          self.rundir)
        out = open(os.path.join(self.rundir, "stdout.log"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, cwd=self.rundir,
                                     start_new_session=True)
        out.close()
        ctx = client_ctx(ca)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pb.die("%s exited at start-up:\n%s" % (self.name, self.log_tail()))
            try:
                st, body, _, _ = tls_get(self.port, "/index.html", ctx)
                if st == 200 and len(body) == 1024:
                    break
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.2)
        else:
            pb.die("%s did not answer over TLS on %d:\n%s" % (self.name, self.port,
                                                               self.log_tail()))
        for key, name, size, _ in pb.FILES:
            st, body, _, _ = tls_get(self.port, "/" + name, ctx)
            if st != 200 or len(body) != size:
                pb.die("%s: GET /%s over TLS gave %d with %d bytes" % (self.name, name, st,
                                                                        len(body)))

    def log_tail(self):
        out = []
        for n in ("stdout.log", "error.log", "porter-error.log"):
            p = os.path.join(self.rundir, n)
            if os.path.exists(p):
                out += open(p, errors="replace").read().splitlines()[-10:]
        return "\n".join(out)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()


def wrk_case(srv, path, conns, duration):
    size = {"/" + f[1]: f[2] for f in pb.FILES}[path]
    r = pb.run_wrk(srv.port, path, conns, 1, duration, True, True, srv.proc.pid,
                   size=size, scheme="https")
    if "error" in r:
        return None, None
    cpu_us = (r.get("server_cpu", 0) / 100.0) * 1e6 / r["rps"] if r["rps"] else None
    return r["rps"], cpu_us


def s_time_case(srv, mode, duration, ca):
    """Connections made by openssl s_time and the server's CPU per connection."""
    pids = pb.proc_tree(srv.proc.pid)
    t0 = pb.cpu_ticks(pids)
    cmd = ["taskset", "-c", pb.CLIENT_CPU, "openssl", "s_time", "-connect",
           "127.0.0.1:%d" % srv.port, "-www", "/index.html", "-time", str(duration),
           "-CAfile", ca, mode]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30).stdout
    t1 = pb.cpu_ticks(pids)
    m = re.findall(r"(\d+) connections in [\d.]+s", out)
    if not m:
        return None, None
    n = int(m[-1])
    return n / duration, (t1 - t0) / pb.CLK_TCK * 1e6 / n if n else None


def resumption(srv, ca, reload_first=False):
    """Share of 20 connections that resumed the first one's session."""
    ctx = client_ctx(ca)
    _, _, _, sess = tls_get(srv.port, "/index.html", ctx)
    if reload_first:
        os.kill(srv.proc.pid, signal.SIGHUP)
        time.sleep(2.0)    # bench only: let the new workers take over
    got = 0
    for _ in range(20):
        try:
            _, _, reused, _ = tls_get(srv.port, "/index.html", ctx, session=sess)
            got += 1 if reused else 0
        except OSError:
            pass
    return got / 20.0


def idle_memory(srv, ca, n):
    ctx = client_ctx(ca)
    before = pb.tree_memory(srv.proc.pid)["pss_kb"]
    socks = []
    req = b"GET /index.html HTTP/1.1\r\nHost: example.org\r\n\r\n"
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="example.org")
        s.sendall(req)
        data = b""
        while len(data) < 1024 or b"\r\n\r\n" not in data:
            data += s.recv(65536)
            if b"\r\n\r\n" in data and len(data.partition(b"\r\n\r\n")[2]) >= 1024:
                break
        socks.append(s)
    time.sleep(1.0)
    after = pb.tree_memory(srv.proc.pid)["pss_kb"]
    for s in socks:
        s.close()
    return (after - before) * 1024.0 / n


def syscalls(srv, duration):
    pids = [p for p in pb.proc_tree(srv.proc.pid) if p != srv.proc.pid] or [srv.proc.pid]
    if srv.name in ("lighttpd", "h2o"):
        pids = pb.proc_tree(srv.proc.pid)
    out = os.path.join(srv.rundir, "strace.txt")
    cmd = ["strace", "-c", "-f", "-o", out] + sum((["-p", str(p)] for p in pids), [])
    st = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    time.sleep(1.0)
    r = pb.run_wrk(srv.port, "/index.html", 4, 1, duration, True, True, scheme="https")
    time.sleep(0.3)
    st.send_signal(signal.SIGINT)
    st.wait(timeout=20)
    counts = pb.parse_strace_c(out)
    if "error" in r or not r["requests"]:
        return None
    return sum(counts.values()) / r["requests"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="porter,nginx,lighttpd,h2o")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--porter", default=os.path.join(ROOT, "build", "src", "porter"))
    a = ap.parse_args()
    names = [n for n in a.servers.split(",") if n]
    EXES["porter"] = a.porter
    for n in names:
        if not (EXES[n] and os.access(EXES[n], os.X_OK)):
            pb.die("%s not found at %s" % (n, EXES[n]))
    tmp = tempfile.mkdtemp(prefix="porter-tls-bench-")
    os.chmod(tmp, 0o755)    # peers' workers run as nobody/www-data
    ca = os.path.join(tmp, "ca")
    subprocess.run(["sh", os.path.join(ROOT, "tests/unit/fixtures/tls-mkca.sh"), ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cert, key, root = (os.path.join(ca, f) for f in ("ec-full.pem", "ec.key", "root.pem"))
    docroot = os.path.join(tmp, "www")
    pb.make_docroot(docroot)
    srvs = [Srv(n, EXES[n], pb.free_port(), tmp, docroot, cert, key) for n in names]
    cases = [("ka1k", "1 KiB keep-alive, 50 conns", "index.html", 50),
             ("100k", "100 KiB, keep-alive, 10 conns", "image.png", 10),
             ("8m", "8 MiB, keep-alive, 4 conns", "big.bin", 4)]
    res = {s.name: {} for s in srvs}
    try:
        for s in srvs:
            s.start(root)
        # Memory first, before the load cases grow the servers' heaps
        # (memory a worker freed after 50 busy connections would hide
        # what idle connections cost).
        for s in srvs:
            res[s.name]["idle_bytes"] = idle_memory(s, root, a.idle)
        for rnd in range(a.rounds):
            order = srvs if rnd % 2 == 0 else list(reversed(srvs))
            for key, label, path, conns in cases:
                for s in order:
                    rps, cpu = wrk_case(s, "/" + path, conns, a.duration)
                    res[s.name].setdefault(key, []).append(rps)
                    res[s.name].setdefault(key + "_cpu", []).append(cpu)
                    pb.log("round %d %-8s %-32s %10.0f req/s %8.1f us CPU/req"
                           % (rnd + 1, s.name, label, rps or 0, cpu or 0))
            for mode, key in (("-new", "full"), ("-reuse", "resumed")):
                for s in order:
                    cps, cpu = s_time_case(s, mode, a.duration, root)
                    res[s.name].setdefault(key, []).append(cps)
                    res[s.name].setdefault(key + "_cpu", []).append(cpu)
                    pb.log("round %d %-8s %-32s %10.0f conn/s %8.1f us CPU/conn"
                           % (rnd + 1, s.name, key + " handshake", cps or 0, cpu or 0))
        for s in srvs:
            res[s.name]["resume"] = resumption(s, root)
            res[s.name]["syscalls"] = syscalls(s, 3)
            res[s.name]["resume_reload"] = resumption(s, root, reload_first=True)
            pb.log("%s: resumed %.0f %%, after reload %.0f %%, %.2f syscalls/req, "
                   "%.0f bytes/idle conn" % (s.name, 100 * res[s.name]["resume"],
                                             100 * res[s.name]["resume_reload"],
                                             res[s.name]["syscalls"] or 0,
                                             res[s.name]["idle_bytes"]))
    finally:
        for s in srvs:
            s.stop()

    def med(name, key):
        v = [x for x in res[name][key] if x is not None]
        return statistics.median(v) if v else None

    peers = [s.name for s in srvs if s.name != "porter"]
    print("\nTLS, 1 worker each, ECDSA P-256, %d rounds of %d s; server CPU 0, clients "
          "CPU 1.\n" % (a.rounds, a.duration))
    print("| Case | " + " | ".join(s.name for s in srvs) + " | "
          + " | ".join("porter/" + p for p in peers) + " |")
    print("|---|" + "---:|" * (len(srvs) + len(peers)))

    def row(label, vals, higher_better, fmt):
        line = "| %s | " % label + " | ".join(fmt % v if v is not None else "-"
                                               for v in vals.values()) + " |"
        for p in peers:
            pv, ov = vals.get(p), vals.get("porter")
            if pv and ov:
                line += " %.2f |" % ((ov / pv) if higher_better else (pv / ov))
            else:
                line += " - |"
        print(line)

    for key, label, _, _ in cases:
        row(label + ", req/s", {s.name: med(s.name, key) for s in srvs}, True, "%.0f")
        row(label + ", server CPU µs/req", {s.name: med(s.name, key + "_cpu")
                                             for s in srvs}, False, "%.1f")
    for key, label in (("full", "full handshake"), ("resumed", "resumed handshake")):
        row(label + ", conn/s", {s.name: med(s.name, key) for s in srvs}, True, "%.0f")
        row(label + ", server CPU µs/conn", {s.name: med(s.name, key + "_cpu")
                                              for s in srvs}, False, "%.1f")
    row("resumed (of 20)", {s.name: res[s.name]["resume"] * 100 for s in srvs}, True,
        "%.0f %%")
    row("resumed after a reload (of 20)", {s.name: res[s.name]["resume_reload"] * 100
                                           for s in srvs}, True, "%.0f %%")
    row("syscalls per keep-alive 1 KiB request", {s.name: res[s.name]["syscalls"]
                                                  for s in srvs}, False, "%.2f")
    row("bytes per idle TLS connection (PSS)", {s.name: res[s.name]["idle_bytes"]
                                                for s in srvs}, False, "%.0f")
    print("\nRatios: porter/peer for rates, peer/porter for CPU, syscalls and memory "
          "(above 1.00: porter ahead).")


if __name__ == "__main__":
    main()
