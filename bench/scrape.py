#!/usr/bin/python3
"""Does scraping /metrics disturb serving? (the metrics issue's target:
scraping once a second leaves the figures within noise)

    bench/scrape.py [--porter PATH] [--rounds 6] [--duration 5]

One porter, 1 worker pinned to CPU 0, with a status listener; wrk -t1
-c50 on a 1 KiB keep-alive page from CPU 1. Rounds alternate: without a
scraper, then with one that GETs /metrics, /status and /health once a
second (as Prometheus and a load balancer would), order turned every
round. Reported: median req/s, server CPU per request and p99 of each
kind of round, and the spread of the unscraped rounds (the noise).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
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
limits: { keepalive_timeout = 600; keepalive_requests = 1000000; max_connections = 20000; };
status: { listen = [ "127.0.0.1:%(sport)d" ]; allow = [ "127.0.0.1/32" ]; };
"""


def scraper(sport, stop, got):
    while not stop.wait(1.0):
        for path in ("/metrics", "/status", "/health"):
            try:
                st, body = pb.http_get(sport, path, timeout=2)
                got.append((path, st, len(body)))
            except OSError:
                got.append((path, 0, 0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--porter", default=os.path.join(os.path.dirname(BENCH), "build",
                                                     "src", "porter"))
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--duration", type=int, default=5)
    a = ap.parse_args()
    res = {"plain": [], "scraped": []}
    scrapes = []
    with tempfile.TemporaryDirectory(prefix="porter-scrape-bench-") as tmp:
        docroot = os.path.join(tmp, "www")
        pb.make_docroot(docroot)
        port, sport = pb.free_port(), pb.free_port()
        conf = os.path.join(tmp, "porter.conf")
        with open(conf, "w") as f:
            f.write(CONF % {"port": port, "sport": sport, "root": docroot, "rundir": tmp})
        proc = subprocess.Popen(["taskset", "-c", pb.SERVER_CPU, a.porter, "-c", conf],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    if pb.http_get(sport, "/health", timeout=1)[0] == 200:
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                pb.die("porter did not start (see %s/error.log)" % tmp)
            for rnd in range(a.rounds):
                kinds = ["plain", "scraped"] if rnd % 2 == 0 else ["scraped", "plain"]
                for kind in kinds:
                    stop = threading.Event()
                    t = None
                    if kind == "scraped":
                        t = threading.Thread(target=scraper, args=(sport, stop, scrapes))
                        t.start()
                    r = pb.run_wrk(port, "/index.html", 50, 1, a.duration, True, True,
                                   proc.pid)
                    stop.set()
                    if t:
                        t.join()
                    if "error" in r:
                        pb.die(str(r))
                    us = r["server_cpu"] / 100.0 * 1e6 / r["rps"]
                    res[kind].append((r["rps"], us, r["p99_us"]))
                    pb.log("round %d %-8s %8.0f req/s %6.2f us CPU/req p99 %d us"
                           % (rnd + 1, kind, r["rps"], us, r["p99_us"]))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    bad = [s for s in scrapes if s[1] != 200 or s[2] == 0]
    if bad:
        pb.die("failed scrapes: %s" % bad[:5])

    def med(kind, i):
        return statistics.median(x[i] for x in res[kind])
    plain_rps = [x[0] for x in res["plain"]]
    print("\n/metrics, /status and /health scraped once a second vs not, 1 worker pinned, "
          "%d rounds of %d s; %d scrapes, all 200\n" % (a.rounds, a.duration, len(scrapes)))
    print("| | not scraped | scraped | scraped/not |\n|---|---:|---:|---:|")
    print("| req/s (median) | %.0f | %.0f | %.3f |" % (med("plain", 0), med("scraped", 0),
                                                      med("scraped", 0) / med("plain", 0)))
    print("| server CPU µs/request | %.2f | %.2f | %.3f |" % (
        med("plain", 1), med("scraped", 1), med("scraped", 1) / med("plain", 1)))
    print("| p99 µs | %d | %d | %.2f |" % (med("plain", 2), med("scraped", 2),
                                           med("scraped", 2) / max(1, med("plain", 2))))
    print("\nNoise: unscraped rounds ranged %.0f-%.0f req/s (%.1f %% of their median)."
          % (min(plain_rps), max(plain_rps),
             100 * (max(plain_rps) - min(plain_rps)) / statistics.median(plain_rps)))


if __name__ == "__main__":
    main()
