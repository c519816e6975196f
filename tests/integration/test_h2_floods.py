#!/usr/bin/python3
"""HTTP/2 protections (h2.c), each against its attack, at frame level:
rapid reset (CVE-2023-44487), CONTINUATION flood, HPACK bomb, SETTINGS,
PING and empty-DATA floods, a client that closes its window and never
reads. The answer must be a GOAWAY with the right error code, the
connection closed, one log line, and the server still serving.

Every wait is bounded by the event it waits for (the server closing the
connection), never by a speed.

    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_h2_floods.py
"""

import os
import struct
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST  # noqa: E402
import h2client as hc  # noqa: E402

BIG = os.urandom(2 * 1024 * 1024)


class FloodTest(harness.PorterTestCase):

    def serve(self, **kw):
        root = os.path.join(self.make_tempdir(), "root")
        os.mkdir(root)
        os.chmod(root, 0o755)
        with open(os.path.join(root, "index.html"), "wb") as f:
            f.write(b"ok\n")
        with open(os.path.join(root, "big.bin"), "wb") as f:
            f.write(BIG)
        kw.setdefault("workers", 1)
        return self.start_server(root=root, listen=[{"address": "%s:0" % HOST,
                                                     "http2": True}], **kw)

    def attack(self, srv, payload, code, log, settings=()):
        c = hc.RawConn(srv.port, settings)
        c.send(payload)
        frames = c.frames_until_close()
        c.close()
        self.assertEqual(hc.goaway_code(frames), code,
                         [(t, f, s) for t, f, s, _ in frames][-5:])
        srv.wait_for_stderr(log)
        # logged once for the connection
        n = sum(1 for l in srv.stderr_lines() if "HTTP/2 client" in l)
        self.assertEqual(n, 1, srv.stderr_text())
        # and the server serves on
        with hc.H2Conn(srv.port) as h:
            self.assertEqual(h.get("/index.html").status, 200)
        return frames

    def test_rapid_reset(self):
        srv = self.serve()
        out = []
        for i in range(3000):
            sid = 2 * i + 1
            out.append(hc.frame(hc.HEADERS, hc.END_HEADERS | hc.END_STREAM, sid,
                                hc.request_block("/big.bin")))
            out.append(hc.frame(hc.RST_STREAM, 0, sid, struct.pack(">I", 8)))
        self.attack(srv, b"".join(out), hc.ENHANCE_YOUR_CALM, "rapid reset")

    def test_continuation_flood(self):
        srv = self.serve()
        block = hc.request_block("/")
        out = [hc.frame(hc.HEADERS, 0, 1, block)]
        out += [hc.frame(hc.CONTINUATION, 0, 1, b"")] * 10000
        self.attack(srv, b"".join(out), hc.ENHANCE_YOUR_CALM, "CONTINUATION flood")

    def test_continuation_of_many_fields(self):
        """Fields arriving in CONTINUATION frames without end: the decoded
        size ends it even before the frame count."""
        srv = self.serve(limits={"max_header_size": 2048})
        enc = __import__("hpack").Encoder()
        out = [hc.frame(hc.HEADERS, 0, 1, enc.encode(
            [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", HOST)]))]
        for i in range(100):
            out.append(hc.frame(hc.CONTINUATION, 0, 1,
                                enc.encode([("x-f%d" % i, "v" * 1000)])))
        self.attack(srv, b"".join(out), hc.ENHANCE_YOUR_CALM, "GOAWAY")

    def test_hpack_bomb(self):
        srv = self.serve()
        # One 4000-byte field enters the dynamic table; each further
        # reference to it is one byte on the wire.
        enc = __import__("hpack").Encoder()
        fields = [(":method", "GET"), (":scheme", "http"), (":authority", HOST),
                  (":path", "/")] + [("x-bomb", "b" * 4000)] * 2000
        block = enc.encode(fields)
        self.assertLess(len(block), 16384)
        self.attack(srv, hc.frame(hc.HEADERS, hc.END_HEADERS | hc.END_STREAM, 1, block),
                    hc.ENHANCE_YOUR_CALM, "HPACK bomb")

    def test_settings_flood(self):
        srv = self.serve()
        # porter's frame budget or nghttp2's cap on queued acknowledgements,
        # whichever comes first
        self.attack(srv, hc.settings_frame() * 5000, hc.ENHANCE_YOUR_CALM,
                    "SETTINGS flood|acknowledgements")

    def test_ping_flood(self):
        srv = self.serve()
        self.attack(srv, hc.frame(hc.PING, 0, 0, b"12345678") * 5000,
                    hc.ENHANCE_YOUR_CALM, "PING flood|acknowledgements")

    def test_empty_data_flood(self):
        srv = self.serve()
        out = hc.frame(hc.HEADERS, hc.END_HEADERS, 1, hc.header_block(
            [(":method", "POST"), (":scheme", "http"), (":authority", HOST), (":path", "/")]))
        out += hc.frame(hc.DATA, 0, 1, b"") * 5000
        self.attack(srv, out, hc.ENHANCE_YOUR_CALM, "empty DATA frame flood")

    def test_zero_window_never_read(self):
        """SETTINGS_INITIAL_WINDOW_SIZE 0 and no WINDOW_UPDATE, ever: the
        stream makes no progress, send_timeout ends the connection."""
        srv = self.serve(limits={"send_timeout": 1})
        frames = self.attack(srv, hc.frame(hc.HEADERS, hc.END_HEADERS | hc.END_STREAM, 1,
                                           hc.request_block("/big.bin")),
                             hc.ENHANCE_YOUR_CALM, "no progress",
                             settings=[(4, 0)])
        # nothing of the body was sent: it waits in the file, not in memory
        self.assertFalse([f for f in frames if f[0] == hc.DATA and f[3]])
        self.assertTrue([f for f in frames if f[0] == hc.HEADERS and f[2] == 1])

    def test_idle_timeout_says_goodbye(self):
        srv = self.serve(http2={"idle_timeout": 1})
        c = hc.RawConn(srv.port)
        frames = c.frames_until_close()
        c.close()
        self.assertEqual(hc.goaway_code(frames), hc.NO_ERROR)
        self.assertFalse([l for l in srv.stderr_lines() if "HTTP/2 client" in l])


if __name__ == "__main__":
    harness.require_binary()
    unittest.main()
