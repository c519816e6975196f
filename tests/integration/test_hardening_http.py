#!/usr/bin/python3
"""Integration tests for hardening porter's HTTP answers (issue 10):

- every Location porter writes stays on this host (no "//host", no
  backslash), built from the cleaned path and escaped again;
- .svgz goes out as image/svg+xml with Content-Encoding: gzip, and files
  that are compressed already are never coded a second time;
- no response to HEAD carries content, whichever path built it: checked
  byte by byte with a GET pipelined behind each HEAD;
- a method porter does not know is 501, one it knows but does not allow
  is 405 with Allow.

Raw sockets where exact bytes matter, curl where a real client's reading
of the answer is the point. Every server runs one worker.

Run by ``make check`` with PORTER_BIN and PORTER_SRCDIR set, or by hand:
/usr/bin/python3 tests/integration/test_hardening_http.py [-k PATTERN]
"""

import gzip
import os
import shutil
import subprocess
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Conn, build_request  # noqa: E402

write = harness.write_file

# 2020-01-02 03:04:05 UTC: a time safely in the past.
T_OLD = 1577934245

A = b"alpha file\n"
SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">\n'
       + b'<rect width="10" height="10" fill="#c00"/>\n' * 200 + b"</svg>\n")
# mtime=0 and no file name: the same bytes on every run.
SVGZ = gzip.compress(SVG, mtime=0)


def raw(port, path, headers=None, method="GET"):
    """One request on a fresh connection."""
    r, c = harness.fetch(port, build_request(method, path, headers=headers),
                         head=(method == "HEAD"))
    c.close()
    return r


def raw_bytes(port, data, head=False):
    r, c = harness.fetch(port, data, head=head)
    c.close()
    return r


class HardeningTestCase(harness.PorterTestCase):

    def make_root(self):
        root = os.path.join(self.make_tempdir(), "root")
        os.mkdir(root)
        os.chmod(root, 0o755)
        write(os.path.join(root, "a.txt"), A, T_OLD)
        write(os.path.join(root, "index.html"), b"<p>top</p>\n", T_OLD)
        return root

    def serve(self, root=None, **kw):
        if root is None:
            root = self.make_root()
        kw.setdefault("workers", 1)
        srv = self.start_server(root=root, **kw)
        self.root = root
        return srv


# ---------------------------------------------------------------------------
# Failure 2: Location never names another host
# ---------------------------------------------------------------------------

