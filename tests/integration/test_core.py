#!/usr/bin/python3
"""Integration tests for porter's core: serving files, HTTP/1.1 connection
handling, error statuses, path safety, the access log, worker supervision,
signals and the command line.

Each test starts its own porter (2 workers) on an ephemeral 127.0.0.1 port
with a fresh temporary document root; see harness.py.

Run by ``make check`` with PORTER_BIN, PORTER_SRCDIR and FIXTURES set, or by
hand: /usr/bin/python3 tests/integration/test_core.py [-k PATTERN]
"""

import datetime
import email.utils
import html.parser
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import unittest
import urllib.parse

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import (Conn, build_request, fetch, get, parse_access_line,  # noqa: E402
                     pid_alive, wait_until)

try:
    import requests
except ImportError:  # reported by the tests that need it
    requests = None


write = harness.write_file


def http_date_to_epoch(value):
    return int(email.utils.parsedate_to_datetime(value).timestamp())


HTML_UTF8 = "text/html; charset=utf-8"
JS_RE = re.compile(r"^(text|application)/(x-)?javascript; charset=utf-8$")
EXPECTED_TYPES = {
    ".html": HTML_UTF8,
    ".htm": HTML_UTF8,
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


class CoreTestCase(harness.PorterTestCase):
    """Helpers shared by the tests below."""

    # Files of the default test root (see make_root).
    A = b"alpha file\n"
    B = b"bravo file, a little longer\n"
    C = b"charlie\n"

    def make_root(self):
        """A temp document root with a few known files; returns its path.

        Layout: WORKDIR/root is the root, WORKDIR/outside.txt sits just
        outside it (for traversal tests).
        """
        work = self.make_tempdir()
        root = os.path.join(work, "root")
        os.mkdir(root)
        os.chmod(root, 0o755)
        write(os.path.join(root, "a.txt"), self.A)
        write(os.path.join(root, "b.txt"), self.B)
        write(os.path.join(root, "c.txt"), self.C)
        write(os.path.join(root, "index.html"), "<!doctype html><title>top</title>\n")
        write(os.path.join(root, "sub", "index.html"), "<!doctype html><title>sub</title>\n")
        write(os.path.join(root, "a b.txt"), b"space in name\n")
        write(os.path.join(work, "outside.txt"), b"OUTSIDE-THE-ROOT-SECRET\n")
        rng = random.Random(1234)
        self.big = write(os.path.join(root, "big.bin"), rng.randbytes(300000))
        return root

    def server(self, **kw):
        root = kw.pop("root", None) or self.make_root()
        return self.start_server(root, **kw)

    def assert_error_page(self, r, status):
        self.assertEqual(r.status, status, "wanted %d, got %r\n%r" % (status, r, r.head))
        ctype = r.header("Content-Type", "")
        self.assertTrue(ctype.startswith("text/html"), "error Content-Type %r" % ctype)
        self.assertGreater(len(r.body), 0, "error response without a body")
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def assert_closes(self, c, r):
        """The response says Connection: close and the server then closes."""
        self.assertTrue(r.has_token("Connection", "close"),
                        "no 'Connection: close' in %r" % r.head)
        self.assertTrue(c.closed_by_peer(), "server kept the connection open")

    def assert_file_response(self, r, path, body):
        """200 with the right body and the standard headers for a file."""
        self.assertEqual(r.status, 200, "%r %r" % (r, r.head))
        self.assertEqual(r.body, body)
        self.assertEqual(r.header("Content-Length"), str(len(body)))
        self.assertEqual(r.header("Server"), "porter")
        self.assertIsNotNone(r.header("Date"), "no Date header")
        http_date_to_epoch(r.header("Date"))
        lm = r.header("Last-Modified")
        self.assertIsNotNone(lm, "no Last-Modified header")
        self.assertEqual(http_date_to_epoch(lm), int(os.stat(path).st_mtime))

    def session(self):
        if requests is None:
            self.fail("python3-requests is missing: run the tests with /usr/bin/python3")
        s = requests.Session()
        s.trust_env = False  # no proxies from the environment
        self.addCleanup(s.close)
        return s


# ---------------------------------------------------------------------------
# The demo site, with real clients
# ---------------------------------------------------------------------------

class AssetParser(html.parser.HTMLParser):
    """Collects stylesheet, icon, script and image URLs of a page."""

    def __init__(self):
        super().__init__()
        self.assets = []  # (kind, url)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "link" and a.get("href"):
            rels = (a.get("rel") or "").lower().split()
            if "stylesheet" in rels:
                self.assets.append(("stylesheet", a["href"]))
            elif "icon" in rels:
                self.assets.append(("icon", a["href"]))
        elif tag == "script" and a.get("src"):
            self.assets.append(("script", a["src"]))
        elif tag == "img" and a.get("src"):
            self.assets.append(("img", a["src"]))


class DemoSiteTest(CoreTestCase):

    def curl(self, url, outfile):
        p = subprocess.run(
            ["curl", "-s", "--noproxy", "*", "--max-time", "20", "-o", outfile,
             "-w", "%{http_code} %{content_type}", url],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, "curl %s failed: %s" % (url, p.stderr))
        code, _, ctype = p.stdout.partition(" ")
        with open(outfile, "rb") as f:
            return int(code), ctype, f.read()

    def check_type(self, path, ctype):
        ext = os.path.splitext(path)[1].lower()
        if ext in (".js", ".mjs"):
            self.assertRegex(ctype, JS_RE, "Content-Type of %s" % path)
        elif ext in EXPECTED_TYPES:
            self.assertEqual(ctype, EXPECTED_TYPES[ext], "Content-Type of %s" % path)

    def test_demo_site(self):
        www = os.path.join(harness.srcdir(), "www")
        index = os.path.join(www, "index.html")
        self.assertTrue(os.path.isfile(index), "demo site missing: %s" % index)
        root = os.path.join(self.make_tempdir(), "www")
        shutil.copytree(www, root)
        srv = self.start_server(root)
        s = self.session()
        out = os.path.join(self.make_tempdir(), "curl.out")

        with open(index, "rb") as f:
            index_bytes = f.read()
        code, ctype, body = self.curl(srv.url("/"), out)
        self.assertEqual((code, ctype), (200, HTML_UTF8))
        self.assertEqual(body, index_bytes)
        r = s.get(srv.url("/"), timeout=20)
        self.assertEqual(r.status_code, 200)
        self.assertEqual(r.headers.get("Content-Type"), HTML_UTF8)
        self.assertEqual(r.content, index_bytes)

        p = AssetParser()
        p.feed(index_bytes.decode("utf-8"))
        kinds = set()
        checked = set()
        for kind, url in p.assets:
            u = urllib.parse.urlsplit(urllib.parse.urljoin("/", url))
            if u.scheme or u.netloc:
                continue  # external or data: URL, not ours to serve
            kinds.add(kind)
            disk = os.path.join(root, urllib.parse.unquote(u.path).lstrip("/"))
            self.assertTrue(os.path.isfile(disk), "index.html links %s, not in www/" % url)
            with open(disk, "rb") as f:
                want = f.read()
            with self.subTest(asset=u.path):
                code, ctype, body = self.curl(srv.url(u.path), out)
                self.assertEqual(code, 200)
                self.assertEqual(body, want, "curl body of %s" % u.path)
                self.check_type(u.path, ctype)
                r = s.get(srv.url(u.path), timeout=20)
                self.assertEqual(r.status_code, 200)
                self.assertEqual(r.content, want, "requests body of %s" % u.path)
                self.check_type(u.path, r.headers.get("Content-Type", ""))
                # requests sends Accept-Encoding: gzip, deflate and decodes
                # what comes back; Content-Length counts the bytes on the wire.
                if r.headers.get("Content-Encoding"):
                    self.assertEqual(r.headers["Content-Encoding"], "gzip")
                    self.assertIn("Accept-Encoding", r.headers.get("Vary", ""))
                else:
                    self.assertEqual(r.headers.get("Content-Length"), str(len(want)))
            checked.add(os.path.splitext(u.path)[1].lower())
        for kind in ("stylesheet", "script", "img"):
            self.assertIn(kind, kinds, "index.html has no local %s" % kind)

        # Every other (non-dot) file of the site, with requests.
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("."):
                    continue
                disk = os.path.join(dirpath, name)
                rel = "/" + os.path.relpath(disk, root)
                with self.subTest(file=rel):
                    r = s.get(srv.url(urllib.parse.quote(rel)), timeout=20)
                    self.assertEqual(r.status_code, 200)
                    with open(disk, "rb") as f:
                        self.assertEqual(r.content, f.read())
                    self.check_type(rel, r.headers.get("Content-Type", ""))
                    checked.add(os.path.splitext(rel)[1].lower())
        for ext in (".css", ".js", ".png", ".svg"):
            self.assertIn(ext, checked, "demo site has no %s file to check" % ext)


# ---------------------------------------------------------------------------
# Connections: keep-alive, pipelining, HEAD, HTTP/1.0, limits
# ---------------------------------------------------------------------------

class ConnectionTest(CoreTestCase):

    def test_keepalive_raw_socket(self):
        srv = self.server()
        with Conn(srv.port) as c:
            for name, body in (("a.txt", self.A), ("b.txt", self.B), ("c.txt", self.C)):
                self.assertTrue(c.send(build_request("GET", "/" + name)))
                r = c.read_response()
                self.assert_file_response(r, os.path.join(srv.root, name), body)
                self.assertFalse(r.has_token("Connection", "close"))
            self.assertEqual(r.header("Content-Type"), "text/plain; charset=utf-8")
            local = c.local_port
        lines = srv.wait_access_lines(3)
        ports = [parse_access_line(l)["port"] for l in lines]
        self.assertEqual(ports, [str(local)] * 3, "\n".join(lines))

    def test_keepalive_requests_session(self):
        srv = self.server()
        s = self.session()
        for name, body in (("a.txt", self.A), ("b.txt", self.B), ("c.txt", self.C)):
            r = s.get(srv.url("/" + name), timeout=20)
            self.assertEqual(r.status_code, 200)
            self.assertEqual(r.content, body)
        lines = srv.wait_access_lines(3)
        parsed = [parse_access_line(l) for l in lines]
        self.assertNotIn(None, parsed, "\n".join(lines))
        self.assertEqual(len(parsed), 3, "\n".join(lines))
        self.assertEqual(len({p["port"] for p in parsed}), 1,
                         "requests.Session used several connections:\n" + "\n".join(lines))

    def test_pipelining(self):
        srv = self.server()
        names = [("big.bin", self.big), ("a.txt", self.A), ("b.txt", self.B)]
        with Conn(srv.port) as c:
            c.send(b"".join(build_request("GET", "/" + n) for n, _ in names))
            for name, body in names:
                r = c.read_response()
                self.assert_file_response(r, os.path.join(srv.root, name), body)
            # And the connection is still usable afterwards.
            c.send(build_request("GET", "/c.txt"))
            self.assertEqual(c.read_response().body, self.C)

    def test_head(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send(build_request("HEAD", "/big.bin") + build_request("GET", "/big.bin")
                   + build_request("HEAD", "/a.txt") + build_request("GET", "/a.txt"))
            h1 = c.read_response(head=True)
            g1 = c.read_response()
            h2 = c.read_response(head=True)
            g2 = c.read_response()
        for h, g, name, body in ((h1, g1, "big.bin", self.big), (h2, g2, "a.txt", self.A)):
            self.assertEqual(h.status, 200)
            self.assert_file_response(g, os.path.join(srv.root, name), body)
            self.assertEqual(h.header("Content-Length"), str(len(body)))
            for k in ("Content-Type", "Content-Length", "Last-Modified", "Server"):
                self.assertEqual(h.header(k), g.header(k), "HEAD vs GET %s of %s" % (k, name))
            names_h = sorted(k.lower() for k, _ in h.headers)
            names_g = sorted(k.lower() for k, _ in g.headers)
            self.assertEqual(names_h, names_g, "HEAD and GET header sets differ")

    def test_http10_closes(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send(b"GET /a.txt HTTP/1.0\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.A)
            self.assertEqual(r.header("Content-Length"), str(len(self.A)))
            self.assert_closes(c, r)

    def test_http10_keepalive(self):
        srv = self.server()
        with Conn(srv.port) as c:
            for name, body in (("a.txt", self.A), ("b.txt", self.B)):
                c.send(("GET /%s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % name).encode())
                r = c.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, body)
                self.assertFalse(r.has_token("Connection", "close"), r.head)

    def test_request_split_into_single_bytes(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send_slowly(build_request("GET", "/a.txt", headers=[("User-Agent", "slow")]))
            r = c.read_response()
            self.assert_file_response(r, os.path.join(srv.root, "a.txt"), self.A)

    def test_body_discarded_content_length(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt", headers=[("Content-Length", "5")], body=b"hello")
                   + build_request("GET", "/b.txt"))
            self.assertEqual(c.read_response().body, self.A)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.B)

    def test_body_discarded_chunked(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt", headers=[("Transfer-Encoding", "chunked")],
                                 body=b"5\r\nhello\r\n0\r\n\r\n")
                   + build_request("GET", "/b.txt"))
            self.assertEqual(c.read_response().body, self.A)
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.B)

    def test_keepalive_requests_limit(self):
        srv = self.server(limits={"keepalive_requests": 2})
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt"))
            r = c.read_response()
            self.assertEqual(r.body, self.A)
            self.assertFalse(r.has_token("Connection", "close"))
            c.send(build_request("GET", "/b.txt"))
            r = c.read_response()
            self.assertEqual(r.body, self.B)
            self.assert_closes(c, r)

    def test_idle_connections_are_closed(self):
        """keepalive_timeout and header_timeout close every idle connection.

        One worker, so all connections share one worker's timers; the
        deadlines are hang guards (harness default 20 s), not speed checks.
        """
        srv = self.server(workers=1, limits={"keepalive_timeout": 1, "header_timeout": 1})
        silent = Conn(srv.port)      # connects, never sends a byte
        idle = Conn(srv.port)        # one request, then idle keep-alive
        partial = Conn(srv.port)     # half a request head, then nothing
        for c in (silent, idle, partial):
            self.addCleanup(c.close)
        idle.send(build_request("GET", "/a.txt"))
        self.assertEqual(idle.read_response().body, self.A)
        partial.send(b"GET /a.txt HTTP/1.1\r\nHost: x")
        self.assertTrue(idle.closed_by_peer(), "idle keep-alive connection never closed")
        self.assertTrue(silent.closed_by_peer(), "connection that sent nothing never closed")
        # A 408 before closing is allowed; silence is too.
        if not partial.closed_by_peer():
            self.assertTrue(partial.buf, "connection with a partial head never closed")
            r = partial.read_response()
            self.assertEqual(r.status, 408)
            self.assertTrue(partial.closed_by_peer(), "partial head: 408 sent but never closed")
        # The server is fine afterwards.
        self.assertEqual(get(srv.port, "/b.txt").body, self.B)


# ---------------------------------------------------------------------------
# Statuses and path safety
# ---------------------------------------------------------------------------

class StatusTest(CoreTestCase):

    def test_404_missing(self):
        srv = self.server()
        self.assert_error_page(get(srv.port, "/no-such-file.txt"), 404)
        self.assert_error_page(get(srv.port, "/no/such/dir/"), 404)
        # HEAD on an error: headers only.
        r = get(srv.port, "/no-such-file.txt", method="HEAD")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"")

    def test_403_unreadable(self):
        if not harness.is_root():
            self.skipTest("needs root (workers drop to 'nobody'; root ignores mode 000)")
        root = self.make_root()
        write(os.path.join(root, "secret.txt"), b"secret\n", mode=0o000)
        srv = self.server(root=root, user="nobody", log={"access": "off"})
        nobody = pwd.getpwnam("nobody").pw_uid
        # A worker exists (forked) a moment before it drops privileges.
        for pid in srv.worker_pids():
            wait_until(lambda: harness.proc_uid(pid) in ((nobody, nobody), None),
                       message="worker %d did not drop to nobody: uids %r"
                       % (pid, harness.proc_uid(pid)))
        self.assertEqual(get(srv.port, "/a.txt").body, self.A)
        self.assert_error_page(get(srv.port, "/secret.txt"), 403)

    def test_405_methods(self):
        srv = self.server()
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                r = get(srv.port, "/a.txt", method=method, headers=[("Content-Length", "0")])
                self.assert_error_page(r, 405)
                allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
                self.assertTrue({"GET", "HEAD"} <= allow, "Allow: %r" % r.header("Allow"))
                self.assertFalse(allow & {"POST", "PUT", "DELETE", "PATCH"}, r.header("Allow"))
        r = get(srv.port, "/a.txt", method="OPTIONS")
        self.assertTrue(r.status == 405 or 200 <= r.status < 300, r)
        allow = {m.strip() for m in (r.header("Allow") or "").split(",")}
        self.assertTrue({"GET", "HEAD"} <= allow, "OPTIONS Allow: %r" % r.header("Allow"))

    def bad_request(self, srv, data, status=400):
        r, c = fetch(srv.port, data)
        with c:
            self.assert_error_page(r, status)
            self.assert_closes(c, r)

    def test_400_garbage(self):
        srv = self.server()
        self.bad_request(srv, b"HELLO\r\n\r\n")

    def test_400_missing_host(self):
        srv = self.server()
        self.bad_request(srv, b"GET /a.txt HTTP/1.1\r\n\r\n")

    def test_400_te_and_cl(self):
        srv = self.server()
        self.bad_request(srv, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"Content-Length: 5\r\n\r\n0\r\n\r\n")

    def test_414_long_uri(self):
        srv = self.server()
        r, c = fetch(srv.port, build_request("GET", "/" + "a" * 10000))
        with c:
            self.assert_error_page(r, 414)

    def test_431_big_header(self):
        srv = self.server()
        r, c = fetch(srv.port, build_request("GET", "/a.txt", headers=[("X-Big", "b" * 10000)]))
        with c:
            self.assert_error_page(r, 431)

    def test_505_version(self):
        srv = self.server()
        for version in ("HTTP/2.0", "HTTP/3.0"):
            with self.subTest(version=version):
                r, c = fetch(srv.port, build_request("GET", "/a.txt", version=version))
                with c:
                    self.assert_error_page(r, 505)
        # RFC 9110 2.5: a higher minor version of HTTP/1 is answered as 1.1.
        r, c = fetch(srv.port, build_request("GET", "/a.txt", version="HTTP/1.2"))
        with c:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.A)

    def test_413_body_too_large(self):
        srv = self.server(limits={"max_body_size": 16})
        # At the limit: accepted and discarded.
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt", headers=[("Content-Length", "16")], body=b"x" * 16)
                   + build_request("GET", "/b.txt"))
            self.assertEqual(c.read_response().body, self.A)
            self.assertEqual(c.read_response().body, self.B)
        r, c = fetch(srv.port, build_request("GET", "/a.txt", headers=[("Content-Length", "1000")],
                                             body=b"x" * 1000))
        with c:
            self.assert_error_page(r, 413)
        chunked = b"64\r\n" + b"y" * 100 + b"\r\n0\r\n\r\n"
        r, c = fetch(srv.port, build_request("GET", "/a.txt", headers=[("Transfer-Encoding", "chunked")],
                                             body=chunked))
        with c:
            self.assert_error_page(r, 413)

    def test_301_directory_without_slash(self):
        srv = self.server()
        r = get(srv.port, "/sub")
        self.assertEqual(r.status, 301, r)
        loc = r.header("Location") or ""
        self.assertTrue(loc.endswith("/sub/"), "Location: %r" % loc)
        r = get(srv.port, "/sub/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Type"), HTML_UTF8)
        with open(os.path.join(srv.root, "sub", "index.html"), "rb") as f:
            self.assertEqual(r.body, f.read())
        r = get(srv.port, "/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"<title>top</title>", r.body)

    def test_dotfiles_404(self):
        root = self.make_root()
        write(os.path.join(root, ".secret"), b"dot secret\n")
        write(os.path.join(root, ".git", "config"), b"[core]\n")
        write(os.path.join(root, "sub", ".hidden"), b"hidden\n")
        srv = self.server(root=root)
        for path in ("/.secret", "/.git/config", "/sub/.hidden", "/.git/"):
            with self.subTest(path=path):
                self.assert_error_page(get(srv.port, path), 404)

    def test_percent_decoding_and_dot_segments(self):
        srv = self.server()
        for path, body in (("/a%20b.txt", b"space in name\n"), ("/%61.txt", self.A),
                           ("/./a.txt", self.A), ("/sub/../a.txt", self.A),
                           ("/sub/./../b.txt", self.B)):
            with self.subTest(path=path):
                r = get(srv.port, path)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, body)
        for path in ("/a.txt%00", "/a.txt%00.html", "/sub%2findex.html", "/sub%2Findex.html"):
            with self.subTest(path=path):
                self.assert_error_page(get(srv.port, path), 400)

    def test_traversal(self):
        srv = self.server()
        with open("/etc/passwd", "rb") as f:
            passwd = f.read()
        marker = passwd.split(b"\n")[0]
        deep = "../" * 12
        paths = [
            "/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc/passwd",
            "/" + deep + "etc/passwd", "/" + deep.replace("..", "%2e%2e") + "etc/passwd",
            "/sub/../../../../../../../../../../../etc/passwd",
            "/../outside.txt", "/%2e%2e/outside.txt", "/..%2foutside.txt", "/sub/../../outside.txt",
            "/.%2e/outside.txt", "/%2E%2E/outside.txt",
        ]
        for path in paths:
            with self.subTest(path=path):
                r = get(srv.port, path)
                self.assertIn(r.status, (400, 404), "%s -> %r" % (path, r))
                self.assertNotIn(marker, r.body)
                self.assertNotIn(b"OUTSIDE-THE-ROOT-SECRET", r.body)

    def test_symlink_out_of_root(self):
        root = self.make_root()
        os.symlink("/etc/passwd", os.path.join(root, "passwd"))
        os.symlink(os.path.dirname(root), os.path.join(root, "up"))
        os.symlink("/etc", os.path.join(root, "etc"))
        srv = self.server(root=root)
        with open("/etc/passwd", "rb") as f:
            marker = f.read().split(b"\n")[0]
        for path in ("/passwd", "/up/outside.txt", "/etc/passwd"):
            with self.subTest(path=path):
                r = get(srv.port, path)
                self.assert_error_page(r, 404)
                self.assertNotIn(marker, r.body)
                self.assertNotIn(b"OUTSIDE-THE-ROOT-SECRET", r.body)


