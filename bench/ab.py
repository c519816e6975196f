#!/usr/bin/python3
"""A/B benchmark of two porter binaries, side by side, for a change that
must not cost speed (bench/RESULTS.md, "Before and after").

    bench/ab.py OLD_BIN NEW_BIN [--rounds 5] [--duration 3] [--src-old DIR --src-new DIR]

Both servers run at the same time on their own ports with 1 worker,
pinned to CPU 0; wrk -t1 is pinned to CPU 1 (bench/README.md, mode A).
Rounds are interleaved and the order flips every round (old, new; new,
old; ...), so drift of the machine hits both alike; each measurement
follows its own warm-up. Reported: median req/s and median server CPU
per request for 1 KiB keep-alive at 50 connections and for a new
connection per request; then system calls per request under strace -c
(keep-alive, and new connection per request) and, with --src-*, the
size of an idle connection (sizeof(struct conn): an idle keep-alive
connection holds nothing else).

Uses bench/lib/porterbench.py's document root, server start-up and wrk
runner. Prints a Markdown table.
"""

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))

import porterbench as pb  # noqa: E402

REQ_CLOSE = (b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             b"User-Agent: porterbench\r\nConnection: close\r\n\r\n")


def new_connection_requests(port, total):
    """total requests, each on its own connection (Connection: close)."""
    done = 0
    for _ in range(total):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(REQ_CLOSE)
            while s.recv(65536):
                pass
        done += 1
    return done


def strace_count(run, server, client, n):
    pids = pb.worker_pids(run.pid, "porter")
    out = os.path.join(run.rundir, "strace-%d.txt" % time.time_ns())
    cmd = ["strace", "-c", "-f", "-o", out]
    for p in pids:
        cmd += ["-p", str(p)]
    st = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(1.0)
    answered = client(server.port, n)
    time.sleep(0.2)
    st.send_signal(signal.SIGINT)
    st.wait(timeout=15)
    counts = pb.parse_strace_c(out)
    total = sum(counts.values())
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:6]
    return total / answered, {k: round(v / answered, 3) for k, v in top}


def sizeof_conn(src):
    """sizeof(struct conn) compiled against src/porter.h of a tree."""
    prog = ("#include \"porter.h\"\n#include <stdio.h>\n"
            "int main(void) { printf(\"%zu\\n\", sizeof(struct conn)); return 0; }\n")
    with tempfile.TemporaryDirectory() as d:
        c = os.path.join(d, "s.c")
        with open(c, "w") as f:
            f.write(prog)
        exe = os.path.join(d, "s")
        subprocess.run(["cc", "-I", os.path.join(src, "src"), "-o", exe, c], check=True)
        return int(subprocess.run([exe], capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--syscall-requests", type=int, default=20000)
    ap.add_argument("--src-old")
    ap.add_argument("--src-new")
    ap.add_argument("--base-port", type=int, default=18090)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="porter-ab-")
    docroot = os.path.join(tmp, "www")
    os.makedirs(docroot)
    pb.make_docroot(docroot)
    template = os.path.join(pb.CONF_DIR, "porter.conf.in")
    servers = {
        "old": pb.Server("porter", os.path.abspath(a.old), template, a.base_port + 1),
        "new": pb.Server("porter", os.path.abspath(a.new), template, a.base_port + 2),
    }
    cases = [("1 KiB keep-alive, 50 conns", 50, True),
             ("1 KiB new connection per request, 50 conns", 50, False)]
    samples = {(c[0], k): [] for c in cases for k in servers}
    runs = {k: pb.start_server(s, tmp, "ab-" + k, 1, False, True, docroot)
            for k, s in servers.items()}
    load0 = os.getloadavg()[0]
    try:
        for rnd in range(a.rounds):
            order = ["old", "new"] if rnd % 2 == 0 else ["new", "old"]
            for name, conns, ka in cases:
                for k in order:
                    port = servers[k].port
                    pb.run_wrk(port, "/index.html", conns, 1, a.warmup, True, ka,
                               runs[k].pid)
                    r = pb.run_wrk(port, "/index.html", conns, 1, a.duration, True, ka,
                                   runs[k].pid)
                    if "error" in r:
                        sys.exit("%s: %s" % (k, r["error"]))
                    cpu_us = r["server_cpu"] / 100 * 1e6 / r["rps"] if r["rps"] else None
                    samples[(name, k)].append((r["rps"], cpu_us))
                    print("round %d %-4s %-45s %9.0f req/s %6.2f us CPU/req"
                          % (rnd + 1, k, name, r["rps"], cpu_us), file=sys.stderr)
    finally:
        for r in runs.values():
            r.stop()
    load1 = os.getloadavg()[0]

    sysc = {}
    for k, s in servers.items():
        run = pb.start_server(s, tmp, "sys-" + k, 1, False, False, docroot)
        try:
            pb.keepalive_requests(s.port, 500, nconn=4)
            sysc[(k, "ka")] = strace_count(
                run, s, lambda p, n: pb.keepalive_requests(p, n, nconn=4, timeout=300),
                a.syscall_requests)
            sysc[(k, "new")] = strace_count(run, s, new_connection_requests,
                                            a.syscall_requests // 4)
        finally:
            run.stop()

    print("Load average at the start %.2f, at the end %.2f; %d rounds of %d s "
          "(+%d s warm-up), order flipped each round.\n"
          % (load0, load1, a.rounds, a.duration, a.warmup))
    print("| Case | old req/s | new req/s | new/old | old CPU µs/req | new CPU µs/req | new/old |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, _, _ in cases:
        o = samples[(name, "old")]
        n = samples[(name, "new")]
        orps = statistics.median(x[0] for x in o)
        nrps = statistics.median(x[0] for x in n)
        ocpu = statistics.median(x[1] for x in o)
        ncpu = statistics.median(x[1] for x in n)
        print("| %s | %.0f | %.0f | %.3f | %.2f | %.2f | %.3f |"
              % (name, orps, nrps, nrps / orps, ocpu, ncpu, ncpu / ocpu))
    print()
    print("| System calls per request (strace -c -f on the worker) | old | new |")
    print("|---|---:|---:|")
    for key, label in (("ka", "keep-alive, 1 KiB, 4 connections"),
                       ("new", "new connection per request")):
        print("| %s | %.3f | %.3f |" % (label, sysc[("old", key)][0], sysc[("new", key)][0]))
    for key in ("ka", "new"):
        for k in ("old", "new"):
            print("\n%s %s: %s" % (k, key, sysc[(k, key)][1]))
    if a.src_old and a.src_new:
        print("\nsizeof(struct conn), all an idle keep-alive connection holds: "
              "old %d bytes, new %d bytes" % (sizeof_conn(a.src_old), sizeof_conn(a.src_new)))


if __name__ == "__main__":
    main()