class RedirectTest(HardeningTestCase):

    # directory on disk -> its URL, percent-encoded
    DIRS = {
        "dir": "/dir/",
        "my dir%x": "/my%20dir%25x/",
        "\\example.org/dir": "/%5Cexample.org/dir/",
        "a:b": "/a%3Ab/",
    }

    def make_root(self):
        root = super().make_root()
        for d in self.DIRS:
            write(os.path.join(root, d, "index.html"), ("<p>%s</p>\n" % d).encode(), T_OLD)
        return root

    def assert_local(self, srv, loc):
        """What any client makes of loc: a path on this very server."""
        self.assertTrue(loc.startswith("/"), "Location %r is not an absolute path" % loc)
        self.assertFalse(loc.startswith("//"), "Location %r names a host" % loc)
        self.assertNotIn("\\", loc, "Location %r has a backslash" % loc)
        for c in loc:
            self.assertTrue(0x21 <= ord(c) < 0x7f, "Location %r has a raw %r" % (loc, c))
        base = "http://127.0.0.1:%d/some/page" % srv.port
        # Browsers read '\' as '/' in http URLs: none is left to read.
        for ref in (loc, loc.replace("\\", "/")):
            u = urllib.parse.urlsplit(urllib.parse.urljoin(base, ref))
            self.assertEqual((u.scheme, u.netloc), ("http", "127.0.0.1:%d" % srv.port),
                             "Location %r leaves the server" % loc)

    def test_location_from_clean_path(self):
        srv = self.serve()
        cases = [
            ("//example.org/%2e%2e/dir", "/dir/"),
            ("//example.org/../dir", "/dir/"),
            ("//dir", "/dir/"),
            ("///dir", "/dir/"),
            ("/./dir", "/dir/"),
            ("/dir/../dir", "/dir/"),
            ("/%64ir", "/dir/"),
            ("/dir?a=1&b=%2F", "/dir/?a=1&b=%2F"),
            ("/dir?", "/dir/?"),
            ("//dir?next=//evil.example/x", "/dir/?next=//evil.example/x"),
            ("/dir?a\\b", "/dir/?a%5Cb"),
            ("/dir?100%", "/dir/?100%25"),
            ("/my%20dir%25x", "/my%20dir%25x/"),
            ("/my%20dir%25x?q", "/my%20dir%25x/?q"),
            ("/\\example.org/dir", "/%5Cexample.org/dir/"),
            ("/%5cexample.org/dir", "/%5Cexample.org/dir/"),
            ("/%5Cexample.org/dir", "/%5Cexample.org/dir/"),
            ("/a:b", "/a%3Ab/"),
            ("/a%3ab", "/a%3Ab/"),
        ]
        for target, want in cases:
            with self.subTest(target=target):
                r = raw(srv.port, target)
                self.assertEqual(r.status, 301, "%s: %r" % (target, r.head))
                loc = r.header("Location")
                self.assertEqual(loc, want)
                self.assert_local(srv, loc)
                # and it leads where it says
                path = urllib.parse.urlsplit(loc).path
                r2 = raw(srv.port, loc)
                self.assertEqual(r2.status, 200, "%s -> %s: %r" % (target, loc, r2.head))
                d = urllib.parse.unquote(path).strip("/")
                self.assertEqual(r2.body, ("<p>%s</p>\n" % d).encode())

    def test_absolute_form(self):
        srv = self.serve()
        host = "127.0.0.1:%d" % srv.port
        for path in ("//example.org/%2e%2e/dir", "//dir"):
            with self.subTest(path=path):
                r = raw_bytes(srv.port, ("GET http://%s%s HTTP/1.1\r\nHost: %s\r\n\r\n"
                                         % (host, path, host)).encode())
                self.assertEqual(r.status, 301)
                self.assertEqual(r.header("Location"), "/dir/")

    def test_no_redirect_for_refused_paths(self):
        srv = self.serve()
        for target, status in (("/%5cexample.org/..", 200), ("/%2f%2fevil/dir", 400),
                               ("/%2F%2Fexample.org/dir", 400), ("/..//dir", 400),
                               ("//evil.example/nothing", 404)):
            with self.subTest(target=target):
                r = raw(srv.port, target)
                self.assertEqual(r.status, status, r.head)
                self.assertIsNone(r.header("Location"))
        # "/\example.org/.." is the root itself
        r = raw(srv.port, "/%5cexample.org/..")
        self.assertEqual(r.body, b"<p>top</p>\n")

    def test_curl_follows_to_this_server(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        srv = self.serve()
        for target, body in (("//example.org/%2e%2e/dir", b"<p>dir</p>\n"),
                             ("/my%20dir%25x", b"<p>my dir%x</p>\n"),
                             ("/%5cexample.org/dir", b"<p>\\example.org/dir</p>\n")):
            with self.subTest(target=target):
                p = subprocess.run(
                    ["curl", "-sS", "--path-as-is", "--max-redirs", "3", "-L",
                     "-w", "\n%{url_effective}", "http://127.0.0.1:%d%s" % (srv.port, target)],
                    capture_output=True, timeout=harness.DEFAULT_TIMEOUT)
                self.assertEqual(p.returncode, 0, p.stderr)
                out, url = p.stdout.rsplit(b"\n", 1)
                self.assertEqual(out, body)
                self.assertTrue(url.startswith(b"http://127.0.0.1:%d/" % srv.port), url)


# ---------------------------------------------------------------------------
# Failure 3: .svgz and files compressed already
# ---------------------------------------------------------------------------

class CodedFileTest(HardeningTestCase):

    PACKED = {
        # name: Content-Type from Debian's mime.types (media-types)
        "b.gz": "application/gzip",
        "c.tgz": "application/x-gtar-compressed",
        "d.tar.gz": "application/gzip",
        "e.zst": "application/zstd",
        "f.br": None,   # not in Debian's table: only the coding matters
    }

    def make_root(self):
        root = super().make_root()
        write(os.path.join(root, "logo.svgz"), SVGZ, T_OLD)
        write(os.path.join(root, "logo.svg"), SVG, T_OLD)
        # A sibling that must never stand in for the .svgz.
        write(os.path.join(root, "logo.svgz.gz"), gzip.compress(SVGZ, mtime=0), T_OLD + 10)
        for n in self.PACKED:
            write(os.path.join(root, n), gzip.compress(SVG, mtime=0), T_OLD)
            write(os.path.join(root, n + ".gz"), b"not this", T_OLD + 10)
        return root

    AES = (None, "gzip", "gzip, br, zstd", "identity", "br", "*", "gzip;q=0", "identity;q=0")

    def check_svgz(self, srv):
        for ae in self.AES:
            for method in ("GET", "HEAD"):
                with self.subTest(ae=ae, method=method):
                    r = raw(srv.port, "/logo.svgz", [("Accept-Encoding", ae)] if ae else None,
                            method=method)
                    self.assertEqual(r.status, 200)
                    self.assertEqual(r.header("Content-Type"), "image/svg+xml")
                    self.assertEqual(r.header_all("Content-Encoding"), ["gzip"])
                    self.assertEqual(r.header("Content-Length"), str(len(SVGZ)))
                    # Same answer for every Accept-Encoding: nothing to vary on.
                    self.assertEqual(r.header_all("Vary"), [])
                    if method == "GET":
                        self.assertEqual(r.body, SVGZ, "coded twice or not the file")
                        self.assertEqual(gzip.decompress(r.body), SVG)

    def test_svgz_default_compression(self):
        # The default types list image/svg+xml: the .svgz must still not
        # be gzipped again on the fly, nor replaced by a .svgz.gz.
        srv = self.serve()
        self.check_svgz(srv)

    def test_svgz_compression_off(self):
        srv = self.serve(compression={"enabled": False})
        self.check_svgz(srv)

    def test_svgz_every_type_compressible(self):
        srv = self.serve(compression={"types": ["*/*"], "min_size": 0})
        self.check_svgz(srv)

    def test_svgz_range_and_304(self):
        srv = self.serve()
        r = raw(srv.port, "/logo.svgz", [("Range", "bytes=0-9"), ("Accept-Encoding", "gzip")])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, SVGZ[:10])
        etag = r.header("ETag")
        r = raw(srv.port, "/logo.svgz", [("If-None-Match", etag)])
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("ETag"), etag)

    def test_svgz_with_curl(self):
        if shutil.which("curl") is None:
            self.skipTest("curl is not installed")
        srv = self.serve()
        p = subprocess.run(["curl", "-sS", "--compressed",
                            "http://127.0.0.1:%d/logo.svgz" % srv.port],
                           capture_output=True, timeout=harness.DEFAULT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, SVG)

    def test_plain_svg_still_negotiated(self):
        srv = self.serve()
        r = raw(srv.port, "/logo.svg", [("Accept-Encoding", "gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(gzip.decompress(r.body), SVG)
        r = raw(srv.port, "/logo.svg")
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, SVG)

    def test_packed_files_served_as_themselves(self):
        # Even when every type is "worth compressing".
        for comp in ({}, {"types": ["*/*"], "min_size": 0}):
            srv = self.serve(compression=comp) if comp else self.serve()
            for name, ctype in self.PACKED.items():
                for ae in self.AES:
                    with self.subTest(comp=comp, name=name, ae=ae):
                        r = raw(srv.port, "/" + name,
                                [("Accept-Encoding", ae)] if ae else None)
                        self.assertEqual(r.status, 200)
                        self.assertEqual(r.header_all("Content-Encoding"), [])
                        self.assertEqual(r.header_all("Vary"), [])
                        if ctype is not None:
                            self.assertEqual(r.header("Content-Type"), ctype)
                        self.assertEqual(r.body, gzip.compress(SVG, mtime=0))

    def test_svgz_error_page(self):
        root = self.make_root()
        write(os.path.join(root, "errors", "404.svgz"), SVGZ, T_OLD)
        srv = self.serve(root, error_pages={"e404": "/errors/404.svgz"})
        r = raw(srv.port, "/nope")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.header("Content-Type"), "image/svg+xml")
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.body, SVGZ)


