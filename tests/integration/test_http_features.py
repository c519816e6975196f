#!/usr/bin/python3
"""Integration tests for porter's HTTP features: validators and
conditional requests, byte ranges, content codings (precompressed
siblings and gzip made on the fly), virtual hosts, directory listings,
per-site error pages and cache headers (RFC 9110, RFC 9111).

Real clients where it matters (curl, wget, python-requests), raw sockets
where exact bytes matter. Every server runs one worker, so a second
request always meets the cache the first one filled. File times are set
explicitly, never left to the clock, so date comparisons are exact.

Run by ``make check`` with PORTER_BIN and PORTER_SRCDIR set, or by hand:
/usr/bin/python3 tests/integration/test_http_features.py [-k PATTERN]
"""

import email
import email.utils
import gzip
import html.parser
import os
import random
import shutil
import subprocess
import sys
import time
import unittest
import urllib.parse
import zlib

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import Conn, build_request, get  # noqa: E402

try:
    import requests
except ImportError:  # reported by the tests that need it
    requests = None

# 2020-01-02 03:04:05 UTC: a time safely in the past.
T_OLD = 1577934245
T_NEWER = T_OLD + 3600


def http_date(t):
    return email.utils.formatdate(t, usegmt=True)


def time_rfc850(t):
    return time.strftime("%A, %d-%b-%y %H:%M:%S GMT", time.gmtime(t))


def time_asctime(t):
    tm = time.gmtime(t)
    return time.strftime("%a %b ", tm) + ("%2d" % tm.tm_mday) + time.strftime(" %H:%M:%S %Y", tm)


def epoch(value):
    return int(email.utils.parsedate_to_datetime(value).timestamp())


write = harness.write_file


def text_bytes(size, seed=0):
    """Deterministic, compressible text of exactly size bytes."""
    rnd = random.Random(seed)
    words = ["porter", "static", "file", "server", "range", "gzip", "etag",
             "cache", "vary", "host", "listing", "bytes", "\n"]
    out = []
    n = 0
    while n < size:
        w = rnd.choice(words) + " "
        out.append(w)
        n += len(w)
    return "".join(out).encode()[:size]


def gunzip(data):
    return zlib.decompress(data, 16 + zlib.MAX_WBITS)


def need(test, *programs):
    """Skip the test unless every client program it runs is installed."""
    for p in programs:
        if shutil.which(p) is None:
            test.skipTest("%s is not installed" % p)


def libconfig_groups(items):
    """libconfig text for a list of groups: ( { k = v; }, ... )."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            if v and isinstance(v[0], dict):
                return libconfig_groups(v)
            return "[ " + ", ".join(value(x) for x in v) + " ]"
        if isinstance(v, dict):
            return "{ " + " ".join("%s = %s;" % (k, value(x)) for k, x in v.items()) + " }"
        raise TypeError(v)
    return "( " + ", ".join(value(g) for g in items) + " )"


def raw(port, path, headers=None, method="GET", host=harness.HOST):
    """One request on a fresh connection, headers as a list of pairs."""
    r, c = harness.fetch(port, build_request(method, path, headers=headers, host=host),
                         head=(method == "HEAD"))
    c.close()
    return r


def parse_multipart(resp):
    """[(content_range, content_type, payload)] of a multipart/byteranges
    response, parsed by the email package."""
    ctype = resp.header("Content-Type")
    msg = email.message_from_bytes(b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + resp.body)
    if not msg.is_multipart():
        raise AssertionError("not multipart: %r" % ctype)
    return [(p["Content-Range"], p["Content-Type"], p.get_payload(decode=True))
            for p in msg.get_payload()]


class LinkParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []   # (href, text)
        self._href = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._text = ""

    def handle_data(self, data):
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text))
            self._href = None


class FeatureTestCase(harness.PorterTestCase):
    """A document root with known files, and a one-worker server on it."""

    TEXT = text_bytes(20000, 1)       # compressible, above min_size
    SMALL = b"tiny text\n"             # below min_size
    PNG = bytes(random.Random(5).getrandbits(8) for _ in range(5000))

    def make_root(self):
        root = os.path.join(self.make_tempdir(), "root")
        os.mkdir(root)
        os.chmod(root, 0o755)
        write(os.path.join(root, "text.txt"), self.TEXT, T_OLD)
        write(os.path.join(root, "small.txt"), self.SMALL, T_OLD)
        write(os.path.join(root, "image.png"), self.PNG, T_OLD)
        write(os.path.join(root, "empty.txt"), b"", T_OLD)
        write(os.path.join(root, "index.html"), "<p>home</p>\n" * 40, T_OLD)
        return root

    def serve(self, root=None, **kw):
        if root is None:
            root = self.make_root()
        kw.setdefault("workers", 1)
        srv = self.start_server(root=root, **kw)
        self.root = root
        return srv

    def assertValidators(self, r, path):
        """Strong ETag and the file's Last-Modified."""
        etag = r.header("ETag")
        self.assertIsNotNone(etag, r.headers)
        self.assertRegex(etag, r'^"[0-9a-f][-0-9a-z]*"$', "not a strong ETag")
        st = os.stat(os.path.join(self.root, path.lstrip("/")))
        self.assertEqual(epoch(r.header("Last-Modified")), int(st.st_mtime))
        return etag


# ---------------------------------------------------------------------------
# Validators and preconditions
# ---------------------------------------------------------------------------

