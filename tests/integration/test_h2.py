#!/usr/bin/python3
"""Integration tests for HTTP/2 (h2.c) by prior knowledge on a plain
listener with ``http2 = true``: independent clients (curl
--http2-prior-knowledge, nghttp, h2load, Python's h2 state machine) and
raw frames for what well-behaved clients never send.

Covered: HTTP/2 and HTTP/1.1 on the same listener, off by default;
static files, HEAD, validators and 304, ranges, gzip and precompressed
siblings with Vary, sites by :authority, error pages, 405/501, OPTIONS,
listings; request bodies read and dropped under max_body_size; malformed
requests (RFC 9113 8.2-8.3) as stream errors on a connection that goes
on; the access log; large files under tight flow control and small
frames; a file that shrinks while sent resets only its stream.

Every wait is bounded by the event it waits for, never by a speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_h2.py [-k PATTERN]
"""

import gzip
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, DEFAULT_TIMEOUT, wait_until  # noqa: E402
import h2client  # noqa: E402
from h2client import H2Conn  # noqa: E402
import h2.settings  # noqa: E402

TEXT = b"".join(b"porter serves http/2 line %d\n" % i for i in range(2000))
BIG = bytes(random.Random(7).getrandbits(8) for _ in range(3 * 1024 * 1024 + 17))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class H2TestCase(harness.PorterTestCase):

    def make_root(self):
        root = os.path.join(self.make_tempdir(), "root")
        write(os.path.join(root, "index.html"), b"<p>hello over h2</p>\n")
        write(os.path.join(root, "text.txt"), TEXT)
        write(os.path.join(root, "big.bin"), BIG)
        write(os.path.join(root, "dir", "a.txt"), b"a\n")
        write(os.path.join(root, "app.js"), TEXT)
        write(os.path.join(root, "app.js.gz"), gzip.compress(TEXT, mtime=0))
        write(os.path.join(root, "errors", "404.html"), b"<h1>custom 404</h1>\n")
        for dirpath, dirs, files in os.walk(root):
            os.chmod(dirpath, 0o755)
        return root

    def serve(self, root=None, http2=True, **kw):
        root = root or self.make_root()
        listen = [{"address": "%s:0" % HOST, "http2": http2}]
        kw.setdefault("workers", 1)
        return self.start_server(root=root, listen=listen, **kw)


