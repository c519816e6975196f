#!/usr/bin/python3
"""Integration tests for the echo service: listeners with
``protocol = "echo"`` send back every byte, byte for byte, until the
client closes or half-closes.

Covered: the tutorial's client (sendall, then recv(16) until everything
came back), binary data with every byte value in random segments, a
10 MiB stream, a client that sends without reading (porter must stop
reading, so the client's send() blocks, and nothing is lost once it
reads), half-close, the idle timeout, 1000 concurrent clients on 2
workers beside HTTP, sessions against limits.max_connections (they
fill it, are never closed to make room, and newcomers wait for a free
slot), an echo session held open across a reload, a listener whose
protocol changes on reload, and an old generation's session ended by
shutdown_timeout after its listener was removed or changed.

Every wait is bounded by the event it waits for (harness.wait_until or a
socket timeout), never by a speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_echo.py [-k PATTERN]
"""

import hashlib
import os
import random
import re
import resource
import select
import selectors
import signal
import socket
import sys
import threading
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, DEFAULT_TIMEOUT, get, wait_until  # noqa: E402

SESSION_RE = re.compile(r"echo 127\.0\.0\.1:(\d+): (\d+) bytes in, (\d+) out, (\d+) ms")
RELOAD_RE = re.compile(r"reloaded: generation (\d+) serving")


