#!/usr/bin/python3
"""Integration tests for HTTP/2 over TLS (ALPN h2): the data path where
file bytes are read in behind their frame headers and several frames
leave in one write (h2.c, xprt_tls.c), as opposed to test_h2.py's plain
connections, where they leave by sendfile.

Covered: a large file whole and in order under small and large windows
and peer frame sizes, several streams interleaved, a client that reads
slowly through a small receive buffer (the transport holds what the
socket cannot take); a file that shrinks while sent resets only its
stream; HEAD, ranges and multipart ranges; a graceful stop in the middle
of a download lets it finish; HTTP/1.1 on the same listener.

Every wait is bounded by the event it waits for, never by a speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_h2_tls.py [-k PATTERN]
"""

import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, DEFAULT_TIMEOUT, wait_until  # noqa: E402
import h2client  # noqa: E402
from h2client import H2Conn  # noqa: E402
import h2.settings  # noqa: E402

WINDOW = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE
FRAME = h2.settings.SettingCodes.MAX_FRAME_SIZE

TEXT = b"".join(b"porter serves http/2 over TLS, line %d\n" % i for i in range(3000))
BIG = random.Random(11).randbytes(1024 * 1024 + 17)
NAME = "example.org"    # the test CA's ECDSA leaf
CA = None


def setUpModule():
    global CA
    CA = tempfile.mkdtemp(prefix="porter-h2tls-ca-")
    subprocess.run(["sh", os.path.join(harness.srcdir(), "tests", "unit", "fixtures",
                                       "tls-mkca.sh"), CA],
                   check=True, capture_output=True)


def tearDownModule():
    if CA:
        shutil.rmtree(CA, True)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tls_socket(port, alpn, rcvbuf=None):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        # before connect, so the window the client offers stays small
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(DEFAULT_TIMEOUT)
    raw.connect((HOST, port))
    ctx = ssl.create_default_context(cafile=os.path.join(CA, "root.pem"))
    ctx.set_alpn_protocols(alpn)
    s = ctx.wrap_socket(raw, server_hostname=NAME)
    return s


