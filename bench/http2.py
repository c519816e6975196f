#!/usr/bin/python3
"""porter's HTTP/2 against nginx, lighttpd and h2o, over TLS, in one run
(the HTTP/2 issue's performance targets; bench/README.md, "HTTP/2").

    bench/http2.py [--servers porter,nginx,lighttpd,h2o] [--rounds 3]
                [--duration 4] [--idle 500] [--porter PATH]

The servers of bench/tls.py (same certificate, 1 worker pinned to CPU 0,
each with HTTP/2 on: porter's default on TLS listeners, nginx `http2`,
lighttpd's and h2o's defaults); h2load (nghttp2-client) on CPU 1, ALPN h2.
Cases, medians over the rounds, servers interleaved, order turned every
round:

  1k       1 KiB page, 50 connections x 10 streams
  page     a page and its 30 assets the way a browser loads them: one
           connection, 31 streams at once, the 31 URLs in turn
  100k     100 KiB image, 10 connections x 1 stream
  8m       8 MiB file, 4 connections x 1 stream (req/s from bytes)

and once per server, on a fresh server: memory per idle h2 connection
(PSS of the server's processes with --idle connections that made one
request each and stay open, minus before, divided by --idle), then the
same with --idle/5 connections that each loaded the page and its 30 assets.
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(BENCH, "lib"))
sys.path.insert(0, BENCH)

import porterbench as pb  # noqa: E402
import tls as tb  # noqa: E402  (bench/tls.py: servers, certificates)

ASSETS = 30


def h2_templates():
    t = dict(tb.TEMPLATES)
    t["nginx"] = t["nginx"].replace("ssl backlog=4096;", "ssl http2 backlog=4096;")
    return t


def h2load(port, paths, conns, streams, duration, size=None):
    urls = ["https://127.0.0.1:%d%s" % (port, p) for p in paths]
    cmd = ["taskset", "-c", pb.CLIENT_CPU, "h2load", "-t1", "-c%d" % conns,
           "-m%d" % streams, "-D", str(duration), "--warm-up-time=1"] + urls
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    m = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s, ([\d.]+)([KMG]?)B/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
                   r"(\d+) failed", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if not m or not ok or not proto or proto.group(1) != "h2":
        return None, out[-400:]
    rps = float(m.group(2))
    if size:
        mult = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(4)]
        rps = float(m.group(3)) * mult / (size + 200)
    return rps, int(ok.group(3))


def idle_h2_memory(srv, ca, n, paths=("/index.html",)):
    """PSS per connection of n idle h2 connections that each asked for
    paths (as many streams at once as the server allows, as a browser
    does) and read every answer."""
    import h2.config
    import h2.connection
    ctx = tb.client_ctx(ca)
    ctx.set_alpn_protocols(["h2"])
    before = pb.tree_memory(srv.proc.pid)["pss_kb"]
    keep = []
    for _ in range(n):
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        s = ctx.wrap_socket(raw, server_hostname="example.org")
        if s.selected_alpn_protocol() != "h2":
            pb.die("%s did not select h2" % srv.name)
        c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        c.initiate_connection()
        s.sendall(c.data_to_send())
        todo, done, sent, settled = list(paths), 0, 0, False
        while done < len(paths):
            # the server's SETTINGS first: its stream limit (lighttpd: 8)
            while settled and todo and c.open_outbound_streams < \
                    c.remote_settings.max_concurrent_streams:
                c.send_headers(1 + 2 * sent, [(":method", "GET"), (":path", todo.pop(0)),
                                              (":scheme", "https"),
                                              (":authority", "example.org")],
                               end_stream=True)
                sent += 1
            out = c.data_to_send()
            if out:
                s.sendall(out)
            data = s.recv(65536)
            if not data:
                pb.die("%s closed an h2 connection" % srv.name)
            for ev in c.receive_data(data):
                name = type(ev).__name__
                if name == "RemoteSettingsChanged":
                    settled = True
                elif name == "StreamEnded":
                    done += 1
                elif name == "StreamReset":
                    pb.die("%s reset a stream" % srv.name)
                elif name == "DataReceived":
                    c.acknowledge_received_data(ev.flow_controlled_length,
                                                ev.stream_id)
        out = c.data_to_send()
        if out:
            s.sendall(out)
        keep.append((s, c))
    time.sleep(1.0)
    after = pb.tree_memory(srv.proc.pid)["pss_kb"]
    for s, _ in keep:
        s.close()
    return (after - before) * 1024.0 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="porter,nginx,lighttpd,h2o")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=4)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--porter", default=os.path.join(ROOT, "build", "src", "porter"))
    a = ap.parse_args()
    if not shutil.which("h2load"):
        pb.die("h2load is missing (Debian package nghttp2-client)")
    tb.TEMPLATES.update(h2_templates())
    names = [n for n in a.servers.split(",") if n]
    tb.EXES["porter"] = a.porter
    tmp = tempfile.mkdtemp(prefix="porter-h2-bench-")
    os.chmod(tmp, 0o755)
    ca = os.path.join(tmp, "ca")
    subprocess.run(["sh", os.path.join(ROOT, "tests/unit/fixtures/tls-mkca.sh"), ca],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cert, key, root = (os.path.join(ca, f) for f in ("ec-full.pem", "ec.key", "root.pem"))
    docroot = os.path.join(tmp, "www")
    pb.make_docroot(docroot)
    # 30 assets: copies of the CSS, JS and image under their own names
    os.makedirs(os.path.join(docroot, "assets"))
    srcs = ["style.css", "app.js", "image.png"]
    page_paths = ["/index.html"]
    for i in range(ASSETS):
        src = srcs[i % 3]
        name = "a%02d%s" % (i, os.path.splitext(src)[1])
        shutil.copy(os.path.join(docroot, src), os.path.join(docroot, "assets", name))
        page_paths.append("/assets/" + name)
    srvs = [tb.Srv(n, tb.EXES[n], pb.free_port(), tmp, docroot, cert, key) for n in names]
    cases = [("1k", "1 KiB page, 50 conns x 10 streams", ["/index.html"], 50, 10, None),
             ("page", "page + 30 assets, 1 conn x 31 streams", page_paths, 1, 31, None),
             ("100k", "100 KiB, 10 conns x 1 stream", ["/image.png"], 10, 1, None),
             ("8m", "8 MiB, 4 conns x 1 stream", ["/big.bin"], 4, 1, 8 * 1024 * 1024)]
    res = {s.name: {} for s in srvs}
    try:
        for s in srvs:
            s.start(root)
        for s in srvs:
            res[s.name]["idle"] = idle_h2_memory(s, root, a.idle)
            pb.log("%s: %.0f bytes per idle h2 connection" % (s.name, res[s.name]["idle"]))
            # a fresh server: the first batch's freed heap would be reused
            s.stop()
            s.start(root)
            res[s.name]["idle_page"] = idle_h2_memory(s, root, max(1, a.idle // 5), page_paths)
            pb.log("%s: %.0f bytes per idle h2 connection after a page"
                   % (s.name, res[s.name]["idle_page"]))
        for rnd in range(a.rounds):
            order = srvs if rnd % 2 == 0 else list(reversed(srvs))
            for key, label, paths, c, m, size in cases:
                for s in order:
                    rps, info = h2load(s.port, paths, c, m, a.duration, size)
                    if rps is None:
                        pb.log("%s %s: h2load failed: %s" % (s.name, key, info))
                    res[s.name].setdefault(key, []).append(rps)
                    pb.log("round %d %-8s %-40s %10.0f req/s" % (rnd + 1, s.name, label,
                                                                 rps or 0))
    finally:
        for s in srvs:
            s.stop()

    def med(name, key):
        v = [x for x in res[name].get(key, []) if x is not None]
        return statistics.median(v) if v else None

    peers = [s.name for s in srvs if s.name != "porter"]
    print("\nHTTP/2 over TLS (h2load -t1), 1 worker each, ECDSA P-256, %d rounds of %d s\n"
          % (a.rounds, a.duration))
    print("| Case | " + " | ".join(s.name for s in srvs) + " | "
          + " | ".join("porter/" + p for p in peers) + " |")
    print("|---|" + "---:|" * (len(srvs) + len(peers)))
    for key, label, _, _, _, _ in cases:
        vals = {s.name: med(s.name, key) for s in srvs}
        line = "| %s, req/s | " % label + " | ".join(
            "%.0f" % v if v is not None else "-" for v in vals.values()) + " |"
        for p in peers:
            line += (" %.2f |" % (vals["porter"] / vals[p])
                     if vals.get("porter") and vals.get(p) else " - |")
        print(line)
    for key, label in (("idle", "bytes per idle h2 connection (PSS), one request"),
                       ("idle_page", "same, after the page + 30 assets")):
        vals = {s.name: res[s.name][key] for s in srvs}
        line = "| %s | " % label + " | ".join("%.0f" % v for v in vals.values()) + " |"
        for p in peers:
            line += (" %.2f |" % (vals[p] / vals["porter"])
                     if vals.get("porter", 0) > 0 else " - |")
        print(line)
    print("\nRatios: porter/peer for req/s, peer/porter for memory (above 1.00: porter "
          "ahead).")


if __name__ == "__main__":
    main()
