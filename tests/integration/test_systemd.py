#!/usr/bin/python3
"""Integration tests for porter's systemd integration (src/systemd.c as
the master uses it): sd_notify(3) messages and socket activation.

- Notifications: each test binds its own AF_UNIX datagram socket, starts
  porter with NOTIFY_SOCKET pointing at it and checks what arrives, in
  which order and from which process (SO_PASSCRED gives the sender's pid:
  only the master may notify; workers inherit NOTIFY_SOCKET but must stay
  silent, or systemd logs a warning for every message they send).
- Socket activation: systemd-socket-activate binds 127.0.0.1:PORT and
  execs porter with the socket on fd 3 (LISTEN_FDS=1). porter must serve
  on it when its config lists that address, and refuse with a message
  naming the address when it does not.

Run by ``make check`` with PORTER_BIN set, or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_systemd.py
"""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, get, wait_until  # noqa: E402

# What marks a state change; STATUS= and WATCHDOG= come and go in between.
EVENTS = ("READY", "RELOADING", "STOPPING")

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def setUpModule():
    # A test run from inside a systemd service must not leak the runner's
    # own notification socket, watchdog or sockets into the porters here.
    for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
              "WATCHDOG_USEC", "WATCHDOG_PID"):
        os.environ.pop(k, None)


def monotonic_usec():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notification:
    """One datagram: the sender's pid and its KEY=VALUE assignments."""

    def __init__(self, pid, data):
        self.pid = pid
        self.raw = data.decode("utf-8", "replace")
        self.fields = {}
        for line in self.raw.split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                self.fields[k] = v

    def event(self):
        """READY / RELOADING / STOPPING if this message announces one."""
        for e in EVENTS:
            if self.fields.get(e) == "1":
                return e
        return None

    def __repr__(self):
        return "<pid %s: %r>" % (self.pid, self.raw)


