#!/usr/bin/python3
"""Integration tests for porter's supervision: reloads (under load, bad
configurations, changed settings), crashes, crash loops, hung workers,
graceful and fast stops, log rotation, TTIN/TTOU, max_requests recycling,
the pid file and ``porter -s``.

Load comes from client threads of this process over 127.0.0.1: keep-alive
clients (http.client, which reconnects after Connection: close) and raw
clients that open a connection per request. Every test is bounded by a
request count or by the event it waits for, never by a wall-clock speed.

Faults used here exist only for tests (see src/worker.c):
PORTER_TEST_WORKER_CRASH=FILE and PORTER_TEST_WORKER_STALL=FILE make new
workers abort, or wait, while FILE exists; PORTER_TEST_DRAIN_STALL=FILE
makes workers told to drain go on accepting while FILE exists. A hung
worker is made with
SIGSTOP, which stops its heartbeat without any code for it.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_supervision.py [-k PATTERN]
"""

import collections
import hashlib
import http.client
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, Conn, build_request, get, pid_alive, wait_until  # noqa: E402
import h2client  # noqa: E402

BODY_A = b"A"
BODY_B = b"B"
RELOAD_RE = re.compile(r"reloaded: generation (\d+) serving with (\d+) workers \((\d+) ms\)")


write = harness.write_file


