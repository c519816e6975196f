#!/usr/bin/python3
"""Integration tests for connection-level hardening (issue 10):

- at max_connections, and when a worker is out of descriptors (EMFILE),
  idle keep-alive connections give their slot to newcomers at once,
  oldest first, instead of the newcomers waiting for a keep-alive timeout;
- limits.min_body_rate and limits.min_send_rate drop clients that trickle
  a body, or read a response, below the rate even though each byte resets
  body_timeout / send_timeout;
- a worker whose master was SIGKILLed exits by itself once
  shutdown_timeout has passed, even with a slow download in flight;
- workers are not dumpable (not ptrace-able, /proc/PID owned by root)
  unless core_dumps = true.

Every wait is bounded by a hang guard far below what the old behaviour
would need (a keep-alive timeout of 60 s or more, a download of minutes),
never by a speed assertion.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_hardening_conn.py [-k PATTERN]
"""

import os
import pwd
import resource
import select
import signal
import socket
import sys
import threading
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Conn, build_request, get, pid_alive, wait_until  # noqa: E402

# Far below every keep-alive timeout used here: a newcomer that had to
# wait for an idle connection to time out would miss it.
GUARD = 20.0


def keepalive_clients(port, n, path="/a.txt"):
    """n connections, each with one request answered and kept alive
    (idle), opened one after the other: the first is the oldest idle."""
    conns = []
    for _ in range(n):
        c = Conn(port, timeout=GUARD)
        c.send(build_request("GET", path))
        r = c.read_response()
        assert r.status == 200, r
        conns.append(c)
    return conns


def read_all_within(conns, guard):
    """Read one 200 response on each connection, all within ``guard``
    seconds together (a hang guard: each would otherwise get its own)."""
    deadline = time.monotonic() + guard
    for c in conns:
        c.sock.settimeout(max(0.1, deadline - time.monotonic()))
        r = c.read_response()
        assert r.status == 200, r


class IdleSlotTest(harness.PorterTestCase):
    """Failure 8: idle keep-alive connections keep new clients out."""

    def test_max_connections_newcomer_takes_oldest_idle_slot(self):
        srv = self.start_server(workers=1, limits={
            "max_connections": 16, "keepalive_timeout": 60})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        idle = keepalive_clients(srv.port, 16)
        for c in idle:
            self.addCleanup(c.close)
        # The 17th client is answered within GUARD, while every idle one
        # is still within its 60 s keep-alive timeout.
        with Conn(srv.port, timeout=GUARD) as c:
            c.send(build_request("GET", "/a.txt"))
            r = c.read_response()
            self.assertEqual(r.status, 200)
        # The oldest idle connection made room for it ...
        self.assertTrue(idle[0].closed_by_peer(GUARD),
                        "the oldest idle connection was not closed")
        # ... and the newest one still serves.
        self.assertTrue(idle[-1].send(build_request("GET", "/a.txt")))
        self.assertEqual(idle[-1].read_response().status, 200)

    def test_max_connections_many_newcomers(self):
        # Two workers, EPOLLEXCLUSIVE: whichever worker a newcomer wakes
        # must make room itself rather than leave it queued.
        srv = self.start_server(workers=2, limits={
            "max_connections": 16, "keepalive_timeout": 120})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        # 32 idle connections: both workers at their limit, however the
        # kernel spread them.
        for c in keepalive_clients(srv.port, 32):
            self.addCleanup(c.close)
        news = []
        for _ in range(32):
            c = Conn(srv.port, timeout=GUARD)
            self.addCleanup(c.close)
            c.send(build_request("GET", "/a.txt", headers=[("Connection", "close")]))
            news.append(c)
        read_all_within(news, GUARD)

    def test_emfile_idle_connections_give_their_descriptors(self):
        # Reading /proc/PID/fd of a non-dumpable worker takes root.
        srv = self.start_server(workers=1, core_dumps=not harness.is_root(),
                                limits={"max_connections": 100000,
                                        "keepalive_timeout": 120})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        (wpid,) = srv.worker_pids()
        # Warm up (the open-file cache holds a.txt's descriptor), then
        # cap the worker's descriptors so that N idle clients fill it.
        self.assertEqual(get(srv.port, "/a.txt",
                             headers=[("Connection", "close")]).status, 200)
        n = 40
        used = len(os.listdir("/proc/%d/fd" % wpid))
        resource.prlimit(wpid, resource.RLIMIT_NOFILE, (used + n, used + n))
        idle = keepalive_clients(srv.port, n)
        for c in idle:
            self.addCleanup(c.close)
        # Every newcomer stays (keep-alive), so each one finds the worker
        # out of descriptors. Closing one idle connection per 500 ms
        # pause would take 30 s for 60 of them.
        news = []
        for _ in range(60):
            c = Conn(srv.port, timeout=GUARD)
            self.addCleanup(c.close)
            c.send(build_request("GET", "/a.txt"))
            news.append(c)
        read_all_within(news, GUARD)
        self.assertTrue(idle[0].closed_by_peer(GUARD),
                        "the oldest idle connection was not closed")
        # EMFILE was reached: its line may still be on its way through the
        # harness's stderr reader, so wait for it rather than look once.
        srv.wait_for_stderr(r": crit: accept out of resources", GUARD)


