#!/usr/bin/python3
"""Constant load for tests/system/fleet.py, run inside a client network
namespace (``ip netns exec``).

    fleet_load.py HOST PORT PATH OUT STOPFILE [THREADS]

Each thread loops: a new TCP connection, ``GET PATH`` with
``Connection: close``, the whole response read, the connection closed.
Every request becomes one JSON line in OUT, written as soon as it ends:

    {"t0": start (CLOCK_REALTIME s), "t1": end, "port": local port,
     "status": 200 or null, "body": "...", "error": null or "why",
     "id": the request's own "?r=" query, unique in the run}

It stops once STOPFILE exists (checked between requests). A request
that does not end in a complete 200 response (refused, reset, closed
early, another status, 10 s without progress) is a failure: the fleet
test counts them.
"""

import json
import os
import socket
import sys
import threading
import time


def one(host, port, path, rid):
    rec = {"t0": time.time(), "port": None, "status": None, "body": None,
           "error": None, "id": rid}
    path = "%s?r=%s" % (path, rid)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect((host, port))
        rec["port"] = s.getsockname()[1]
        s.sendall(("GET %s HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n"
                   "User-Agent: fleet-load\r\n\r\n" % path).encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep:
            raise ConnectionError("closed before a full head (%d bytes)" % len(data))
        line = head.split(b"\r\n", 1)[0].split()
        rec["status"] = int(line[1])
        length = None
        for h in head.split(b"\r\n")[1:]:
            k, _, v = h.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        if length is not None and len(body) != length:
            raise ConnectionError("body cut: %d of %d" % (len(body), length))
        rec["body"] = body.decode("latin-1")
        if rec["status"] != 200:
            rec["error"] = "status %d" % rec["status"]
    except (OSError, ValueError, IndexError) as e:
        rec["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        s.close()
    rec["t1"] = time.time()
    return rec


def main():
    host, port, path, out, stop = sys.argv[1:6]
    nthreads = int(sys.argv[6]) if len(sys.argv) > 6 else 2
    lock = threading.Lock()
    f = open(out, "a", buffering=1)

    seq = iter(range(1 << 62))
    tag = "%d-%d" % (os.getpid(), int(time.time()))

    def loop():
        while not os.path.exists(stop):
            with lock:
                rid = "%s-%d" % (tag, next(seq))
            rec = one(host, int(port), path, rid)
            with lock:
                f.write(json.dumps(rec) + "\n")

    threads = [threading.Thread(target=loop) for _ in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f.close()


if __name__ == "__main__":
    main()