def free_port():
    """A port nothing listens on right now (the server binds it a moment
    later; start_fixed() retries if someone else took it meanwhile)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def refused(port):
    """True if a connection to port is refused (nothing listens)."""
    try:
        with socket.create_connection((HOST, port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def serves(port, body):
    """True if GET / on a new connection to port answers 200 with body."""
    try:
        r = get(port)
    except (OSError, harness.ConnectionClosed):
        return False
    return r.status == 200 and r.body == body


# ---------------------------------------------------------------------------
# /proc: who holds which socket
# ---------------------------------------------------------------------------

def _tcp_entries():
    """(local port, remote port, state, inode) of every TCP socket."""
    out = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            p = line.split()
            out.append((int(p[1].rsplit(":", 1)[1], 16), int(p[2].rsplit(":", 1)[1], 16),
                        p[3], p[9]))
    return out


def listen_inode(port):
    """Inode of the socket listening on port, or None."""
    for lport, _, state, inode in _tcp_entries():
        if lport == port and state == "0A":
            return inode
    return None


def fd_targets(pid):
    """readlink() of every open fd of pid ([] if it is gone)."""
    out = []
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, n)))
        except OSError:
            pass
    return out


def conn_owner(server_port, client_port, pids):
    """Which of pids holds the server end of the connection from client_port."""
    inodes = [i for lp, rp, st, i in _tcp_entries()
              if lp == server_port and rp == client_port and st == "01"]
    if not inodes:
        return None
    want = "socket:[%s]" % inodes[0]
    for pid in pids:
        if want in fd_targets(pid):
            return pid
    return None


# ---------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------

class Load:
    """Steady load on a port from client threads, until stop().

    ``keepalive`` threads use one http.client.HTTPConnection each (it
    reconnects by itself after a Connection: close); ``fresh`` threads
    open a raw connection per request. Every request counts: a response
    that is not 200 with a body in ``bodies`` is a failure, and so is any
    exception (reset, close without a response, timeout). ``pause`` keeps
    the request rate, and so the total, bounded.
    """

    def __init__(self, port, bodies, keepalive=3, fresh=2, path="/", pause=0.002, h2=0):
        self.port = port
        self.bodies = set(bodies)
        self.path = path
        self.pause = pause
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.ok = collections.Counter()       # kind -> successful requests
        self.seen = collections.Counter()     # body -> count
        self.failures = []                    # (kind, description)
        self.bodies_of = collections.defaultdict(list)  # kind -> bodies, in order
        self.threads = [threading.Thread(target=self._keepalive, daemon=True)
                        for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]
        self.threads += [threading.Thread(target=self._h2, daemon=True) for _ in range(h2)]
        self.nthreads = len(self.threads)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def total(self):
        with self.lock:
            return sum(self.ok.values()) + len(self.failures)

    def successes(self):
        with self.lock:
            return sum(self.ok.values())

    def _record(self, kind, status, body):
        with self.lock:
            if status == 200 and body in self.bodies:
                self.ok[kind] += 1
                self.seen[body] += 1
                self.bodies_of[kind].append(body)
            else:
                self.failures.append((kind, "status %s body %r" % (status, body[:60])))

    def _fail(self, kind, exc):
        with self.lock:
            self.failures.append((kind, "%s: %s" % (type(exc).__name__, exc)))

    def _keepalive(self):
        conn = http.client.HTTPConnection(HOST, self.port, timeout=15)
        while not self.done.is_set():
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                self._record("keepalive", r.status, r.read())
            except (OSError, http.client.HTTPException) as e:
                self._fail("keepalive", e)
                conn.close()
            time.sleep(self.pause)
        conn.close()

    def _fresh(self):
        req = build_request("GET", self.path)
        while not self.done.is_set():
            try:
                with Conn(self.port, timeout=15) as c:
                    c.sock.sendall(req)
                    r = c.read_response()
                self._record("fresh", r.status, r.body)
            except (OSError, harness.ConnectionClosed, ValueError) as e:
                self._fail("fresh", e)
            time.sleep(self.pause)

    def _h2(self, streams=4):
        """HTTP/2 by prior knowledge (python3-h2), a few streams at a time
        on one connection. After GOAWAY, streams above its last-stream-id
        were not processed (RFC 9113 6.8) and go again on a new
        connection, as browsers do; every stream at or below it must be
        answered in full. Anything else is a failure."""
        c = None
        while not self.done.is_set():
            try:
                if c is None or c.closed or c.goaway is not None:
                    if c is not None:
                        c.close()
                    c = h2client.H2Conn(self.port)
                pending = [c.request(self.path) for _ in range(streams)]
                while pending:
                    last = c.goaway[1] if c.goaway is not None else None
                    for sid in list(pending):
                        r = c.streams[sid]
                        if r.ended:
                            self._record("h2", r.status, r.body)
                        elif r.reset == h2client.REFUSED_STREAM or \
                                (last is not None and sid > last):
                            pass        # not processed: sent again
                        elif r.reset is not None:
                            self._fail("h2", AssertionError("stream %d reset %d"
                                                            % (sid, r.reset)))
                        else:
                            continue
                        pending.remove(sid)
                    if pending and not c.pump():
                        last = c.goaway[1] if c.goaway is not None else 0
                        lost = [sid for sid in pending if sid <= last]
                        if lost or c.goaway is None:
                            self._fail("h2", AssertionError(
                                "closed under streams %r (GOAWAY %r)" % (pending, c.goaway)))
                        pending = []
            except Exception as e:     # h2's own errors count as failures too
                self._fail("h2", e)
                c = None
            time.sleep(self.pause)
        if c is not None:
            c.close()

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(30)
        return self

    def summary(self):
        with self.lock:
            return "%d requests (%d keep-alive, %d new-connection, %d h2), %d failed" % (
                sum(self.ok.values()) + len(self.failures), self.ok["keepalive"],
                self.ok["fresh"], self.ok["h2"], len(self.failures))


# ---------------------------------------------------------------------------
# Test case base
# ---------------------------------------------------------------------------

class SupervisionTestCase(harness.PorterTestCase):

    def start_server(self, root=None, start=True, **kwargs):
        srv = super().start_server(root, start=start, **kwargs)
        if start:
            self.wait_serving(srv)
        return srv

    def wait_serving(self, srv):
        """Wait for the master's "N workers ready". The harness only waits
        for the worker processes to exist; a fault switched on before the
        workers are past their start-up would hit them too."""
        srv.wait_for_stderr(r"\d+ workers ready")

    def make_root(self, body):
        d = self.make_tempdir()
        write(os.path.join(d, "index.html"), body)
        return d

    def start_fixed(self, nports=1, http2=False, **kwargs):
        """A server on fixed ports (reloads keep them; "127.0.0.1:0" would
        bind new ephemeral ones) with a pid file of its own, so that
        ``porter -s`` finds it. Returns (server, [ports])."""
        last = None
        for _ in range(5):
            ports = [free_port() for _ in range(nports)]
            listen = ["%s:%d" % (HOST, p) for p in ports]
            if http2:
                listen = [{"address": a, "http2": True} for a in listen]
            srv = self.start_server(start=False, listen=listen, **kwargs)
            srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
            try:
                srv.start()
                self.wait_serving(srv)
                return srv, ports
            except harness.ServerError as e:
                last = e
                srv.close()
        raise last

    def reload(self, srv, expect_ok=True):
        """``porter -s reload``; it returns once the reload is over."""
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=60)
        if expect_ok:
            self.assertEqual(r.returncode, 0, "porter -s reload failed\nstdout: %s\nstderr: %s\n%s"
                             % (r.stdout, r.stderr, srv.stderr_text()))
        return r

    def reload_in_background(self, srv):
        """Start ``porter -s reload``, which waits for the reload to end."""
        client = subprocess.Popen([harness.porter_bin(), "-s", "reload", "-c", srv.conf_path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: client.poll() is None and client.kill())
        return client

    def wait_workers(self, srv, n, message=None):
        return wait_until(lambda: len(srv.worker_pids()) == n and srv.worker_pids(),
                          message=message or "expected %d workers, have %r"
                          % (n, srv.worker_pids()))

    def reload_times(self, srv, start=0):
        return [int(m.group(3)) for m in
                (RELOAD_RE.search(l) for l in srv.stderr_lines()[start:]) if m]


# ---------------------------------------------------------------------------
# Reloads
# ---------------------------------------------------------------------------

class ReloadTest(SupervisionTestCase):

    def test_reloads_under_load(self):
        """20 reloads in a row, alternating two roots, under keep-alive and
        new-connection load: no request fails, every body is A or B."""
        self.reloads_under_load(http2=False)

    def test_reloads_under_h2_load(self):
        """The same with HTTP/2 clients beside the HTTP/1.1 ones on the
        listener: old workers say GOAWAY and finish their streams."""
        self.reloads_under_load(http2=True)

    def reloads_under_load(self, http2):
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        srv, (port,) = self.start_fixed(root=root_a, http2=http2)
        first_line = len(srv.stderr_lines())

        load = Load(port, (BODY_A, BODY_B), pause=0.001,
                    h2=2 if http2 else 0).start()
        self.addCleanup(load.stop)
        wait_until(lambda: load.successes() >= 50, message="load does not get going")
        body = BODY_A
        for i in range(20):
            root, body = (root_b, BODY_B) if i % 2 == 0 else (root_a, BODY_A)
            srv.write_config(root=root)
            self.reload(srv)
            # Once the answer came, no old worker accepts any more.
            self.assertTrue(serves(port, body),
                            "reload %d: a new connection did not get %r" % (i + 1, body))
            if http2:
                # the HTTP/2 clients move too: the old workers said GOAWAY
                mark = len(load.bodies_of["h2"])
                wait_until(lambda: body in load.bodies_of["h2"][mark:],
                           message="reload %d: no HTTP/2 client got %r" % (i + 1, body))
            # load on both generations while the old one drains
            n = load.total()
            wait_until(lambda: load.total() >= n + 40, message="load stalled")
        # a little load on the last generation as well
        n = load.total()
        wait_until(lambda: load.total() >= n + 50)
        load.stop()

        times = self.reload_times(srv, first_line)
        print("\nreload under load: %s; %d reloads, SIGHUP to new generation serving: "
              "median %s ms, max %s ms (bodies: %s)"
              % (load.summary(), len(times), statistics.median(times) if times else "?",
                 max(times) if times else "?", dict(load.seen)), flush=True)
        self.assertEqual(load.failures, [], load.summary())
        self.assertEqual(len(times), 20, srv.stderr_text())
        self.assertGreater(load.ok["keepalive"], 0)
        self.assertGreater(load.ok["fresh"], 0)
        if http2:
            self.assertGreater(load.ok["h2"], 0)
        self.assertEqual(set(load.seen), {BODY_A, BODY_B})
        # the old generations are gone, and only they: no pile-up
        self.wait_workers(srv, 2)
        self.assertTrue(srv.running())

    def test_bad_config_keeps_serving(self):
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        srv, (port,) = self.start_fixed(root=root_a)
        workers = srv.worker_pids()
        good = srv.config_text

        # a syntax error: porter -s reload says where, nothing changes
        write(srv.conf_path, good + "bogus = ;\n")
        bad_line = good.count("\n") + 1
        r = self.reload(srv, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"%s:%d: \S" % (re.escape(srv.conf_path), bad_line))
        self.assertTrue(serves(port, BODY_A))

        # the same by a bare SIGHUP: the master logs it with file:line
        mark = len(srv.stderr_lines())
        srv.send_signal(signal.SIGHUP)
        srv.wait_for_stderr(r"reload failed: %s:%d: " % (re.escape(srv.conf_path), bad_line),
                            start=mark)
        self.assertTrue(serves(port, BODY_A))

        # valid for the parser, refused by the master (the address is taken):
        # the reply carries the master's message, the old generation serves
        taken = socket.socket()
        taken.bind((HOST, 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        busy = taken.getsockname()[1]
        srv.write_config(root=root_b, listen=["%s:%d" % (HOST, port), "%s:%d" % (HOST, busy)])
        r = self.reload(srv, expect_ok=False)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn("reload failed", r.stderr)
        self.assertIn("127.0.0.1:%d" % busy, r.stderr)
        self.assertRegex(r.stderr, "(?i)address already in use")
        self.assertTrue(serves(port, BODY_A))
        self.assertEqual(srv.worker_pids(), workers, "a failed reload changed the workers")
        self.assertTrue(srv.running())

        # and a good one goes through afterwards
        srv.write_config(root=root_b, listen=["%s:%d" % (HOST, port)])
        self.reload(srv)
        self.assertTrue(serves(port, BODY_B))

    def test_listen_workers_root_limits_and_logs_change(self):
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        srv, (p1, p2) = self.start_fixed(nports=2, root=root_a, shutdown_timeout=2)
        p3 = free_port()
        kept = listen_inode(p2)
        self.assertIsNotNone(kept)

        # A request queued on p2 while no worker accepts must survive the
        # reload: the socket (and its accept queue) is not re-bound.
        old = srv.worker_pids()
        for pid in old:
            os.kill(pid, signal.SIGSTOP)
        try:
            queued = Conn(p2)
            self.addCleanup(queued.close)
            queued.send(build_request("GET", "/"))
            srv.write_config(root=root_b, workers=3,
                             listen=["%s:%d" % (HOST, p2), "%s:%d" % (HOST, p3)],
                             limits={"keepalive_requests": 1},
                             log={"access": os.path.join(srv.workdir, "access2.log")})
            mark = len(srv.stderr_lines())
            self.reload(srv)
            # Stopped, they could not say they stopped accepting: the
            # answer waited until shutdown_timeout had them killed (and
            # reaped).
            for pid in old:
                self.assertFalse(pid_alive(pid), "old worker %d alive after the answer" % pid)
                srv.wait_for_stderr(r"worker %d still draining after 2 s; killing it" % pid,
                                    start=mark)
            r = queued.read_response()
            self.assertEqual((r.status, r.body), (200, BODY_B))
        finally:
            for pid in old:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

        self.assertEqual(listen_inode(p2), kept, "the kept address was bound again")
        self.assertTrue(serves(p3, BODY_B))
        self.assertTrue(refused(p1), "removed address %d still accepts after the reload" % p1)
        self.wait_workers(srv, 3)
        for pid in old:
            wait_until(lambda: not pid_alive(pid), message="old worker %d still there" % pid)
        # limits: keepalive_requests = 1 closes after each response
        with Conn(p2) as c:
            c.send(build_request("GET", "/"))
            self.assertTrue(c.read_response().has_token("Connection", "close"))
        # logs: the new access log gets the new requests
        wait_until(lambda: count_lines(os.path.join(srv.workdir, "access2.log")) >= 2,
                   message="nothing in the new access log")

    def test_response_in_flight_during_reload(self):
        """A keep-alive response already on its way when the reload begins
        went out without Connection: close. The old worker finishes it and
        must answer the request the client sends next (with Connection:
        close), not close the connection under it."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        big = os.urandom(1 << 20) * 8
        write(os.path.join(root_a, "big"), big)
        srv, (port,) = self.start_fixed(root=root_a)
        c = Conn(port)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(build_request("GET", "/big"))
        self.assertTrue(c._fill())          # the response has begun
        srv.write_config(root=root_b)
        self.reload(srv)
        r = c.read_response()
        self.assertEqual((r.status, len(r.body)), (200, len(big)))
        self.assertEqual(r.body, big)
        self.assertFalse(r.has_token("Connection", "close"))
        self.assertTrue(c.send(build_request("GET", "/")))
        try:
            r = c.read_response()
        except harness.ConnectionClosed as e:
            self.fail("the draining worker closed the connection under the next request: %s" % e)
        self.assertEqual((r.status, r.body), (200, BODY_A))
        self.assertTrue(r.has_token("Connection", "close"))
        self.assertTrue(serves(port, BODY_B))

    def test_crashing_new_generation_is_a_failed_reload(self):
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        crash = os.path.join(self.make_tempdir(), "crash")
        srv, (port,) = self.start_fixed(root=root_a, env={"PORTER_TEST_WORKER_CRASH": crash})
        workers = srv.worker_pids()
        write(crash, "")
        srv.write_config(root=root_b)
        r = self.reload(srv, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"new worker \d+ killed by signal %d" % signal.SIGABRT)
        os.unlink(crash)
        # A new worker that outran the crash drains, having served nobody.
        self.assertTrue(serves(port, BODY_A))
        wait_until(lambda: srv.worker_pids() == workers,
                   message="workers %r, expected %r" % (srv.worker_pids(), workers))
        self.reload(srv)
        self.assertTrue(serves(port, BODY_B))

    def test_new_generation_serves_only_once_complete(self):
        """A reload's workers take no connection until every one of them is
        ready: a reload that then fails has served nobody the new files."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        stall = os.path.join(self.make_tempdir(), "stall")
        srv, (port,) = self.start_fixed(root=root_a, workers=2,
                                        env={"PORTER_TEST_WORKER_STALL": stall})
        old = srv.worker_pids()
        write(stall, "")
        srv.write_config(root=root_b)
        client = self.reload_in_background(srv)
        new = sorted(set(self.wait_workers(srv, 4)) - set(old))
        stopped = list(old) + [new[1]]
        self.addCleanup(lambda: [os.kill(p, signal.SIGCONT) for p in stopped if pid_alive(p)])
        os.kill(new[1], signal.SIGSTOP)     # one new worker is never ready
        os.unlink(stall)

        def waits_in_epoll():
            with open("/proc/%d/wchan" % new[0]) as f:
                return f.read().strip() == "do_epoll_wait"
        wait_until(waits_in_epoll, message="the other new worker never started")
        # With the old workers stopped, the ready new worker is the only
        # one that could take a connection. It must not.
        for p in old:
            os.kill(p, signal.SIGSTOP)
        with Conn(port) as c:
            c.send(build_request("GET", "/"))
            self.assertEqual(select.select([c.sock], [], [], 0.5)[0], [],
                             "a worker of the unfinished reload answered")
            self.assertIsNone(client.poll(), "porter -s reload returned before the reload ended")
            # The last new worker dies: the reload fails, and the ready one
            # leaves without taking the request waiting in the queue.
            os.kill(new[1], signal.SIGKILL)
            out, err = client.communicate(timeout=30)
            self.assertNotEqual(client.returncode, 0)
            self.assertIn("killed by signal %d" % signal.SIGKILL, err)
            wait_until(lambda: not pid_alive(new[0]), message="the ready new worker stayed")
            for p in old:
                os.kill(p, signal.SIGCONT)
            self.assertEqual(c.read_response().body, BODY_A)
        for _ in range(20):
            self.assertTrue(serves(port, BODY_A))
        wait_until(lambda: srv.worker_pids() == old,
                   message="workers %r, expected %r" % (srv.worker_pids(), old))

    def test_reload_waits_ttou_deferred_and_stop_during_reload(self):
        """``porter -s reload`` returns only once the new workers are up;
        TTOU during a reload applies to the generation that ends up
        serving; TERM during a reload abandons it and stops."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        stall = os.path.join(self.make_tempdir(), "stall")
        srv, (port,) = self.start_fixed(root=root_a, shutdown_timeout=3,
                                        env={"PORTER_TEST_WORKER_STALL": stall})

        write(stall, "")
        srv.write_config(root=root_b)
        mark = len(srv.stderr_lines())
        client = self.reload_in_background(srv)
        self.wait_workers(srv, 4)         # two serving, two stalled
        srv.send_signal(signal.SIGTTOU)
        srv.wait_for_stderr(r"applied when the reload is over", start=mark)
        self.assertIsNone(client.poll(), "porter -s reload returned before the reload ended")
        self.assertTrue(serves(port, BODY_A))
        os.unlink(stall)
        out, err = client.communicate(timeout=30)
        self.assertEqual(client.returncode, 0, err)
        self.assertTrue(serves(port, BODY_B))
        self.wait_workers(srv, 1)

        # TERM while new workers are still starting
        write(stall, "")
        srv.write_config(root=root_a)
        mark = len(srv.stderr_lines())
        client = self.reload_in_background(srv)
        srv.wait_for_stderr("reloading", start=mark)
        self.wait_workers(srv, 3)         # one serving, two stalled
        srv.send_signal(signal.SIGTERM)
        out, err = client.communicate(timeout=30)
        self.assertNotEqual(client.returncode, 0)
        self.assertIn("stopping", err)
        # the stalled workers never drain: forced out after shutdown_timeout
        self.assertEqual(srv.wait_exit(3 + 10), 0, srv.stderr_text())
        wait_until(lambda: srv.processes() == [], message="processes left: %r" % srv.processes())
        self.assertIn("reload abandoned", srv.stderr_text())

    def status_state(self, srv):
        """The state line of ``porter -s status``."""
        r = harness.run_porter("-s", "status", "-c", srv.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.search(r"^state: (\S+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        return m.group(1)

    def hold_old_workers(self, srv, old, mark):
        """Wait until every worker in old (taken before the reload) has
        the master's 'Q' and holds it (PORTER_TEST_DRAIN_STALL): each
        still accepts."""
        old = sorted(old)
        held = re.compile(r"porter\[(\d+)\]: notice: test: 'Q' held")

        def holding():
            return sorted(int(m.group(1)) for m in
                          (held.search(l) for l in srv.stderr_lines()[mark:]) if m)
        wait_until(lambda: holding() == old,
                   message="old workers %r, holding 'Q': %r" % (old, holding()))
        return old

    def test_reload_answers_once_old_workers_stopped_accepting(self):
        """``porter -s reload`` answers only once no old worker can take a
        connection. PORTER_TEST_DRAIN_STALL makes the old workers go on
        accepting after the master's 'Q', as if they had not read it yet
        (what a loaded machine does for a moment): the answer waits for
        them, and every connection made after it gets the new files."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        hold = os.path.join(self.make_tempdir(), "hold")
        srv, (port,) = self.start_fixed(root=root_a, env={"PORTER_TEST_DRAIN_STALL": hold})
        old = self.wait_workers(srv, 2)
        write(hold, "")
        srv.write_config(root=root_b)
        mark = len(srv.stderr_lines())
        client = self.reload_in_background(srv)
        self.hold_old_workers(srv, old, mark)
        # The old workers still accept: A or B, until the answer. The pause
        # only gives a server that answers too early the time to show it.
        for i in range(20):
            answered = client.poll() is not None
            r = get(port)
            self.assertEqual(r.status, 200)
            if answered:
                self.assertEqual(r.body, BODY_B, "connection %d, made after `porter -s "
                                 "reload` returned, got the old files" % i)
            time.sleep(0.02)
        self.assertIsNone(client.poll(), "porter -s reload returned while old workers "
                          "could still accept")
        # Nor does `porter -s status` call the reload over before its answer.
        self.assertEqual(self.status_state(srv), "reloading")
        os.unlink(hold)
        out, err = client.communicate(timeout=30)
        self.assertEqual(client.returncode, 0, err)
        self.assertEqual(self.status_state(srv), "running")
        for _ in range(20):
            self.assertTrue(serves(port, BODY_B))
        for pid in old:
            wait_until(lambda: not pid_alive(pid), message="old worker %d still there" % pid)

    def test_reload_or_stop_while_old_workers_still_accept(self):
        """While the old workers have not yet stopped accepting, a second
        reload waits for the first to end, then runs; a stop ends the wait
        with "stopping"."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        hold = os.path.join(self.make_tempdir(), "hold")
        srv, (port,) = self.start_fixed(root=root_a, env={"PORTER_TEST_DRAIN_STALL": hold})
        gen1 = self.wait_workers(srv, 2)
        write(hold, "")
        srv.write_config(root=root_b)
        mark = len(srv.stderr_lines())
        first = self.reload_in_background(srv)
        self.hold_old_workers(srv, gen1, mark)
        srv.write_config(root=root_a)
        second = self.reload_in_background(srv)
        srv.wait_for_stderr(r"reload asked for during a reload", start=mark)
        self.assertIsNone(first.poll(), "porter -s reload returned while old workers "
                          "could still accept")
        self.assertIsNone(second.poll(), "the second reload ended before the first")
        self.assertEqual(len(self.reload_times(srv, mark)), 1, srv.stderr_text())
        os.unlink(hold)
        for client in (first, second):
            out, err = client.communicate(timeout=30)
            self.assertEqual(client.returncode, 0, err)
        wait_until(lambda: len(self.reload_times(srv, mark)) == 2,
                   message="expected two reloads:\n" + srv.stderr_text())
        self.assertTrue(serves(port, BODY_A))
        for pid in gen1:
            wait_until(lambda: not pid_alive(pid), message="old worker %d still there" % pid)

        # a stop while the old workers hold their 'Q'
        gen3 = self.wait_workers(srv, 2)     # the second generation gone too
        write(hold, "")
        srv.write_config(root=root_b)
        mark = len(srv.stderr_lines())
        client = self.reload_in_background(srv)
        self.hold_old_workers(srv, gen3, mark)
        srv.send_signal(signal.SIGTERM)
        out, err = client.communicate(timeout=30)
        self.assertNotEqual(client.returncode, 0)
        self.assertIn("stopping", err)
        os.unlink(hold)
        self.assertEqual(srv.wait_exit(30), 0, srv.stderr_text())

    def test_reload_requested_during_a_reload(self):
        """A reload asked for while another is under way runs after it,
        reading the file as it is then; both callers get "ok"."""
        root_a, root_b = self.make_root(BODY_A), self.make_root(BODY_B)
        stall = os.path.join(self.make_tempdir(), "stall")
        srv, (port,) = self.start_fixed(root=root_a, env={"PORTER_TEST_WORKER_STALL": stall})
        mark = len(srv.stderr_lines())
        write(stall, "")
        srv.write_config(root=root_b)
        first = subprocess.Popen([harness.porter_bin(), "-s", "reload", "-c", srv.conf_path],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: first.poll() is None and first.kill())
        self.wait_workers(srv, 4)
        srv.write_config(root=root_a, workers=1)
        second = subprocess.Popen([harness.porter_bin(), "-s", "reload", "-c", srv.conf_path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: second.poll() is None and second.kill())
        os.unlink(stall)
        for client in (first, second):
            out, err = client.communicate(timeout=30)
            self.assertEqual(client.returncode, 0, err)
        wait_until(lambda: len(self.reload_times(srv, mark)) == 2,
                   message="expected two reloads:\n" + srv.stderr_text())
        self.assertTrue(serves(port, BODY_A))
        self.wait_workers(srv, 1)

    def test_draining_generations_are_killed_after_shutdown_timeout(self):
        """A worker stuck sending to a client that never reads keeps its
        generation draining; reloads go on, and it is killed once it has
        drained for shutdown_timeout."""
        root = self.make_root(BODY_A)
        write(os.path.join(root, "big"), os.urandom(1 << 20) * 16)
        srv, (port,) = self.start_fixed(root=root, shutdown_timeout=2)
        stuck = Conn(port)
        self.addCleanup(stuck.close)
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.send(build_request("GET", "/big"))
        gen1 = srv.worker_pids()
        holder = wait_until(lambda: conn_owner(port, stuck.local_port, gen1))
        mark = len(srv.stderr_lines())
        self.reload(srv)
        self.reload(srv)                 # while the first generation still drains
        self.assertTrue(serves(port, BODY_A))
        srv.wait_for_stderr(r"worker %d still draining after 2 s; killing it" % holder, start=mark)
        wait_until(lambda: not pid_alive(holder))
        self.wait_workers(srv, 2)
        self.assertTrue(serves(port, BODY_A))


# ---------------------------------------------------------------------------
# Crashes and hangs
# ---------------------------------------------------------------------------

class CrashTest(SupervisionTestCase):

    def pin(self, srv, worker, others, n):
        """n keep-alive connections served by worker: the others are
        stopped while they connect, so only worker is woken."""
        for p in others:
            os.kill(p, signal.SIGSTOP)
        try:
            conns = []
            for _ in range(n):
                c = Conn(srv.port)
                self.addCleanup(c.close)
                c.send(build_request("GET", "/"))
                self.assertEqual(c.read_response().body, BODY_A)
                conns.append(c)
        finally:
            for p in others:
                os.kill(p, signal.SIGCONT)
        for c in conns:
            self.assertEqual(conn_owner(srv.port, c.local_port, [worker]), worker)
        return conns

    def test_killed_worker(self):
        srv = self.start_server(self.make_root(BODY_A), workers=2)
        victim, survivor = srv.worker_pids()
        doomed = self.pin(srv, victim, [survivor], 3)
        kept = self.pin(srv, survivor, [victim], 3)
        load = Load(srv.port, (BODY_A,), keepalive=2, fresh=2).start()
        self.addCleanup(load.stop)
        wait_until(lambda: load.successes() >= 100)
        os.kill(victim, signal.SIGKILL)
        after = wait_until(lambda: (lambda p: p if victim not in p and len(p) == 2 else None)(
            srv.worker_pids()), message="slot not refilled: %r" % srv.worker_pids())
        self.assertIn(survivor, after)
        srv.wait_for_stderr(r"worker %d killed by signal 9; replacing it" % victim)
        # the other worker's connections never noticed
        for c in kept:
            for _ in range(3):
                c.send(build_request("GET", "/"))
                self.assertEqual(c.read_response().body, BODY_A)
        # the victim's did die with it
        for c in doomed:
            self.assertTrue(not c.send(build_request("GET", "/")) or c.closed_by_peer(5))
        n = load.successes()
        wait_until(lambda: load.successes() >= n + 100, message="load stalled after the kill")
        load.stop()
        print("\nkilled worker: %s" % load.summary(), flush=True)
        # at most each client thread's request in flight on the victim
        self.assertLessEqual(len(load.failures), load.nthreads, load.failures)
        self.assertTrue(srv.running())

    def test_crash_loop_backs_off_and_recovers(self):
        crash = os.path.join(self.make_tempdir(), "crash")
        srv = self.start_server(self.make_root(BODY_A), workers=2,
                                env={"PORTER_TEST_WORKER_CRASH": crash})
        write(crash, "")
        mark = len(srv.stderr_lines())
        for pid in srv.worker_pids():
            os.kill(pid, signal.SIGKILL)

        delay_re = re.compile(r"workers keep dying young, next start in (\d+) ms")

        def delays():
            return [int(m.group(1)) for m in
                    (delay_re.search(l) for l in srv.stderr_lines()[mark:]) if m]
        wait_until(lambda: len(delays()) >= 5, timeout=30,
                   message="no growing backoff: %r" % delays())
        d = delays()
        crashes = sum("killed by signal %d" % signal.SIGABRT in l
                      for l in srv.stderr_lines()[mark:])
        print("\ncrash loop: %d crashes, delays %r ms" % (crashes, d), flush=True)
        self.assertTrue(all(b > a for a, b in zip(d, d[1:])), "delays not growing: %r" % d)
        self.assertEqual(d[:3], [100, 200, 400])
        # one log line per start, and starts are spaced: no spin, no flood
        self.assertLessEqual(crashes, len(d) + 3)
        self.assertTrue(srv.running(), "the master died with its workers")
        os.unlink(crash)
        self.wait_workers(srv, 2, "no recovery after the fault was removed")
        wait_until(lambda: serves(srv.port, BODY_A))
        self.assertTrue(srv.running())

    def test_hung_worker_is_replaced(self):
        srv = self.start_server(self.make_root(BODY_A), workers=2, worker_timeout=2)
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGSTOP)
        srv.wait_for_stderr(r"worker %d unresponsive for \d+ s; killing it" % victim)
        wait_until(lambda: not pid_alive(victim), message="hung worker not killed")
        after = self.wait_workers(srv, 2)
        self.assertNotIn(victim, after)
        for _ in range(10):
            self.assertTrue(serves(srv.port, BODY_A))

    def test_max_requests_recycles_without_failures(self):
        srv = self.start_server(self.make_root(BODY_A), workers=2, max_requests=50)
        first = set(srv.worker_pids())
        seen = set(first)
        load = Load(srv.port, (BODY_A,), keepalive=2, fresh=2, pause=0.001).start()
        self.addCleanup(load.stop)

        def enough():
            seen.update(srv.worker_pids())
            return load.total() >= 800
        wait_until(enough, timeout=60)
        load.stop()
        recycled = [l for l in srv.stderr_lines() if "reached max_requests" in l]
        print("\nmax_requests=50: %s; %d recycles, %d worker pids seen"
              % (load.summary(), len(recycled), len(seen)), flush=True)
        self.assertEqual(load.failures, [], load.summary())
        self.assertGreaterEqual(len(recycled), 4, srv.stderr_text())
        self.assertGreaterEqual(len(seen - first), 2)
        self.wait_workers(srv, 2)


# ---------------------------------------------------------------------------
# Stopping
# ---------------------------------------------------------------------------

class StopTest(SupervisionTestCase):

    BIG = 64 << 20

    def big_root(self):
        root = self.make_root(BODY_A)
        block = hashlib.sha256(b"porter").digest() * 2048     # 64 KiB
        with open(os.path.join(root, "big"), "wb") as f:
            for _ in range(self.BIG // len(block)):
                f.write(block)
        return root, block

    def start_download(self, port):
        c = Conn(port, timeout=30)
        self.addCleanup(c.close)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.send(build_request("GET", "/big"))
        return c

    def test_graceful_stop_finishes_download(self):
        root, block = self.big_root()
        srv = self.start_server(root, workers=2, shutdown_timeout=10)
        idle = Conn(srv.port)
        self.addCleanup(idle.close)
        idle.send(build_request("GET", "/"))
        self.assertEqual(idle.read_response().body, BODY_A)

        c = self.start_download(srv.port)
        head = c.sock.recv(1 << 20)
        result = {}

        def read_rest():
            data = bytearray(head)
            try:
                while True:
                    chunk = c.sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                    time.sleep(0.001)          # a slow reader
            except OSError as e:
                result["error"] = e
            result["data"] = bytes(data)
        reader = threading.Thread(target=read_rest, daemon=True)
        reader.start()
        t0 = time.monotonic()
        srv.send_signal(signal.SIGTERM)
        # stops accepting at once, keeps the download going
        wait_until(lambda: refused(srv.port), message="still accepting after SIGTERM")
        self.assertTrue(idle.closed_by_peer(10), "idle keep-alive connection kept open")
        reader.join(60)
        self.assertEqual(srv.wait_exit(10 + 5), 0, srv.stderr_text())
        took = time.monotonic() - t0
        wait_until(lambda: srv.processes() == [], message="left behind: %r" % srv.processes())
        self.assertNotIn("error", result)
        raw = result["data"]
        hdr, _, body = raw.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % self.BIG, hdr)
        self.assertEqual(len(body), self.BIG, "download cut short")
        self.assertEqual(hashlib.sha256(body).digest(),
                         hashlib.sha256(block * (self.BIG // len(block))).digest())
        self.assertNotIn("killing", srv.stderr_text())
        print("\ngraceful stop: 64 MiB download completed, all gone %.1f s after SIGTERM"
              % took, flush=True)

    def test_graceful_stop_forces_after_shutdown_timeout(self):
        root, _ = self.big_root()
        srv = self.start_server(root, workers=2, shutdown_timeout=2)
        c = self.start_download(srv.port)      # and never read
        wait_until(lambda: conn_owner(srv.port, c.local_port, srv.worker_pids()))
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(2 + 10), 0, srv.stderr_text())
        self.assertRegex(srv.stderr_text(), r"worker \d+ still running; killing it")
        wait_until(lambda: srv.processes() == [])

    def test_second_term_is_a_fast_stop(self):
        root, _ = self.big_root()
        srv = self.start_server(root, workers=2, shutdown_timeout=600)
        c = self.start_download(srv.port)
        wait_until(lambda: conn_owner(srv.port, c.local_port, srv.worker_pids()))
        srv.send_signal(signal.SIGTERM)
        srv.wait_for_stderr("graceful stop")
        srv.send_signal(signal.SIGTERM)
        # the fast stop does not wait the 600 s
        self.assertEqual(srv.wait_exit(), 0, srv.stderr_text())
        wait_until(lambda: srv.processes() == [])
        self.assertIn("fast stop", srv.stderr_text())

    def test_start_up_exit_codes(self):
        """A configuration error is permanent (78, EX_CONFIG); an address
        in use may pass (75, EX_TEMPFAIL): systemd can tell them apart."""
        srv = self.start_server(self.make_root(BODY_A), start=False)
        write(srv.conf_path, srv.config_text + "workers = \"two\";\n")
        srv.start(wait=False)
        self.assertEqual(srv.wait_exit(), 78, srv.stderr_text())
        self.assertIn(srv.conf_path + ":", srv.stderr_text())

        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind((HOST, 0))
        taken.listen(1)
        srv = self.start_server(self.make_root(BODY_A), start=False,
                                listen=["%s:%d" % (HOST, taken.getsockname()[1])])
        srv.start(wait=False)
        self.assertEqual(srv.wait_exit(), 75, srv.stderr_text())

    def test_pid_file_and_stop_command(self):
        srv, _ = self.start_fixed(root=self.make_root(BODY_A))
        first = os.path.join(srv.workdir, "porter.pid")
        self.assertTrue(os.path.exists(first))
        # a reload moves the pid file and the control socket
        pid_file = os.path.join(srv.workdir, "run", "porter.pid")
        os.mkdir(os.path.dirname(pid_file))
        srv.write_config(pid_file=pid_file)
        srv.send_signal(signal.SIGHUP)
        ctl = pid_file[:-4] + ".ctl"
        wait_until(lambda: os.path.exists(pid_file) and os.path.exists(ctl))
        wait_until(lambda: not os.path.exists(first) and
                   not os.path.exists(first[:-4] + ".ctl"))
        with open(pid_file) as f:
            self.assertEqual(int(f.read()), srv.pid)
        self.reload(srv)
        workers = srv.worker_pids()
        r = harness.run_porter("-s", "stop", "-c", srv.conf_path, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        # -s stop returned: the master is already gone, with its workers
        self.assertEqual(srv.proc.wait(5), 0)
        self.assertEqual([p for p in workers if pid_alive(p)], [])
        self.assertFalse(os.path.exists(pid_file))
        self.assertFalse(os.path.exists(ctl))
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path)
        self.assertNotEqual(r.returncode, 0)

    def test_control_socket_out_of_descriptors(self):
        # A master out of descriptors stops watching its control socket for
        # a second instead of spinning on it (one warning per pause), and
        # answers `porter -s reload` again once descriptors are free.
        srv, ports = self.start_fixed(root=self.make_root(BODY_A), workers=1,
                                      command_prefix=["prlimit", "--nofile=40:40", "--"])
        ctl = os.path.join(srv.workdir, "porter.ctl")
        full = re.compile(r"control socket .*: Too many open files")
        held = []
        start = time.monotonic()

        def fill():
            # Connect until the backlog is full, then give the master time
            # to accept: it may not have run yet, and a full backlog alone
            # (16) leaves it short of its 40 descriptors.
            if any(full.search(ln) for ln in srv.stderr_lines()):
                return True
            while len(held) < 200:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.setblocking(False)
                try:
                    s.connect(ctl)
                except BlockingIOError:
                    s.close()
                    return False
                held.append(s)
            return False

        try:
            # The first warning, then a second one after the pause, while
            # the clients still hold every descriptor.
            wait_until(fill, message="the master never ran out of descriptors")
            wait_until(lambda: len([ln for ln in srv.stderr_lines() if full.search(ln)]) >= 2,
                       message="no retry after the pause")
        finally:
            for s in held:
                s.close()
        self.reload(srv)
        self.assertTrue(serves(ports[0], BODY_A))
        warnings = len([ln for ln in srv.stderr_lines() if full.search(ln)])
        elapsed = time.monotonic() - start
        # A spinning master logs thousands a second; a pausing one, one.
        self.assertLessEqual(warnings, elapsed + 2, srv.stderr_text())


# ---------------------------------------------------------------------------
# Logs and worker count
# ---------------------------------------------------------------------------

class LogAndCountTest(SupervisionTestCase):

    def requests(self, port, n):
        """n requests: half keep-alive on one connection, half fresh."""
        with Conn(port) as c:
            for _ in range(n // 2):
                c.send(build_request("GET", "/"))
                self.assertEqual(c.read_response().body, BODY_A)
        for _ in range(n - n // 2):
            self.assertTrue(serves(port, BODY_A))

    def test_log_rotation(self):
        srv, (port,) = self.start_fixed(root=self.make_root(BODY_A))
        access = srv.access_log
        error = os.path.join(srv.workdir, "error.log")
        # the error log moves by reload, workers included
        srv.write_config(log={"error": error})
        self.reload(srv)
        wait_until(lambda: all(error in fd_targets(p) for p in srv.worker_pids()),
                   message="workers do not write the new error log")
        with open(error) as f:
            self.assertIn("reloaded", f.read())

        n1, n2, n3 = 40, 30, 50
        self.requests(port, n1)
        os.rename(access, access + ".1")
        os.rename(error, error + ".1")
        self.requests(port, n2)        # still into the renamed file
        r = harness.run_porter("-s", "reopen", "-c", srv.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        workers = srv.worker_pids()

        def switched():
            for p in workers:
                fds = fd_targets(p)
                if access not in fds or error not in fds or \
                        access + ".1" in fds or error + ".1" in fds:
                    return False
            return True
        wait_until(switched, message="workers still hold the rotated files: %r"
                   % {p: fd_targets(p) for p in workers})
        self.requests(port, n3)
        total = n1 + n2 + n3
        wait_until(lambda: count_lines(access) + count_lines(access + ".1") >= total,
                   message="lines lost: %d + %d of %d" % (
                       count_lines(access + ".1"), count_lines(access), total))
        self.assertEqual(count_lines(access + ".1"), n1 + n2)
        self.assertEqual(count_lines(access), n3)
        with open(error) as f:
            self.assertIn("log files reopened", f.read())

    def test_ttin_ttou(self):
        srv, (port,) = self.start_fixed(root=self.make_root(BODY_A), workers=2)
        for sig, n in ((signal.SIGTTIN, 3), (signal.SIGTTIN, 4), (signal.SIGTTOU, 3),
                       (signal.SIGTTOU, 2), (signal.SIGTTOU, 1), (signal.SIGTTOU, 1)):
            srv.send_signal(sig)
            self.wait_workers(srv, n)
            self.assertTrue(serves(port, BODY_A))
        srv.wait_for_stderr("workers: staying at 1")
        # until the next reload
        self.reload(srv)
        self.wait_workers(srv, 2)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