class PriorKnowledgeTest(H2TestCase):

    def curl(self, *args):
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge"] + list(args),
                           capture_output=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_curl_get_head_and_http1_beside(self):
        srv = self.serve()
        out = self.curl("-w", "\n%{http_version} %{response_code}", srv.url("/"))
        self.assertEqual(out, b"<p>hello over h2</p>\n\n2 200")
        out = self.curl("-I", srv.url("/text.txt"))
        self.assertIn(b"HTTP/2 200", out)
        self.assertIn(b"content-length: %d" % len(TEXT), out)
        # HTTP/1.1 on the same listener still works
        r = harness.get(srv.port, "/")
        self.assertEqual((r.status, r.body), (200, b"<p>hello over h2</p>\n"))

    def test_off_by_default(self):
        srv = self.serve(http2=None)
        with socket.create_connection((HOST, srv.port), timeout=DEFAULT_TIMEOUT) as s:
            s.sendall(h2client.PREFACE + h2client.settings_frame())
            data = s.recv(4096)
        self.assertTrue(data.startswith(b"HTTP/1.1 "), data)

    def test_nghttp_and_h2load(self):
        srv = self.serve()
        p = subprocess.run(["nghttp", "-n", "-s", srv.url("/big.bin")],
                           capture_output=True, timeout=DEFAULT_TIMEOUT, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run(["nghttp", srv.url("/big.bin")], capture_output=True,
                           timeout=DEFAULT_TIMEOUT)
        self.assertEqual(p.stdout, BIG)
        p = subprocess.run(["h2load", "-n", "400", "-c", "4", "-m", "10",
                            srv.url("/text.txt")], capture_output=True, text=True,
                           timeout=120)
        self.assertIn("400 succeeded, 0 failed, 0 errored", p.stdout, p.stdout)

    def test_access_log(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            r = c.get("/text.txt", headers=[("user-agent", "h2-test"),
                                            ("referer", "http://r.example/")])
            self.assertEqual(r.status, 200)
            port = c.local_port
        lines = srv.wait_access_lines(1)
        rec = harness.parse_access_line(lines[0])
        self.assertEqual(rec["request"], "GET /text.txt HTTP/2.0")
        self.assertEqual(rec["status"], "200")
        self.assertEqual(rec["bytes"], str(len(TEXT)))
        self.assertEqual(rec["agent"], "h2-test")
        self.assertEqual(rec["referer"], "http://r.example/")
        self.assertEqual(rec["host"], HOST)
        self.assertEqual(int(rec["port"]), port)


class SemanticsTest(H2TestCase):
    """What the HTTP/1.1 feature tests check, over HTTP/2."""

    def test_validators_and_304(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            r = c.get("/text.txt")
            self.assertEqual((r.status, r.body), (200, TEXT))
            etag, lm = r.header("etag"), r.header("last-modified")
            self.assertTrue(etag and lm)
            r = c.get("/text.txt", headers=[("if-none-match", etag)])
            self.assertEqual((r.status, r.body), (304, b""))
            self.assertEqual(r.header("etag"), etag)
            r = c.get("/text.txt", headers=[("if-modified-since", lm)])
            self.assertEqual(r.status, 304)
            r = c.get("/text.txt", headers=[("if-match", '"nope"')])
            self.assertEqual(r.status, 412)

    def test_ranges(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            r = c.get("/text.txt", headers=[("range", "bytes=10-19")])
            self.assertEqual((r.status, r.body), (206, TEXT[10:20]))
            self.assertEqual(r.header("content-range"), "bytes 10-19/%d" % len(TEXT))
            r = c.get("/big.bin", headers=[("range", "bytes=-100000")])
            self.assertEqual((r.status, r.body), (206, BIG[-100000:]))
            r = c.get("/text.txt", headers=[("range", "bytes=0-0,5-9")])
            self.assertEqual(r.status, 206)
            self.assertRegex(r.header("content-type"), "^multipart/byteranges")
            self.assertIn(TEXT[5:10], r.body)
            r = c.get("/text.txt", headers=[("range", "bytes=999999-")])
            self.assertEqual(r.status, 416)

    def test_gzip_and_precompressed(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            r = c.get("/text.txt", headers=[("accept-encoding", "gzip")])
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("vary"), "Accept-Encoding")
            if r.header("content-encoding") == "gzip":
                self.assertEqual(gzip.decompress(r.body), TEXT)
            else:   # compressed in the background: identity first
                self.assertEqual(r.body, TEXT)
            r = c.get("/app.js", headers=[("accept-encoding", "gzip")])
            self.assertEqual(r.header("content-encoding"), "gzip")
            self.assertEqual(r.header("vary"), "Accept-Encoding")
            self.assertEqual(gzip.decompress(r.body), TEXT)
            r = c.get("/app.js", method="HEAD", headers=[("accept-encoding", "gzip")])
            self.assertEqual((r.status, r.body), (200, b""))
            self.assertEqual(r.header("content-length"),
                             str(len(gzip.compress(TEXT, mtime=0))))

    def test_sites_by_authority(self):
        work = self.make_tempdir()
        roots = {}
        for name in ("a", "d"):
            roots[name] = os.path.join(work, name)
            write(os.path.join(roots[name], "who.txt"), name)
            os.chmod(roots[name], 0o755)
        sites = '( { names = [ "a.example" ]; root = "%s"; }, ' \
                '{ names = [ "*" ]; root = "%s"; } )' % (roots["a"], roots["d"])
        srv = self.serve(root=roots["d"], extra="sites = %s;" % sites)
        with H2Conn(srv.port) as c:
            self.assertEqual(c.get("/who.txt", authority="a.example").body, b"a")
            self.assertEqual(c.get("/who.txt", authority="A.EXAMPLE:8080").body, b"a")
            self.assertEqual(c.get("/who.txt", authority="other.example").body, b"d")

    def test_errors_methods_options_listing(self):
        srv = self.serve(error_pages={"e404": "/errors/404.html"}, listing=True)
        with H2Conn(srv.port) as c:
            r = c.get("/nope")
            self.assertEqual((r.status, r.body), (404, b"<h1>custom 404</h1>\n"))
            r = c.get("/nope", method="HEAD")
            self.assertEqual((r.status, r.body), (404, b""))
            self.assertEqual(r.header("content-length"), "20")
            r = c.get("/", method="DELETE")
            self.assertEqual(r.status, 405)
            self.assertEqual(r.header("allow"), "GET, HEAD, OPTIONS")
            self.assertEqual(c.get("/", method="BREW").status, 501)
            r = c.get("*", method="OPTIONS")
            self.assertEqual((r.status, r.header("allow")), (200, "GET, HEAD, OPTIONS"))
            r = c.get("/dir/")
            self.assertEqual(r.status, 200)
            self.assertIn(b'href="a.txt"', r.body)
            r = c.get("/dir")
            self.assertEqual((r.status, r.header("location")), (301, "/dir/"))

    def test_100_continue(self):
        """Expect: 100-continue gets an interim 100 before the body is
        sent, then the final answer (curl waits for it)."""
        srv = self.serve()
        with H2Conn(srv.port) as c:
            sid = c.request("/", method="POST", end=False,
                            headers=[("expect", "100-continue"),
                                     ("content-length", "5")])
            got = []
            while not got:
                c.pump()
                got = [e for e in c.informational if e[0] == sid]
            self.assertEqual(got[0][1], 100)
            c.send_body(sid, b"hello")
            self.assertEqual(c.response(sid).status, 405)

    def test_request_bodies_dropped_under_the_limit(self):
        srv = self.serve(limits={"max_body_size": 100000})
        with H2Conn(srv.port) as c:
            r = c.get("/", method="POST", body=b"x" * 50000)
            self.assertEqual(r.status, 405)
            # announced too big: 413 at once
            r = c.get("/", method="POST", body=b"x" * 10, end=False,
                      headers=[("content-length", "200000")])
            self.assertEqual(r.status, 413)
            # too big without a length: 413 while it comes in, then the
            # stream is reset (NO_ERROR: RFC 9113 8.1)
            sid = c.request("/", method="POST", body=b"y" * 300000)
            r = c.response(sid)
            self.assertEqual(r.status, 413)
            # the connection goes on
            self.assertEqual(c.get("/index.html").status, 200)


class MalformedTest(H2TestCase):
    """RFC 9113 8.1.1: a malformed request is a stream error
    (PROTOCOL_ERROR); the connection and its other streams go on."""

    BASE = [(":method", "GET"), (":scheme", "http"), (":authority", HOST), (":path", "/")]

    CASES = [
        ("upper-case name", BASE + [("X-Upper", "1")]),
        ("connection", BASE + [("connection", "keep-alive")]),
        ("keep-alive", BASE + [("keep-alive", "5")]),
        ("transfer-encoding", BASE + [("transfer-encoding", "chunked")]),
        ("upgrade", BASE + [("upgrade", "h2c")]),
        ("te gzip", BASE + [("te", "gzip")]),
        ("no :path", BASE[:3]),
        ("no :scheme", [BASE[0], BASE[2], BASE[3]]),
        ("no :method", BASE[1:]),
        ("empty :path", BASE[:3] + [(":path", "")]),
        ("relative :path", BASE[:3] + [(":path", "index.html")]),
        ("pseudo after regular", BASE[:3] + [("accept", "*/*"), (":path", "/")]),
        ("twice :path", BASE + [(":path", "/x")]),
        ("unknown pseudo", BASE + [(":bogus", "1")]),
        ("response pseudo", BASE + [(":status", "200")]),
        ("value with LF", BASE + [("x-a", "a\nb")]),
        ("value with leading space", BASE + [("x-a", " a")]),
        ("host differs", BASE + [("host", "other.example")]),
        ("bad content-length", BASE + [("content-length", "1x")]),
        ("content-length without the body", BASE + [("content-length", "5")]),
        ("no :authority nor host", BASE[:2] + BASE[3:]),
        ("two host", BASE[:2] + BASE[3:] + [("host", HOST), ("host", HOST)]),
        ("userinfo in :authority", BASE[:2] + [(":authority", "u@" + HOST)] + BASE[3:]),
        ("bad :scheme", [BASE[0], (":scheme", "1http")] + BASE[2:]),
        # porter's checks, not nghttp2's, since nghttp2's HTTP messaging
        # is off: a name that is not a token is malformed (RFC 9113
        # 8.2.1), where nghttp2 dropped the field and served the request
        ("space in a name", BASE + [("x y", "1")]),
        ("( in a name", BASE + [("x(y", "1")]),
    ]

    def test_each_is_a_stream_error(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            for why, hdrs in self.CASES:
                r = c.response(c.request(None, raw_headers=hdrs))
                self.assertEqual(r.reset, h2client.PROTOCOL_ERROR, why)
                self.assertIsNone(r.status, why)
            self.assertEqual(c.get("/").status, 200)
            self.assertIsNone(c.goaway)

    def test_body_and_content_length_disagree(self):
        """RFC 9113 8.1.1: DATA that add up to more or less than the
        Content-Length make the request malformed."""
        srv = self.serve()
        with H2Conn(srv.port) as c:
            for clen, body in (("3", b"hello"), ("10", b"hello")):
                r = c.get("/", method="POST", body=body,
                          headers=[("content-length", clen)])
                self.assertEqual(r.reset, h2client.PROTOCOL_ERROR, clen)
                self.assertIsNone(r.status, clen)
            r = c.get("/", method="POST", body=b"hello",
                      headers=[("content-length", "5")])
            self.assertEqual(r.status, 405)
            self.assertIsNone(c.goaway)

    def test_trailers(self):
        """Trailers end the request (read and dropped); a pseudo-header
        field in them, or trailers that do not end the stream, make it
        malformed (RFC 9113 8.1)."""
        srv = self.serve()
        with H2Conn(srv.port) as c:
            sid = c.request("/", method="POST", body=b"abc", end=False)
            c.conn.send_headers(sid, [("x-sum", "1")], end_stream=True)
            c.flush()
            self.assertEqual(c.response(sid).status, 405)
            sid = c.request("/", method="POST", body=b"abc", end=False)
            c.conn.send_headers(sid, [(":path", "/")], end_stream=True)
            c.flush()
            r = c.response(sid)
            self.assertEqual((r.reset, r.status), (h2client.PROTOCOL_ERROR, None))
            # by hand: python-h2 will not send trailers without END_STREAM;
            # never indexed, so both HPACK tables stay in step
            sid = c.request("/", method="POST", body=b"abc", end=False)
            c.sock.sendall(h2client.frame(h2client.HEADERS, h2client.END_HEADERS, sid,
                                          h2client.header_block([("x-sum", "1", True)])))
            r = c.response(sid)
            self.assertEqual((r.reset, r.status), (h2client.PROTOCOL_ERROR, None))
            self.assertEqual(c.get("/").status, 200)
            self.assertIsNone(c.goaway)

    def test_te_trailers_is_fine(self):
        srv = self.serve()
        with H2Conn(srv.port) as c:
            self.assertEqual(c.get("/", headers=[("te", "trailers")]).status, 200)

    def test_header_list_too_large_is_431(self):
        srv = self.serve(limits={"max_header_size": 2048})
        with H2Conn(srv.port) as c:
            r = c.get("/", headers=[("x-big", "v" * 3000)])
            self.assertEqual(r.status, 431)
            self.assertEqual(c.get("/").status, 200)


class DataTest(H2TestCase):

    def test_big_file_tight_windows(self):
        """A small stream window and the peer's frame size obeyed: the
        file comes whole, in frames no bigger than asked."""
        srv = self.serve()
        with H2Conn(srv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}) as c:
            r = c.get("/big.bin")
            self.assertEqual(r.status, 200)
            self.assertEqual(len(r.body), len(BIG))
            self.assertEqual(r.body, BIG)
            # several streams at once, interleaved
            sids = [c.request("/big.bin") for _ in range(3)] + [c.request("/text.txt")]
            bodies = [c.response(s).body for s in sids]
            self.assertEqual(bodies, [BIG, BIG, BIG, TEXT])

    def test_file_that_shrinks_resets_the_stream(self):
        root = self.make_root()
        srv = self.serve(root)
        path = os.path.join(root, "big.bin")
        with H2Conn(srv.port, auto_ack=False) as c:
            sid = c.request("/big.bin")
            r = c.streams[sid]
            # the default window (65535) is all the server may send
            wait_until(lambda: c.pump() and len(r.body) >= 65535,
                       message="the first window of the file")
            with open(path, "r+b") as f:
                f.truncate(100000)
            c.auto_ack = True
            c.conn.acknowledge_received_data(len(r.body), sid)
            c.flush()
            c.response(sid)
            self.assertEqual(r.reset, h2client.INTERNAL_ERROR)
            self.assertFalse(r.ended)
            write(path, BIG)
            self.assertEqual(c.get("/index.html").status, 200)
            self.assertIsNone(c.goaway)
        srv.wait_for_stderr("file shrank while sending")


class VisibleTest(H2TestCase):
    """Requests by protocol in /metrics; HTTP/2 connections and streams
    in porter -s status."""

    STATUS_RE = re.compile(r"listening on (\d+\.\d+\.\d+\.\d+):(\d+) \(status\)")

    def test_metrics_and_status(self):
        srv = self.serve(start=False, status={"listen": ["%s:0" % HOST]})
        srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
        srv.start()
        sport = int(srv.wait_for_stderr(self.STATUS_RE.pattern).group(2))
        with H2Conn(srv.port) as c:
            for _ in range(3):
                self.assertEqual(c.get("/index.html").status, 200)
        for _ in range(2):
            self.assertEqual(harness.get(srv.port, "/index.html").status, 200)
        # one HTTP/2 connection held open with a stream that cannot send
        held = H2Conn(srv.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        self.addCleanup(held.close)
        sid = held.request("/big.bin")
        wait_until(lambda: held.pump() and held.streams[sid].status == 200)

        def status():
            r = harness.run_porter("-s", "status", "-c", srv.conf_path)
            self.assertEqual(r.returncode, 0, r.stderr)
            return dict(l.split(": ", 1) for l in r.stdout.splitlines() if ": " in l)
        wait_until(lambda: status().get("http2_streams_open") == "1",
                   message="status shows the open stream")
        st = status()
        self.assertEqual(st["http2_connections_open"], "1")
        self.assertEqual(st["requests_http2"], "3")
        self.assertEqual(st["http2_connections"], "2")

        def scrape():
            with socket.create_connection((HOST, sport), timeout=DEFAULT_TIMEOUT) as s:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            return data.decode()
        text = scrape()
        self.assertIn('porter_http_requests_by_protocol_total{protocol="h2"} 3\n', text)
        self.assertIn('porter_http_requests_by_protocol_total{protocol="http/1.1"} 2\n', text)
        self.assertIn("porter_http2_connections 1\n", text)
        self.assertIn("porter_http2_streams 1\n", text)
        self.assertIn("porter_http2_connections_total 2\n", text)


if __name__ == "__main__":
    harness.require_binary()
    if shutil.which("curl") is None:
        print("curl missing", file=sys.stderr)
    unittest.main()
