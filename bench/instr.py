#!/usr/bin/python3
"""Instructions per request of one or two porter binaries, counted by
valgrind's callgrind: the same figure whatever else the machine is doing,
so a change can be checked for cost on a busy 2-core machine where req/s
swings by ×5 between rounds (bench/RESULTS.md).

    bench/instr.py BIN [BIN2] [--small 500] [--large 2500] [--log] [--h2]
                   [--extra1 CONF] [--extra2 CONF]

--h2 measures HTTP/2 over TLS instead: a 1 KiB page asked by h2load
(nghttp2-client) on 50 connections with 10 streams each, the load of
bench/http2.py's first case, from a listener with the test CA's ECDSA
certificate; the handshakes cancel out like start-up does. Use more
requests there (e.g. --small 2000 --large 12000): a batch of streams is
the unit of work, and more batches even out where a run ends.

--extra1/--extra2 append configuration text for the first/second run, so
one binary can be compared with itself and a feature on, e.g.
    bench/instr.py build/src/porter build/src/porter \
        --extra2 'client_limits: { mode = "enforce"; rate = 1e6; burst = 1e7; };'

Each binary serves bench/lib's document root with 1 worker under
callgrind. A run makes `small` requests, another run `large`; the worker's
instruction total of the first is taken from the second, so start-up and
shutdown cancel and what is left is (large - small) requests:
    instructions per request = (I_large - I_small) / (large - small)
Cases: 1 KiB keep-alive (4 connections, one request in flight each) and
a new connection per request (Connection: close, one at a time). The
access log is off unless --log. Prints a Markdown table.

Under Debian 12's valgrind (3.19) the open-file cache is off: valgrind
does not know openat2(), which the cache needs to vouch for a path, so
every request opens its file (porter's fallback for kernels before 5.6).
The figures are those of that path, not of the cached one.

Instruction counts are not time (cache misses, the kernel's share and
system calls are not in them): use them for "does this change add work
in user space", and bench/ab.py on a quiet machine for req/s.
"""

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import porterbench as pb  # noqa: E402

REQ_CLOSE = (b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"User-Agent: porterbench\r\nConnection: close\r\n\r\n")

CONF = """listen = [ "127.0.0.1:%(port)d" ];
root = "%(root)s";
workers = 1;
pid_file = "off";
log: { error = "%(rundir)s/error.log"; access = "%(access)s"; };
limits: { keepalive_timeout = 600; keepalive_requests = 1000000; };
"""


def wait_up(port, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            pb.die("porter exited during start-up (status %d)" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    pb.die("porter did not start listening within %.0f s under valgrind" % timeout)


def close_requests(port, n):
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(REQ_CLOSE)
        while s.recv(65536):
            pass
        s.close()


def callgrind_totals(outdir):
    """{pid: instructions} of every process callgrind wrote."""
    totals = {}
    for path in glob.glob(os.path.join(outdir, "cg.*")):
        pid = int(path.rsplit(".", 1)[1])
        with open(path) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    totals[pid] = int(line.split()[1])
    return totals


CONF_H2 = """listen = ( { address = "127.0.0.1:%(port)d"; tls = true; } );
root = "%(root)s";
workers = 1;
pid_file = "off";
log: { error = "%(rundir)s/error.log"; access = "%(access)s"; };
limits: { keepalive_timeout = 600; keepalive_requests = 1000000; send_timeout = 600; };
tls: { certificate = "%(ca)s/ec-full.pem"; key = "%(ca)s/ec.key"; };
"""


def h2_requests(port, n):
    """n GETs of the 1 KiB page over TLS, HTTP/2, 50 connections x 10 streams."""
    out = subprocess.run(["h2load", "-t1", "-c50", "-m10", "-n", str(n),
                          "https://127.0.0.1:%d/index.html" % port],
                         capture_output=True, text=True, timeout=1800).stdout
    if " %d succeeded" % n not in out or "Application protocol: h2" not in out:
        pb.die("h2load did not get %d answers over h2:\n%s" % (n, out[-600:]))


def worker_instructions(exe, docroot, tmp, case, n, log_on, extra="", ca=None):
    rundir = tempfile.mkdtemp(dir=tmp)
    port = pb.free_port()
    conf = os.path.join(rundir, "porter.conf")
    with open(conf, "w") as f:
        f.write((CONF_H2 if case == "h2" else CONF) % {
            "port": port, "root": docroot, "rundir": rundir, "ca": ca,
            "access": os.path.join(rundir, "access.log") if log_on else "off"})
        f.write(extra + "\n")
    outdir = os.path.join(rundir, "cg")
    os.mkdir(outdir)
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s/cg.%%p" % outdir,
         exe, "-c", conf], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_up(port, proc)
        if case == "ka":
            got = pb.keepalive_requests(port, n, nconn=4, timeout=600.0)
            if got != n:
                pb.die("%d of %d keep-alive requests answered" % (got, n))
        elif case == "h2":
            h2_requests(port, n)
        else:
            close_requests(port, n)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    totals = callgrind_totals(outdir)
    # The master is the process valgrind started; the worker is the other one.
    workers = [v for pid, v in totals.items() if pid != proc.pid]
    if len(workers) != 1:
        pb.die("expected one worker profile, found %d (%s)" % (len(workers), totals))
    return workers[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bins", nargs="+", metavar="BIN")
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", type=int, default=2500)
    ap.add_argument("--log", action="store_true", help="access log on")
    ap.add_argument("--h2", action="store_true",
                    help="HTTP/2 over TLS with h2load, instead of HTTP/1.1")
    ap.add_argument("--extra1", default="", help="config text for BIN")
    ap.add_argument("--extra2", default="", help="config text for BIN2")
    a = ap.parse_args()
    if a.large <= a.small:
        pb.die("--large must exceed --small")
    with tempfile.TemporaryDirectory(prefix="porter-instr-") as tmp:
        docroot = os.path.join(tmp, "www")
        pb.make_docroot(docroot)
        ca = None
        cases = (("ka", "1 KiB keep-alive, 4 connections"),
                 ("close", "1 KiB new connection per request"))
        if a.h2:
            if not shutil.which("h2load"):
                pb.die("h2load is missing (Debian package nghttp2-client)")
            ca = os.path.join(tmp, "ca")
            subprocess.run(["sh", os.path.join(ROOT, "tests/unit/fixtures/tls-mkca.sh"), ca],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cases = (("h2", "1 KiB over TLS, HTTP/2, 50 connections x 10 streams"),)
        rows = []
        for case, label in cases:
            per = []
            for i, exe in enumerate(a.bins):
                extra = a.extra2 if i == 1 else a.extra1
                lo = worker_instructions(exe, docroot, tmp, case, a.small, a.log, extra, ca)
                hi = worker_instructions(exe, docroot, tmp, case, a.large, a.log, extra, ca)
                per.append((hi - lo) / (a.large - a.small))
            rows.append((label, per))
    head = "| Case | " + " | ".join(os.path.relpath(b) for b in a.bins) + " |"
    if len(a.bins) == 2:
        head += " second/first |"
    print(head)
    print("|---|" + "---:|" * (len(a.bins) + (1 if len(a.bins) == 2 else 0)))
    for label, per in rows:
        line = "| %s | " % label + " | ".join("%.0f" % p for p in per) + " |"
        if len(per) == 2:
            line += " %.3f |" % (per[1] / per[0])
        print(line)
    print("\nInstructions per request in the worker (callgrind), access log %s; "
          "%d and %d requests per run." % ("on" if a.log else "off", a.small, a.large))


if __name__ == "__main__":
    main()