# ---------------------------------------------------------------------------
# Failure 6: no response to HEAD has content
# ---------------------------------------------------------------------------

class HeadTest(HardeningTestCase):

    def make_root(self):
        root = super().make_root()
        write(os.path.join(root, "big.txt"), b"0123456789" * 1000, T_OLD)
        write(os.path.join(root, "logo.svgz"), SVGZ, T_OLD)
        write(os.path.join(root, "errors", "404.html"), b"<h1>custom not found</h1>\n")
        os.mkdir(os.path.join(root, "closed"))
        write(os.path.join(root, "listed", "x.txt"), b"x\n", T_OLD)
        write(os.path.join(root, "dir", "index.html"), b"<p>dir</p>\n", T_OLD)
        return root

    def head_then_get(self, srv, head_bytes):
        """Send a HEAD and a GET for /a.txt in one write. Returns the
        HEAD's response. If it keeps the connection, the GET's response
        must start on the very byte after the HEAD's header block; if it
        closes it, nothing may follow the header block."""
        with Conn(srv.port) as c:
            c.send(head_bytes + build_request("GET", "/a.txt"))
            r = c.read_response(head=True)
            if r.has_token("Connection", "close"):
                self.assertTrue(c.closed_by_peer(),
                                "%r: bytes after the head: %r" % (r, c.buf[:200]))
                return r
            while len(c.buf) < 17 and c._fill():
                pass
            self.assertTrue(c.buf.startswith(b"HTTP/1.1 200 OK\r\n"),
                            "%r: the GET's answer does not follow the head: %r"
                            % (r, c.buf[:200]))
            g = c.read_response()
            self.assertEqual(g.body, A)
            return r

    def test_head_after_parse_pipelined(self):
        srv = self.serve(error_pages={"e404": "/errors/404.html"}, listing=False)
        cases = [
            # (target, headers, status)
            ("/%00", [], 400),
            ("/..", [], 400),
            ("/%2e%2e/a.txt", [], 400),
            ("/a%2fb", [], 400),
            ("/a%zz", [], 400),
            ("/nope", [], 404),             # the site's own page
            ("/.hidden", [], 404),
            ("/closed/", [], 403),          # no index, no listing
            ("/dir", [], 301),
            ("//dir?x", [], 301),
            ("/a.txt", [], 200),
            ("/big.txt", [("Range", "bytes=5-1")], 200),
            ("/big.txt", [("Range", "bytes=99999-")], 200),   # GET would be 416
            ("/big.txt", [("Range", "bytes=0-1,5-6,9-")], 200),  # GET: multipart
            ("/big.txt", [("If-None-Match", "*")], 304),
            ("/big.txt", [("If-Match", '"nope"')], 412),
            ("/big.txt", [("Accept-Encoding", "gzip")], 200),
            ("/logo.svgz", [], 200),
            ("*", [], 400),
        ]
        for target, headers, status in cases:
            with self.subTest(target=target, headers=headers):
                r = self.head_then_get(srv, build_request("HEAD", target, headers=headers))
                self.assertEqual(r.status, status, r.head)
                # The head is the one GET gets (Content-Length included).
                if status not in (304, 412) and not headers:
                    with Conn(srv.port) as c:
                        c.send(build_request("GET", target, headers=headers))
                        g = c.read_response()
                    self.assertEqual(g.status, status)
                    self.assertEqual(r.header("Content-Length"), g.header("Content-Length"))
                    self.assertEqual(r.header("Content-Type"), g.header("Content-Type"))

    def test_head_listing_pipelined(self):
        srv = self.serve(listing=True)
        r = self.head_then_get(srv, build_request("HEAD", "/listed/"))
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertGreater(int(r.header("Content-Length")), 0)

    def test_head_parser_errors(self):
        # The method is known to be HEAD: no content, then the close.
        srv = self.serve(limits={"max_header_size": 2048})
        cases = [
            (b"HEAD / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n", 400),
            (b"HEAD / HTTP/1.1\r\n\r\n", 400),                       # no Host
            (b"HEAD / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
            (b"HEAD /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"HEAD / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
            (b"HEAD /" + b"a" * 4000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"HEAD / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 4000 + b"\r\n\r\n", 431),
            (b"HEAD / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            (b"HEAD / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ]
        for data, status in cases:
            with self.subTest(data=data[:60]):
                r = self.head_then_get(srv, data)
                self.assertEqual(r.status, status, r.head)
                self.assertTrue(r.has_token("Connection", "close"))

    def test_head_body_too_large(self):
        srv = self.serve(limits={"max_body_size": 4})
        r = self.head_then_get(srv, build_request("HEAD", "/a.txt", headers=[
            ("Content-Length", "100")]) + b"x" * 100)
        self.assertEqual(r.status, 413)

    def test_not_head_yet_gets_the_page(self):
        # The method never parsed as HEAD: answered in full, then closed.
        srv = self.serve()
        for data in (b"HE\x01AD / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x01HEAD /\r\n\r\n"):
            with self.subTest(data=data):
                with Conn(srv.port) as c:
                    c.send(data)
                    r = c.read_response()
                    self.assertEqual(r.status, 400)
                    self.assertGreater(len(r.body), 0)
                    self.assertEqual(r.header("Content-Length"), str(len(r.body)))
                    self.assertTrue(c.closed_by_peer())

    def test_head_access_log_counts_no_body(self):
        srv = self.serve()
        self.head_then_get(srv, build_request("HEAD", "/.."))
        srv.wait_access_lines(1)
        line = harness.parse_access_line(srv.access_lines()[0])
        self.assertEqual(line["status"], "400")
        self.assertIn(line["bytes"], ("-", "0"), "content bytes logged for a HEAD")


# ---------------------------------------------------------------------------
# Failure 7: 501 for methods porter does not know
# ---------------------------------------------------------------------------

class MethodTest(HardeningTestCase):

    def pipelined(self, srv, data):
        with Conn(srv.port) as c:
            c.send(data + build_request("GET", "/a.txt"))
            r = c.read_response()
            self.assertFalse(r.has_token("Connection", "close"), r.head)
            self.assertEqual(c.read_response().body, A)
            return r

    def test_unknown_methods_501(self):
        srv = self.serve()
        for method in ("FOO", "get", "Get", "head", "PURGE", "PROPFIND", "MKCOL", "GETX",
                       "options", "M-SEARCH", "BREW"):
            with self.subTest(method=method):
                r = self.pipelined(srv, build_request(method, "/a.txt"))
                self.assertEqual(r.status, 501, r.head)
                self.assertEqual(r.reason, "Not Implemented")
                self.assertIsNone(r.header("Allow"))
                self.assertEqual(r.header("Content-Length"), str(len(r.body)))
        # with a body, which is skipped
        r = self.pipelined(srv, build_request("FOO", "/", headers=[("Content-Length", "5")],
                                              body=b"hello"))
        self.assertEqual(r.status, 501)

    def test_known_methods_405(self):
        srv = self.serve()
        for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE"):
            with self.subTest(method=method):
                r = self.pipelined(srv, build_request(method, "/a.txt",
                                                      headers=[("Content-Length", "0")]))
                self.assertEqual(r.status, 405, r.head)
                self.assertEqual([m.strip() for m in r.header("Allow").split(",")],
                                 ["GET", "HEAD", "OPTIONS"])
        r = self.pipelined(srv, b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n")
        self.assertEqual(r.status, 405)
        self.assertIsNotNone(r.header("Allow"))

    def test_501_site_error_page(self):
        root = self.make_root()
        write(os.path.join(root, "errors", "501.html"), b"<h1>custom 501</h1>\n")
        srv = self.serve(root, error_pages={"e501": "/errors/501.html"})
        r = self.pipelined(srv, build_request("BREW", "/"))
        self.assertEqual((r.status, r.body), (501, b"<h1>custom 501</h1>\n"))


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