# ---------------------------------------------------------------------------
# Access log
# ---------------------------------------------------------------------------

class AccessLogTest(CoreTestCase):

    def test_access_log(self):
        srv = self.server()
        expect = []  # (local port, request line, status, body bytes, referer, agent)

        def do(c, method, path, status, headers, version="HTTP/1.1"):
            c.send(build_request(method, path, version=version, headers=headers))
            r = c.read_response(head=(method == "HEAD"))
            self.assertEqual(r.status, status)
            h = dict(headers)
            expect.append((c.local_port, "%s %s %s" % (method, path, version), status,
                           len(r.body) if method != "HEAD" else None,
                           h.get("Referer", "-"), h.get("User-Agent", "-")))

        def conn():
            # Kept open until the test ends, so no two connections can
            # share a client port.
            c = Conn(srv.port)
            self.addCleanup(c.close)
            return c

        c = conn()
        do(c, "GET", "/a.txt", 200, [("User-Agent", "it-agent/1.0 (test)"),
                                     ("Referer", "http://example.test/from?x=1")])
        do(c, "GET", "/b.txt", 200, [("User-Agent", "it-agent/1.0 (test)")])
        do(conn(), "GET", "/missing.txt", 404, [])
        c = conn()
        do(c, "HEAD", "/big.bin", 200, [("User-Agent", "curl/7.88.1")])
        do(c, "GET", "/big.bin", 200, [("User-Agent", "curl/7.88.1")])
        do(conn(), "GET", "/c.txt", 200, [("User-Agent", "x")], version="HTTP/1.0")
        t0 = datetime.datetime.now(datetime.timezone.utc)

        self.assertEqual(srv.stop(), 0, srv.stderr_text())
        lines = srv.access_lines()
        self.assertEqual(len(lines), len(expect), "\n".join(lines))
        parsed = [parse_access_line(l) for l in lines]
        for line, f in zip(lines, parsed):
            self.assertIsNotNone(f, "unparseable access log line: %r" % line)
        # Each worker buffers its own lines, so lines from different
        # connections may interleave in any order; within one connection
        # (one worker) they follow the requests.
        by_port = {}
        for f in parsed:
            by_port.setdefault(f["port"], []).append(f)
        for port, req, status, nbytes, referer, agent in expect:
            with self.subTest(request=req):
                self.assertTrue(by_port.get(str(port)),
                                "no line for client port %d:\n%s" % (port, "\n".join(lines)))
                f = by_port[str(port)].pop(0)
                self.assertEqual((f["host"], f["ident"], f["user"]), ("127.0.0.1", "-", "-"))
                self.assertEqual(f["request"], req)
                self.assertEqual(int(f["status"]), status)
                if nbytes is None:  # HEAD: no body bytes sent
                    self.assertIn(f["bytes"], ("0", "-"))
                else:
                    self.assertEqual(f["bytes"], str(nbytes))
                self.assertEqual(f["referer"], referer)
                self.assertEqual(f["agent"], agent)
                self.assertEqual(f["port"], str(port))
                when = datetime.datetime.strptime(f["time"], "%d/%b/%Y:%H:%M:%S %z")
                self.assertLess(abs((when - t0).total_seconds()), 3600, f["time"])

    def test_access_log_quotes_escaped(self):
        srv = self.server()
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt", headers=[("User-Agent", 'evil" 200 0 "x'),
                                                            ("Referer", 'r"ef')]))
            self.assertEqual(c.read_response().status, 200)
            port = c.local_port
        lines = srv.wait_access_lines(1)
        f = parse_access_line(lines[0])
        self.assertIsNotNone(f, "line with quotes in User-Agent does not parse: %r" % lines[0])
        self.assertEqual((f["status"], f["port"]), ("200", str(port)))
        self.assertIn("evil", f["agent"])


