#!/usr/bin/python3
"""porterbench - benchmark porter against nginx, lighttpd and h2o.

Started by bench/run (which installs the tools and raises the fd limit).
Standard library only. See bench/README.md for what is measured and how.
"""

import argparse
import types
import datetime
import hashlib
import http.client
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(BENCH)
CONF_DIR = os.path.join(BENCH, "conf")
LUA = os.path.join(BENCH, "lib", "report.lua")
GZ_LUA = os.path.join(BENCH, "lib", "gzcycle.lua")

# The gzip case: the cyclers go round this many text files of this size
# under /gz/, more than the per-worker gzip cache (16 MiB) holds, so with
# LRU every request of theirs is a miss.
GZ_FILES = 48
GZ_SIZE = 2 * 1024 * 1024
GZ_TARGET = 2.0     # other clients' p99 with the cyclers / without

SERVER_CPU = "0"
CLIENT_BOUND = 90   # wrk CPU % (per thread) from which a cell is marked client-bound
CLIENT_CPU = "1"

# key, file name, size in bytes, label
FILES = [
    ("1k", "index.html", 1024, "1 KiB page"),
    ("16k", "style.css", 16 * 1024, "16 KiB CSS"),
    ("50k", "app.js", 50 * 1024, "50 KiB JS"),
    ("100k", "image.png", 100 * 1024, "100 KiB image"),
    ("8m", "big.bin", 8 * 1024 * 1024, "8 MiB file"),
]
FILE = {f[0]: f for f in FILES}

SERVER_ORDER = ["porter", "nginx", "lighttpd", "h2o"]
PEERS = ["nginx", "lighttpd", "h2o"]

# Throughput groups: (mode, access log on?) -> cases. A case is
# (file key, connections, keep-alive?). Mode A: 1 worker, server pinned to
# CPU 0, wrk -t1 pinned to CPU 1. Mode B: 2 workers, nothing pinned, wrk -t2.
FULL_PLAN = [
    ("A", False, [(k, c, True) for k, *_ in FILES for c in (50, 1000)]
     + [("1k", 50, False)]),
    ("A", True, [("1k", 50, True), ("1k", 1000, True)]),
    ("B", False, [("1k", 50, True), ("1k", 1000, True), ("100k", 50, True),
                  ("8m", 50, True), ("1k", 50, False)]),
    ("B", True, [("1k", 50, True)]),
]
QUICK_PLAN = [
    ("A", False, [("1k", 50, True), ("1k", 1000, True), ("8m", 50, True),
                  ("1k", 50, False)]),
    ("A", True, [("1k", 50, True)]),
    ("B", False, [("1k", 50, True)]),
]

MODE_TEXT = {
    "A": "1 worker, server pinned to CPU 0, wrk -t1 pinned to CPU 1",
    "B": "2 workers, unpinned, wrk -t2",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg):
    log("bench: " + msg)
    sys.exit(1)


# ---------------------------------------------------------------- document root

def make_docroot(root):
    """Write the fixed, deterministic test files into root."""
    os.makedirs(root, exist_ok=True)

    def text_of(size, first, line_of, last):
        out = bytearray(first.encode())
        i = 0
        while len(out) < size:
            out += line_of(i).encode()
            i += 1
        tail = last.encode()
        del out[size - len(tail):]
        out += tail
        assert len(out) == size
        return bytes(out)

    html_head = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                 "<title>porter benchmark page</title>\n"
                 "<link rel=\"stylesheet\" href=\"/style.css\">\n"
                 "<script src=\"/app.js\" defer></script>\n</head>\n<body>\n"
                 "<h1>porter benchmark page</h1>\n<img src=\"/image.png\" alt=\"\">\n")
    html_tail = "</p>\n</body>\n</html>\n"
    page = text_of(1024, html_head + "<p>",
                   lambda i: "Static content, line %03d. " % i, html_tail)
    css = text_of(16 * 1024, "/* porter benchmark stylesheet */\n",
                  lambda i: ".c%04d { margin: %dpx; padding: %dpx; color: #%06x; }\n"
                  % (i, i % 17, i % 13, (i * 2654435761) & 0xffffff),
                  "\n/* end */\n")
    js = text_of(50 * 1024, "\"use strict\";\n/* porter benchmark script */\n",
                 lambda i: "function f%05d(x) { return (x * %d + %d) %% 65521; }\n"
                 % (i, i + 7, i * 3 + 1),
                 "\n// end\n")
    png_magic = b"\x89PNG\r\n\x1a\n"
    image = png_magic + hashlib.shake_256(b"porter bench image").digest(100 * 1024 - 8)
    big = hashlib.shake_256(b"porter bench 8 MiB").digest(8 * 1024 * 1024)

    for key, name, size, _ in FILES:
        data = {"1k": page, "16k": css, "50k": js, "100k": image, "8m": big}[key]
        assert len(data) == size, (name, len(data))
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)


# ---------------------------------------------------------------- servers

def find_exe(name, *extra):
    path = shutil.which(name)
    if path:
        return path
    for p in extra:
        if os.access(p, os.X_OK):
            return p
    return None


