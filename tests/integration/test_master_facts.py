#!/usr/bin/python3
"""Integration tests for the master's facts in the scoreboard
(sb_master_* in src/scoreboard.c, set by src/master*.c), which the coming
/metrics endpoint renders (src/metrics.c) and ``porter -s status`` shows:

- ``config_hash``: FNV-1a 64 of the configuration file's bytes, as 16 hex
  digits; it follows a good reload and stays put on a failed one;
- ``reloads_ok`` / ``reloads_failed``: reloads ended, by result;
- ``worker_exits_crash|hang|max_requests|drained``: workers reaped, by
  why they went: SIGKILLed by someone else, killed by the master for
  missing heartbeats (worker_timeout), recycled after max_requests, or
  told to go by a reload.

Every count only grows. Every wait is bounded by the event it waits for.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_master_facts.py
"""

import os
import signal
import sys
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import get, wait_until  # noqa: E402
from test_status import Status, StatusTestCase  # noqa: E402

EXITS = ("crash", "hang", "max_requests", "drained")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
    return "%016x" % h


class MasterFactsTest(StatusTestCase):

    def exits(self, st):
        return {r: st.num("worker_exits_" + r) for r in EXITS}

    def reload(self, srv, ok=True, conf=None):
        r = harness.run_porter("-s", "reload", "-c", conf or srv.conf_path, timeout=60)
        if ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            self.assertNotEqual(r.returncode, 0, r.stdout)

    def file_hash(self, srv):
        with open(srv.conf_path, "rb") as f:
            return fnv1a64(f.read())

    def test_config_hash_and_reloads(self):
        srv = self.start_status_server(workers=1)
        st = self.status(srv)
        self.assertEqual(st.fields["config_hash"], self.file_hash(srv), st.text)
        self.assertEqual((st.num("reloads_ok"), st.num("reloads_failed")), (0, 0))
        first = st.fields["config_hash"]

        srv.write_config(max_requests=1000)
        self.reload(srv)
        st = self.status(srv)
        self.assertEqual(st.fields["config_hash"], self.file_hash(srv), st.text)
        self.assertNotEqual(st.fields["config_hash"], first)
        self.assertEqual((st.num("reloads_ok"), st.num("reloads_failed")), (1, 0))
        good = st.fields["config_hash"]

        # a file libconfig rejects: the reload fails, the hash stays the
        # one of the configuration still serving. porter -s reads the
        # pid file's name from -c FILE: a good copy shows it the way.
        copy = os.path.join(srv.workdir, "copy.conf")
        with open(srv.conf_path, "rb") as f, open(copy, "wb") as g:
            g.write(f.read())
        with open(srv.conf_path, "a") as f:
            f.write("\nthis is not libconfig\n")
        self.assertNotEqual(self.file_hash(srv), good)
        self.reload(srv, ok=False, conf=copy)
        r = harness.run_porter("-s", "status", "-c", copy)
        self.assertEqual(r.returncode, 0, r.stderr)
        st = Status(r.stdout)
        self.assertEqual(st.fields["config_hash"], good, st.text)
        self.assertEqual((st.num("reloads_ok"), st.num("reloads_failed")), (1, 1))
        self.assertEqual(st.fields["last_reload"], "failed")
        # the old generation's worker counted as drained, nothing else
        os.rename(copy, srv.conf_path)
        st = self.wait_status(srv, lambda s: s.num("worker_exits_drained") == 1,
                              "the old generation's worker not counted as drained")
        self.assertEqual(self.exits(st), {"crash": 0, "hang": 0, "max_requests": 0,
                                          "drained": 1})

    def test_exit_reasons(self):
        srv = self.start_status_server(workers=2, worker_timeout=2)
        st0 = self.status(srv)
        self.assertEqual(self.exits(st0), dict.fromkeys(EXITS, 0), st0.text)

        # crash: killed by someone other than the master
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        st1 = self.wait_status(srv, lambda s: s.num("worker_exits_crash") == 1 and
                               s.num("workers_ready") == 2, "SIGKILL not counted as a crash")

        # hang: a stopped worker misses its heartbeats; the master kills it
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGSTOP)
        st2 = self.wait_status(srv, lambda s: s.num("worker_exits_hang") == 1 and
                               s.num("workers_ready") == 2, "hung worker not counted")
        self.assertEqual(st2.num("worker_exits_crash"), 1, st2.text)

        # max_requests: both workers recycle under load
        srv.write_config(max_requests=5)
        self.reload(srv)
        st3 = self.wait_status(srv, lambda s: s.num("worker_exits_drained") == 2 and
                               s.num("workers_draining") == 0,
                               "the old generation not counted as drained")
        for _ in range(40):
            self.assertEqual(get(srv.port).status, 200)
        wait_until(lambda: len([l for l in srv.stderr_lines()
                                if "reached max_requests" in l]) >= 2,
                   message="no worker recycled")
        st4 = self.wait_status(srv, lambda s: s.num("worker_exits_max_requests") >= 2,
                               "recycled workers not counted")
        # nothing counted twice or under another reason
        self.assertEqual(st4.num("worker_exits_crash"), 1, st4.text)
        self.assertEqual(st4.num("worker_exits_hang"), 1, st4.text)
        self.assertEqual(st4.num("worker_exits_drained"), 2, st4.text)
        for a, b in ((st0, st1), (st1, st2), (st2, st3), (st3, st4)):
            for r in EXITS:
                self.assertGreaterEqual(self.exits(b)[r], self.exits(a)[r])


if __name__ == "__main__":
    unittest.main(verbosity=2)
