"""The open-file cache must never serve stale or wrong bytes.

porter keeps hot files (their fd, stat and, when small, their bytes) in a
per-worker cache invalidated through inotify. These tests change files in
every way a deploy does and ask again at once, on the same keep-alive
connection to the same single worker, so a stale entry would be served.
"""

import gzip
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PorterTestCase, Conn, build_request, require_binary, write_file  # noqa: E402

ROUNDS = 40


write = write_file


class FileCacheTest(PorterTestCase):

    def setUp(self):
        self.srv = self.start_server(workers=1)
        self.root = self.srv.root
        self.conn = Conn(self.srv.port)
        self.addCleanup(self.conn.close)

    def get(self, path, headers=None):
        self.assertTrue(self.conn.send(build_request("GET", path, headers=headers)))
        return self.conn.read_response()

    def assert_body(self, path, want, headers=None):
        r = self.get(path, headers)
        self.assertEqual(r.status, 200, path)
        self.assertEqual(r.body, want, path)
        return r

    def test_in_place_rewrite_same_size(self):
        p = os.path.join(self.root, "page.html")
        for i in range(ROUNDS):
            # Same length every time: only the bytes (and mtime) change.
            body = (b"version %04d " % i) * 50
            write(p, body)
            self.assert_body("/page.html", body)

    def test_large_file_rewritten(self):
        # Bigger than the in-memory limit: served from the cached fd.
        p = os.path.join(self.root, "big.bin")
        for i in range(5):
            body = bytes([65 + i]) * (300 * 1024)
            write(p, body)
            self.assert_body("/big.bin", body)

    def test_atomic_rename_over(self):
        p = os.path.join(self.root, "app.js")
        for i in range(ROUNDS):
            body = b"console.log(%d);\n" % i
            tmp = p + ".tmp"
            write(tmp, body)
            os.replace(tmp, p)
            self.assert_body("/app.js", body)

    def test_delete_and_recreate(self):
        p = os.path.join(self.root, "gone.txt")
        write(p, b"here\n")
        self.assert_body("/gone.txt", b"here\n")
        os.unlink(p)
        self.assertEqual(self.get("/gone.txt").status, 404)
        write(p, b"back\n")
        self.assert_body("/gone.txt", b"back\n")

    def test_missing_then_created(self):
        self.assertEqual(self.get("/later.txt").status, 404)
        self.assertEqual(self.get("/later.txt").status, 404)
        write(os.path.join(self.root, "later.txt"), b"now\n")
        self.assert_body("/later.txt", b"now\n")

    def test_directory_swap(self):
        # The classic deploy: mv release old && mv new release.
        for name, body in (("release", b"one\n"), ("next", b"two\n")):
            os.mkdir(os.path.join(self.root, name))
            write(os.path.join(self.root, name, "index.html"), body)
        self.assert_body("/release/", b"one\n")
        self.assert_body("/release/index.html", b"one\n")
        os.rename(os.path.join(self.root, "release"), os.path.join(self.root, "old"))
        os.rename(os.path.join(self.root, "next"), os.path.join(self.root, "release"))
        self.assert_body("/release/", b"two\n")
        self.assert_body("/release/index.html", b"two\n")
        self.assert_body("/old/index.html", b"one\n")

    def test_symlink_swap(self):
        for name, body in (("r1", b"first\n"), ("r2", b"second\n")):
            os.mkdir(os.path.join(self.root, name))
            write(os.path.join(self.root, name, "page.html"), body)
        link = os.path.join(self.root, "current")
        os.symlink("r1", link)
        self.assert_body("/current/page.html", b"first\n")
        tmp = link + ".new"
        os.symlink("r2", tmp)
        os.replace(tmp, link)
        self.assert_body("/current/page.html", b"second\n")

    def test_validators_follow_mtime(self):
        p = os.path.join(self.root, "v.txt")
        write(p, b"same bytes\n")
        os.utime(p, (1_700_000_000, 1_700_000_000))
        r1 = self.assert_body("/v.txt", b"same bytes\n")
        os.utime(p, (1_800_000_000, 1_800_000_000))
        r2 = self.assert_body("/v.txt", b"same bytes\n")
        self.assertNotEqual(r1.header("ETag"), r2.header("ETag"))
        self.assertNotEqual(r1.header("Last-Modified"), r2.header("Last-Modified"))
        # The old validator no longer matches: a full response, not 304.
        r3 = self.get("/v.txt", headers=[("If-None-Match", r1.header("ETag"))])
        self.assertEqual(r3.status, 200)

    def test_gzip_follows_changes(self):
        p = os.path.join(self.root, "style.css")
        for i in range(10):
            body = (b"body { margin: %dpx; }\n" % i) * 40
            write(p, body)
            r = self.get("/style.css", headers=[("Accept-Encoding", "gzip")])
            self.assertEqual(r.status, 200)
            self.assertEqual(r.header("Content-Encoding"), "gzip")
            self.assertEqual(gzip.decompress(r.body), body)

    def test_index_appears_and_disappears(self):
        d = os.path.join(self.root, "docs")
        os.mkdir(d)
        write(os.path.join(d, "other.txt"), b"x\n")
        self.assertEqual(self.get("/docs/").status, 403)
        write(os.path.join(d, "index.html"), b"index\n")
        self.assert_body("/docs/", b"index\n")
        os.unlink(os.path.join(d, "index.html"))
        self.assertEqual(self.get("/docs/").status, 403)

    def test_precompressed_sibling_appears_and_goes(self):
        # Sibling lookups are cached too, found or not.
        p = os.path.join(self.root, "lib.js")
        body = b"function f() { return 42; }\n" * 30
        write(p, body)
        os.utime(p, (1_700_000_000, 1_700_000_000))
        ae = [("Accept-Encoding", "gzip")]
        r = self.get("/lib.js", ae)
        self.assertEqual(gzip.decompress(r.body), body)     # made on the fly
        made = r.body
        sib = gzip.compress(body, mtime=0) + b""  # different bytes from ours
        self.assertNotEqual(sib, made)
        write(p + ".gz", sib)
        os.utime(p + ".gz", (1_700_000_100, 1_700_000_100))
        self.assertEqual(self.get("/lib.js", ae).body, sib)  # the sibling now
        # Older than the original: stale, not used.
        os.utime(p + ".gz", (1_600_000_000, 1_600_000_000))
        self.assertNotEqual(self.get("/lib.js", ae).body, sib)
        os.utime(p + ".gz", (1_700_000_100, 1_700_000_100))
        self.assertEqual(self.get("/lib.js", ae).body, sib)
        os.unlink(p + ".gz")
        r = self.get("/lib.js", ae)
        self.assertNotEqual(r.body, sib)
        self.assertEqual(gzip.decompress(r.body), body)

    def test_error_page_follows_edits(self):
        # A site's error pages come through the same cache as its files:
        # in memory when small, by descriptor when not, never stale.
        srv = self.start_server(workers=1, error_pages={"e404": "/errors/404.html"})
        p = os.path.join(srv.root, "errors", "404.html")
        with Conn(srv.port) as c:
            for i, size in enumerate((120, 120, 5000, 20000, 300)):
                body = (b"missing %03d " % i) * (size // 12)
                write(p, body)
                for method in ("GET", "HEAD"):
                    c.send(build_request(method, "/nope.html"))
                    r = c.read_response(head=method == "HEAD")
                    self.assertEqual(r.status, 404)
                    self.assertEqual(r.header("Content-Length"), str(len(body)))
                    if method == "GET":
                        self.assertEqual(r.body, body)
            os.unlink(p)
            c.send(build_request("GET", "/nope.html"))
            r = c.read_response()
            self.assertEqual(r.status, 404)
            self.assertIn(b"404 Not Found", r.body)     # the built-in page

    def test_error_page_that_is_the_file_itself(self):
        # A 412 for /412.html answers with /412.html: the response and the
        # request's lookup share one cache entry, and both must let go.
        srv = self.start_server(workers=1, error_pages={"e412": "/412.html"})
        p = os.path.join(srv.root, "412.html")
        write(p, b"first\n")
        worker = srv.worker_pids()[0]
        fail = [("If-Match", '"nope"')]
        with Conn(srv.port) as c:
            for body in (b"first\n", b"second\n"):
                if body != b"first\n":
                    write(p + ".new", body)
                    os.rename(p + ".new", p)
                for _ in range(5):
                    c.send(build_request("GET", "/412.html", headers=fail))
                    r = c.read_response()
                    self.assertEqual((r.status, r.body), (412, body))
            # One more answer on this connection: the responses before it
            # have been released by then.
            c.send(build_request("GET", "/412.html"))
            self.assertEqual(c.read_response().body, b"second\n")
        held = []
        for n in os.listdir("/proc/%d/fd" % worker):
            try:
                held.append(os.readlink("/proc/%d/fd/%s" % (worker, n)))
            except OSError:
                pass
        # The replaced file is closed: nothing holds a reference to it.
        self.assertEqual([t for t in held if t.startswith(p) and "deleted" in t], [])


if __name__ == "__main__":
    require_binary()
    unittest.main(verbosity=2)