class H2TLSTest(harness.PorterTestCase):

    def make_root(self):
        root = os.path.join(self.make_tempdir(), "root")
        write(os.path.join(root, "index.html"), b"<p>hello over h2 and TLS</p>\n")
        write(os.path.join(root, "text.txt"), TEXT)
        write(os.path.join(root, "big.bin"), BIG)
        for dirpath, _, _ in os.walk(root):
            os.chmod(dirpath, 0o755)
        return root

    def serve(self, root=None, **kw):
        kw.setdefault("workers", 1)
        return self.start_server(
            root=root or self.make_root(),
            listen=[{"address": "%s:0" % HOST, "tls": True}],
            tls={"certificate": os.path.join(CA, "ec-full.pem"),
                 "key": os.path.join(CA, "ec.key")}, **kw)

    def h2(self, srv, settings=None, rcvbuf=None, auto_ack=True):
        s = tls_socket(srv.port, ["h2"], rcvbuf)
        self.assertEqual(s.selected_alpn_protocol(), "h2")
        c = H2Conn(None, sock=s, settings=settings, auto_ack=auto_ack)
        self.addCleanup(c.close)
        return c

    def get(self, c, path, **kw):
        return c.get(path, authority=NAME, **kw)

    def test_big_file_under_windows_and_frame_sizes(self):
        """Whole and in order whatever the peer allows: python-h2 refuses
        a frame larger than its SETTINGS_MAX_FRAME_SIZE or beyond a
        window, so a framing mistake fails here too."""
        srv = self.serve()
        for settings, rcvbuf in (
                (None, None),
                ({WINDOW: 1000}, None),                 # tiny stream window
                ({WINDOW: 100000, FRAME: 20000}, None),
                ({WINDOW: (1 << 31) - 1, FRAME: (1 << 24) - 1}, None),
                ({WINDOW: 1 << 20}, 4096)):             # a slow reader
            with self.subTest(settings=settings, rcvbuf=rcvbuf):
                c = self.h2(srv, settings, rcvbuf)
                r = self.get(c, "/big.bin")
                self.assertEqual(r.status, 200)
                self.assertEqual(r.header("content-length"), str(len(BIG)))
                self.assertEqual(len(r.body), len(BIG))
                self.assertTrue(r.body == BIG, "the body differs")
                # several streams at once, interleaved
                sids = [c.request("/big.bin", authority=NAME) for _ in range(2)]
                sids += [c.request("/text.txt", authority=NAME),
                         c.request("/index.html", authority=NAME)]
                bodies = [c.response(s).body for s in sids]
                self.assertTrue(bodies == [BIG, BIG, TEXT,
                                           b"<p>hello over h2 and TLS</p>\n"])
                self.assertIsNone(c.goaway)

    def test_head_ranges_multipart(self):
        srv = self.serve()
        c = self.h2(srv)
        r = self.get(c, "/big.bin", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))
        self.assertEqual(r.header("content-length"), str(len(BIG)))
        r = self.get(c, "/big.bin", headers=[("range", "bytes=-100000")])
        self.assertEqual((r.status, r.body), (206, BIG[-100000:]))
        r = self.get(c, "/big.bin", headers=[("range", "bytes=5-70000")])
        self.assertEqual((r.status, r.body), (206, BIG[5:70001]))
        r = self.get(c, "/big.bin", headers=[("range", "bytes=0-9,40000-200000")])
        self.assertEqual(r.status, 206)
        self.assertRegex(r.header("content-type"), "^multipart/byteranges")
        self.assertIn(BIG[0:10], r.body)
        self.assertIn(BIG[40000:200001], r.body)
        self.assertEqual(r.header("content-length"), str(len(r.body)))

    def test_file_that_shrinks_resets_only_its_stream(self):
        root = self.make_root()
        srv = self.serve(root)
        path = os.path.join(root, "big.bin")
        c = self.h2(srv, auto_ack=False)
        sid = c.request("/big.bin", authority=NAME)
        r = c.streams[sid]
        # the default window (65535) is all the server may send
        wait_until(lambda: c.pump() and len(r.body) >= 65535,
                   message="the first window of the file")
        with open(path, "r+b") as f:
            f.truncate(100000)
        other = c.request("/text.txt", authority=NAME)
        c.auto_ack = True
        c.conn.acknowledge_received_data(len(r.body), sid)
        c.flush()
        c.response(sid)
        self.assertEqual(r.reset, h2client.INTERNAL_ERROR)
        self.assertFalse(r.ended)
        self.assertTrue(BIG.startswith(r.body), "what came is the file's")
        self.assertEqual(c.response(other).body, TEXT)
        self.assertEqual(self.get(c, "/index.html").status, 200)
        self.assertIsNone(c.goaway)
        srv.wait_for_stderr("file shrank while sending")

    def test_graceful_stop_lets_a_download_finish(self):
        srv = self.serve()
        c = self.h2(srv, auto_ack=False)
        sid = c.request("/big.bin", authority=NAME)
        r = c.streams[sid]
        wait_until(lambda: c.pump() and len(r.body) >= 65535,
                   message="the first window of the file")
        srv.send_signal(signal.SIGTERM)
        wait_until(lambda: c.pump() and c.goaway is not None, message="GOAWAY")
        self.assertEqual(c.goaway, (h2client.NO_ERROR, sid))
        c.auto_ack = True
        c.conn.acknowledge_received_data(len(r.body), sid)
        c.flush()
        c.response(sid)
        self.assertTrue(r.ended)
        self.assertTrue(r.body == BIG, "the body differs")
        self.assertEqual(srv.wait_exit(), 0)

    def test_http11_on_the_same_listener_slow_reader(self):
        srv = self.serve()
        s = tls_socket(srv.port, ["http/1.1"], rcvbuf=4096)
        self.addCleanup(s.close)
        self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % NAME.encode())
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        self.assertEqual(len(body), len(BIG))
        self.assertTrue(body == BIG, "the body differs")


if __name__ == "__main__":
    harness.require_binary()
    unittest.main()