def free_ports(n):
    """n distinct ports that were free a moment ago (bound, then closed)."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def echo_client(port, message, chunk=16):
    """The classic client: connect, sendall, recv(chunk) until as many
    bytes came back."""
    with socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT) as s:
        s.sendall(message)
        got = b""
        while len(got) < len(message):
            d = s.recv(chunk)
            if not d:
                break
            got += d
        return got


def recv_exact(s, n):
    got = bytearray()
    while len(got) < n:
        d = s.recv(min(65536, n - len(got)))
        if not d:
            break
        got += d
    return bytes(got)


def pattern(offset, n):
    """Bytes offset..offset+n of an endless, position-dependent stream, so
    a lost, doubled or reordered block shows."""
    out = bytearray()
    while len(out) < n:
        i = offset + len(out)
        block = hashlib.sha256(str(i // 32).encode()).digest()
        out += block[i % 32:]
    return bytes(out[:n])


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class EchoTest(harness.PorterTestCase):

    def start_echo(self, ports=None, protocols=("http", "echo"), **kw):
        """A server with one listener per protocol, on 127.0.0.1: fixed
        ports when given (reload tests need them to stay), else port 0."""
        if ports is None:
            ports = [0] * len(protocols)
        listen = [{"address": "%s:%d" % (HOST, p), "protocol": proto}
                  for p, proto in zip(ports, protocols)]
        srv = self.start_server(start=False, listen=listen, **kw)
        harness.write_file(os.path.join(srv.root, "index.html"), b"index\n")
        srv.start()
        self.assertEqual(len(srv.addrs), len(protocols), srv.stderr_text())
        return srv, [port for _, port in srv.addrs]

    def start_fixed(self, protocols=("http", "echo"), **kw):
        """start_echo on fixed ports, retrying if one got taken meanwhile."""
        last = None
        for _ in range(5):
            ports = free_ports(len(protocols))
            try:
                srv, got = self.start_echo(ports, protocols, **kw)
                self.assertEqual(got, ports)
                return srv, ports
            except harness.ServerError as e:
                last = e
        raise last

    def sessions(self, srv):
        """(peer port, in, out, ms) of each logged session that carried
        bytes (the harness's own connect checks carry none)."""
        return [t for t in (tuple(int(x) for x in m.groups())
                            for m in (SESSION_RE.search(l) for l in srv.stderr_lines()) if m)
                if t[1] or t[2]]

    def reload(self, srv, **overrides):
        n = len([l for l in srv.stderr_lines() if RELOAD_RE.search(l)])
        old = set(srv.worker_pids())
        srv.write_config(**overrides)
        srv.send_signal(signal.SIGHUP)
        wait_until(lambda: len([l for l in srv.stderr_lines()
                                if RELOAD_RE.search(l)]) > n,
                   message="no reload:\n" + srv.stderr_text())
        return old

    # -- the tutorial --------------------------------------------------------

    def test_tutorial_client(self):
        srv, (hport, eport) = self.start_echo()
        msg = b"Hello, world. This is the echo tutorial's message."
        self.assertEqual(echo_client(eport, msg), msg)
        # HTTP on the other listener of the same workers is untouched.
        self.assertEqual(get(hport, "/").status, 200)
        # The session is logged when the client closes: address, port, bytes.
        s = wait_until(lambda: self.sessions(srv), message=srv.stderr_text())
        self.assertEqual(s[0][1:3], (len(msg), len(msg)))
        # The access log stays HTTP only (goaccess parses it): one line,
        # for the GET, whatever the echo sessions did.
        lines = srv.wait_access_lines(1)
        self.assertEqual(len(lines), 1)
        self.assertIsNotNone(harness.parse_access_line(lines[0]))

    def test_logged_peer_port(self):
        srv, (_, eport) = self.start_echo()
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            local = s.getsockname()[1]
            s.sendall(b"x")
            self.assertEqual(recv_exact(s, 1), b"x")
        s = wait_until(lambda: self.sessions(srv), message=srv.stderr_text())
        self.assertEqual(s[0][:3], (local, 1, 1))

    # -- exactness -----------------------------------------------------------

    def test_binary_random_segments(self):
        srv, (_, eport) = self.start_echo()
        rnd = random.Random(862)
        data = bytes(range(256)) * 64 + b"\0" * 1000 + os.urandom(50000)
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            got = bytearray()
            i = 0
            while i < len(data):
                n = rnd.choice((1, 2, 3, 7, 100, 1500, 4095, 4096, 4097, 9000))
                s.sendall(data[i:i + n])
                i += n
                # Read what is there without waiting, to vary the timing.
                while True:
                    r, _, _ = select.select([s], [], [], 0)
                    if not r:
                        break
                    got += s.recv(65536)
            got += recv_exact(s, len(data) - len(got))
        self.assertEqual(bytes(got), data)

    def test_10mib_stream(self):
        srv, (_, eport) = self.start_echo()
        size = 10 << 20
        data = os.urandom(size)
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            err = []

            def writer():
                try:
                    s.sendall(data)
                except OSError as e:
                    err.append(e)
            t = threading.Thread(target=writer)
            t.start()
            got = recv_exact(s, size)
            t.join()
            self.assertEqual(err, [])
        self.assertEqual(len(got), size)
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(data).digest())

    def test_half_close(self):
        srv, (_, eport) = self.start_echo()
        msg = os.urandom(200000)
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            err = []

            def writer():
                try:
                    s.sendall(msg)
                    s.shutdown(socket.SHUT_WR)
                except OSError as e:
                    err.append(e)
            t = threading.Thread(target=writer)
            t.start()
            got = bytearray()
            while True:
                d = s.recv(65536)
                if not d:
                    break       # porter closed after sending the rest
                got += d
            t.join()
        self.assertEqual(err, [])
        self.assertEqual(bytes(got), msg)

    # -- bounded memory --------------------------------------------------------

    def test_slow_reader_stops_porter_reading(self):
        srv, (_, eport) = self.start_echo()
        worker_rss = {p: rss_kib(p) for p in srv.worker_pids()}
        limit = 64 << 20        # far above every socket buffer on the way
        s = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
        self.addCleanup(s.close)
        s.setblocking(False)
        sent = 0
        blocked = False
        while sent < limit:
            try:
                sent += s.send(pattern(sent, 65536))
                continue
            except BlockingIOError:
                pass
            # Full: porter is not reading. Give it the chance to read
            # more; if the socket stays full, it stopped.
            _, w, _ = select.select([], [s], [], 2.0)
            if not w:
                blocked = True
                break
        self.assertTrue(blocked, "porter read %d bytes the client never read" % sent)
        # No worker grew by more than a few MiB while holding the stream.
        for p, before in worker_rss.items():
            self.assertLess(rss_kib(p) - before, 8 * 1024)
        # Reading resumes it: everything comes back, in order, then more.
        s.setblocking(True)
        s.settimeout(DEFAULT_TIMEOUT)
        self.assertEqual(recv_exact(s, sent), pattern(0, sent))
        s.sendall(b"after")
        self.assertEqual(recv_exact(s, 5), b"after")

    # -- timeouts and limits ---------------------------------------------------

    def test_idle_timeout(self):
        srv, (_, eport) = self.start_echo(limits={"echo_idle_timeout": 1})
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            s.sendall(b"ping")
            self.assertEqual(recv_exact(s, 4), b"ping")
            # Nothing more either way: porter closes (recv sees EOF).
            self.assertEqual(s.recv(10), b"")
        s = wait_until(lambda: self.sessions(srv), message=srv.stderr_text())
        self.assertEqual(s[0][1:3], (4, 4))

    def test_1000_clients_beside_http(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = 2400
        if hard != resource.RLIM_INFINITY and hard < need:
            self.skipTest("RLIMIT_NOFILE hard limit %d < %d" % (hard, need))
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        srv, (hport, eport) = self.start_echo(limits={"max_connections": 2048})
        n = 1000
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(n):
            s = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
            socks.append(s)
        msgs = [("client %d says hello\n" % i).encode() * (1 + i % 7) for i in range(n)]
        for s, m in zip(socks, msgs):
            s.sendall(m)
        # HTTP on the same workers while 1000 echo sessions are open.
        for _ in range(20):
            self.assertEqual(get(hport, "/").status, 200)
        sel = selectors.DefaultSelector()
        got = {}
        for i, s in enumerate(socks):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, i)
            got[i] = b""
        left = n
        while left:
            events = sel.select(timeout=DEFAULT_TIMEOUT)
            self.assertTrue(events, "%d clients still waiting" % left)
            for key, _ in events:
                i = key.data
                d = key.fileobj.recv(65536)
                self.assertTrue(d, "client %d: connection closed" % i)
                got[i] += d
                if len(got[i]) >= len(msgs[i]):
                    sel.unregister(key.fileobj)
                    left -= 1
        sel.close()
        for i in range(n):
            self.assertEqual(got[i], msgs[i])
        for s in socks:
            s.close()
        socks.clear()
        wait_until(lambda: len(self.sessions(srv)) == n)

    def test_sessions_count_against_max_connections(self):
        """Echo sessions fill limits.max_connections like HTTP ones: an
        idle keep-alive HTTP connection gives its slot to a newcomer, a
        session never does, and with every slot held by a session new
        clients (echo or HTTP) wait until one ends."""
        limit = 16      # the smallest max_connections
        # Long timeouts: no connection may end but to make room.
        srv, (hport, eport) = self.start_echo(workers=1, limits={
            "max_connections": limit, "keepalive_timeout": 3600,
            "echo_idle_timeout": 3600})
        http = harness.Conn(hport)
        self.addCleanup(http.close)
        http.send(harness.build_request("GET", "/"))
        self.assertEqual(http.read_response().status, 200)
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])

        def session(tag):
            s = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
            socks.append(s)
            s.sendall(tag)
            self.assertEqual(recv_exact(s, len(tag)), tag)
            return s
        for i in range(limit - 1):
            session(b"s%d" % i)
        # The last slot is the idle HTTP connection's: it goes, the
        # newcomer is served.
        session(b"last")
        self.assertTrue(http.closed_by_peer(), "idle HTTP connection kept")
        # Full of sessions: two newcomers are accepted by the kernel only.
        waiting = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
        self.addCleanup(waiting.close)
        waiting.sendall(b"waiting")
        web = harness.Conn(hport)
        self.addCleanup(web.close)
        web.send(harness.build_request("GET", "/"))
        # Every session is still open and echoing (none made room): the
        # worker has read and answered after both newcomers arrived...
        for i, s in enumerate(socks):
            s.sendall(b"again %d" % i)
            self.assertEqual(recv_exact(s, len(b"again %d" % i)), b"again %d" % i)
        # ...and neither newcomer got a byte.
        r, _, _ = select.select([waiting, web.sock], [], [], 0.5)
        self.assertEqual(r, [], "served beyond max_connections")
        # Two sessions end: both newcomers are served.
        for s in socks[:2]:
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(s.recv(10), b"")
        self.assertEqual(recv_exact(waiting, 7), b"waiting")
        self.assertEqual(web.read_response().status, 200)

    # -- the scoreboard ---------------------------------------------------------

    def porter_status(self, srv):
        r = harness.run_porter("-s", "status", "-c", srv.conf_path)
        self.assertEqual(r.returncode, 0, r.stderr + srv.stderr_text())
        return {k: int(v) for k, _, v in (l.partition(": ") for l in r.stdout.splitlines())
                if k != "worker" and v.isdigit()}

    def test_scoreboard_counts_echo(self):
        piddir = self.make_tempdir()
        srv, (_, eport) = self.start_echo(pid_file=os.path.join(piddir, "porter.pid"))
        srv.wait_for_stderr(r"\d+ workers ready")
        before = self.porter_status(srv)
        msg = os.urandom(100000)
        with socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT) as s:
            s.sendall(msg)
            self.assertEqual(recv_exact(s, len(msg)), msg)
            # Open sessions are in the workers' gauge.
            wait_until(lambda: self.porter_status(srv)["connections_open"] >= 1)
        after = wait_until(lambda: (lambda st: st if st["bytes_sent"] >= before["bytes_sent"]
                                    + len(msg) else None)(self.porter_status(srv)),
                           message="echo bytes not in the scoreboard")
        self.assertGreaterEqual(after["connections_accepted"],
                                before["connections_accepted"] + 1)
        # Sessions are not HTTP responses.
        self.assertEqual(after["requests"], before["requests"])

    # -- reloads ---------------------------------------------------------------

    def test_reload_keeps_open_session(self):
        srv, (hport, eport) = self.start_fixed(shutdown_timeout=60)
        s = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(b"before")
        self.assertEqual(recv_exact(s, 6), b"before")
        old = self.reload(srv, workers=1)
        # The old worker drains: it is still there, holding our session.
        wait_until(lambda: len(set(srv.worker_pids()) - old) == 1)
        self.assertTrue(old & set(srv.worker_pids()))
        s.sendall(b"during the reload")
        self.assertEqual(recv_exact(s, 17), b"during the reload")
        # New sessions go to the new generation.
        self.assertEqual(echo_client(eport, b"new"), b"new")
        # The client ends the session: the old worker is free to go.
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(s.recv(10), b"")
        wait_until(lambda: not (old & set(srv.worker_pids())),
                   message="old workers still there: %r" % srv.worker_pids())
        self.assertEqual(get(hport, "/").status, 200)

    def test_protocol_changed_on_reload(self):
        srv, (p1, p2) = self.start_fixed(("http", "echo"), shutdown_timeout=60)
        held = socket.create_connection((HOST, p2), timeout=DEFAULT_TIMEOUT)
        self.addCleanup(held.close)
        held.sendall(b"old")
        self.assertEqual(recv_exact(held, 3), b"old")
        self.reload(srv, listen=[{"address": "%s:%d" % (HOST, p1), "protocol": "echo"},
                                 {"address": "%s:%d" % (HOST, p2), "protocol": "http"}])
        # The same sockets (kept, not re-bound) now speak the other protocol.
        self.assertEqual(echo_client(p1, b"GET / HTTP/1.1\r\n\r\n"),
                         b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(get(p2, "/").status, 200)
        # A session of the old generation still echoes.
        held.sendall(b"still")
        self.assertEqual(recv_exact(held, 5), b"still")

    def old_session_ended_by_shutdown_timeout(self, new_listen):
        """A session held on the old generation outlives the reload to
        new_listen (ports -> listen list) and ends when the master kills
        its worker, shutdown_timeout after the drain began: not at the
        reload, not by the idle timeout."""
        timeout = 2
        srv, ports = self.start_fixed(shutdown_timeout=timeout,
                                      limits={"echo_idle_timeout": 3600})
        hport, eport = ports
        s = socket.create_connection((HOST, eport), timeout=DEFAULT_TIMEOUT)
        self.addCleanup(s.close)
        s.sendall(b"before")
        self.assertEqual(recv_exact(s, 6), b"before")
        old = self.reload(srv, listen=new_listen(hport, eport))
        # The reload is over: every old worker drains, ours still echoes.
        s.sendall(b"draining")
        self.assertEqual(recv_exact(s, 8), b"draining")
        # Its worker is killed after shutdown_timeout: the session ends.
        s.settimeout(timeout + DEFAULT_TIMEOUT)
        try:
            self.assertEqual(s.recv(10), b"")
        except ConnectionResetError:
            pass
        m = srv.wait_for_stderr(r"worker (\d+) still draining after %d s; "
                                r"killing it" % timeout)
        self.assertIn(int(m.group(1)), old)
        wait_until(lambda: not (old & set(srv.worker_pids())),
                   message="old workers still there: %r" % srv.worker_pids())
        self.assertEqual(get(hport, "/").status, 200)

    def test_removed_listener_session_ends_at_shutdown_timeout(self):
        def only_http(hport, eport):
            return [{"address": "%s:%d" % (HOST, hport), "protocol": "http"}]
        self.old_session_ended_by_shutdown_timeout(only_http)

    def test_changed_listener_session_ends_at_shutdown_timeout(self):
        def echo_to_http(hport, eport):
            return [{"address": "%s:%d" % (HOST, p), "protocol": "http"}
                    for p in (hport, eport)]
        self.old_session_ended_by_shutdown_timeout(echo_to_http)


if __name__ == "__main__":
    unittest.main()