class MinRateTest(harness.PorterTestCase):
    """Slow bodies and slow reads must not hold a slot forever."""

    def test_trickled_body_is_cut_off(self):
        srv = self.start_server(workers=1, limits={
            "body_timeout": 1, "min_body_rate": 1000})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        with Conn(srv.port, timeout=GUARD) as c:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send(build_request("POST", "/a.txt",
                                 headers=[("Content-Length", "1000000")]))
            # One byte every 100 ms: progress well inside body_timeout,
            # but 10 bytes/s. Stop when the server answers or closes.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if select.select([c.sock], [], [], 0.1)[0]:
                    break
                if not c.send(b"x"):
                    break
            else:
                self.fail("a trickled body kept its slot for 60 s")
            r = c.read_response()
            self.assertEqual(r.status, 408)
            self.assertTrue(c.closed_by_peer(GUARD))

    def test_body_above_min_rate_is_read(self):
        srv = self.start_server(workers=1, limits={
            "body_timeout": 1, "min_body_rate": 1000})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        with Conn(srv.port, timeout=GUARD) as c:
            c.send(build_request("POST", "/a.txt",
                                 headers=[("Content-Length", "30000")]))
            # 1000 bytes per 50 ms: 20 kB/s for 1.5 s, past body_timeout.
            c.send_slowly(b"y" * 30000, chunk=1000, delay=0.05)
            r = c.read_response()
            # The request is answered (POST to a file: 405), not cut off.
            self.assertEqual(r.status, 405)

    def slow_download(self, port, path, chunk, delay, guard=60.0):
        """GET path, reading at most ``chunk`` bytes per ``delay`` s
        through a small receive buffer, for at most ``guard`` seconds (a
        hang guard). Returns (body bytes read, whole body read, closed by
        the server before the end)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(GUARD)
        s.connect((harness.HOST, port))
        deadline = time.monotonic() + guard
        try:
            s.sendall(build_request("GET", path))
            buf, length, got = b"", None, 0
            while time.monotonic() < deadline:
                try:
                    data = s.recv(chunk)
                except ConnectionResetError:
                    data = b""
                if length is None:
                    buf += data
                    if b"\r\n\r\n" in buf:
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        resp = harness.parse_head(head)
                        self.assertEqual(resp.status, 200)
                        length = int(resp.header("Content-Length"))
                        got = len(buf)
                else:
                    got += len(data)
                if not data:
                    return got, False, True
                if length is not None and got >= length:
                    return got, True, False
                time.sleep(delay)
            return got, False, False
        finally:
            s.close()

    def test_slow_reader_below_min_send_rate_is_dropped(self):
        size = 1 << 30
        srv = self.start_server(workers=1, limits={
            "send_timeout": 4, "min_send_rate": 8 << 20})
        with open(os.path.join(srv.root, "big.bin"), "wb") as f:
            f.truncate(size)
        # At most 1.3 MB/s: the socket buffers (megabytes on loopback)
        # drain often enough for progress within send_timeout, but the
        # rate stays below 8 MB/s. The whole file would take 13 minutes.
        got, whole, closed = self.slow_download(srv.port, "/big.bin", 65536, 0.05)
        self.assertTrue(closed, "a slow reader kept its slot for 60 s")
        self.assertLess(got, size)
        wait_until(lambda: any("min_send_rate" in l for l in srv.stderr_lines()),
                   message="no min_send_rate log line")

    def test_reader_above_min_send_rate_is_served(self):
        size = 4 << 20
        srv = self.start_server(workers=1, limits={
            "send_timeout": 1, "min_send_rate": 20000})
        with open(os.path.join(srv.root, "big.bin"), "wb") as f:
            f.truncate(size)
        # At most 64 kB per 20 ms, well above 20 kB/s even on a loaded
        # machine, and slower than the server: it waits on the client
        # past send_timeout.
        got, whole, closed = self.slow_download(srv.port, "/big.bin", 65536, 0.02)
        self.assertTrue(whole, "dropped after %d of %d bytes" % (got, size))

    def test_min_rate_zero_disables(self):
        srv = self.start_server(workers=1, limits={
            "body_timeout": 1, "min_body_rate": 0})
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A" * 100)
        with Conn(srv.port, timeout=GUARD) as c:
            c.send(build_request("POST", "/a.txt",
                                 headers=[("Content-Length", "25")]))
            # 10 bytes/s for 2.5 s: slow, but allowed with the check off.
            c.send_slowly(b"z" * 25, chunk=1, delay=0.1)
            self.assertEqual(c.read_response().status, 405)


class OrphanTest(harness.PorterTestCase):

    def test_orphaned_worker_honours_shutdown_timeout(self):
        size = 256 << 20
        srv = self.start_server(workers=1, shutdown_timeout=2, limits={
            "send_timeout": 60, "min_send_rate": 0})
        with open(os.path.join(srv.root, "big.bin"), "wb") as f:
            f.truncate(size)
        (wpid,) = srv.worker_pids()
        stop = threading.Event()
        started = threading.Event()

        def reader():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(GUARD)
            try:
                s.connect((harness.HOST, srv.port))
                s.sendall(build_request("GET", "/big.bin"))
                while not stop.is_set():
                    data = s.recv(4096)
                    started.set()
                    if not data:
                        break
                    time.sleep(0.05)
            except OSError:
                pass
            finally:
                s.close()

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        self.addCleanup(t.join, GUARD)
        self.addCleanup(stop.set)
        wait_until(started.is_set, message="the download did not start")
        os.kill(srv.pid, signal.SIGKILL)
        # shutdown_timeout is 2 s; the download would take many minutes.
        wait_until(lambda: not pid_alive(wpid), timeout=GUARD,
                   message="orphaned worker %d outlived shutdown_timeout" % wpid)


class DumpableTest(harness.PorterTestCase):

    def dump_owner(self, core_dumps):
        settings = {"workers": 1}
        if core_dumps is not None:
            settings["core_dumps"] = core_dumps
        if harness.is_root():
            # As root, a worker that keeps root would be indistinguishable.
            settings["user"] = "nobody"
            want_uid = pwd.getpwnam("nobody").pw_uid
        else:
            want_uid = os.getuid()
        srv = self.start_server(**settings)
        harness.write_file(os.path.join(srv.root, "a.txt"), b"A")
        # Served: the worker is past its set-up, privilege drop included.
        self.assertEqual(get(srv.port, "/a.txt").status, 200)
        (wpid,) = srv.worker_pids()
        self.assertEqual(harness.proc_uid(wpid), (want_uid, want_uid))
        # The kernel gives a non-dumpable process's /proc files to root.
        return os.stat("/proc/%d/status" % wpid).st_uid, want_uid

    def test_worker_not_dumpable_by_default(self):
        owner, uid = self.dump_owner(None)
        self.assertNotEqual(uid, 0)
        self.assertEqual(owner, 0, "worker is dumpable: /proc/PID owned by %d" % owner)

    def test_core_dumps_true_keeps_worker_dumpable(self):
        owner, uid = self.dump_owner(True)
        self.assertEqual(owner, uid)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