class ConditionalTest(FeatureTestCase):

    def test_validators_on_every_file_response(self):
        srv = self.serve()
        etags = set()
        for path in ("/text.txt", "/image.png", "/empty.txt", "/", "/index.html"):
            for method in ("GET", "HEAD"):
                r = raw(srv.port, path, method=method)
                self.assertEqual(r.status, 200, path)
                self.assertEqual(r.header("Accept-Ranges"), "bytes")
                name = "index.html" if path == "/" else path
                etags.add(self.assertValidators(r, name))
        # one tag per file, the same for GET and HEAD and for "/" and its index
        self.assertEqual(len(etags), 4)

    def test_file_dated_before_1970(self):
        """A file from before the epoch still has a Last-Modified: wget
        copies it onto the file it saves."""
        srv = self.serve()
        t = -315619200                          # 1960-01-01
        write(os.path.join(self.root, "old.txt"), b"old\n", t)
        for method in ("GET", "HEAD"):
            r = raw(srv.port, "/old.txt", method=method)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Last-Modified"), "Fri, 01 Jan 1960 00:00:00 GMT")
            self.assertValidators(r, "/old.txt")
        # the ETag still revalidates it
        r = raw(srv.port, "/old.txt", [("If-None-Match", r.header("ETag"))])
        self.assertEqual(r.status, 304)

    def test_etag_follows_the_file(self):
        srv = self.serve()
        p = os.path.join(self.root, "text.txt")
        e1 = raw(srv.port, "/text.txt").header("ETag")
        # same size, same second: the nanoseconds still tell them apart
        write(p, self.TEXT[::-1])
        os.utime(p, ns=(T_OLD * 10**9 + 1, T_OLD * 10**9 + 1))
        r = raw(srv.port, "/text.txt")
        self.assertEqual(r.body, self.TEXT[::-1])
        self.assertNotEqual(r.header("ETag"), e1)

    def test_if_none_match_304(self):
        srv = self.serve(extra='cache = ( { match = ".txt"; max_age = 600; } );')
        r = raw(srv.port, "/text.txt")
        etag = r.header("ETag")
        for inm in (etag, "W/" + etag, '"nope", ' + etag, "*", '"x",,' + etag + " ,"):
            for method in ("GET", "HEAD"):
                r2 = raw(srv.port, "/text.txt", [("If-None-Match", inm)], method=method)
                self.assertEqual(r2.status, 304, inm)
                self.assertEqual(r2.body, b"")
                self.assertEqual(r2.header("ETag"), etag)
                self.assertEqual(r2.header("Last-Modified"), r.header("Last-Modified"))
                self.assertEqual(r2.header("Vary"), "Accept-Encoding")
                self.assertEqual(r2.header("Cache-Control"), "max-age=600")
                self.assertEqual(epoch(r2.header("Expires")), epoch(r2.header("Date")) + 600)
                self.assertIsNone(r2.header("Content-Encoding"))
                cl = r2.header("Content-Length")
                self.assertIn(cl, (None, str(len(self.TEXT))), "Content-Length mismatch")
        for inm in ('"nope"', etag[:-2] + '"', "garbage", "", etag + " garbage"):
            r2 = raw(srv.port, "/text.txt", [("If-None-Match", inm)])
            self.assertEqual(r2.status, 200, inm)
            self.assertEqual(r2.body, self.TEXT)

    def test_304_keeps_the_connection(self):
        srv = self.serve()
        etag = raw(srv.port, "/text.txt").header("ETag")
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/text.txt", headers=[("If-None-Match", etag)]) +
                   build_request("GET", "/small.txt"))
            self.assertEqual(c.read_response().status, 304)
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, self.SMALL))

    def test_if_none_match_wins_over_if_modified_since(self):
        srv = self.serve()
        later = http_date(T_OLD + 86400)
        r = raw(srv.port, "/text.txt", [("If-None-Match", '"other"'),
                                        ("If-Modified-Since", later)])
        self.assertEqual(r.status, 200, "If-Modified-Since must be ignored with If-None-Match")
        etag = r.header("ETag")
        r = raw(srv.port, "/text.txt", [("If-None-Match", etag),
                                        ("If-Modified-Since", http_date(T_OLD - 86400))])
        self.assertEqual(r.status, 304)

    def test_if_modified_since(self):
        srv = self.serve()
        cases = [
            (http_date(T_OLD), 304),
            (http_date(T_OLD + 1), 304),
            (http_date(T_OLD - 1), 200),
            (time_rfc850(T_OLD), 304),
            (time_asctime(T_OLD), 304),
            ("yesterday", 200),
            (http_date(T_OLD) + ", " + http_date(T_OLD), 200),
        ]
        for value, status in cases:
            r = raw(srv.port, "/text.txt", [("If-Modified-Since", value)])
            self.assertEqual(r.status, status, value)

    def test_curl_z_and_requests_if_none_match(self):
        need(self, "curl")
        srv = self.serve()
        ref = os.path.join(self.make_tempdir(), "ref")
        write(ref, b"x", T_OLD)
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "-z", ref, srv.url("/text.txt")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout, "304", out.stderr)
        os.utime(ref, (T_OLD - 10, T_OLD - 10))
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "-z", ref, srv.url("/text.txt")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout, "200", out.stderr)

        if requests is None:
            self.skipTest("python3-requests is not installed")
        with requests.Session() as s:
            r1 = s.get(srv.url("/text.txt"))
            self.assertEqual(r1.status_code, 200)
            self.assertEqual(r1.content, self.TEXT)
            r2 = s.get(srv.url("/text.txt"), headers={"If-None-Match": r1.headers["ETag"]})
            self.assertEqual(r2.status_code, 304)
            self.assertEqual(r2.headers["ETag"], r1.headers["ETag"])

    def test_if_match_and_if_unmodified_since_412(self):
        srv = self.serve(error_pages={"e412": "/412.html"})
        write(os.path.join(self.root, "412.html"), b"custom 412\n")
        etag = raw(srv.port, "/text.txt").header("ETag")
        cases = [
            ([("If-Match", etag)], 200),
            ([("If-Match", '"a", ' + etag)], 200),
            ([("If-Match", "*")], 200),
            ([("If-Match", '"other"')], 412),
            ([("If-Match", "W/" + etag)], 412),       # strong comparison
            ([("If-Match", "")], 412),
            ([("If-Unmodified-Since", http_date(T_OLD))], 200),
            ([("If-Unmodified-Since", http_date(T_OLD + 5))], 200),
            ([("If-Unmodified-Since", http_date(T_OLD - 1))], 412),
            ([("If-Unmodified-Since", "not a date")], 200),
            # If-Match decides; If-Unmodified-Since is then ignored
            ([("If-Match", etag), ("If-Unmodified-Since", http_date(T_OLD - 1))], 200),
            ([("If-Match", '"x"'), ("If-Unmodified-Since", http_date(T_OLD + 5))], 412),
            # 412 comes before 304 and before ranges
            ([("If-Match", '"x"'), ("If-None-Match", etag)], 412),
            ([("If-Match", '"x"'), ("Range", "bytes=0-1")], 412),
        ]
        for hdrs, status in cases:
            for method in ("GET", "HEAD"):
                r = raw(srv.port, "/text.txt", hdrs, method=method)
                self.assertEqual(r.status, status, (hdrs, method))
                if status == 412 and method == "GET":
                    self.assertEqual(r.body, b"custom 412\n")
                if status == 200 and method == "GET":
                    self.assertEqual(r.body, self.TEXT)

    def test_field_lines_are_joined(self):
        """A list field split over two lines is one list (RFC 9110 5.3)."""
        srv = self.serve()
        etag = raw(srv.port, "/text.txt").header("ETag")
        r = raw(srv.port, "/text.txt", [("If-None-Match", '"a"'), ("If-None-Match", etag)])
        self.assertEqual(r.status, 304)
        r = raw(srv.port, "/text.txt", [("Accept-Encoding", "identity;q=0"),
                                        ("Accept-Encoding", "gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(r.body), self.TEXT)
        # a singleton sent twice is invalid, hence ignored
        r = raw(srv.port, "/text.txt", [("Range", "bytes=0-1"), ("Range", "bytes=2-3")])
        self.assertEqual((r.status, r.body), (200, self.TEXT))


# ---------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------

class RangeTest(FeatureTestCase):

    def test_single_ranges(self):
        srv = self.serve()
        size = len(self.TEXT)
        cases = [
            ("bytes=0-99", 0, 99),
            ("bytes=100-", 100, size - 1),
            ("bytes=-100", size - 100, size - 1),
            ("bytes=19990-30000", 19990, size - 1),
            ("bytes=-30000", 0, size - 1),
            ("BYTES=5-5", 5, 5),
            ("bytes= 7-8 ,", 7, 8),
        ]
        for spec, a, b in cases:
            r = raw(srv.port, "/text.txt", [("Range", spec)])
            self.assertEqual(r.status, 206, spec)
            self.assertEqual(r.header("Content-Range"), "bytes %d-%d/%d" % (a, b, size), spec)
            self.assertEqual(r.body, self.TEXT[a:b + 1], spec)
            self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
            self.assertEqual(r.header("Accept-Ranges"), "bytes")
            self.assertValidators(r, "text.txt")

    def test_ignored_ranges(self):
        srv = self.serve()
        for spec in ("bytes=5-1", "items=0-5", "bytes=", "bytes=a-b", "bytes=0-1;x",
                     "bytes=" + ",".join("%d-%d" % (i * 10, i * 10) for i in range(17))):
            r = raw(srv.port, "/text.txt", [("Range", spec)])
            self.assertEqual((r.status, r.body), (200, self.TEXT), spec)
            self.assertIsNone(r.header("Content-Range"))

    def test_416(self):
        srv = self.serve()
        size = len(self.TEXT)
        for spec in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 9), "bytes=-0",
                     "bytes=%d-,%d-" % (size, size + 1)):
            r = raw(srv.port, "/text.txt", [("Range", spec)])
            self.assertEqual(r.status, 416, spec)
            self.assertEqual(r.header("Content-Range"), "bytes */%d" % size)
            self.assertEqual(r.body, b"")
        r = raw(srv.port, "/empty.txt", [("Range", "bytes=0-")])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */0")
        # satisfiable in theory, not expressible: the whole (empty) file
        r = raw(srv.port, "/empty.txt", [("Range", "bytes=-5")])
        self.assertEqual((r.status, r.body), (200, b""))

    def test_multipart_byteranges(self):
        srv = self.serve()
        size = len(self.TEXT)
        r = raw(srv.port, "/text.txt", [("Range", "bytes=0-9,100-199,-50")])
        self.assertEqual(r.status, 206)
        self.assertRegex(r.header("Content-Type"), r"^multipart/byteranges; boundary=\S+$")
        self.assertIsNone(r.header("Content-Range"))
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        parts = parse_multipart(r)
        want = [(0, 9), (100, 199), (size - 50, size - 1)]
        self.assertEqual(len(parts), 3)
        for (crange, ctype, payload), (a, b) in zip(parts, want):
            self.assertEqual(crange, "bytes %d-%d/%d" % (a, b, size))
            self.assertEqual(ctype, "text/plain; charset=utf-8")
            self.assertEqual(payload, self.TEXT[a:b + 1])

        # binary bytes, parts out of order, as asked
        r = raw(srv.port, "/image.png", [("Range", "bytes=4000-4099,0-0")])
        parts = parse_multipart(r)
        self.assertEqual([p[0] for p in parts], ["bytes 4000-4099/5000", "bytes 0-0/5000"])
        self.assertEqual(parts[0][2], self.PNG[4000:4100])
        self.assertEqual(parts[1][2], self.PNG[0:1])
        self.assertEqual(parts[0][1], "image/png")

        # the same bytes asked for again and again are sent once
        r = raw(srv.port, "/text.txt",
                [("Range", "bytes=" + ",".join(["0-999"] * 10 + ["500-1500"]))])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), "bytes 0-1500/%d" % size)
        self.assertEqual(r.body, self.TEXT[:1501])
        # touching ranges merge too; unsatisfiable ones drop out
        r = raw(srv.port, "/text.txt", [("Range", "bytes=0-9,10-19,%d-" % (size + 1))])
        self.assertEqual(r.header("Content-Range"), "bytes 0-19/%d" % size)

    def test_multipart_parsed_by_hand(self):
        """The exact framing, without the email package's leniency."""
        srv = self.serve()
        r = raw(srv.port, "/image.png", [("Range", "bytes=1-2,10-12")])
        boundary = r.header("Content-Type").split("boundary=")[1].encode()
        expect = (b"\r\n--" + boundary + b"\r\nContent-Type: image/png\r\n"
                  b"Content-Range: bytes 1-2/5000\r\n\r\n" + self.PNG[1:3] +
                  b"\r\n--" + boundary + b"\r\nContent-Type: image/png\r\n"
                  b"Content-Range: bytes 10-12/5000\r\n\r\n" + self.PNG[10:13] +
                  b"\r\n--" + boundary + b"--\r\n")
        self.assertEqual(r.body, expect)

    def test_if_range(self):
        srv = self.serve()
        r = raw(srv.port, "/text.txt")
        etag, lm = r.header("ETag"), r.header("Last-Modified")
        cases = [
            (etag, 206),
            ('"other"', 200),
            ("W/" + etag, 200),          # weak tags never match
            (lm, 206),                   # the exact date
            (http_date(T_OLD + 1), 200),
            (http_date(T_OLD - 1), 200),
            ("garbage", 200),
        ]
        for ifr, status in cases:
            r = raw(srv.port, "/text.txt", [("Range", "bytes=10-19"), ("If-Range", ifr)])
            self.assertEqual(r.status, status, ifr)
            self.assertEqual(r.body, self.TEXT[10:20] if status == 206 else self.TEXT, ifr)
        # without Range, If-Range means nothing
        r = raw(srv.port, "/text.txt", [("If-Range", '"other"')])
        self.assertEqual((r.status, r.body), (200, self.TEXT))

    def test_if_range_date_of_a_file_changed_this_second(self):
        """A Last-Modified in the current second is a weak validator
        (RFC 9110 8.8.2.2): If-Range with it sends everything. The file's
        mtime is set to a second in the future, which the server clamps
        to its Date, so "this second" holds whenever the request runs."""
        srv = self.serve()
        p = os.path.join(self.root, "text.txt")
        future = int(time.time()) + 3600
        os.utime(p, (future, future))
        r = raw(srv.port, "/text.txt")
        self.assertLessEqual(epoch(r.header("Last-Modified")), epoch(r.header("Date")),
                             "Last-Modified later than Date")
        r = raw(srv.port, "/text.txt", [("Range", "bytes=0-0"),
                                        ("If-Range", r.header("Last-Modified"))])
        self.assertEqual(r.status, 200)

    def test_head_ignores_range(self):
        """RFC 9110 14.2: only GET has range semantics."""
        srv = self.serve()
        with Conn(srv.port) as c:
            c.send(build_request("HEAD", "/text.txt", headers=[("Range", "bytes=0-9")]) +
                   build_request("GET", "/small.txt"))
            r = c.read_response(head=True)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Length"), str(len(self.TEXT)))
            self.assertEqual(r.header("Accept-Ranges"), "bytes")
            self.assertIsNone(r.header("Content-Range"))
            # no body went out: the next response follows at once
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, self.SMALL))

    def test_curl_range_and_wget_resume(self):
        need(self, "curl", "wget")
        srv = self.serve()
        big = text_bytes(300000, 7)
        write(os.path.join(self.root, "big.txt"), big, T_OLD)
        d = self.make_tempdir()
        out = os.path.join(d, "part")
        p = subprocess.run(["curl", "-s", "-f", "-r", "1000-70999", "-o", out,
                            srv.url("/big.txt")], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), big[1000:71000])

        # a download cut short, resumed
        dest = os.path.join(d, "big.txt")
        write(dest, big[:123457])
        p = subprocess.run(["wget", "-q", "-c", srv.url("/big.txt")], cwd=d,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), big)
        r = raw(srv.port, "/big.txt", [("Range", "bytes=123457-"),
                                       ("Accept-Encoding", "identity")])
        self.assertEqual(r.status, 206)

        # curl resuming (-C -) gets the same bytes
        write(dest, big[:5])
        p = subprocess.run(["curl", "-s", "-f", "-C", "-", "-o", dest, srv.url("/big.txt")],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(dest, "rb") as f:
            self.assertEqual(f.read(), big)


# ---------------------------------------------------------------------------
# Content codings
# ---------------------------------------------------------------------------

class CompressionTest(FeatureTestCase):

    JS = text_bytes(30000, 3)
    BR = b"fake brotli bytes: the server never decodes them\n"

    def precompressed_root(self):
        need(self, "zstd")
        root = self.make_root()
        js = os.path.join(root, "app.js")
        write(js, self.JS, T_OLD)
        self.GZ = gzip.compress(self.JS, mtime=0)
        write(js + ".gz", self.GZ, T_NEWER)
        write(js + ".br", self.BR, T_NEWER)
        p = subprocess.run(["zstd", "-q", "-f", "-o", js + ".zst", js], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        os.utime(js + ".zst", (T_NEWER, T_NEWER))
        with open(js + ".zst", "rb") as f:
            self.ZST = f.read()
        return root

    def test_precompressed_preference(self):
        srv = self.serve(self.precompressed_root())
        plain = raw(srv.port, "/app.js")
        ctype = plain.header("Content-Type")
        self.assertRegex(ctype, r"javascript")
        cases = [
            ("br, zstd, gzip", "br", self.BR),
            ("gzip, zstd, br", "br", self.BR),          # q ties: server order
            ("zstd, gzip", "zstd", self.ZST),
            ("gzip", "gzip", self.GZ),
            ("x-gzip", "gzip", self.GZ),
            ("gzip;q=0.5, zstd;q=0.8, br;q=0.1", "zstd", self.ZST),
            ("br;q=0, *", "zstd", self.ZST),
            ("br;q=0, zstd;q=0, gzip", "gzip", self.GZ),
            ("gzip;q=0.5, identity", None, self.JS),
            ("deflate", None, self.JS),
            ("", None, self.JS),
        ]
        etags = {plain.header("ETag")}
        self.assertEqual(epoch(plain.header("Last-Modified")), T_OLD)
        for ae, coding, body in cases:
            r = raw(srv.port, "/app.js", [("Accept-Encoding", ae)])
            self.assertEqual(r.status, 200, ae)
            self.assertEqual(r.header("Content-Encoding"), coding, ae)
            self.assertEqual(r.body, body, ae)
            self.assertEqual(r.header("Content-Length"), str(len(body)))
            self.assertEqual(r.header("Content-Type"), ctype, ae)
            self.assertEqual(r.header("Vary"), "Accept-Encoding", ae)
            # a sibling is its own representation, with its own time
            self.assertEqual(epoch(r.header("Last-Modified")),
                             T_NEWER if coding in ("br", "zstd") or body is self.GZ else T_OLD)
            etags.add(r.header("ETag"))
        self.assertEqual(len(etags), 4, "each representation needs its own ETag")

    def test_stale_sibling_is_not_used(self):
        root = self.make_root()
        p = os.path.join(root, "doc.txt")
        write(p, self.TEXT, T_NEWER)
        stale = gzip.compress(b"an old version\n" * 100, mtime=0)
        write(p + ".gz", stale, T_OLD)
        write(p + ".br", self.BR, T_OLD)
        srv = self.serve(root)
        r = raw(srv.port, "/doc.txt", [("Accept-Encoding", "gzip")])
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertNotEqual(r.body, stale)
        self.assertEqual(gunzip(r.body), self.TEXT)
        r = raw(srv.port, "/doc.txt", [("Accept-Encoding", "br")])
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, self.TEXT)
        # the same second but later nanoseconds is older too
        os.utime(p + ".br", ns=(T_NEWER * 10**9 - 1, T_NEWER * 10**9 - 1))
        r = raw(srv.port, "/doc.txt", [("Accept-Encoding", "br")])
        self.assertIsNone(r.header("Content-Encoding"))
        # fresh again once rebuilt
        os.utime(p + ".br", (T_NEWER, T_NEWER))
        r = raw(srv.port, "/doc.txt", [("Accept-Encoding", "br")])
        self.assertEqual((r.header("Content-Encoding"), r.body), ("br", self.BR))

    def test_curl_compressed_and_requests(self):
        need(self, "curl")
        root = self.precompressed_root()
        write(os.path.join(root, "style.css"), text_bytes(9000, 4), T_OLD)
        write(os.path.join(root, "z.css"), text_bytes(9000, 5), T_OLD)
        p = subprocess.run(["zstd", "-q", "-f", "-o", os.path.join(root, "z.css.zst"),
                            os.path.join(root, "z.css")], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        os.utime(os.path.join(root, "z.css.zst"), (T_NEWER, T_NEWER))
        srv = self.serve(root)
        d = self.make_tempdir()
        for path, coding in (("/text.txt", "gzip"), ("/style.css", "gzip"),
                             ("/z.css", "zstd"), ("/image.png", None)):
            out, hdr = os.path.join(d, "out"), os.path.join(d, "hdr")
            p = subprocess.run(["curl", "-s", "-f", "--compressed", "-D", hdr, "-o", out,
                                srv.url(path)], capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(out, "rb") as f, open(os.path.join(self.root, path[1:]), "rb") as g:
                self.assertEqual(f.read(), g.read(), path)
            with open(hdr, "rb") as f:
                head = harness.parse_head(f.read().split(b"\r\n\r\n")[0])
            self.assertEqual(head.header("Content-Encoding"), coding, path)

        if requests is None:
            self.skipTest("python3-requests is not installed")
        with requests.Session() as s:
            for path in ("/text.txt", "/app.js", "/style.css", "/image.png", "/small.txt"):
                r = s.get(srv.url(path))
                with open(os.path.join(self.root, path[1:]), "rb") as g:
                    self.assertEqual(r.content, g.read(), path)
            self.assertEqual(s.get(srv.url("/app.js")).headers["Content-Encoding"], "gzip")
            self.assertEqual(s.get(srv.url("/text.txt")).headers["Content-Encoding"], "gzip")
            self.assertNotIn("Content-Encoding", s.get(srv.url("/small.txt")).headers)

    def test_vary(self):
        srv = self.serve()
        for ae in (None, "gzip", "identity", "br"):
            hdrs = [("Accept-Encoding", ae)] if ae else []
            r = raw(srv.port, "/text.txt", hdrs)
            self.assertEqual(r.header_all("Vary"), ["Accept-Encoding"], ae)
            r = raw(srv.port, "/small.txt", hdrs)
            self.assertEqual(r.header_all("Vary"), ["Accept-Encoding"], ae)
            r = raw(srv.port, "/image.png", hdrs)
            self.assertEqual(r.header_all("Vary"), [], ae)
            self.assertIsNone(r.header("Content-Encoding"))
            self.assertEqual(r.body, self.PNG)
            r = raw(srv.port, "/image.png", hdrs + [("If-None-Match", r.header("ETag"))])
            self.assertEqual((r.status, r.header_all("Vary")), (304, []))

    def test_identity_refused(self):
        srv = self.serve()
        cases = [
            # (path, Accept-Encoding, coding sent)
            ("/small.txt", "gzip", None),                 # below min_size
            ("/small.txt", "gzip, identity;q=0", "gzip"),  # ...unless identity is refused
            ("/small.txt", "gzip;q=0.1, *;q=0", "gzip"),
            ("/empty.txt", "gzip, identity;q=0", "gzip"),
            ("/text.txt", "identity;q=0", None),          # nothing acceptable: identity anyway
            ("/text.txt", "*;q=0", None),
            ("/text.txt", "gzip;q=0", None),
            ("/text.txt", "gzip;q=0.5, identity;q=0.9", None),
            ("/text.txt", "gzip;q=0.9, identity;q=0.5", "gzip"),
            ("/text.txt", "gzip;q=1.5", None),            # invalid q: element ignored
            ("/text.txt", "*", "gzip"),
            ("/text.txt", "GZIP;Q=1", "gzip"),
            ("/image.png", "gzip, identity;q=0", None),   # not a compressible type
        ]
        for path, ae, coding in cases:
            r = raw(srv.port, path, [("Accept-Encoding", ae)])
            self.assertEqual(r.status, 200, (path, ae))
            self.assertEqual(r.header("Content-Encoding"), coding, (path, ae))
            with open(os.path.join(self.root, path[1:]), "rb") as f:
                orig = f.read()
            self.assertEqual(gunzip(r.body) if coding else r.body, orig, (path, ae))

    def test_ranges_of_the_coded_representation(self):
        srv = self.serve(self.precompressed_root())
        full = raw(srv.port, "/text.txt", [("Accept-Encoding", "gzip")])
        gz = full.body
        self.assertEqual(gunzip(gz), self.TEXT)
        r = raw(srv.port, "/text.txt", [("Accept-Encoding", "gzip"), ("Range", "bytes=10-49")])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Content-Range"), "bytes 10-49/%d" % len(gz))
        self.assertEqual(r.body, gz[10:50])
        self.assertEqual(r.header("ETag"), full.header("ETag"))
        # If-Range with the coded form's tag
        r = raw(srv.port, "/text.txt", [("Accept-Encoding", "gzip"), ("Range", "bytes=0-1"),
                                        ("If-Range", full.header("ETag"))])
        self.assertEqual((r.status, r.body), (206, gz[:2]))
        r = raw(srv.port, "/text.txt", [("Range", "bytes=0-1"),
                                        ("If-Range", full.header("ETag"))])
        self.assertEqual((r.status, r.body), (200, self.TEXT), "identity matched gzip's tag")
        # a sibling, in several parts
        r = raw(srv.port, "/app.js", [("Accept-Encoding", "br"), ("Range", "bytes=0-3,-4")])
        parts = parse_multipart(r)
        self.assertEqual(r.header("Content-Encoding"), "br")
        self.assertEqual([p[2] for p in parts], [self.BR[:4], self.BR[-4:]])
        r = raw(srv.port, "/text.txt", [("Accept-Encoding", "gzip"),
                                        ("Range", "bytes=%d-" % len(gz))])
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), "bytes */%d" % len(gz))

    def test_no_descriptor_leaks(self):
        """Siblings opened for a response are closed whatever its status."""
        root = self.precompressed_root()
        write(os.path.join(root, "412.html"), b"custom 412\n")
        srv = self.serve(root, error_pages={"e412": "/412.html"})
        br = raw(srv.port, "/app.js", [("Accept-Encoding", "br")]).header("ETag")
        mix = [
            [("Accept-Encoding", "br")],
            [("Accept-Encoding", "br"), ("If-Match", '"x"')],
            [("Accept-Encoding", "br"), ("If-None-Match", br)],
            [("Accept-Encoding", "br"), ("Range", "bytes=99999-")],
            [("Accept-Encoding", "br"), ("Range", "bytes=0-1,3-4")],
            [("Accept-Encoding", "br, zstd, gzip"), ("If-Unmodified-Since", http_date(0))],
            [("Accept-Encoding", "gzip"), ("If-Match", '"x"')],
        ]
        worker = srv.worker_pids()[0]

        def fds():
            # The worker is one thread: once it has answered this, it
            # has finished (and released) every response before it.
            raw(srv.port, "/small.txt")
            # Files under the root only: client sockets close on their
            # own schedule, and a file cache may hold the original.
            d = "/proc/%d/fd" % worker
            out = []
            for n in os.listdir(d):
                try:
                    target = os.readlink(os.path.join(d, n))
                except OSError:
                    continue
                if target.startswith(root + "/"):
                    out.append(target)
            return sorted(out)

        def run():
            for hdrs in mix:
                for method in ("GET", "HEAD"):
                    raw(srv.port, "/app.js", hdrs, method=method)
        run()
        before = fds()
        for _ in range(10):
            run()
        self.assertEqual(fds(), before)

    def test_head_with_gzip(self):
        srv = self.serve(self.precompressed_root())
        for path in ("/text.txt", "/app.js"):
            g = raw(srv.port, path, [("Accept-Encoding", "gzip")])
            with Conn(srv.port) as c:
                c.send(build_request("HEAD", path, headers=[("Accept-Encoding", "gzip")]) +
                       build_request("GET", "/small.txt"))
                h = c.read_response(head=True)
                for name in ("Content-Encoding", "Content-Length", "ETag", "Vary",
                             "Last-Modified", "Content-Type"):
                    self.assertEqual(h.header(name), g.header(name), (path, name))
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, self.SMALL), "HEAD sent a body")

    def test_gzip_cache_sees_changes_at_once(self):
        srv = self.serve()
        p = os.path.join(self.root, "text.txt")
        ae = [("Accept-Encoding", "gzip")]
        r1 = raw(srv.port, "/text.txt", ae)
        self.assertEqual(gunzip(r1.body), self.TEXT)
        self.assertEqual(raw(srv.port, "/text.txt", ae).body, r1.body, "not cached")

        # rewritten in place: same inode, same size; only the time differs
        v2 = self.TEXT.replace(b"porter", b"PORTER")
        self.assertEqual(len(v2), len(self.TEXT))
        write(p, v2)
        os.utime(p, ns=(T_OLD * 10**9 + 5, T_OLD * 10**9 + 5))
        r2 = raw(srv.port, "/text.txt", ae)
        self.assertEqual(gunzip(r2.body), v2)
        self.assertNotEqual(r2.header("ETag"), r1.header("ETag"))

        # same size and same mtime as before: only the change time differs.
        # A coarse kernel clock may give the same ctime to two quick
        # changes; write again until it differs, which is the premise.
        v3 = self.TEXT.replace(b"static", b"STATIC")
        ctime2 = os.stat(p).st_ctime_ns

        def rewrite():
            write(p, v3)
            os.utime(p, ns=(T_OLD * 10**9 + 5, T_OLD * 10**9 + 5))
            return os.stat(p).st_ctime_ns != ctime2
        harness.wait_until(rewrite, message="ctime never changed")
        self.assertEqual(gunzip(raw(srv.port, "/text.txt", ae).body), v3)

        # another size
        v4 = self.TEXT + b"more\n"
        write(p, v4, T_OLD)
        self.assertEqual(gunzip(raw(srv.port, "/text.txt", ae).body), v4)

        # replaced by rename: a new inode
        v5 = text_bytes(20000, 99)
        write(p + ".new", v5, T_OLD)
        os.rename(p + ".new", p)
        self.assertEqual(gunzip(raw(srv.port, "/text.txt", ae).body), v5)
        self.assertEqual(raw(srv.port, "/text.txt").body, v5)

    def test_compression_settings(self):
        root = self.make_root()
        write(os.path.join(root, "style.css"), text_bytes(9000, 4), T_OLD)
        ae = [("Accept-Encoding", "gzip")]

        srv = self.serve(root, compression={"enabled": False})
        for path in ("/text.txt", "/style.css"):
            r = raw(srv.port, path, ae)
            self.assertIsNone(r.header("Content-Encoding"), path)
            self.assertEqual(r.header_all("Vary"), [], path)
        srv.close()

        srv = self.serve(root, compression={"types": ["text/css"], "level": 1})
        r = raw(srv.port, "/text.txt", ae)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.header_all("Vary"), [])
        r1 = raw(srv.port, "/style.css", ae)
        self.assertEqual(r1.header("Content-Encoding"), "gzip")
        self.assertEqual(r1.header("Vary"), "Accept-Encoding")
        srv.close()

        srv = self.serve(root, compression={"types": ["text/*"], "level": 9,
                                             "min_size": 10000})
        r = raw(srv.port, "/style.css", ae)
        self.assertIsNone(r.header("Content-Encoding"), "below min_size")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        r9 = raw(srv.port, "/text.txt", ae)
        self.assertEqual(r9.header("Content-Encoding"), "gzip")
        self.assertEqual(gunzip(r9.body), self.TEXT)
        # the level changes the bytes, so the tag must differ
        srv.close()
        srv = self.serve(root, compression={"level": 1})
        r1 = raw(srv.port, "/text.txt", ae)
        self.assertNotEqual(r1.body, r9.body)
        self.assertNotEqual(r1.header("ETag"), r9.header("ETag"))


