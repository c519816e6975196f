#!/usr/bin/python3
"""porter over TLS under stress: the HTTPS issue's remaining targets.

    bench/tls_stress.py [--porter PATH] [--duration 4] [--halfopen 1000]
                        [--conns 10000] [--sites 20] [--reloads 5]
                        [--only halfopen,reload,conns]

1. Half-open handshakes: a normal client's p99 (wrk -c10 over https,
   1 KiB keep-alive) against porter (1 worker pinned to CPU 0) alone,
   then while --halfopen connections hold the first bytes of a
   ClientHello (a record header and part of the message) open.
   Target: p99 within 2x of alone.
2. Reload to a new certificate: with 1 and with --sites sites, every
   certificate file replaced by a renewal (new serial) by rename, then
   SIGHUP; the time from the signal until a handshake presents the new
   serial (polled with back-to-back handshakes). Median of --reloads.
   Beside it, porter's own figure: the "reloaded: ... (N ms)" line of
   its log (signal to the new workers serving, without the client's
   polling). Target: < 20 ms + 1 ms per certificate.
3. --conns TLS connections on 2 workers: wrk -t2 -c10000 over https for
   --duration seconds; every socket error and non-2xx counted.
   Target: none.
"""

import argparse
import os
import re
import resource
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

CONF = """listen = ( { address = "127.0.0.1:%(port)d"; tls = true; } );
root = "%(root)s";
workers = %(workers)d;
pid_file = "off";
log: { error = "%(rundir)s/error.log"; access = "off"; };
limits: { keepalive_timeout = 60; keepalive_requests = 1000000;
	max_connections = 30000; handshake_timeout = 600; };
tls: { certificate = "%(certdir)s/site0/cert.pem"; key = "%(certdir)s/site0/key.pem"; };
sites = (
%(sites)s
);
"""
SITE = """	{ names = [ "s%(i)d.example.org" ]; root = "%(root)s";
	  tls: { certificate = "%(certdir)s/site%(i)d/cert.pem";
		 key = "%(certdir)s/site%(i)d/key.pem"; }; }"""


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_ca(d):
    os.makedirs(d, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "2",
            "-subj", "/CN=porter bench CA")


def make_leaf(ca, d, name, serial):
    """A leaf for name with the given serial into d/cert.pem, d/key.pem
    (through new files and renames, as a deploy hook does)."""
    os.makedirs(d, exist_ok=True)
    ext = os.path.join(d, "ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=DNS:%s\n" % name)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d + "/key.new", "-out", d + "/csr", "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", d + "/csr", "-CA", ca + "/ca.pem", "-CAkey",
            ca + "/ca.key", "-set_serial", str(serial), "-days", "2", "-extfile", ext,
            "-out", d + "/cert.new")
    os.rename(d + "/cert.new", d + "/cert.pem")
    os.rename(d + "/key.new", d + "/key.pem")


def serial_of(port, name, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=name)
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def start(exe, tmp, docroot, certdir, workers, nsites):
    port = pb.free_port()
    rundir = tempfile.mkdtemp(dir=tmp)
    sites = ",\n".join(SITE % {"i": i, "root": docroot, "certdir": certdir}
                       for i in range(nsites))
    conf = os.path.join(rundir, "porter.conf")
    with open(conf, "w") as f:
        f.write(CONF % {"port": port, "root": docroot, "rundir": rundir, "workers": workers,
                        "certdir": certdir, "sites": sites})
    proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU if workers == 1 else "0,1",
                             exe, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    ctx = ssl.create_default_context(cafile=os.path.join(certdir, "ca", "ca.pem"))
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            serial_of(port, "s0.example.org", ctx)
            return proc, port, ctx, rundir
        except (OSError, ssl.SSLError):
            time.sleep(0.1)
    pb.die("porter did not start over TLS (see %s)" % rundir)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def half_open(exe, tmp, docroot, certdir, n, duration):
    proc, port, ctx, _ = start(exe, tmp, docroot, certdir, 1, 1)
    try:
        alone = pb.run_wrk(port, "/index.html", 10, 1, duration, True, True, scheme="https")
        # A TLS record header (handshake, 1.0) announcing 512 bytes, a
        # ClientHello header, and nothing more: the handshake waits.
        partial = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])
        held = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(partial)
            held.append(s)
        time.sleep(1.0)
        loaded = pb.run_wrk(port, "/index.html", 10, 1, duration, True, True, scheme="https")
        still = 0
        for s in held:
            s.setblocking(False)
            try:
                still += 0 if s.recv(1) == b"" else 1
            except BlockingIOError:
                still += 1
            except OSError:
                pass
            s.close()
    finally:
        stop(proc)
    return alone, loaded, still


def logged_reloads(rundir):
    """The ms of each "reloaded: generation N serving ... (M ms)" line."""
    try:
        with open(os.path.join(rundir, "error.log")) as f:
            return [float(m.group(1)) for m in
                    re.finditer(r"reloaded: generation \d+ serving .*\((\d+) ms\)", f.read())]
    except OSError:
        return []


