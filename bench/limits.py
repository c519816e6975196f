#!/usr/bin/python3
"""What client limits cost porter (the client-limits issue's targets).

    bench/limits.py [--porter PATH] [--rounds 5] [--duration 5] [--abusers 1000]

1. Server CPU per 1 KiB keep-alive request (wrk -c50 -t1), client_limits
   off against mode = "enforce" with limits no test traffic reaches
   (rate 1e6 pages/s, burst 1e7): one binary, two servers side by side,
   1 worker each pinned to CPU 0, rounds interleaved with the order turned
   each round. Target: enforce within 5 % of off.
2. A normal client's p99 (wrk -c10, 1 KiB keep-alive) against the
   enforcing server, alone and then while --abusers connections from 10
   other loopback addresses (127.0.1.1-10) hold a request head half sent
   (a slowloris), all open. Target: p99 within 2x of unloaded.

Prints a Markdown table; run it on a quiet machine.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(BENCH, "lib"))

import porterbench as pb  # noqa: E402

CONF = """listen = [ "127.0.0.1:%(port)d" ];
root = "%(root)s";
workers = 1;
pid_file = "off";
log: { error = "%(rundir)s/error.log"; access = "off"; };
limits: { keepalive_timeout = 600; keepalive_requests = 1000000;
	max_connections = 20000; header_timeout = 600; };
%(limits)s
"""

ENFORCE = """client_limits: { mode = "enforce"; rate = 1000000.0; burst = 10000000.0;
	per_address_connections = 0; };"""


class Porter:
    def __init__(self, exe, tmp, docroot, tag, limits):
        self.port = pb.free_port()
        self.rundir = os.path.join(tmp, tag)
        os.makedirs(self.rundir)
        self.conf = os.path.join(self.rundir, "porter.conf")
        with open(self.conf, "w") as f:
            f.write(CONF % {"port": self.port, "root": docroot, "rundir": self.rundir,
                            "limits": limits})
        self.proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU, exe, "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                st, body = pb.http_get(self.port, "/index.html", timeout=1)
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pb.die("porter (%s) did not start; see %s" % (tag, self.rundir))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def hold_abusers(port, n):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.bind(("127.0.1.%d" % (1 + i % 10), 0))
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
        socks.append(s)
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--porter", default=os.path.join(os.path.dirname(BENCH), "build",
                                                     "src", "porter"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--abusers", type=int, default=1000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="porter-limits-bench-") as tmp:
        docroot = os.path.join(tmp, "www")
        pb.make_docroot(docroot)
        off = Porter(a.porter, tmp, docroot, "off", "")
        on = Porter(a.porter, tmp, docroot, "enforce", ENFORCE)
        cpu = {"off": [], "enforce": []}
        try:
            for rnd in range(a.rounds):
                pair = [("off", off), ("enforce", on)]
                for tag, srv in (pair if rnd % 2 == 0 else pair[::-1]):
                    r = pb.run_wrk(srv.port, "/index.html", 50, 1, a.duration, True, True,
                                   srv.proc.pid)
                    if "error" in r or r.get("status"):
                        pb.die("%s: %s" % (tag, r))
                    us = r["server_cpu"] / 100.0 * 1e6 / r["rps"]
                    cpu[tag].append(us)
                    pb.log("round %d %-8s %8.0f req/s %6.2f us CPU/req" % (rnd + 1, tag,
                                                                          r["rps"], us))
            base = pb.run_wrk(on.port, "/index.html", 10, 1, a.duration, True, True)
            socks = hold_abusers(on.port, a.abusers)
            time.sleep(1.0)
            loaded = pb.run_wrk(on.port, "/index.html", 10, 1, a.duration, True, True)
            alive = sum(1 for s in socks if s.fileno() != -1)
            for s in socks:
                s.close()
        finally:
            off.stop()
            on.stop()
    c_off, c_on = statistics.median(cpu["off"]), statistics.median(cpu["enforce"])
    print("\nclient_limits off vs enforce (limits not reached), 1 worker pinned, "
          "%d rounds of %d s\n" % (a.rounds, a.duration))
    print("| Case | off | enforce | enforce/off |\n|---|---:|---:|---:|")
    print("| server CPU µs per 1 KiB keep-alive request (wrk -c50) | %.2f | %.2f | %.3f |"
          % (c_off, c_on, c_on / c_off))
    print("\n| Normal client, wrk -c10, enforce | alone | with %d half-sent heads held "
          "| ratio |\n|---|---:|---:|---:|" % a.abusers)
    print("| p99 latency (µs) | %d | %d | %.2f |" % (base["p99_us"], loaded["p99_us"],
                                                   loaded["p99_us"] / max(1, base["p99_us"])))
    print("| req/s | %.0f | %.0f | %.2f |" % (base["rps"], loaded["rps"],
                                              loaded["rps"] / base["rps"]))
    print("\n%d abusive connections were opened and held (10 source addresses)." % alive)


if __name__ == "__main__":
    main()