# ---------------------------------------------------------------------------
# Processes and signals
# ---------------------------------------------------------------------------

class ProcessTest(CoreTestCase):

    def test_worker_killed_is_replaced(self):
        srv = self.server(workers=2)
        before = srv.worker_pids()
        self.assertEqual(len(before), 2)
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        after = wait_until(
            lambda: (lambda p: p if victim not in p and len(p) == 2 else None)(srv.worker_pids()),
            message="killed worker %d not replaced: workers now %r" % (victim, srv.worker_pids()))
        self.assertTrue(set(after) - set(before), "no new worker pid")
        self.assertTrue(srv.running(), "master died")
        for _ in range(6):
            self.assertEqual(get(srv.port, "/a.txt").body, self.A)
        exit_words = r"(exit|signal|kill|died|dead|terminat|crash)"
        srv.wait_for_stderr(re.compile(r"(\b%d\b.*%s|%s.*\b%d\b)" % (victim, exit_words, exit_words, victim),
                                       re.IGNORECASE))

    def test_out_of_descriptors_keeps_serving(self):
        # 48 descriptors: keep-alive connections use them up and accept()
        # fails with EMFILE. The worker must say so, make room by closing
        # its oldest idle connection, pause accepting (not spin on the
        # connection still queued) and answer everyone in turn.
        srv = self.server(workers=1, command_prefix=["prlimit", "--nofile=48:48", "--"])
        worker = srv.worker_pids()
        conns = []
        try:
            for i in range(45):
                c = Conn(srv.port)
                conns.append(c)
                self.assertTrue(c.send(build_request("GET", "/a.txt")))
                self.assertEqual(c.read_response().body, self.A, "connection %d" % i)
            srv.wait_for_stderr(re.compile(r"crit: accept on 127\.0\.0\.1:\d+: Too many open files"))
            # Room was made from the oldest idle connections, not the newest.
            self.assertTrue(conns[0].closed_by_peer(), "oldest idle connection kept")
            self.assertEqual(srv.worker_pids(), worker, "the worker died")
            self.assertEqual(get(srv.port, "/b.txt").body, self.B)
        finally:
            for c in conns:
                c.close()

    def stop_with(self, sig):
        srv = self.server(workers=2, shutdown_timeout=5)
        workers = srv.worker_pids()
        self.assertEqual(len(workers), 2)
        # An idle keep-alive connection must not keep the server alive.
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/a.txt"))
            self.assertEqual(c.read_response().body, self.A)
            rc = srv.stop(sig)
            self.assertEqual(rc, 0, "master exit status after %s\n%s" % (sig.name, srv.stderr_text()))
            alive = [p for p in workers if pid_alive(p)]
            self.assertEqual(alive, [], "workers alive after the master exited")
            self.assertEqual(srv.processes(), [], "processes left behind")
            self.assertTrue(c.closed_by_peer(), "connection still open after shutdown")
        for line in srv.stderr_lines():
            self.assertRegex(line, harness.ERROR_LOG_RE, "stderr line not in the error-log format")

    def test_sigterm_stops_everything(self):
        self.stop_with(signal.SIGTERM)

    def test_sigint_stops_everything(self):
        self.stop_with(signal.SIGINT)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