def reload_times(exe, tmp, docroot, certdir, nsites, reloads):
    """Client-side ms per reload, and porter's own logged ms."""
    ca = os.path.join(certdir, "ca")
    for i in range(nsites):
        make_leaf(ca, os.path.join(certdir, "site%d" % i), "s%d.example.org" % i, 1000 + i)
    proc, port, ctx, rundir = start(exe, tmp, docroot, certdir, 1, nsites)
    times = []
    try:
        for r in range(reloads):
            for i in range(nsites):
                make_leaf(ca, os.path.join(certdir, "site%d" % i), "s%d.example.org" % i,
                          100000 * (r + 2) + i)
            probe = "s%d.example.org" % (nsites - 1)
            old = serial_of(port, probe, ctx)
            t0 = time.monotonic()
            os.kill(proc.pid, signal.SIGHUP)
            while True:
                try:
                    if serial_of(port, probe, ctx) != old:
                        break
                except (OSError, ssl.SSLError):
                    pass
                if time.monotonic() - t0 > 10:
                    pb.die("the new certificate was not served within 10 s")
            times.append((time.monotonic() - t0) * 1000.0)
            time.sleep(0.5)
    finally:
        stop(proc)
    return times, logged_reloads(rundir)


def many(exe, tmp, docroot, certdir, conns, duration):
    proc, port, ctx, _ = start(exe, tmp, docroot, certdir, 2, 1)
    try:
        r = pb.run_wrk(port, "/index.html", conns, 2, duration, False, True, scheme="https")
        alive = proc.poll() is None
    finally:
        stop(proc)
    return r, alive


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--porter", default=os.path.join(ROOT, "build", "src", "porter"))
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--halfopen", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--sites", type=int, default=20)
    ap.add_argument("--reloads", type=int, default=5)
    ap.add_argument("--only", default="halfopen,reload,conns",
                    help="cases to run, comma-separated: halfopen, reload, conns")
    a = ap.parse_args()
    only = set(a.only.split(","))
    if only - {"halfopen", "reload", "conns"}:
        pb.die("--only: unknown case %s" % ",".join(sorted(only - {"halfopen", "reload",
                                                                   "conns"})))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="porter-tls-stress-")
    docroot = os.path.join(tmp, "www")
    pb.make_docroot(docroot)
    certdir = os.path.join(tmp, "certs")
    make_ca(os.path.join(certdir, "ca"))
    make_leaf(os.path.join(certdir, "ca"), os.path.join(certdir, "site0"), "s0.example.org", 1)

    if "halfopen" in only:
        alone, loaded, still = half_open(a.porter, tmp, docroot, certdir, a.halfopen,
                                         a.duration)
        print_half_open(a, alone, loaded, still)
    if "reload" in only:
        one = reload_times(a.porter, tmp, docroot, certdir, 1, a.reloads)
        several = reload_times(a.porter, tmp, docroot, certdir, a.sites, a.reloads)
        print_reloads(a, one, several)
    if "conns" in only:
        # 10 000 handshakes take seconds of their own before requests flow.
        r, alive = many(a.porter, tmp, docroot, certdir, a.conns, max(a.duration, 15))
        print_many(a, r, alive)


def print_half_open(a, alone, loaded, still):
    print("\n### Half-open handshakes (1 worker pinned; wrk -c10 over https)\n")
    print("| | alone | with %d half-open handshakes | ratio |\n|---|---:|---:|---:|"
          % a.halfopen)
    print("| p99 µs | %d | %d | %.2f |" % (alone["p99_us"], loaded["p99_us"],
                                           loaded["p99_us"] / max(1, alone["p99_us"])))
    print("| req/s | %.0f | %.0f | %.2f |" % (alone["rps"], loaded["rps"],
                                              loaded["rps"] / alone["rps"]))
    print("\n%d of the half-open connections were still open at the end (handshake_timeout "
          "600 s here)." % still)


def print_reloads(a, one, several):
    def row(n, r):
        times, logged = r
        print("| %d | %.1f | %.1f | %s | %d |" % (
            n, statistics.median(times), max(times),
            "%.0f" % statistics.median(logged) if logged else "-", 20 + n))

    print("\n### SIGHUP to the renewed certificate served (every file replaced)\n")
    print("| certificates | median ms | max ms | porter's log, median ms | target ms |\n"
          "|---:|---:|---:|---:|---:|")
    row(1, one)
    row(a.sites, several)


def print_many(a, r, alive):
    print("\n### %d TLS connections on 2 workers (wrk -t2 over https, %d s)\n"
          % (a.conns, max(a.duration, 15)))
    if "error" in r:
        print("wrk failed: %s" % r["error"])
    else:
        print("| requests | connect errors | read errors | write errors | timeouts | non-2xx "
              "| porter alive |\n|---:|---:|---:|---:|---:|---:|---|")
        print("| %d | %d | %d | %d | %d | %d | %s |" % (r["requests"], r["connect"], r["read"],
                                                       r["write"], r["timeout"], r["status"],
                                                       "yes" if alive else "NO"))


if __name__ == "__main__":
    main()