# ---------------------------------------------------------------------------
# Sites
# ---------------------------------------------------------------------------

class SiteTest(FeatureTestCase):

    def two_sites(self, **kw):
        work = self.make_tempdir()
        roots = {}
        for name in ("a", "b", "d"):
            roots[name] = os.path.join(work, name)
            write(os.path.join(roots[name], "index.html"), "site %s\n" % name)
            write(os.path.join(roots[name], "who.txt"), name)
        sites = [
            {"names": ["a.example", "www.a.example"], "root": roots["a"]},
            {"names": ["b.example", "*.b.example"], "root": roots["b"]},
            {"names": ["*"], "root": roots["d"]},
        ]
        srv = self.start_server(root=roots["d"], workers=1,
                                extra="sites = %s;" % libconfig_groups(sites), **kw)
        return srv, roots

    def test_host_selects_the_site(self):
        srv, _ = self.two_sites()
        port = srv.port
        cases = [
            ("a.example", "a"),
            ("www.a.example", "a"),
            ("A.EXAMPLE", "a"),
            ("a.example:%d" % port, "a"),
            ("A.Example:80", "a"),
            ("a.example.", "a"),
            ("b.example", "b"),
            ("x.b.example", "b"),
            ("deep.x.b.example:1", "b"),
            ("unknown.example", "d"),
            ("127.0.0.1:%d" % port, "d"),
            ("[::1]:8080", "d"),
            ("", "d"),
            ("ab.example", "d"),
        ]
        for host, site in cases:
            r = raw(port, "/who.txt", host=host)
            self.assertEqual((r.status, r.body), (200, site.encode()), host)
        # HTTP/1.0 without Host: the default site
        r = get(port, "/who.txt", version="HTTP/1.0")
        self.assertEqual(r.body, b"d")
        # absolute-form: the target's authority, not the Host field
        r = raw(port, "http://b.example/who.txt", host="a.example")
        self.assertEqual(r.body, b"b")
        if requests is not None:
            r = requests.get(srv.url("/who.txt"), headers={"Host": "WWW.A.EXAMPLE"})
            self.assertEqual(r.content, b"a")

    def test_bad_host_is_400(self):
        srv, _ = self.two_sites()
        for host in ("a b", "a.example/x", "a@b", "[::1", "[zz::1]", "a.example:x",
                     "a.example:80:80", "a%zz", '"a"', "a\\b", "a.example:-1",
                     "[::1]x", "a?b", "a#b", "a<b>", "[::1]:8o", "a\tb"):
            r = raw(srv.port, "/who.txt", host=host)
            self.assertEqual(r.status, 400, repr(host))
        # two Host fields
        with Conn(srv.port) as c:
            c.send(b"GET /who.txt HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        # HTTP/1.1 without Host
        r = raw(srv.port, "/who.txt", host=None)
        self.assertEqual(r.status, 400)

    def test_sites_keep_their_own_settings(self):
        work = self.make_tempdir()
        a, b = os.path.join(work, "a"), os.path.join(work, "b")
        write(os.path.join(a, "dir", "f.txt"), "in a\n")
        write(os.path.join(a, "start.html"), "a start\n")
        write(os.path.join(a, "missing.html"), "a says 404\n")
        write(os.path.join(b, "dir", "f.txt"), "in b\n")
        write(os.path.join(b, "index.html"), "b index\n")
        sites = [
            {"names": ["a.example"], "root": a, "index": ["start.html"], "listing": True,
             "error_pages": [{"status": 404, "page": "/missing.html"}],
             "cache": [{"match": ".txt", "max_age": 60}]},
            {"names": ["*"], "root": b},
        ]
        srv = self.start_server(root=b, workers=1,
                                extra="sites = %s;" % libconfig_groups(sites))
        r = raw(srv.port, "/", host="a.example")
        self.assertEqual(r.body, b"a start\n")
        r = raw(srv.port, "/", host="b.example")
        self.assertEqual(r.body, b"b index\n")
        r = raw(srv.port, "/dir/", host="a.example")
        self.assertEqual(r.status, 200)
        self.assertIn(b"f.txt", r.body)
        r = raw(srv.port, "/dir/", host="b.example")
        self.assertEqual(r.status, 403, "listing is off by default")
        r = raw(srv.port, "/nope", host="a.example")
        self.assertEqual((r.status, r.body), (404, b"a says 404\n"))
        r = raw(srv.port, "/nope", host="b.example")
        self.assertEqual(r.status, 404)
        self.assertNotIn(b"a says", r.body)
        self.assertEqual(raw(srv.port, "/dir/f.txt", host="a.example").header("Cache-Control"),
                         "max-age=60")
        self.assertIsNone(raw(srv.port, "/dir/f.txt", host="b.example").header("Cache-Control"))


# ---------------------------------------------------------------------------
# Listings, error pages, cache headers, OPTIONS
# ---------------------------------------------------------------------------

class ListingTest(FeatureTestCase):

    NAMES = ["a<b&c.txt", "sp ace.txt", "amp&amp;.txt", "quote\"'.txt", "per%cent.txt",
             "q?x#y.txt", "colon:x.txt", "été.txt", "Zed.txt"]

    def test_listing_escapes_and_links_work(self):
        root = self.make_root()
        d = os.path.join(root, "files")
        for i, n in enumerate(self.NAMES):
            write(os.path.join(d, n), ("content %d of %s\n" % (i, n)).encode(), T_OLD)
        write(os.path.join(d, ".secret"), b"hidden", T_OLD)
        os.mkdir(os.path.join(d, ".git"))
        os.mkdir(os.path.join(d, "sub dir<"))
        write(os.path.join(d, "sub dir<", "inner.txt"), b"inner\n", T_OLD)
        write(os.path.join(d, "big.bin"), b"\0" * 3000, T_OLD)
        os.symlink("/etc/passwd", os.path.join(d, "outside"))
        os.symlink("Zed.txt", os.path.join(d, "inside"))
        srv = self.serve(root, listing=True)

        r = raw(srv.port, "/files/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        page = r.body.decode("utf-8")
        self.assertNotIn("secret", page)
        self.assertNotIn(".git", page)
        self.assertNotIn("outside", page, "a link out of the root is listed")
        self.assertNotIn("a<b", page)
        self.assertIn("a&lt;b&amp;c.txt", page)
        self.assertIn("amp&amp;amp;.txt", page)
        self.assertIn("2020-01-02 03:04", page)
        self.assertRegex(page, r"3000 bytes")

        lp = LinkParser()
        lp.feed(page)
        texts = [t for _, t in lp.links]
        expect = sorted(self.NAMES + ["big.bin", "inside"], key=lambda s: s.encode())
        self.assertEqual(texts, ["../", "sub dir</"] + expect, "not sorted (dirs first)")
        base = srv.url("/files/")
        for href, text in lp.links:
            url = urllib.parse.urljoin(base, href)
            self.assertTrue(url.startswith(srv.url("/")), href)
            path = url[len(srv.url("")):]
            r = raw(srv.port, path)
            self.assertEqual(r.status, 200, (href, text))
            if text in self.NAMES:
                with open(os.path.join(d, text), "rb") as f:
                    self.assertEqual(r.body, f.read(), text)
        # the subdirectory's own listing, by its link
        r = raw(srv.port, "/files/sub%20dir%3C/")
        self.assertIn(b">inner.txt<", r.body)
        self.assertIn(b"Index of /files/sub dir&lt;/", r.body)
        r = raw(srv.port, "/files/", method="HEAD")
        self.assertEqual((r.status, r.body), (200, b""))

    def test_listing_off_by_default(self):
        root = self.make_root()
        write(os.path.join(root, "noindex", "f.txt"), b"f")
        srv = self.serve(root)
        self.assertEqual(raw(srv.port, "/noindex/").status, 403)
        # with an index the index is served, listing or not
        srv.close()
        srv = self.serve(root, listing=True)
        r = raw(srv.port, "/")
        self.assertEqual(r.body, b"<p>home</p>\n" * 40)


class ErrorPageTest(FeatureTestCase):

    def test_error_pages(self):
        root = self.make_root()
        write(os.path.join(root, "errors", "404.html"), b"<h1>custom not found</h1>\n")
        write(os.path.join(root, "errors", "403.txt"), b"custom forbidden\n")
        os.mkdir(os.path.join(root, "closed"))
        srv = self.serve(root, error_pages={"e404": "/errors/404.html", "e403": "/errors/403.txt",
                                            "e500": "/errors/missing.html"})
        r = raw(srv.port, "/nope.html")
        self.assertEqual((r.status, r.body), (404, b"<h1>custom not found</h1>\n"))
        self.assertEqual(r.header("Content-Type"), "text/html; charset=utf-8")
        r = raw(srv.port, "/nope.html", method="HEAD")
        self.assertEqual((r.status, r.header("Content-Length")), (404, "26"))
        r = raw(srv.port, "/closed/")
        self.assertEqual((r.status, r.body), (403, b"custom forbidden\n"))
        self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
        # keep-alive survives a custom page
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/nope") + build_request("GET", "/small.txt"))
            self.assertEqual(c.read_response().status, 404)
            self.assertEqual(c.read_response().body, self.SMALL)


class CacheHeaderTest(FeatureTestCase):

    def test_cache_rules(self):
        root = self.make_root()
        write(os.path.join(root, "assets", "app.css"), b"a{}", T_OLD)
        write(os.path.join(root, "assets", "page.html"), b"<p>", T_OLD)
        write(os.path.join(root, "page.html"), b"<p>", T_OLD)
        write(os.path.join(root, "UPPER.HTML"), b"<p>", T_OLD)
        write(os.path.join(root, "archive.tar.gz"), b"x", T_OLD)
        write(os.path.join(root, "other.css"), b"b{}", T_OLD)
        rules = [
            {"match": "/assets/", "max_age": 31536000, "immutable": True},
            {"match": ".html", "max_age": 0, "no_cache": True},
            {"match": ".tar.gz", "max_age": 100},
            {"match": "/other", "immutable": True},
        ]
        srv = self.serve(root, extra="cache = %s;" % libconfig_groups(rules))
        cases = [
            ("/assets/app.css", "max-age=31536000, immutable", 31536000),
            ("/assets/page.html", "max-age=31536000, immutable", 31536000),  # first match wins
            ("/page.html", "max-age=0, no-cache", 0),
            ("/UPPER.HTML", "max-age=0, no-cache", 0),
            ("/", "max-age=0, no-cache", 0),                # the index file's name counts
            ("/archive.tar.gz", "max-age=100", 100),
            ("/other.css", "immutable", None),
            ("/text.txt", None, None),
        ]
        for path, cc, age in cases:
            for hdrs in ([], [("If-Modified-Since", http_date(T_OLD))]):
                r = raw(srv.port, path, hdrs)
                self.assertEqual(r.status, 304 if hdrs else 200, path)
                self.assertEqual(r.header("Cache-Control"), cc, path)
                if age is None:
                    self.assertIsNone(r.header("Expires"), path)
                else:
                    self.assertEqual(epoch(r.header("Expires")), epoch(r.header("Date")) + age,
                                     path)


class OptionsTest(FeatureTestCase):

    def test_options(self):
        srv = self.serve()
        for target in ("*", "/text.txt"):
            r = raw(srv.port, target, method="OPTIONS")
            self.assertEqual(r.status, 200, target)
            self.assertEqual([m.strip() for m in r.header("Allow").split(",")],
                             ["GET", "HEAD", "OPTIONS"])
            self.assertEqual(r.header("Content-Length"), "0")


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
