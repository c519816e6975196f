#!/usr/bin/python3
"""Integration tests for ``porter -s status`` and the scoreboard behind it
(src/scoreboard.c, src/proc.c, the "status" command of src/ctl.c).

- ``porter -s status`` prints the master's account, one ``key: value`` a
  line: uptime, generation, the last reload, every worker with its pid,
  state, heartbeat, open connections and requests, and the totals:
  requests by status class, bytes sent, connections accepted. It exits 1
  with a message when no master runs.
- The totals never go backwards: not when a worker is SIGKILLed, not
  across a reload, not when max_requests recycles workers. A dead
  worker's counts are folded into the "retired" totals when the master
  reaps it.
- Neither does the request count in the STATUS= line sent to systemd
  (before the scoreboard, it dropped whenever a worker was replaced).

Every wait is bounded by the event it waits for (harness.wait_until),
never by a wall-clock speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_status.py
"""

import os
import re
import signal
import socket
import sys
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, Conn, build_request, get, pid_alive, wait_until  # noqa: E402
from test_systemd import NotifySocket  # noqa: E402

BODY = b"hello from porter\n"
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
WORKER_RE = re.compile(r"^pid=(\d+) generation=(\d+) state=(\w+) heartbeat_ms=(\d+) "
                       r"connections=(\d+) requests=(\d+)")
STATUS_REQUESTS_RE = re.compile(r"(\d+) requests")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Status:
    """Parsed output of ``porter -s status``."""

    def __init__(self, text):
        self.text = text
        self.fields = {}
        self.workers = []
        for line in text.splitlines():
            key, sep, value = line.partition(": ")
            if not sep:
                raise AssertionError("not a 'key: value' line: %r\n%s" % (line, text))
            if key == "worker":
                m = WORKER_RE.match(value)
                if not m:
                    raise AssertionError("bad worker line: %r" % line)
                self.workers.append({"pid": int(m.group(1)), "generation": int(m.group(2)),
                                     "state": m.group(3), "heartbeat_ms": int(m.group(4)),
                                     "connections": int(m.group(5)),
                                     "requests": int(m.group(6))})
            else:
                self.fields[key] = value

    def num(self, key):
        return int(self.fields[key])

    @property
    def requests(self):
        return self.num("requests")

    def classes(self):
        return [self.num("requests_" + c) for c in CLASSES]

    def totals(self):
        """Every monotonic total, for comparisons."""
        return {k: self.num(k) for k in ["requests", "bytes_sent", "connections_accepted"] +
                ["requests_" + c for c in CLASSES]}


class StatusTestCase(harness.PorterTestCase):

    def start_status_server(self, env=None, **settings):
        """A server on a fixed port (reloads keep it) with a pid file, so
        that ``porter -s`` finds its control socket."""
        last = None
        for _ in range(5):
            root = self.make_tempdir()
            harness.write_file(os.path.join(root, "index.html"), BODY)
            srv = self.start_server(root, start=False, env=env,
                                    listen=["%s:%d" % (HOST, free_port())], **settings)
            srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
            try:
                srv.start()
                srv.wait_for_stderr(r"\d+ workers ready")
                return srv
            except harness.ServerError as e:
                last = e
                srv.close()
        raise last

    def status(self, srv):
        r = harness.run_porter("-s", "status", "-c", srv.conf_path)
        self.assertEqual(r.returncode, 0, "porter -s status failed: %s\n%s"
                         % (r.stderr, srv.stderr_text()))
        return Status(r.stdout)

    def wait_status(self, srv, pred, message):
        box = []

        def ok():
            st = self.status(srv)
            box[:] = [st]
            return pred(st)
        try:
            wait_until(ok)
        except AssertionError:
            raise AssertionError("%s; last status:\n%s" % (message, box[0].text if box else "-"))
        return box[0]

    def keepalive_requests(self, port, n, path="/"):
        with Conn(port) as c:
            for _ in range(n):
                c.send(build_request("GET", path))
                r = c.read_response()
                self.assertEqual(r.status, 200 if path == "/" else 404)

    def assert_not_less(self, before, after, what):
        for k, v in before.totals().items():
            self.assertGreaterEqual(after.totals()[k], v, "%s: %s went back from %d to %d\n"
                                    "before:\n%s\nafter:\n%s"
                                    % (what, k, v, after.totals()[k], before.text, after.text))

    def assert_consistent(self, st):
        self.assertEqual(sum(st.classes()), st.requests, st.text)