class CommandLineTest(CoreTestCase):

    def test_version(self):
        p = harness.run_porter("-V")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "porter 0.1.0")

    def test_help(self):
        p = harness.run_porter("-h")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("usage", (p.stdout + p.stderr).lower())

    def test_config_check_good(self):
        srv = harness.Server(self.make_root())
        self.addCleanup(srv.close)
        p = harness.check_config(srv.conf_path)
        self.assertEqual(p.returncode, 0, "porter -t rejected:\n%s\n%s" % (srv.config_text, p.stderr))

    def test_config_check_syntax_error(self):
        d = self.make_tempdir()
        path = os.path.join(d, "broken.conf")
        write(path, 'listen = [ "127.0.0.1:0" ];\nroot = "%s";\nworkers = 2\nindex = [ "index.html" ];\n'
                    'this is not libconfig;\n' % d)
        p = harness.check_config(path)
        self.assertEqual(p.returncode, 1, p.stderr)
        # libconfig reports the line where it noticed the error; 4 or 5 here.
        self.assertRegex(p.stderr, r"%s:[45]: \S" % re.escape(path))

    def test_config_check_bad_value(self):
        d = self.make_tempdir()
        path = os.path.join(d, "bad.conf")
        write(path, 'listen = [ "127.0.0.1:0" ];\nroot = "%s";\n\nworkers = "two";\n' % d)
        p = harness.check_config(path)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"%s:4: \S" % re.escape(path))


if __name__ == "__main__":
    harness.require_binary()
    unittest.main(verbosity=2)
