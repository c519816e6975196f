#!/usr/bin/python3
"""Hardening: on-the-fly gzip must not hold the event loop.

A file too big to compress within one loop turn's slice (32 KiB of
input) is compressed by a background job, a slice per turn, while the
worker keeps answering; until the job is done the file goes out as
identity (still with Vary: Accept-Encoding), then as gzip.

Nothing here measures time. PORTER_TEST_GZIP_STALL names a file whose
existence holds every background job where it is (worker.c), so "a
request is answered while the job is pending" is a plain fact, not a
race; removing the file lets the jobs run, and the tests poll, with a
bounded number of tries, until the gzip form appears.

Run by ``make check`` with PORTER_BIN and PORTER_SRCDIR set, or by hand:
/usr/bin/python3 tests/integration/test_hardening_gzip.py [-k PATTERN]
"""

import gzip
import os
import random
import sys
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Conn, build_request  # noqa: E402

T_OLD = 1577934245          # 2020-01-02: file times are never the clock's
BIG = 4 * 1024 * 1024       # GZCACHE_MAX_FILE: the largest compressed on the fly
GZCACHE_SLICE = 32 * 1024   # input compressed per loop turn (rep.h)
POLL_TRIES = 400            # x 0.05 s between tries: a hang guard only
AE_GZIP = [("Accept-Encoding", "gzip")]


def text_bytes(size, seed=0):
    """Deterministic, compressible text of exactly size bytes."""
    rnd = random.Random(seed)
    words = ["porter", "static", "file", "server", "slice", "gzip", "etag",
             "event", "loop", "turn", "job", "bytes", "\n"]
    out = []
    n = 0
    while n < size:
        w = rnd.choice(words) + " "
        out.append(w)
        n += len(w)
    return "".join(out).encode()[:size]


def ask(conn, path, headers=AE_GZIP):
    conn.send(build_request("GET", path, headers=headers))
    return conn.read_response()


class GzipHardeningTest(harness.PorterTestCase):

    BIG_TEXT = text_bytes(BIG, 1)
    SMALL_TEXT = text_bytes(8000, 2)

    def setUp(self):
        self.tmp = self.make_tempdir()
        self.stall = os.path.join(self.tmp, "stall")
        self.root = os.path.join(self.tmp, "root")
        harness.write_file(os.path.join(self.root, "big.txt"), self.BIG_TEXT, T_OLD)
        harness.write_file(os.path.join(self.root, "small.txt"), self.SMALL_TEXT, T_OLD)

    def serve(self):
        # One worker: every request meets the same cache and jobs.
        return self.start_server(root=self.root, workers=1,
                                 env={"PORTER_TEST_GZIP_STALL": self.stall})

    def hold_jobs(self):
        harness.write_file(self.stall, b"")

    def release_jobs(self):
        os.unlink(self.stall)

    def assertIdentity(self, r, body):
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(int(r.header("Content-Length")), len(body))
        self.assertEqual(r.body, body)

    def assertGzip(self, r, body):
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertLess(len(r.body), len(body))
        self.assertEqual(gzip.decompress(r.body), body)

    def poll_gzip(self, conn, path, body):
        """Ask until the gzip form comes; every answer before it must be
        a correct identity response. Returns the gzip response."""
        for _ in range(POLL_TRIES):
            r = ask(conn, path)
            if r.header("Content-Encoding") is None:
                self.assertIdentity(r, body)
                time.sleep(0.05)
                continue
            self.assertGzip(r, body)
            return r
        self.fail("%s never came gzip-coded" % path)

    def test_big_file_is_compressed_in_the_background(self):
        srv = self.serve()
        self.hold_jobs()
        a = Conn(srv.port)
        b = Conn(srv.port)
        self.addCleanup(a.close)
        self.addCleanup(b.close)

        # The first request does not wait for 4 MiB of deflate: identity.
        first = ask(a, "/big.txt")
        self.assertIdentity(first, self.BIG_TEXT)
        etag = first.header("ETag")

        # While the job is pending, other requests are answered, small
        # files are still compressed inline, and the big one stays
        # identity, on any connection, for any client.
        for _ in range(3):
            self.assertGzip(ask(b, "/small.txt"), self.SMALL_TEXT)
            self.assertIdentity(ask(b, "/big.txt"), self.BIG_TEXT)
            self.assertIdentity(ask(a, "/big.txt"), self.BIG_TEXT)
        # A client that refuses identity gets it all the same (RFC 9110
        # 12.5.3 allows it; a refusal helps nobody), not a stalled loop.
        r = ask(b, "/big.txt", [("Accept-Encoding", "gzip, identity;q=0")])
        self.assertIdentity(r, self.BIG_TEXT)
        # No Accept-Encoding: identity, as always.
        r = ask(b, "/big.txt", [])
        self.assertEqual(r.body, self.BIG_TEXT)

        self.release_jobs()
        r = self.poll_gzip(a, "/big.txt", self.BIG_TEXT)
        self.assertNotEqual(r.header("ETag"), etag, "gzip shares identity's ETag")
        # From the cache from now on, on every connection.
        self.assertGzip(ask(b, "/big.txt"), self.BIG_TEXT)
        self.assertEqual(ask(b, "/big.txt").body, r.body)
        # Ranges apply to the coded bytes.
        rr = ask(b, "/big.txt", AE_GZIP + [("Range", "bytes=10-19")])
        self.assertEqual(rr.status, 206)
        self.assertEqual(rr.body, r.body[10:20])

    def test_job_of_a_changed_file_is_dropped(self):
        srv = self.serve()
        self.hold_jobs()
        a = Conn(srv.port)
        self.addCleanup(a.close)
        self.assertIdentity(ask(a, "/big.txt"), self.BIG_TEXT)

        # Rewritten in place (same inode) while its job is held: the
        # job for the old bytes must never produce a response.
        new = text_bytes(BIG - 1000, 3)
        harness.write_file(os.path.join(self.root, "big.txt"), new, T_OLD + 60)
        harness.wait_until(lambda: ask(a, "/big.txt").body == new,
                           message="the new version is not served")
        self.release_jobs()
        self.poll_gzip(a, "/big.txt", new)

    def test_more_big_files_than_jobs(self):
        srv = self.serve()
        self.hold_jobs()
        names = ["/big%d.txt" % k for k in range(4)]
        bodies = {}
        for k, name in enumerate(names):
            bodies[name] = text_bytes(GZCACHE_SLICE * 3 + k, 10 + k)
            harness.write_file(os.path.join(self.root, name.lstrip("/")),
                               bodies[name], T_OLD)
        a = Conn(srv.port)
        self.addCleanup(a.close)
        # More files than jobs allowed: every one is answered at once.
        for name in names:
            self.assertIdentity(ask(a, name), bodies[name])
        self.release_jobs()
        # Those refused a job get one once others are done.
        for name in names:
            self.poll_gzip(a, name, bodies[name])


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