class StatusCommandTest(StatusTestCase):

    def test_fields(self):
        srv = self.start_status_server(workers=2)
        self.keepalive_requests(srv.port, 8)
        for _ in range(2):
            self.assertEqual(get(srv.port, "/missing").status, 404)
        st = self.wait_status(srv, lambda s: s.requests >= 10, "requests not counted")
        for key in ("pid", "version", "state", "started", "uptime_s", "generation", "reloads",
                    "last_reload", "workers_target", "workers_starting", "workers_ready",
                    "workers_draining", "connections_open", "connections_accepted",
                    "requests", "requests_1xx", "requests_2xx", "requests_3xx",
                    "requests_4xx", "requests_5xx", "bytes_sent"):
            self.assertIn(key, st.fields, st.text)
        self.assertEqual(st.num("pid"), srv.pid)
        self.assertEqual(st.fields["state"], "running")
        self.assertEqual(st.num("generation"), 1)
        self.assertEqual(st.fields["last_reload"], "none")
        self.assertEqual(st.num("workers_ready"), 2)
        self.assertEqual(sorted(w["pid"] for w in st.workers), srv.worker_pids())
        for w in st.workers:
            self.assertEqual(w["generation"], 1)
            self.assertEqual(w["state"], "ready")
        self.assertEqual(st.requests, 10)
        self.assertEqual(st.classes(), [0, 8, 0, 2, 0])
        self.assertEqual(sum(w["requests"] for w in st.workers), 10)
        # 8 bodies and 10 heads at least; the harness's readiness probes
        # were connections too
        self.assertGreater(st.num("bytes_sent"), 8 * len(BODY))
        self.assertGreaterEqual(st.num("connections_accepted"), 3)
        self.assert_consistent(st)

    def test_open_connections_and_reload_fields(self):
        srv = self.start_status_server(workers=1)
        held = [Conn(srv.port) for _ in range(3)]
        for c in held:
            self.addCleanup(c.close)
            c.send(build_request("GET", "/"))
            self.assertEqual(c.read_response().body, BODY)
        st = self.wait_status(srv, lambda s: s.num("connections_open") == 3,
                              "three keep-alive connections not shown as open")
        self.assertEqual(st.workers[0]["connections"], 3)
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = self.status(srv)
        self.assertEqual(st.num("generation"), 2)
        self.assertEqual(st.num("reloads"), 1)
        self.assertEqual(st.fields["last_reload"], "ok")
        self.assertRegex(st.fields["last_reload_time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn("last_reload_message", st.fields)
        # the old worker drains (its idle connections close); the new one serves
        self.assertTrue(any(w["generation"] == 2 and w["state"] == "ready"
                            for w in st.workers), st.text)

    def test_no_master(self):
        srv = self.start_server(start=False)
        srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
        r = harness.run_porter("-s", "status", "-c", srv.conf_path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is porter running?", r.stderr)
        self.assertEqual(r.stdout, "")


class MonotonicTest(StatusTestCase):

    def test_counters_survive_kill_reload_and_recycle(self):
        srv = self.start_status_server(workers=2)
        n = 30
        self.keepalive_requests(srv.port, n)
        self.keepalive_requests(srv.port, 5, "/missing")
        st1 = self.wait_status(srv, lambda s: s.requests >= n + 5, "requests not counted")
        self.assertEqual(st1.requests, n + 5)
        self.assert_consistent(st1)

        # SIGKILL every worker that served something: their slots are reused
        victims = [w["pid"] for w in st1.workers if w["requests"] > 0]
        self.assertTrue(victims, st1.text)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(p in srv.worker_pids() for p in victims)
                   and len(srv.worker_pids()) == 2, message="killed workers not replaced")
        st2 = self.wait_status(srv, lambda s: not any(w["pid"] in victims for w in s.workers)
                               and len(s.workers) == 2, "killed workers still listed")
        self.assert_not_less(st1, st2, "after SIGKILL")
        self.assertEqual(st2.requests, n + 5)
        self.assertEqual(sum(w["requests"] for w in st2.workers), 0, st2.text)
        self.assert_consistent(st2)

        # a reload replaces every worker
        self.keepalive_requests(srv.port, n)
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        st3 = self.wait_status(srv, lambda s: s.num("workers_draining") == 0 and
                               all(w["generation"] == 2 for w in s.workers),
                               "old generation still there")
        self.assert_not_less(st2, st3, "after a reload")
        self.assertEqual(st3.requests, 2 * n + 5)
        self.assert_consistent(st3)

        # max_requests recycles workers under load
        srv.write_config(max_requests=10)
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        prev = st3
        for _ in range(8):
            for _ in range(10):
                self.assertEqual(get(srv.port).status, 200)
            st = self.status(srv)
            self.assert_not_less(prev, st, "while recycling")
            prev = st
        wait_until(lambda: len([l for l in srv.stderr_lines() if "reached max_requests" in l]) >= 2,
                   message="no worker recycled")
        st4 = self.wait_status(srv, lambda s: s.requests >= 2 * n + 5 + 80,
                               "requests lost across recycling")
        self.assertEqual(st4.requests, 2 * n + 5 + 80)
        self.assertEqual(st4.classes(), [0, 2 * n + 80, 0, 5, 0])
        self.assert_not_less(st3, st4, "after recycling")
        self.assertGreaterEqual(st4.num("connections_accepted"), 80 + 4)


class SystemdStatusTest(StatusTestCase):

    def test_status_line_never_decreases(self):
        """systemd's STATUS= request count: before the scoreboard kept
        retired totals it fell back when a worker was replaced."""
        ns = NotifySocket()
        self.addCleanup(ns.close)
        srv = self.start_status_server(workers=2, env={"NOTIFY_SOCKET": ns.path})
        n = 30
        self.keepalive_requests(srv.port, n)

        def counts():
            out = []
            for m in ns.with_field("STATUS"):
                g = STATUS_REQUESTS_RE.search(m.fields["STATUS"])
                if g:
                    out.append(int(g.group(1)))
            return out
        wait_until(lambda: counts() and counts()[-1] >= n,
                   message="STATUS never showed %d requests: %r" % (n, counts()))
        victims = srv.worker_pids()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(pid_alive(p) for p in victims)
                   and len(srv.worker_pids()) == 2, message="workers not replaced")
        # a STATUS line from after the replacements (the master's tick)
        seen = len(counts())
        ns.sync()
        wait_until(lambda: len(counts()) >= seen + 2, message="no STATUS after the kill")
        c = counts()
        self.assertTrue(all(b >= a for a, b in zip(c, c[1:])),
                        "STATUS request count went backwards: %r" % c)
        self.assertEqual(c[-1], n)
        # and across a reload
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        seen = len(counts())
        wait_until(lambda: len(counts()) >= seen + 2, message="no STATUS after the reload")
        c = counts()
        self.assertTrue(all(b >= a for a, b in zip(c, c[1:])),
                        "STATUS request count went backwards: %r" % c)
        self.assertEqual(c[-1], n)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