class Server:
    def __init__(self, name, exe, template, port):
        self.name = name
        self.exe = exe
        self.template = template
        self.port = port

    def command(self, conf, rundir):
        if self.name == "porter":
            return [self.exe, "-c", conf]
        if self.name == "nginx":
            return [self.exe, "-p", rundir + "/", "-e", os.path.join(rundir, "error.log"),
                    "-c", conf]
        if self.name == "lighttpd":
            return [self.exe, "-D", "-f", conf]
        if self.name == "h2o":
            return [self.exe, "-c", conf]
        raise ValueError(self.name)

    def version(self):
        args = ["-V"] if self.name == "porter" else ["-v"]
        try:
            # Own process group: if the binary ignores the flag and starts
            # serving, the whole group is killed.
            p = subprocess.Popen([self.exe] + args, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        except OSError:
            p = None
        if p:
            try:
                out, err = p.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.communicate()
                out = err = ""
            text = (out + err).strip().splitlines()
            if p.returncode == 0 and text:
                line = text[0].strip()
                if self.name == "nginx" and ":" in line:
                    line = line.split(":", 1)[1].strip()
                if self.name == "lighttpd":
                    line = line.split(" - ")[0].split(" (")[0]
                return line
        if self.name == "porter":
            when = datetime.datetime.fromtimestamp(os.path.getmtime(self.exe))
            return "porter (built %s)" % when.strftime("%Y-%m-%d %H:%M")
        return "unknown"


def render(template_path, values, log_on):
    out = []
    with open(template_path) as f:
        for line in f:
            if line.startswith("@IF_LOG@"):
                if not log_on:
                    continue
                line = line[len("@IF_LOG@"):]
            elif line.startswith("@IF_NOLOG@"):
                if log_on:
                    continue
                line = line[len("@IF_NOLOG@"):]
            for k, v in values.items():
                line = line.replace("@%s@" % k, str(v))
            out.append(line)
    return "".join(out)


class Running:
    """A server process we started (in its own process group)."""

    def __init__(self, server, proc, rundir, workers, pinned, log_on):
        self.server = server
        self.proc = proc
        self.rundir = rundir
        self.workers = workers
        self.pinned = pinned
        self.log_on = log_on
        self.dead_reported = False

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=15):
        lines = []
        for name in ("stdout.log", "error.log", "porter-error.log"):
            p = os.path.join(self.rundir, name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    tail = f.read().splitlines()[-n:]
                if tail:
                    lines.append("  --- %s" % name)
                    lines.extend("  " + t for t in tail)
        return "\n".join(lines)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                log("bench: %s did not stop on SIGTERM, killing it" % self.server.name)
        # Reap leftovers of the group (workers that outlived the master).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's
    choice), for a server the caller starts next."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_busy(port):
    s = socket.socket()
    s.settimeout(0.3)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def http_get(port, path, timeout=3.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, body
    finally:
        c.close()


def start_server(server, tmp, tag, workers, log_on, pinned, docroot, compression=False):
    rundir = os.path.join(tmp, tag, server.name)
    os.makedirs(rundir, exist_ok=True)
    access = os.path.join(rundir, "access.log") if log_on else "off"
    values = {
        "PORT": server.port, "ROOT": docroot, "RUNDIR": rundir, "WORKERS": workers,
        "ACCESS_LOG": access, "MAX_FDS": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "COMPRESSION": "true" if compression else "false",
    }
    conf = os.path.join(rundir, os.path.basename(server.template)[:-3])
    with open(conf, "w") as f:
        f.write(render(server.template, values, log_on))
    if port_busy(server.port):
        raise RuntimeError("port %d is already in use (set BASE_PORT to move)" % server.port)
    cmd = server.command(conf, rundir)
    if pinned:
        cmd = ["taskset", "-c", SERVER_CPU] + cmd
    out = open(os.path.join(rundir, "stdout.log"), "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            cwd=rundir, start_new_session=True)
    out.close()
    run = Running(server, proc, rundir, workers, pinned, log_on)
    deadline = time.time() + 10
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with status %s at start-up\n%s"
                               % (server.name, proc.returncode, run.log_tail()))
        try:
            status, body = http_get(server.port, "/index.html", timeout=1)
            if status == 200 and len(body) == 1024:
                break
            last = "status %d, %d bytes" % (status, len(body))
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    else:
        run.stop()
        raise RuntimeError("%s did not answer on port %d (%s)\n%s"
                           % (server.name, server.port, last, run.log_tail()))
    # Every file must come back whole, or the numbers mean nothing.
    for key, name, size, _ in FILES:
        status, body = http_get(server.port, "/" + name, timeout=10)
        if status != 200 or len(body) != size:
            run.stop()
            raise RuntimeError("%s: GET /%s gave status %d with %d bytes (want 200, %d)"
                               % (server.name, name, status, len(body), size))
    return run


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def proc_tree(pid):
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def worker_pids(pid, name):
    """The processes that serve requests: the master's descendants, or the
    process itself when it has none. h2o is one multi-threaded process (its
    only child is a perl crash-report helper)."""
    if name == "h2o":
        return [pid]
    tree = proc_tree(pid)
    return tree[1:] or tree


def tree_memory(pid):
    rss = pss = 0
    pids = proc_tree(pid)
    for p in pids:
        try:
            with open("/proc/%d/status" % p) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return {"rss_kb": rss, "pss_kb": pss, "procs": len(pids)}


# ---------------------------------------------------------------- wrk

def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                t = f.read().rsplit(")", 1)[1].split()
            total += int(t[11]) + int(t[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


CLK_TCK = os.sysconf("SC_CLK_TCK")
BYTES_RATE_FROM = 1024 * 1024


def run_wrk(port, path, conns, threads, duration, pinned, keepalive=True, server_pid=None,
            size=None, scheme="http"):
    """One wrk run. With size (bytes of the body) at or above BYTES_RATE_FROM,
    rps is computed from the bytes received (partial responses count): with
    1000 connections sharing 8 MiB responses almost none completes within a
    few seconds, yet the transfer rate is steady."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % duration,
           "--timeout", "30s" if size and size >= BYTES_RATE_FROM else "10s", "-s", LUA]
    if not keepalive:
        cmd += ["-H", "Connection: close"]
    cmd.append("%s://127.0.0.1:%d%s" % (scheme, port, path))
    if pinned:
        cmd = ["taskset", "-c", CLIENT_CPU] + cmd
    pids = proc_tree(server_pid) if server_pid else []
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    tk0 = cpu_ticks(pids)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return {"error": "wrk timed out"}
    tk1 = cpu_ticks(pids)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for line in r.stdout.splitlines():
        if line.startswith("PORTERBENCH "):
            res = json.loads(line[len("PORTERBENCH "):])
            secs = res["duration_us"] / 1e6
            res["rps"] = res["requests"] / secs if secs > 0 else 0.0
            res["completed_rps"] = res["rps"]
            if size and size >= BYTES_RATE_FROM and secs > 0:
                res["rps"] = res["bytes"] / secs / (size + 200)  # ~200 bytes of headers
                res["rate_from_bytes"] = True
            res["socket_errors"] = res["connect"] + res["read"] + res["write"] + res["timeout"]
            # CPU use in % of one core over the run (wrk's includes its set-up).
            if secs > 0:
                res["client_cpu"] = round(100 * ((ru1.ru_utime - ru0.ru_utime)
                                                 + (ru1.ru_stime - ru0.ru_stime)) / secs, 1)
                if pids:
                    res["server_cpu"] = round(100 * (tk1 - tk0) / CLK_TCK / secs, 1)
            return res
    return {"error": "wrk failed (status %d): %s" % (r.returncode,
                                                     (r.stderr or r.stdout).strip()[-300:])}


# ---------------------------------------------------------------- raw clients

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: porterbench\r\n\r\n"


class _Conn:
    __slots__ = ("sock", "buf", "need", "state", "done")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.need = None
        self.state = "connect"
        self.done = 0


def _response_complete(c):
    """True when c.buf holds one whole response; removes it from the buffer."""
    if c.need is None:
        end = c.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(c.buf[:end]).decode("latin-1").split("\r\n")
        if not head[0].startswith("HTTP/1.1 200"):
            raise RuntimeError("unexpected response: %r" % head[0])
        length = 0
        for h in head[1:]:
            name, _, value = h.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        c.need = end + 4 + length
    if len(c.buf) < c.need:
        return False
    del c.buf[:c.need]
    c.need = None
    return True


def open_idle(port, n, batch=500, timeout=30.0):
    """Open n keep-alive connections, make one request on each, read the
    response, and leave them open. Returns (sockets, failures)."""
    sel = selectors.DefaultSelector()
    socks, failures = [], 0
    deadline = time.time() + timeout
    opened = 0
    while opened < n and time.time() < deadline:
        pending = {}
        for _ in range(min(batch, n - opened)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            c = _Conn(s)
            pending[s.fileno()] = c
            sel.register(s, selectors.EVENT_WRITE, c)
            opened += 1
        while pending and time.time() < deadline:
            for key, ev in sel.select(timeout=1.0):
                c = key.data
                try:
                    if c.state == "connect":
                        err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, os.strerror(err))
                        c.sock.send(REQUEST)
                        c.state = "read"
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                        continue
                    data = c.sock.recv(65536)
                    if not data:
                        raise OSError("closed by server")
                    c.buf += data
                    if _response_complete(c):
                        sel.unregister(c.sock)
                        del pending[c.sock.fileno()]
                        socks.append(c.sock)
                except (OSError, RuntimeError):
                    sel.unregister(c.sock)
                    del pending[c.sock.fileno()]
                    c.sock.close()
                    failures += 1
        for c in pending.values():
            sel.unregister(c.sock)
            c.sock.close()
            failures += 1
    sel.close()
    return socks, failures + (n - opened)


def still_open(socks):
    """Count connections the server has not closed."""
    alive = 0
    for s in socks:
        try:
            data = s.recv(1, socket.MSG_PEEK)
            if data:
                alive += 1  # unexpected bytes, but open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def keepalive_requests(port, total, nconn=4, timeout=120.0):
    """Make exactly `total` keep-alive requests over nconn connections, one
    request in flight per connection. Returns the number answered."""
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(nconn):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    issued = answered = 0
    for c in conns:
        if issued < total:
            c.sock.send(REQUEST)
            issued += 1
    deadline = time.time() + timeout
    while answered < total and time.time() < deadline:
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            data = c.sock.recv(65536)
            if not data:
                raise RuntimeError("server closed a keep-alive connection")
            c.buf += data
            while _response_complete(c):
                answered += 1
                if issued < total:
                    c.sock.send(REQUEST)
                    issued += 1
    for c in conns:
        sel.unregister(c.sock)
        c.sock.close()
    sel.close()
    return answered


# ---------------------------------------------------------------- throughput

def case_id(mode, log_on, case):
    key, conns, ka = case
    return "%s/%s/%s/%d/%s" % (mode, "log" if log_on else "nolog", key, conns,
                               "ka" if ka else "close")


def case_label(case):
    key, conns, ka = case
    if ka:
        return "%s, %d conns" % (FILE[key][3], conns)
    return "%s, new connection per request, %d conns" % (FILE[key][3], conns)


def run_throughput(servers, plan, cfg, tmp, docroot, results):
    for gi, (mode, log_on, cases) in enumerate(plan):
        workers = 1 if mode == "A" else 2
        pinned = mode == "A" and cfg.pin
        threads = 1 if mode == "A" else 2
        tag = "tp-%s-%s" % (mode, "log" if log_on else "nolog")
        log("== mode %s (%s), access log %s"
            % (mode, MODE_TEXT[mode], "on" if log_on else "off"))
        running = {}
        try:
            for s in servers:
                try:
                    running[s.name] = start_server(s, tmp, tag, workers, log_on, pinned, docroot)
                except RuntimeError as e:
                    log("bench: skipping %s in this group: %s" % (s.name, e))
            names = [s.name for s in servers if s.name in running]
            for rnd in range(cfg.rounds):
                shift = rnd % len(names) if names else 0
                order = names[shift:] + names[:shift]
                for case in cases:
                    cid = case_id(mode, log_on, case)
                    key, conns, ka = case
                    path = "/" + FILE[key][1]
                    for name in order:
                        run = running[name]
                        if not run.alive():
                            if not run.dead_reported:
                                log("bench: %s died\n%s" % (name, run.log_tail()))
                                run.dead_reported = True
                            results.setdefault(cid, {}).setdefault(name, []).append(
                                {"error": "server died"})
                            continue
                        size = FILE[key][2]
                        if cfg.warmup > 0:
                            run_wrk(run.server.port, path, conns, threads, cfg.warmup,
                                    pinned, ka, size=size)
                        r = run_wrk(run.server.port, path, conns, threads, cfg.duration,
                                    pinned, ka, server_pid=run.pid, size=size)
                        results.setdefault(cid, {}).setdefault(name, []).append(r)
                        if "error" in r:
                            log("  round %d  %-34s %-9s %s"
                                % (rnd + 1, case_label(case), name, r["error"]))
                        else:
                            log("  round %d  %-34s %-9s %9.0f req/s  p99 %-8s  cpu: "
                                "server %3.0f%% wrk %3.0f%%%s"
                                % (rnd + 1, case_label(case), name, r["rps"],
                                   fmt_ms(r["p99_us"] if r["requests"] else None),
                                   r.get("server_cpu", 0),
                                   r.get("client_cpu", 0), err_note(r)))
        finally:
            for run in running.values():
                run.stop()


def err_note(r):
    if r.get("socket_errors") or r.get("status"):
        return "  (socket errors %d, non-2xx %d)" % (r["socket_errors"], r["status"])
    return ""


def summarize(samples):
    ok = [s for s in samples if "error" not in s]
    if not ok:
        return None
    done = [s for s in ok if s["requests"] > 0]
    return {
        "rps": statistics.median(s["rps"] for s in ok),
        "p99_us": statistics.median(s["p99_us"] for s in done) if done else None,
        "rounds": len(ok),
        "socket_errors": sum(s["socket_errors"] for s in ok),
        "status": sum(s["status"] for s in ok),
        "samples_rps": [round(s["rps"], 1) for s in ok],
        "client_cpu": statistics.median(s.get("client_cpu", 0) for s in ok),
        "server_cpu": statistics.median(s.get("server_cpu", 0) for s in ok),
    }


# ---------------------------------------------------------------- extras

def measure_memory(server, tmp, docroot, n):
    run = start_server(server, tmp, "mem", 1, False, False, docroot)
    try:
        keepalive_requests(server.port, 200, nconn=2)
        time.sleep(0.5)
        before = tree_memory(run.pid)
        t0 = time.time()
        socks, failures = open_idle(server.port, n)
        opened_in = time.time() - t0
        time.sleep(1.0)
        after = tree_memory(run.pid)
        held = still_open(socks)
        for s in socks:
            s.close()
        alive = run.alive()
    finally:
        run.stop()
    res = {
        "connections": n, "answered": len(socks), "failures": failures, "held": held,
        "before": before, "after": after, "open_seconds": round(opened_in, 2),
        "server_alive": alive,
    }
    if held:
        res["rss_per_conn"] = (after["rss_kb"] - before["rss_kb"]) * 1024 / held
        res["pss_per_conn"] = (after["pss_kb"] - before["pss_kb"]) * 1024 / held
    return res


def parse_strace_c(path):
    counts = {}
    with open(path) as f:
        for line in f:
            t = line.split()
            if len(t) < 5 or not t[0][0].isdigit() or t[-1] == "total":
                continue
            try:
                float(t[0])
                counts[t[-1]] = int(t[3])
            except (ValueError, IndexError):
                continue
    return counts


IO_CALLS = {"read", "readv", "recv", "recvfrom", "recvmsg", "write", "writev", "send",
            "sendto", "sendmsg", "sendfile", "sendfile64", "epoll_wait", "epoll_pwait",
            "epoll_pwait2", "epoll_ctl", "pread64", "preadv", "preadv2", "pwritev",
            "accept", "accept4", "close", "shutdown",
            "setsockopt", "io_uring_enter", "splice"}


def measure_syscalls(server, tmp, docroot, n):
    if not shutil.which("strace"):
        return {"error": "strace is not installed"}
    run = start_server(server, tmp, "sys", 1, False, False, docroot)
    try:
        keepalive_requests(server.port, 500, nconn=4)
        pids = worker_pids(run.pid, server.name)
        out = os.path.join(run.rundir, "strace.txt")
        cmd = ["strace", "-c", "-f", "-o", out]
        for p in pids:
            cmd += ["-p", str(p)]
        st = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
        time.sleep(1.0)
        if st.poll() is not None:
            return {"error": "strace failed: %s" % st.stderr.read().decode(errors="replace")[-300:]}
        t0 = time.time()
        answered = keepalive_requests(server.port, n, nconn=4, timeout=300)
        secs = time.time() - t0
        time.sleep(0.2)
        st.send_signal(signal.SIGINT)
        try:
            st.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(st.pid, signal.SIGKILL)
            st.wait()
        st.stderr.close()
        counts = parse_strace_c(out)
    finally:
        run.stop()
    total = sum(counts.values())
    io = sum(v for k, v in counts.items() if k in IO_CALLS)
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
    return {
        "requests": n, "answered": answered, "seconds_traced": round(secs, 2),
        "worker_pids": len(pids), "total_calls": total,
        "per_request": total / answered if answered else None,
        "io_per_request": io / answered if answered else None,
        "breakdown": {k: round(v / answered, 3) for k, v in top} if answered else {},
    }


def measure_c10k(server, tmp, docroot, conns, duration):
    run = start_server(server, tmp, "c10k", 2, False, False, docroot)
    try:
        r = run_wrk(server.port, "/index.html", conns, 2, duration, False, True)
        alive = run.alive()
    finally:
        run.stop()
    r["server_alive"] = alive
    r["connections"] = conns
    return r


def make_gz_files(docroot):
    """GZ_FILES distinct files (distinct inodes: the gzip cache keys on
    them) of the same compressible CSS-like text, under docroot/gz/.
    Cycled through in order, with LRU, every request is a cache miss."""
    d = os.path.join(docroot, "gz")
    os.makedirs(d, exist_ok=True)
    out = bytearray()
    i = 0
    while len(out) < GZ_SIZE:
        # The hex comment keeps it to about 3:1, so the 48 gzipped
        # copies (about 30 MiB) cannot all fit in the 16 MiB cache.
        out += (".g%06d { margin: %dpx; padding: %dpx; color: #%06x; } /* %s */\n"
                % (i, i % 17, i % 13, (i * 2654435761) & 0xffffff,
                   hashlib.sha256(b"%d" % i).hexdigest()[:24])).encode()
        i += 1
    data = bytes(out[:GZ_SIZE])
    for k in range(GZ_FILES):
        with open(os.path.join(d, "f%02d.txt" % k), "wb") as f:
            f.write(data)


def measure_gzip(server, tmp, docroot, cfg):
    """Other clients' p99 on the 1 KiB page (50 connections, no
    Accept-Encoding), alone and then while two clients cycle through
    uncached large text files asking for gzip. 1 worker, pinned as in
    mode A. The ratio of the two medians is the figure of merit."""
    make_gz_files(docroot)
    pinned = bool(cfg.pin)
    run = start_server(server, tmp, "gzip", 1, False, pinned, docroot, compression=True)
    samples = []
    try:
        for rnd in range(cfg.rounds):
            if cfg.warmup:
                run_wrk(server.port, "/index.html", 50, 1, cfg.warmup, pinned)
            alone = run_wrk(server.port, "/index.html", 50, 1, cfg.duration, pinned,
                            server_pid=run.pid)
            # The cyclers start first and outlast the measurement.
            cmd = ["wrk", "-t1", "-c2", "-d%ds" % (cfg.warmup + cfg.duration + 2),
                   "--timeout", "30s", "-s", GZ_LUA,
                   "http://127.0.0.1:%d/gz/f00.txt" % server.port]
            if pinned:
                cmd = ["taskset", "-c", CLIENT_CPU] + cmd
            env = dict(os.environ, GZ_FILES=str(GZ_FILES))  # and GZ_RANGE, GZ_IDENTITY, if set
            cyc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, env=env)
            try:
                time.sleep(cfg.warmup + 0.5)
                loaded = run_wrk(server.port, "/index.html", 50, 1, cfg.duration, pinned,
                                 server_pid=run.pid)
                out, _ = cyc.communicate(timeout=cfg.warmup + cfg.duration + 60)
            finally:
                if cyc.poll() is None:
                    cyc.kill()
                    cyc.wait()
            c = {"error": "cyclers: " + out.strip()[-200:]}
            for line in out.splitlines():
                if line.startswith("PORTERBENCH "):
                    c = json.loads(line[len("PORTERBENCH "):])
            for r in (alone, loaded):
                if "error" in r:
                    raise RuntimeError("gzip case: " + r["error"])
            sample = {"alone_p99_us": alone["p99_us"], "loaded_p99_us": loaded["p99_us"],
                      "alone_rps": alone["rps"], "loaded_rps": loaded["rps"],
                      "ratio": loaded["p99_us"] / max(alone["p99_us"], 1),
                      "cyclers": c}
            log("  round %d: p99 %s alone, %s with the cyclers (x%.2f); cyclers %s"
                % (rnd + 1, fmt_ms(alone["p99_us"]), fmt_ms(loaded["p99_us"]),
                   sample["ratio"], json.dumps(c)))
            samples.append(sample)
        if not run.alive():
            raise RuntimeError("gzip case: the server died\n" + run.log_tail())
    finally:
        run.stop()

    def med(key):
        return statistics.median(x[key] for x in samples)
    cyc_ok = [x["cyclers"] for x in samples if "error" not in x["cyclers"]]
    return {"rounds": samples, "alone_p99_us": med("alone_p99_us"),
            "loaded_p99_us": med("loaded_p99_us"), "alone_rps": med("alone_rps"),
            "loaded_rps": med("loaded_rps"), "ratio": med("ratio"),
            "cycler_requests": sum(x["requests"] for x in cyc_ok),
            "cycler_gzip": sum(x["gzip"] for x in cyc_ok),
            "cycler_p99_us": statistics.median(x["p99_us"] for x in cyc_ok) if cyc_ok else None}


# ---------------------------------------------------------------- report

def fmt_rps(v):
    return "{:,.0f}".format(v)


def fmt_ms(us):
    if us is None:
        return "—"
    ms = us / 1000.0
    if ms < 10:
        return "%.2f ms" % ms
    if ms < 100:
        return "%.1f ms" % ms
    return "%.0f ms" % ms


def fmt_ratio(r):
    return "—" if r is None else "%.2f×" % r


def ratio(table, cid, peer):
    row = table.get(cid, {})
    p, q = row.get("porter"), row.get(peer)
    if not p or not q or not q["rps"]:
        return None
    return p["rps"] / q["rps"]


def cpu_us_per_req(s):
    """Server CPU time per request in microseconds (all its processes)."""
    if not s or not s.get("rps") or not s.get("server_cpu"):
        return None
    return s["server_cpu"] / 100.0 / s["rps"] * 1e6


def efficiency(table, cid, peer):
    """peer's CPU per request / porter's: > 1 when porter does the same work
    for less CPU. Meaningful even when the load generator is the limit."""
    row = table.get(cid, {})
    p, q = cpu_us_per_req(row.get("porter")), cpu_us_per_req(row.get(peer))
    if not p or not q:
        return None
    return q / p


def client_bound(table, cid, mode):
    s = table.get(cid, {}).get("porter")
    return bool(s) and s.get("client_cpu", 0) / (1 if mode == "A" else 2) >= CLIENT_BOUND


def throughput_tables(table, plan, names):
    out = []
    marked = False
    for mode, log_on, cases in plan:
        out.append("#### Mode %s — %s, access log %s\n"
                   % (mode, MODE_TEXT[mode], "on (to a file)" if log_on else "off"))
        peers = [p for p in PEERS if p in names]
        head = (["Case"] + ["%s req/s (p99)" % n for n in names] + ["porter/%s" % p for p in peers]
                + ["server CPU µs/req (%s)" % " / ".join(names)])
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
        for case in cases:
            cid = case_id(mode, log_on, case)
            cells = [case_label(case)]
            for n in names:
                s = table.get(cid, {}).get(n)
                if not s:
                    cells.append("—")
                else:
                    c = "%s (%s)" % (fmt_rps(s["rps"]), fmt_ms(s["p99_us"]))
                    if s["client_cpu"] / (1 if mode == "A" else 2) >= CLIENT_BOUND:
                        c += " †"
                        marked = True
                    if s["socket_errors"] or s["status"]:
                        c += " (errors: %d socket, %d non-2xx)" % (s["socket_errors"], s["status"])
                    cells.append(c)
            for p in peers:
                cells.append(fmt_ratio(ratio(table, cid, p)))
            row = table.get(cid, {})
            us = [cpu_us_per_req(row.get(n)) for n in names]
            cells.append(" / ".join("—" if u is None else "%.1f" % u for u in us))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    if any(FILE[k][2] >= BYTES_RATE_FROM for _, _, cs in plan for k, _, _ in cs):
        out.append("Rows for files of 1 MiB or more give req/s computed from the bytes "
                   "received (body + ~200 header bytes per response), so that responses still "
                   "in flight when the run ends count too; p99 is over completed responses "
                   "only.\n")
    if marked:
        out.append("† wrk used ≥ %d%% of a core per thread here: the load generator may be "
                   "the limit, which compresses ratios toward 1.\n" % CLIENT_BOUND)
    out.append("The last column is each server's CPU time per request (all its processes, "
               "from /proc): the same work for less CPU shows there even when the client "
               "is the limit.\n")
    return "\n".join(out)


def fmt_ratio3(r):
    return "—" if r is None else "%.3f×" % r


def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**not met**"


def targets(table, plan, extras, names):
    rows = []

    def add(what, value, ok):
        rows.append((what, value, verdict(ok)))

    def add_ratio(what, mode, cid, peer, r, goal):
        """A req/s ratio target. When porter's run was client-bound the
        req/s ratio says more about wrk than the servers: show the CPU
        per request ratio next to it and say which one met the goal."""
        ok = None if r is None else r >= goal
        value = fmt_ratio3(r)
        if r is not None and not ok and client_bound(table, cid, mode):
            e = efficiency(table, cid, peer)
            if e is not None:
                value += " (client-bound †; CPU per request %.2f×)" % e
                if e >= goal:
                    rows.append((what, value, "met on CPU per request; req/s client-bound"))
                    return
        add(what, value, ok)

    for mode in ("A", "B"):
        present = {(m, l) for m, l, _ in plan if m == mode}
        if not present:
            continue
        cid = case_id(mode, False, ("1k", 50, True))
        rn, rl, rh = (ratio(table, cid, p) for p in PEERS)
        if (mode, False) in present:
            add_ratio("%s: 1 KiB keep-alive, 50 conns, logs off: ≥ 1.3× nginx" % mode,
                      mode, cid, "nginx", rn, 1.3)
            best = [r for r in (rl, rh) if r is not None]
            lo = min(best) if best else None  # vs the faster of the two
            what = "%s: same case: ≥ 1.0× max(lighttpd, h2o)" % mode
            effs = [efficiency(table, cid, p) for p in ("lighttpd", "h2o")
                    if ratio(table, cid, p) is not None]
            if (lo is not None and lo < 1.0 and client_bound(table, cid, mode)
                    and effs and None not in effs):
                e = min(effs)
                rows.append((what, "%s (client-bound †; CPU per request %.2f× the leaner)"
                             % (fmt_ratio3(lo), e),
                             "met on CPU per request; req/s client-bound" if e >= 1.0
                             else "**not met**"))
            else:
                add(what, fmt_ratio3(lo), None if lo is None else lo >= 1.0)
        if (mode, True) in present:
            c2 = case_id(mode, True, ("1k", 50, True))
            add_ratio("%s: 1 KiB keep-alive, 50 conns, logs on: ≥ 1.2× nginx" % mode,
                      mode, c2, "nginx", ratio(table, c2, "nginx"), 1.2)
        for key in ("100k", "8m"):
            c = (key, 50, True)
            if any(m == mode and not l and c in cs for m, l, cs in plan):
                c2 = case_id(mode, False, c)
                add_ratio("%s: %s keep-alive, 50 conns: ≥ 1.0× nginx" % (mode, FILE[key][3]),
                          mode, c2, "nginx", ratio(table, c2, "nginx"), 1.0)
        c = ("1k", 50, False)
        if any(m == mode and not l and c in cs for m, l, cs in plan):
            c2 = case_id(mode, False, c)
            add_ratio("%s: new connection per request (1 KiB): ≥ 1.2× nginx" % mode,
                      mode, c2, "nginx", ratio(table, c2, "nginx"), 1.2)
        # 1000 connections: none of the ratios targeted above may drop more
        # than 10% from its value at 50 connections.
        def best_of(cid, peers):
            rs = [ratio(table, cid, p) for p in peers]
            rs = [r for r in rs if r is not None]
            return min(rs) if rs else None     # porter over the fastest

        targeted = [(False, "1k", ("nginx",), "1k vs nginx"),
                    (False, "1k", ("lighttpd", "h2o"), "1k vs max(lighttpd, h2o)"),
                    (True, "1k", ("nginx",), "1k logs on vs nginx"),
                    (False, "100k", ("nginx",), "100k vs nginx"),
                    (False, "8m", ("nginx",), "8m vs nginx")]
        drops, checked = [], []
        for log_on, key, peers, label in targeted:
            r50 = best_of(case_id(mode, log_on, (key, 50, True)), peers)
            r1k = best_of(case_id(mode, log_on, (key, 1000, True)), peers)
            if r50 is None or r1k is None:
                continue
            change = r1k / r50 - 1
            checked.append("%s %+.0f%%" % (label, change * 100))
            if change < -0.10:
                drops.append(label)
        what = "%s: 1000 conns: no targeted ratio drops > 10%% vs 50 conns" % mode
        if checked:
            add(what, "; ".join(checked), not drops)
        else:
            add(what, "—", None)
        # Beyond the targets: every file against every peer, for information.
        worst = []
        for m, l, cs in plan:
            if m != mode:
                continue
            for key, conns, ka in cs:
                if conns != 1000 or (key, 50, ka) not in cs:
                    continue
                for p in PEERS:
                    r50 = ratio(table, case_id(m, l, (key, 50, ka)), p)
                    r1k = ratio(table, case_id(m, l, (key, 1000, ka)), p)
                    if r50 is not None and r1k is not None and r1k / r50 - 1 < -0.10:
                        worst.append("%s%s vs %s %+.0f%%" % (key, " logs on" if l else "", p,
                                                            (r1k / r50 - 1) * 100))
        if checked:
            rows.append(("%s: (extra) every file vs every peer, 1000 vs 50 conns" % mode,
                         "; ".join(worst) if worst else "no ratio drops > 10%",
                         "information"))

    sc = extras.get("syscalls", {}).get("porter")
    v = sc.get("per_request") if sc else None
    add("syscalls per keep-alive request ≤ 2.5", "—" if v is None else "%.2f" % v,
        None if v is None else v <= 2.5)
    mp, mn = extras.get("memory", {}).get("porter"), extras.get("memory", {}).get("nginx")
    if mp and mn and "rss_per_conn" in mp and "rss_per_conn" in mn:
        ok = mp["held"] >= mp["connections"] and mp["rss_per_conn"] <= mn["rss_per_conn"]
        add("memory per idle connection ≤ nginx's", "%s vs %s"
            % (fmt_bytes(mp["rss_per_conn"]), fmt_bytes(mn["rss_per_conn"])), ok)
    else:
        add("memory per idle connection ≤ nginx's", "—", None)
    c = extras.get("c10k", {}).get("porter")
    if c and "error" not in c:
        bad = c["socket_errors"] + c["status"]
        add("10 000 connections, 2 workers: no errors",
            "%d socket errors, %d non-2xx, %s req/s" % (c["socket_errors"], c["status"],
                                                        fmt_rps(c["rps"])),
            bad == 0 and c["requests"] > 0 and c["server_alive"])
    else:
        add("10 000 connections, 2 workers: no errors", (c or {}).get("error", "—"), None)
    out = ["| Target | porter | Status |", "|---|---|---|"]
    out += ["| %s | %s | %s |" % r for r in rows]
    return "\n".join(out) + "\n"


def fmt_bytes(b):
    if b is None:
        return "—"
    if abs(b) >= 10240:
        return "%.1f KiB" % (b / 1024)
    return "%.0f B" % b


def extras_tables(extras, names):
    out = []
    mem = extras.get("memory")
    if mem:
        out.append("#### Memory per idle keep-alive connection\n")
        out.append("1 worker; %s connections each made one request and then idled; "
                   "growth of the server's process tree (master and workers).\n"
                   % "{:,}".format(next(iter(mem.values())).get("connections", 0)))
        out.append("| Server | Held open | RSS growth / conn | PSS growth / conn | "
                   "RSS before → after |")
        out.append("|---|---:|---:|---:|---:|")
        for n in names:
            m = mem.get(n)
            if not m:
                continue
            if "error" in m:
                out.append("| %s | — | — | — | %s |" % (n, m["error"]))
                continue
            out.append("| %s | %s | %s | %s | %s → %s MiB |" % (
                n, "{:,}".format(m["held"]), fmt_bytes(m.get("rss_per_conn")),
                fmt_bytes(m.get("pss_per_conn")),
                "%.1f" % (m["before"]["rss_kb"] / 1024), "%.1f" % (m["after"]["rss_kb"] / 1024)))
        out.append("")
    sysc = extras.get("syscalls")
    if sysc:
        out.append("#### System calls per keep-alive request (1 KiB page)\n")
        out.append("1 worker; `strace -c -f` on the worker process(es) while a client makes "
                   "exactly %s keep-alive requests over 4 connections.\n"
                   % "{:,}".format(next(iter(sysc.values())).get("requests", 0)))
        out.append("| Server | All syscalls / request | I/O + epoll / request | Main calls / request |")
        out.append("|---|---:|---:|---|")
        for n in names:
            s = sysc.get(n)
            if not s:
                continue
            if "error" in s or s.get("per_request") is None:
                out.append("| %s | — | — | %s |" % (n, s.get("error", "no requests answered")))
                continue
            br = ", ".join("%s %.2f" % kv for kv in s["breakdown"].items())
            out.append("| %s | %.2f | %.2f | %s |" % (n, s["per_request"], s["io_per_request"], br))
        out.append("")
    c10k = extras.get("c10k")
    if c10k:
        out.append("#### 10 000 concurrent connections, 2 workers\n")
        out.append("`wrk -t2 -c10000` on the 1 KiB page, keep-alive, unpinned.\n")
        out.append("| Server | req/s | p99 | Socket errors (connect/read/write/timeout) | Non-2xx | "
                   "Result |")
        out.append("|---|---:|---:|---|---:|---|")
        for n in names:
            c = c10k.get(n)
            if not c:
                continue
            if "error" in c:
                out.append("| %s | — | — | — | — | %s |" % (n, c["error"]))
                continue
            if not c["server_alive"]:
                verdict_ = "server died"
            elif c["socket_errors"] or c["status"]:
                verdict_ = "errors"
            elif not c["requests"]:
                verdict_ = "no request completed (run longer)"
            else:
                verdict_ = "no errors"
            out.append("| %s | %s | %s | %d (%d/%d/%d/%d) | %d | %s |" % (
                n, fmt_rps(c["rps"]), fmt_ms(c["p99_us"] if c["requests"] else None),
                c["socket_errors"], c["connect"], c["read"], c["write"], c["timeout"],
                c["status"], verdict_))
        out.append("")
    gz = extras.get("gzip")
    if gz:
        out.append("#### Other clients while on-the-fly gzip is busy\n")
        out.append("1 worker (pinned as in mode A), compression on. `wrk -t1 -c50` on the "
                   "1 KiB page (no Accept-Encoding), alone and then while `wrk -t1 -c2` "
                   "cycles through %d text files of %s asking for gzip (more than the gzip "
                   "cache holds, so each of its requests is a miss). Target: p99 with the "
                   "cyclers at most %.0f× p99 alone.\n"
                   % (GZ_FILES, "%d MiB" % (GZ_SIZE // (1024 * 1024)), GZ_TARGET))
        out.append("| Server | p99 alone | p99 with cyclers | Ratio | req/s alone → with | "
                   "Cycler requests (gzip-coded) | Result |")
        out.append("|---|---:|---:|---:|---:|---:|---|")
        for n in names:
            g = gz.get(n)
            if not g:
                continue
            if "error" in g:
                out.append("| %s | — | — | — | — | — | %s |" % (n, g["error"]))
                continue
            out.append("| %s | %s | %s | %.2f | %s → %s | %d (%d) | %s |" % (
                n, fmt_ms(g["alone_p99_us"]), fmt_ms(g["loaded_p99_us"]), g["ratio"],
                fmt_rps(g["alone_rps"]), fmt_rps(g["loaded_rps"]), g["cycler_requests"],
                g["cycler_gzip"], verdict(g["ratio"] <= GZ_TARGET)))
        out.append("")
    return "\n".join(out)


def machine_info(servers):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            mem = "%.0f GiB" % (kb / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    info = {
        "nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "memory": mem,
        "wrk": "unknown", "versions": {s.name: s.version() for s in servers},
    }
    try:
        r = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=3)
        info["wrk"] = (r.stdout + r.stderr).strip().splitlines()[0].split(" Copyright")[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        pass
    return info


# ---------------------------------------------------------------- main

def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v not in (None, "") else default


def main():
    ap = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark porter against nginx, lighttpd and h2o on loopback.")
    ap.add_argument("--quick", action="store_true",
                    help="a 1-2 minute smoke run: fewer cases, 1 round, 2 s runs")
    ap.add_argument("--rounds", type=int, help="rounds per case (env ROUNDS; default 5, quick 1)")
    ap.add_argument("--duration", type=int,
                    help="seconds per measurement (env DURATION; default 3, quick 2)")
    ap.add_argument("--warmup", type=int,
                    help="seconds of warm-up before each measurement (env WARMUP; default 1)")
    ap.add_argument("--servers", help="comma-separated subset of porter,nginx,lighttpd,h2o "
                    "(env SERVERS)")
    ap.add_argument("--only", help="comma-separated subset of "
                    "throughput,memory,syscalls,c10k,gzip (env ONLY)")
    ap.add_argument("--idle-conns", type=int, help="idle connections for the memory test "
                    "(env IDLE_CONNS; default 10000)")
    ap.add_argument("--syscall-requests", type=int,
                    help="requests traced for the syscall count (env SYSCALL_REQUESTS; "
                    "default 20000, quick 5000)")
    ap.add_argument("--c10k-duration", type=int,
                    help="seconds of the 10 000-connection run (env C10K_DURATION; default 5, "
                    "quick 2)")
    ap.add_argument("--base-port", type=int,
                    help="porter listens on BASE+1, nginx +2, lighttpd +3, h2o +4 "
                    "(env BASE_PORT; default 18080)")
    ap.add_argument("--output", "-o",
                    help="Markdown report file (default bench/RESULTS.md; with --quick "
                    "bench/results-quick.md)")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the temporary directory (configs, logs; env KEEP_TMP=1)")
    ap.add_argument("--extras-all", action="store_true",
                    help="run the memory, syscall and 10 000-connection tests on every "
                    "server, not only porter and nginx (env EXTRAS_ALL=1)")
    ap.add_argument("--report-from", metavar="RESULTS_JSON",
                    help="only rebuild the report from a run's saved results.json")
    ap.add_argument("--no-pin", action="store_true",
                    help="never use taskset (mode A then runs unpinned)")
    a = ap.parse_args()
    if a.report_from:
        report_from(a.report_from, a.output or os.path.join(BENCH, "RESULTS.md"))
        return

    q = a.quick
    rounds = a.rounds or env_int("ROUNDS", 1 if q else 5)
    duration = a.duration or env_int("DURATION", 2 if q else 3)
    warmup = a.warmup if a.warmup is not None else env_int("WARMUP", 1)
    idle = a.idle_conns or env_int("IDLE_CONNS", 10000)
    sysreq = a.syscall_requests or env_int("SYSCALL_REQUESTS", 5000 if q else 20000)
    c10k_d = a.c10k_duration or env_int("C10K_DURATION", 2 if q else 5)
    base = a.base_port or env_int("BASE_PORT", 18080)
    only = set((a.only or os.environ.get("ONLY") or "throughput,memory,syscalls,c10k,gzip")
               .split(","))
    wanted = (a.servers or os.environ.get("SERVERS") or ",".join(SERVER_ORDER)).split(",")
    keep = a.keep_tmp or os.environ.get("KEEP_TMP") == "1"
    extras_all = a.extras_all or os.environ.get("EXTRAS_ALL") == "1"
    output = a.output or os.path.join(BENCH, "results-quick.md" if q else "RESULTS.md")
    if rounds < 1 or duration < 1 or warmup < 0:
        die("rounds and duration must be at least 1, warm-up at least 0")
    bad = set(wanted) - set(SERVER_ORDER)
    if bad:
        die("unknown server(s): %s" % ", ".join(sorted(bad)))
    bad = only - {"throughput", "memory", "syscalls", "c10k", "gzip"}
    if bad:
        die("unknown --only part(s): %s" % ", ".join(sorted(bad)))

    class Cfg:
        pass
    cfg = Cfg()
    cfg.rounds, cfg.duration, cfg.warmup = rounds, duration, warmup
    cfg.pin = not a.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    if not cfg.pin:
        log("bench: NOTE: not pinning (needs 2 CPUs and taskset); mode A runs unpinned")

    if not shutil.which("wrk"):
        die("wrk is not installed (bench/run installs it; or: apt-get install wrk)")

    # File descriptors: 10 000 connections need more than the usual 1024.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < 10240:
        log("bench: WARNING: open-file limit is %d; the 10 000-connection tests need about "
            "10 240 (raise the hard limit: ulimit -Hn)" % soft)

    porter_bin = os.environ.get("PORTER_BIN") or os.path.join(REPO, "build", "src", "porter")
    exes = {
        "porter": porter_bin if os.access(porter_bin, os.X_OK) else None,
        "nginx": find_exe("nginx", "/usr/sbin/nginx"),
        "lighttpd": find_exe("lighttpd", "/usr/sbin/lighttpd"),
        "h2o": find_exe("h2o", "/usr/bin/h2o", "/usr/sbin/h2o"),
    }
    servers, skipped = [], {}
    for i, name in enumerate(SERVER_ORDER):
        if name not in wanted:
            continue
        if not exes[name]:
            why = ("not built: no executable at %s (build it with ./dev build, or set "
                   "PORTER_BIN)" % porter_bin) if name == "porter" else "not installed"
            log("bench: SKIPPING %s: %s" % (name, why))
            skipped[name] = why
            continue
        servers.append(Server(name, exes[name], os.path.join(CONF_DIR, name + ".conf.in"),
                              base + 1 + i))
    if not servers:
        die("no server to benchmark")
    names = [s.name for s in servers]
    plan = QUICK_PLAN if q else FULL_PLAN

    tmp = tempfile.mkdtemp(prefix="porterbench-")
    os.chmod(tmp, 0o755)  # nginx workers may run as another user
    docroot = os.path.join(tmp, "www")
    make_docroot(docroot)
    started = datetime.datetime.now().astimezone()
    info = machine_info(servers)
    info["load_start"] = os.getloadavg()
    if info["load_start"][0] > 0.7:
        log("bench: WARNING: the machine is not idle (load average %.2f): expect noisy "
            "numbers" % info["load_start"][0])
    log("bench: %s run: %d round(s) x %d s (+%d s warm-up), servers: %s; temp dir %s"
        % ("quick" if q else "full", rounds, duration, warmup, ", ".join(names), tmp))

    raw, table, extras = {}, {}, {}
    t0 = time.time()
    try:
        if "throughput" in only:
            run_throughput(servers, plan, cfg, tmp, docroot, raw)
            for cid, per in raw.items():
                table[cid] = {n: summarize(v) for n, v in per.items()}
        for part, fn, targets_ in (
                ("memory", lambda s: measure_memory(s, tmp, docroot, idle), ("porter", "nginx")),
                ("syscalls", lambda s: measure_syscalls(s, tmp, docroot, sysreq),
                 ("porter", "nginx")),
                ("c10k", lambda s: measure_c10k(s, tmp, docroot, 10000, c10k_d),
                 ("porter", "nginx")),
                ("gzip", lambda s: measure_gzip(s, tmp, docroot, cfg), ("porter",))):
            if part not in only:
                continue
            log("== %s" % part)
            for s in servers:
                if s.name not in targets_ and not extras_all:
                    continue
                try:
                    r = fn(s)
                except (RuntimeError, OSError) as e:
                    r = {"error": str(e).splitlines()[0]}
                    log("bench: %s %s: %s" % (part, s.name, e))
                extras.setdefault(part, {})[s.name] = r
                log("  %-9s %s" % (s.name, json.dumps(short(part, r))))
    finally:
        if keep:
            log("bench: temporary files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.time() - t0
    info["load_end"] = os.getloadavg()

    report = build_report(q, cfg, info, names, skipped, plan if "throughput" in only else [],
                          table, extras, started, elapsed, sysreq, idle)
    print(report)
    with open(output, "w") as f:
        f.write(report)
    stamp = started.strftime("%Y%m%d-%H%M%S")
    rawdir = os.path.join(BENCH, "results-%s" % stamp)
    os.makedirs(rawdir, exist_ok=True)
    with open(os.path.join(rawdir, "results.json"), "w") as f:
        json.dump({"machine": info, "quick": q, "rounds": rounds, "duration": duration,
                   "warmup": warmup, "raw": raw, "summary": table, "extras": extras,
                   "skipped": skipped, "elapsed": elapsed, "syscall_requests": sysreq,
                   "idle_conns": idle}, f, indent=1)
    log("bench: report written to %s, raw data in %s (%.0f s)" % (output, rawdir, elapsed))


def report_from(path, output):
    """Rebuild the Markdown report from a saved results.json, no measuring."""
    with open(path) as f:
        d = json.load(f)
    info = d["machine"]
    cfg = types.SimpleNamespace()
    cfg.rounds, cfg.duration, cfg.warmup = d["rounds"], d["duration"], d["warmup"]
    q = d["quick"]
    stamp = os.path.basename(os.path.dirname(os.path.abspath(path)))[len("results-"):]
    started = datetime.datetime.strptime(stamp, "%Y%m%d-%H%M%S").astimezone()
    elapsed = d.get("elapsed", os.path.getmtime(path) - started.timestamp())
    names = [n for n in ("porter", "nginx", "lighttpd", "h2o")
             if any(n in per for per in d["summary"].values()) or n in info["versions"]]
    names = [n for n in names if n not in d.get("skipped", {})]
    report = build_report(q, cfg, info, names, d.get("skipped", {}),
                          QUICK_PLAN if q else FULL_PLAN, d["summary"], d["extras"],
                          started, elapsed, d.get("syscall_requests", 5000 if q else 20000),
                          d.get("idle_conns", 10000))
    with open(output, "w") as f:
        f.write(report)
    log("bench: report rebuilt from %s into %s" % (path, output))


def short(part, r):
    if "error" in r:
        return {"error": r["error"]}
    if part == "memory":
        return {k: (round(r[k]) if isinstance(r.get(k), float) else r.get(k))
                for k in ("held", "failures", "rss_per_conn", "pss_per_conn")}
    if part == "syscalls":
        return {"per_request": round(r["per_request"] or 0, 3), "answered": r["answered"],
                "breakdown": r["breakdown"]}
    if part == "gzip":
        return {k: r.get(k) for k in ("alone_p99_us", "loaded_p99_us", "ratio",
                                      "cycler_requests", "cycler_gzip")}
    return {"rps": round(r.get("rps", 0)), "socket_errors": r.get("socket_errors"),
            "non2xx": r.get("status"), "alive": r.get("server_alive")}


def build_report(quick, cfg, info, names, skipped, plan, table, extras, started, elapsed,
                 sysreq, idle):
    v = info["versions"]
    out = ["# porter benchmark results", ""]
    if quick:
        out += ["> **Quick smoke run** (`bench/run --quick`): few cases, short runs, one "
                "round. Not for publication.", ""]
    out += [
        "- Date: %s (took %.0f min)" % (started.strftime("%Y-%m-%d %H:%M %Z"), elapsed / 60),
        "- Machine: %s CPUs, %s, %s RAM, Linux %s"
        % (info["nproc"], info["cpu"], info["memory"], info["kernel"]),
        "- Servers: " + ", ".join("%s %s" % (n, v.get(n, "")) if not v.get(n, "").startswith(n)
                                  else v[n] for n in names),
        "- Load generator: %s; every run on 127.0.0.1" % info["wrk"],
        "- Load average (1 min) at start %.2f, at end %.2f (after the run itself)"
        % (info["load_start"][0], info["load_end"][0]),
        "- Method: %d round(s) per case, %d s per measurement after a %d s warm-up; servers "
        "interleaved and the order rotated each round; medians shown. Ratios are porter's "
        "req/s over the peer's." % (cfg.rounds, cfg.duration, cfg.warmup),
    ]
    for n, why in skipped.items():
        out.append("- **%s skipped**: %s" % (n, why))
    out.append("")
    if plan:
        out += ["## Throughput (req/s) and p99 latency", "", throughput_tables(table, plan, names)]
    out += ["## Targets", "", targets(table, plan, extras, names)]
    ex = extras_tables(extras, names)
    if ex:
        out += ["## Connections, memory and system calls", "", ex]
    out += ["Produced by `bench/run%s`; see bench/README.md." % (" --quick" if quick else ""), ""]
    return "\n".join(out)


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        main()
    except KeyboardInterrupt:
        die("interrupted")