class NotifySocket:
    """A stand-in for systemd's notification socket, read in a thread."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="porter-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        # porter's user may differ from ours when the tests run as root
        # and the config switches user: let anyone send.
        os.chmod(self.dir, 0o755)
        os.chmod(self.path, 0o777)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []
        self.cond = threading.Condition()
        self.closed = False
        self.synced = 0
        self.thread = threading.Thread(target=self._reader, daemon=True)
        self.thread.start()

    def _reader(self):
        creds_len = struct.calcsize("3i")
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds_len))
            except OSError:
                return
            if self.closed:
                return
            if data.startswith(b"PORTER_TEST_SYNC="):
                with self.cond:
                    self.synced = int(data.split(b"=")[1])
                    self.cond.notify_all()
                continue
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:creds_len])[0]
            with self.cond:
                self.messages.append(Notification(pid, data))
                self.cond.notify_all()

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def sync(self):
        """Wait until every message already sent to the socket has been
        read: a marker of our own, queued behind them, comes out last."""
        with self.cond:
            n = self.synced + 1
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"PORTER_TEST_SYNC=%d" % n, self.path)
        with self.cond:
            if not self.cond.wait_for(lambda: self.synced >= n, harness.DEFAULT_TIMEOUT):
                raise AssertionError("notify socket reader is stuck")

    def events(self):
        """The state changes so far, in order: ["READY", "RELOADING", ...]."""
        return [m.event() for m in self.snapshot() if m.event()]

    def wait_events(self, n, timeout=harness.DEFAULT_TIMEOUT):
        """Wait until at least ``n`` state changes arrived; return them."""
        return wait_until(lambda: len(self.events()) >= n and self.events(), timeout,
                          message="wanted %d state changes, got %r" % (n, self.snapshot()))

    def with_field(self, key):
        return [m for m in self.snapshot() if key in m.fields]

    def close(self):
        self.closed = True
        try:
            # wake the reader up
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(b"", self.path)
        except OSError:
            pass
        self.thread.join(5)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class SystemdTestCase(harness.PorterTestCase):

    def start_for_reload_command(self):
        """A server with its own NOTIFY_SOCKET and pid file (``porter -s``
        finds the master through it), serving "one", once READY=1 is in."""
        ns = self.notify_socket()
        srv = self.start_server(start=False, env={"NOTIFY_SOCKET": ns.path})
        srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
        self.write_index(srv, "one")
        srv.start()
        ns.wait_events(1)
        return ns, srv

    def notify_socket(self):
        ns = NotifySocket()
        self.addCleanup(ns.close)
        return ns

    def write_index(self, srv, text):
        p = os.path.join(srv.root, "index.html")
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, 0o644)

    def assert_serves(self, port, text):
        def ok():
            try:
                r = get(port)
            except (OSError, harness.ConnectionClosed):
                return False
            return r.status == 200 and r.body == text.encode()
        wait_until(ok, message="127.0.0.1:%d does not serve %r" % (port, text))


class NotifyTest(SystemdTestCase):
    """sd_notify: READY, RELOADING + MONOTONIC_USEC, READY, STOPPING."""

    def start_notified(self, **kwargs):
        ns = self.notify_socket()
        srv = self.start_server(start=False, env={"NOTIFY_SOCKET": ns.path}, **kwargs)
        self.write_index(srv, "one")
        srv.start()
        return ns, srv

    def check_senders(self, ns, srv):
        """Every message came from the master, never from a worker."""
        for m in ns.snapshot():
            self.assertEqual(m.pid, srv.pid, "notification from pid %s (master %d, workers %r): %r"
                             % (m.pid, srv.pid, srv.worker_pids(), m))

    def test_ready_reload_stop_order(self):
        ns, srv = self.start_notified()
        self.assertEqual(ns.wait_events(1), ["READY"])
        ready = [m for m in ns.snapshot() if m.event() == "READY"][0]
        self.assertEqual(ready.fields.get("MAINPID"), str(srv.pid), ready)
        self.assert_serves(srv.port, "one")

        # reload on SIGHUP, with a new root to see it take effect
        newroot = self.make_tempdir()
        with open(os.path.join(newroot, "index.html"), "w") as f:
            f.write("two")
        os.chmod(os.path.join(newroot, "index.html"), 0o644)
        # keep the port: "127.0.0.1:0" would make the reload pick a new one
        srv.write_config(root=newroot, listen=["%s:%d" % (HOST, srv.port)])
        before = monotonic_usec()
        srv.send_signal(signal.SIGHUP)
        self.assertEqual(ns.wait_events(3), ["READY", "RELOADING", "READY"])
        after = monotonic_usec()
        reloading = [m for m in ns.snapshot() if m.event() == "RELOADING"][0]
        self.assertIn("MONOTONIC_USEC", reloading.fields, reloading)
        usec = int(reloading.fields["MONOTONIC_USEC"])
        self.assertTrue(before <= usec <= after,
                        "MONOTONIC_USEC=%d not between %d and %d" % (usec, before, after))
        self.assert_serves(srv.port, "two")

        rc = srv.stop()
        self.assertEqual(rc, 0, srv.stderr_text())
        ns.sync()       # the master has exited: everything it sent is queued
        self.assertEqual(ns.events(), ["READY", "RELOADING", "READY", "STOPPING"])
        self.check_senders(ns, srv)

    def test_reload_command_is_synchronous(self):
        """``porter -s reload`` (ExecReload=) returns only once the master
        has sent RELOADING=1 and READY=1 again."""
        ns, srv = self.start_for_reload_command()
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=90)
        self.assertEqual(r.returncode, 0, "stdout: %s\nstderr: %s" % (r.stdout, r.stderr))
        # the command has returned, so both must be queued already
        ns.sync()
        self.assertEqual(ns.events()[:3], ["READY", "RELOADING", "READY"],
                         "after 'porter -s reload' returned: %r" % ns.snapshot())
        self.check_senders(ns, srv)

    def test_reload_command_rejects_broken_config(self):
        """ExecReload= fails with porter's message when the config is
        broken, and the running server neither stops nor stays "reloading"."""
        ns, srv = self.start_for_reload_command()
        with open(srv.conf_path, "a") as f:
            f.write("this is { not valid\n")
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=90)
        self.assertNotEqual(r.returncode, 0, "stdout: %s\nstderr: %s" % (r.stdout, r.stderr))
        # the message names the file, so the journal says what to fix
        self.assertIn(srv.conf_path, r.stderr)
        self.assertTrue(srv.running(), srv.stderr_text())
        self.assert_serves(srv.port, "one")
        # Whether or not the master was asked, systemd must not be left in
        # "reloading": every RELOADING is followed by a READY.
        def settled():
            events = ns.events()
            return all(events[i + 1:i + 2] == ["READY"]
                       for i, e in enumerate(events) if e == "RELOADING")
        wait_until(settled, message="RELOADING=1 without READY=1: %r" % ns.snapshot())
        self.assertEqual(ns.events()[0], "READY", ns.snapshot())
        self.check_senders(ns, srv)

    def test_failed_reload_still_sends_ready(self):
        """systemd stays in "reloading" until READY=1: a rejected config
        must be followed by READY=1 too, with the old config serving."""
        ns, srv = self.start_notified()
        ns.wait_events(1)
        with open(srv.conf_path, "a") as f:
            f.write("this is { not valid\n")
        srv.send_signal(signal.SIGHUP)
        self.assertEqual(ns.wait_events(3), ["READY", "RELOADING", "READY"])
        self.assertTrue(srv.running(), srv.stderr_text())
        self.assert_serves(srv.port, "one")
        # STATUS= should say so; systemctl status shows it
        statuses = [m.fields["STATUS"] for m in ns.with_field("STATUS")]
        self.assertTrue(statuses, "no STATUS= at all: %r" % ns.snapshot())
        self.check_senders(ns, srv)

    def test_watchdog_pings(self):
        """With WATCHDOG_USEC set, the master pings at half of it (its own
        timer, checked by what it says, not by our clock) and keeps on."""
        for usec, every in ((2000000, 1000), (600000, 300), (30000000, 1000)):
            ns = self.notify_socket()
            srv = self.start_server(start=False, env={"NOTIFY_SOCKET": ns.path,
                                                      "WATCHDOG_USEC": str(usec)})
            self.write_index(srv, "one")
            srv.start()
            ns.wait_events(1)
            srv.wait_for_stderr(r"systemd watchdog: %d ms, pinging every %d ms"
                                % (usec // 1000, every))
            wait_until(lambda: len(ns.with_field("WATCHDOG")) >= 3, timeout=30,
                       message="fewer than 3 WATCHDOG=1: %r" % ns.snapshot())
            self.check_senders(ns, srv)
            self.assertEqual(srv.stop(), 0, srv.stderr_text())

    def test_no_notify_socket_no_messages_needed(self):
        """Without NOTIFY_SOCKET porter starts and stops normally."""
        srv = self.start_server()
        self.assertEqual(srv.stop(), 0, srv.stderr_text())


@unittest.skipIf(SOCKET_ACTIVATE is None, "systemd-socket-activate not installed")
class SocketActivationTest(SystemdTestCase):
    """LISTEN_FDS from systemd-socket-activate."""

    def free_port(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]

    def start_activated(self, listen_port=None, attempts=5):
        """systemd-socket-activate -l 127.0.0.1:PORT porter ..., with the
        config listening on ``listen_port`` (default: the same PORT).
        Returns (server, port). Retries with another port if the probe's
        port was taken before systemd-socket-activate could bind it."""
        for _ in range(attempts):
            port = self.free_port()
            lp = port if listen_port is None else listen_port
            srv = self.start_server(
                start=False, listen=["%s:%d" % (HOST, lp)],
                command_prefix=[SOCKET_ACTIVATE, "-l", "%s:%d" % (HOST, port)])
            self.write_index(srv, "activated")
            srv.start(wait=False)
            # systemd-socket-activate says so once it has bound the port
            try:
                wait_until(lambda: any("Listening on" in l for l in srv.stderr_lines())
                           or not srv.running(), timeout=10)
            except AssertionError:
                pass
            if any("Listening on" in l for l in srv.stderr_lines()):
                return srv, port
            srv.close()
        self.fail("systemd-socket-activate could not bind a port in %d tries" % attempts)

    def test_serves_on_passed_socket(self):
        srv, port = self.start_activated()
        # The first connection makes systemd-socket-activate exec porter;
        # the kernel queues it on the socket until porter accepts.
        r = get(port)
        self.assertEqual((r.status, r.body), (200, b"activated"), srv.stderr_text())
        self.assertTrue(srv.running())
        # porter serves from the passed socket, it did not bind its own
        workers = wait_until(lambda: srv.worker_pids(), message="no workers")
        self.assertTrue(workers)
        for _ in range(5):
            self.assertEqual(get(port).status, 200)
        self.assertEqual(srv.stop(), 0, srv.stderr_text())

    def test_passed_socket_not_in_config_is_an_error(self):
        other = self.free_port()
        srv, port = self.start_activated(listen_port=other)
        # trigger the exec; the connection itself will be refused or dropped
        try:
            with socket.create_connection((HOST, port), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    c.recv(100)
                except OSError:
                    pass
        except OSError:
            pass
        rc = srv.wait_exit(20)
        err = srv.stderr_text()
        self.assertNotEqual(rc, 0, err)
        # the message names the passed address that the config lacks
        porter_lines = [l for l in srv.stderr_lines()
                        if "Listening on" not in l and "Communication attempt" not in l
                        and "Execing" not in l]
        self.assertTrue(any("127.0.0.1:%d" % port in l for l in porter_lines),
                        "no error naming 127.0.0.1:%d:\n%s" % (port, err))


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
