#!/usr/bin/python3
"""Integration tests for bounds that a client can push on: the access-log
buffer under escaped worst-case lines, multipart/byteranges lengths near
2^63 bytes, and the error log when the access log cannot be written.

Each test starts its own porter on an ephemeral 127.0.0.1 port; see
harness.py.

Run by ``make check`` with PORTER_BIN, PORTER_SRCDIR and FIXTURES set, or by
hand: /usr/bin/python3 tests/integration/test_hardening_bounds.py [-k PATTERN]
"""

import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Conn, build_request, get, parse_access_line, wait_until  # noqa: E402

write = harness.write_file

# accesslog.c logs at most this many bytes of the request line, the
# Referer and the User-Agent (ACCESSLOG_FIELD_MAX in porter.h).
FIELD_MAX = 2048
INT64_MAX = (1 << 63) - 1


def unescape_log_field(s):
    """Undo the access log's escaping: \\" \\\\ and \\xNN."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
        elif s[i + 1] == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out += s[i + 1].encode("latin-1")
            i += 2
    return bytes(out)


class AccessLogBoundsTest(harness.PorterTestCase):
    """Failure 1: escaped fields expand (x2 for '"' and '\\', x4 for bytes
    >= 0x80); the writer must reserve room for the worst case."""

    def attack_request(self, i, worst):
        """A worst-case request (a target of '"' longer than the field cap,
        Referer and User-Agent of FIELD_MAX bytes that each become four in
        the log), or a smaller one with only such a Referer."""
        ff = "\xff" * FIELD_MAX
        if not worst:
            return build_request("GET", "/s%d" % i, headers=[("Referer", ff)])
        # Segments of 200: a longer name is a 414 from openat().
        target = "/%d" % i + ("/" + '"' * 200) * 11
        return build_request("GET", target, headers=[("Referer", ff), ("User-Agent", ff)])

    def attack(self):
        """Lines of mixed sizes, so that whatever the writer reserves, some
        worst-case line comes while its buffer is nearly full."""
        reqs = []
        for k in range(1, 9):
            reqs += [self.attack_request(len(reqs) + j, False) for j in range(k)]
            reqs.append(self.attack_request(len(reqs), True))
        return reqs

    def test_pipelined_worst_case_lines(self):
        srv = self.start_server(workers=1)
        pid = srv.worker_pids()
        self.assertEqual(len(pid), 1, srv.describe())
        pid = pid[0]
        reqs = self.attack()
        nreq = len(reqs)
        with Conn(srv.port) as c:
            # One write: all of it is logged before the once-a-second flush.
            self.assertTrue(c.send(b"".join(reqs)))
            for i in range(nreq):
                try:
                    r = c.read_response()
                except harness.ConnectionClosed as e:
                    self.fail("response %d of %d missing: %s" % (i + 1, nreq, e))
                self.assertEqual(r.status, 404)
        # The same worker is alive and answers.
        r = get(srv.port, "/after")
        self.assertEqual(r.status, 404)
        self.assertEqual(srv.worker_pids(), [pid])
        self.assertFalse([l for l in srv.stderr_lines() if "killed by signal" in l],
                         srv.stderr_text())

        lines = srv.wait_access_lines(nreq + 1)
        self.assertEqual(len(lines), nreq + 1, lines[-1:])
        for i, line in enumerate(lines[:nreq]):
            f = parse_access_line(line)
            self.assertIsNotNone(f, "line %d incomplete or not escaped: %r..." % (i, line[:200]))
            raw = reqs[i].split(b"\r\n", 1)[0]
            self.assertEqual(unescape_log_field(f["request"]), raw[:FIELD_MAX])
            # Every '"' escaped, nothing else changed.
            self.assertEqual(f["request"], raw[:FIELD_MAX].decode().replace('"', '\\"'))
            self.assertEqual(f["referer"], "\\xff" * FIELD_MAX)
            worst = b'"' in raw
            self.assertEqual(f["agent"], "\\xff" * FIELD_MAX if worst else "-")
            self.assertEqual(f["status"], "404")
        self.assertIsNotNone(parse_access_line(lines[-1]))


class MultipartOverflowTest(harness.PorterTestCase):
    """Failure 9: a multipart Content-Length that does not fit an off_t."""

    SIZE = INT64_MAX - 300

    def sparse_root(self):
        # ext4 stops at 16 TiB; tmpfs takes files up to 2^63 - 1 bytes.
        for base in ("/dev/shm", tempfile.gettempdir()):
            if not os.path.isdir(base):
                continue
            d = tempfile.mkdtemp(prefix="porter-it-", dir=base)
            self.addCleanup(shutil.rmtree, d, True)
            os.chmod(d, 0o755)
            path = os.path.join(d, "huge.bin")
            try:
                with open(path, "wb") as f:
                    f.truncate(self.SIZE)
            except OSError:
                continue
            os.chmod(path, 0o644)
            return d
        self.skipTest("no filesystem here takes a sparse file of 2^63 - 301 bytes")

    def test_multipart_length_overflow_is_ignored(self):
        root = self.sparse_root()
        srv = self.start_server(root=root, workers=1)
        with Conn(srv.port) as c:
            # Parts 0-0 and 2-(size-1): headers + size - 1 bytes > 2^63 - 1.
            c.send(build_request("GET", "/huge.bin", headers=[("Range", "bytes=0-0,2-")]))
            r = c.read_response(head=True)
        # Not representable: the Range is ignored, the whole file is the answer.
        self.assertEqual(r.status, 200, r.head)
        self.assertEqual(r.header("Content-Length"), str(self.SIZE))
        self.assertIsNone(r.header("Content-Range"))

        # Ranges whose multipart total still fits are served as before.
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/huge.bin", headers=[("Range", "bytes=0-0,2-2")]))
            r = c.read_response()
        self.assertEqual(r.status, 206, r.head)
        self.assertTrue(r.header("Content-Type").startswith("multipart/byteranges"))
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        self.assertIn(b"Content-Range: bytes 0-0/%d" % self.SIZE, r.body)
        self.assertIn(b"Content-Range: bytes 2-2/%d" % self.SIZE, r.body)

        # A single range at the very end of the file.
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/huge.bin", headers=[("Range", "bytes=-5")]))
            r = c.read_response()
        self.assertEqual(r.status, 206, r.head)
        self.assertEqual(r.header("Content-Range"),
                         "bytes %d-%d/%d" % (self.SIZE - 5, self.SIZE - 1, self.SIZE))
        self.assertEqual(r.body, b"\0" * 5)
        self.assertFalse([l for l in srv.stderr_lines() if "killed by signal" in l],
                         srv.stderr_text())


class LogFloodTest(harness.PorterTestCase):
    """Weakness: a failing access log wrote one warning per flush."""

    NREQ = 600

    def test_access_log_on_dev_full_is_rate_limited(self):
        if not os.path.exists("/dev/full"):
            self.skipTest("no /dev/full")
        srv = self.start_server(workers=1, log={"access": "/dev/full"})
        # Lines of over 8 KiB: 64 KiB of log buffer fill every few requests.
        ua = "\xff" * FIELD_MAX
        req = build_request("GET", "/x", headers=[("User-Agent", ua)])
        t0 = time.monotonic()
        with Conn(srv.port) as c:
            for _ in range(self.NREQ // 50):
                c.send(req * 50)
                for _ in range(50):
                    self.assertEqual(c.read_response().status, 404)

        def records():
            return [r for r in srv.log_records() if "access log write" in r["msg"]]

        # Failures suppressed within a second are reported by the worker's
        # next tick, with their count.
        count_re = re.compile(r"(\d+) similar messages suppressed")
        wait_until(lambda: any(count_re.search(r["msg"]) for r in records()),
                   message="no suppressed count reported:\n" + srv.stderr_text())
        t1 = time.monotonic()
        recs = records()
        self.assertTrue(recs, srv.stderr_text())
        # At most one line a second (plus the first one).
        self.assertLessEqual(len(recs), int(t1 - t0) + 2,
                             "%d lines in %.1f s:\n%s" % (len(recs), t1 - t0, srv.stderr_text()))
        # Every failed flush is accounted for: each flush wrote at most
        # 64 KiB of lines over 8 KiB each.
        reported = len(recs) + sum(int(m.group(1)) for m in
                                   (count_re.search(r["msg"]) for r in recs) if m)
        min_flushes = (self.NREQ * 4 * FIELD_MAX) // 65536
        self.assertGreaterEqual(reported, min_flushes, srv.stderr_text())
        self.assertTrue(all(r["msg"].startswith("access log write") for r in recs), recs)
        # And it still serves.
        self.assertEqual(get(srv.port, "/y").status, 404)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
