"""The open-file cache must follow changes made by any route.

Two kinds of change the cache used to miss:

* Changes inotify never reports (a write through a hard link outside the
  watched directories, or another host on a network filesystem): a hot
  entry is revalidated with fstatat() about once a second, so these tests
  poll with a generous bound (POLL_S) and never rely on timing otherwise.
  Whatever is sent meanwhile must never pair one version's length and
  validators with another version's bytes.

* Watches that went on naming the old inode after a directory, or one of
  its ancestors, was renamed, deleted or replaced: changes inside the new
  directory must be seen at once, like any other inotify-visible change,
  so those assertions do not poll.

And the document root itself, renamed away and replaced (or a symlink
root swapped), is followed within the worker's tick: polled.
"""

import os
import shutil
import signal
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (PorterTestCase, Conn, ConnectionClosed, build_request,  # noqa: E402
                     write_file)

# An upper bound that only a broken build reaches; the expected delay is
# about one second (the revalidation interval, the worker's tick).
POLL_S = 10.0

write = write_file


def overwrite(path, data):
    """Rewrite path's inode in place (no new inode, no rename)."""
    with open(path, "r+b") as f:
        f.truncate(0)
        f.write(data)


class CacheTestBase(PorterTestCase):

    def get_once(self, path, conn=None):
        c = conn if conn is not None else Conn(self.srv.port)
        try:
            self.assertTrue(c.send(build_request("GET", path)))
            return c.read_response()
        finally:
            if conn is None:
                c.close()

    def assert_consistent(self, r):
        """A response's framing must describe its bytes."""
        if r.status == 200:
            self.assertEqual(int(r.header("Content-Length")), len(r.body))

    def poll_body(self, path, want):
        """GET path on fresh connections until the body is want.

        A response cut short (the file shrank under a sendfile) is the
        only acceptable failure meanwhile; a complete one must be
        consistent. Returns the matching response."""
        deadline = time.monotonic() + POLL_S
        last = None
        while True:
            try:
                r = self.get_once(path)
                self.assert_consistent(r)
                last = (r.status, r.body[:40], len(r.body))
                if r.status == 200 and r.body == want:
                    return r
            except ConnectionClosed:
                last = "closed"
            if time.monotonic() > deadline:
                self.fail("%s never served the new content (last: %r)" % (path, last))
            time.sleep(0.05)

    def poll_status(self, path, status):
        deadline = time.monotonic() + POLL_S
        while True:
            r = self.get_once(path)
            if r.status == status:
                return r
            if time.monotonic() > deadline:
                self.fail("%s: %d, never %d" % (path, r.status, status))
            time.sleep(0.05)


class HardLinkTest(CacheTestBase):
    """Failure 4: an edit through another name of the same inode."""

    def setUp(self):
        self.srv = self.start_server(workers=1)
        self.root = self.srv.root
        self.outside = self.make_tempdir()

    def linked(self, name, data):
        p = os.path.join(self.root, name)
        write(p, data)
        alias = os.path.join(self.outside, name)
        os.link(p, alias)
        return alias

    def warm(self, path, want):
        conn = Conn(self.srv.port)
        self.addCleanup(conn.close)
        for _ in range(3):
            r = self.get_once(path, conn)
            self.assertEqual(r.body, want)
        return r

    def test_small_file_edited_through_hard_link(self):
        old, new = b"old version\n" * 10, b"NEW VERSION\n" * 10
        alias = self.linked("page.html", old)
        r1 = self.warm("/page.html", old)
        overwrite(alias, new)
        r2 = self.poll_body("/page.html", new)
        self.assertNotEqual(r1.header("ETag"), r2.header("ETag"))

    def test_small_file_grown_through_hard_link(self):
        old, new = b"a" * 100, b"b" * 3000
        alias = self.linked("grow.txt", old)
        self.warm("/grow.txt", old)
        overwrite(alias, new)
        self.poll_body("/grow.txt", new)

    def test_large_file_grown_through_hard_link(self):
        old, new = b"A" * (300 * 1024), b"B" * (400 * 1024)
        alias = self.linked("big.bin", old)
        r1 = self.warm("/big.bin", old)
        overwrite(alias, new)
        r2 = self.poll_body("/big.bin", new)
        self.assertNotEqual(r1.header("ETag"), r2.header("ETag"))

    def test_large_file_shrunk_through_hard_link(self):
        old, new = b"A" * (300 * 1024), b"C" * (100 * 1024)
        alias = self.linked("shrink.bin", old)
        self.warm("/shrink.bin", old)
        overwrite(alias, new)
        # Until revalidated, the old length may be promised: then the
        # connection must close short, never pad (poll_body checks).
        self.poll_body("/shrink.bin", new)

    def test_large_file_edit_seen_by_the_next_response(self):
        """A file sent from its descriptor (too big to keep in memory):
        the first response after an edit through a hard link is the new
        version whole, with its own validator, not the old ETag and
        length over the new bytes (nor a connection cut short)."""
        for old, new in ((b"A" * (300 * 1024), b"B" * (400 * 1024)),
                         (b"C" * (300 * 1024), b"D" * (100 * 1024)),
                         (b"E" * (64 * 1024), b"F" * (64 * 1024))):
            with self.subTest(old=len(old), new=len(new)):
                name = "next-%s.bin" % old[:1].decode()
                alias = self.linked(name, old)
                r1 = self.warm("/" + name, old)
                overwrite(alias, new)
                r2 = self.get_once("/" + name)
                self.assertEqual((r2.status, len(r2.body), r2.body == new),
                                 (200, len(new), True))
                self.assertNotEqual(r1.header("ETag"), r2.header("ETag"))

    def test_hard_link_edit_then_not_modified_is_fresh(self):
        old, new = b"one\n" * 20, b"two\n" * 20
        alias = self.linked("v.txt", old)
        r1 = self.warm("/v.txt", old)
        overwrite(alias, new)
        self.poll_body("/v.txt", new)
        # The old validator must no longer match.
        c = Conn(self.srv.port)
        self.addCleanup(c.close)
        self.assertTrue(c.send(build_request("GET", "/v.txt",
                                             headers=[("If-None-Match", r1.header("ETag"))])))
        r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, new)


class ChangeWhileSendingTest(CacheTestBase):
    """A file that changes under a sendfile in flight: the framing holds.

    The client reads the head, then stops reading, so the rest of the
    body waits in the server (a file far larger than the socket buffers
    can hold); the file is changed; then the client reads on."""

    SIZE = 48 * 1024 * 1024

    def setUp(self):
        self.srv = self.start_server(workers=1)
        self.path = os.path.join(self.srv.root, "huge.bin")
        write(self.path, b"")
        with open(self.path, "wb") as f:
            f.truncate(self.SIZE)    # sparse: zeros, no disk used

    def start_sending(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(POLL_S)
        s.connect(("127.0.0.1", self.srv.port))
        self.addCleanup(s.close)
        s.sendall(build_request("GET", "/huge.bin"))
        head = b""
        while b"\r\n\r\n" not in head:
            got = s.recv(4096)
            self.assertTrue(got, "closed before the head")
            head += got
        head, _, rest = head.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % self.SIZE, head)
        return s, len(rest)

    def read_until_close_or(self, s, limit):
        n = 0
        while n < limit:
            got = s.recv(min(1 << 20, limit - n))
            if not got:
                return n, True
            n += len(got)
        return n, False

    def test_shrunk_mid_send_closes_short(self):
        s, got = self.start_sending()
        os.truncate(self.path, 1024 * 1024)
        n, closed = self.read_until_close_or(s, self.SIZE - got)
        # Never padded to the promised length: cut short and closed.
        self.assertTrue(closed)
        self.assertLess(got + n, self.SIZE)

    def test_grown_mid_send_sends_promised_length(self):
        s, got = self.start_sending()
        with open(self.path, "ab") as f:
            f.write(b"X" * (1024 * 1024))
        n, closed = self.read_until_close_or(s, self.SIZE - got)
        self.assertFalse(closed)
        self.assertEqual(got + n, self.SIZE)
        # Not one byte more: the next response starts right after.
        s.sendall(build_request("HEAD", "/huge.bin"))
        self.assertTrue(s.recv(64).startswith(b"HTTP/1.1 200 "))


class WatchFollowTest(CacheTestBase):
    """Failure 5: watches must follow what their paths name now."""

    def setUp(self):
        self.srv = self.start_server(workers=1)
        self.root = self.srv.root
        self.conn = Conn(self.srv.port)
        self.addCleanup(self.conn.close)

    def get(self, path):
        return self.get_once(path, self.conn)

    def assert_body(self, path, want):
        r = self.get(path)
        self.assertEqual((r.status, r.body), (200, want), path)

    def assert_tree_live(self, d, url):
        """Edits, deletions and new files inside d are seen at once."""
        page = os.path.join(d, "page.html")
        for i in range(3):
            body = b"edit %d\n" % i
            overwrite(page, body)
            self.assert_body(url + "page.html", body)
        os.unlink(page)
        self.assertEqual(self.get(url + "page.html").status, 404)
        self.assertEqual(self.get(url + "new.html").status, 404)
        write(os.path.join(d, "new.html"), b"new\n")
        self.assert_body(url + "new.html", b"new\n")

    def make_dir(self, path, body):
        os.makedirs(path)
        write(os.path.join(path, "page.html"), body)

    def test_subdirectory_replaced_by_rename(self):
        site = os.path.join(self.root, "site")
        self.make_dir(site, b"one\n")
        self.make_dir(os.path.join(self.root, "site-new"), b"two\n")
        self.assert_body("/site/page.html", b"one\n")
        os.rename(site, os.path.join(self.root, "site-old"))
        os.rename(os.path.join(self.root, "site-new"), site)
        self.assert_body("/site/page.html", b"two\n")
        self.assert_tree_live(site, "/site/")
        # The old tree, now under another name, is still right too.
        self.assert_body("/site-old/page.html", b"one\n")
        overwrite(os.path.join(self.root, "site-old", "page.html"), b"old edit\n")
        self.assert_body("/site-old/page.html", b"old edit\n")

    def test_ancestor_of_nested_directory_replaced(self):
        deep = os.path.join(self.root, "a", "b", "c")
        self.make_dir(deep, b"one\n")
        self.make_dir(os.path.join(self.root, "a2", "b", "c"), b"two\n")
        self.assert_body("/a/b/c/page.html", b"one\n")
        os.rename(os.path.join(self.root, "a"), os.path.join(self.root, "a-old"))
        os.rename(os.path.join(self.root, "a2"), os.path.join(self.root, "a"))
        self.assert_body("/a/b/c/page.html", b"two\n")
        self.assert_tree_live(deep, "/a/b/c/")

    def test_middle_directory_replaced(self):
        deep = os.path.join(self.root, "a", "b", "c")
        self.make_dir(deep, b"one\n")
        self.make_dir(os.path.join(self.root, "a", "b2", "c"), b"two\n")
        self.assert_body("/a/b/c/page.html", b"one\n")
        os.rename(os.path.join(self.root, "a", "b"), os.path.join(self.root, "a", "b-old"))
        os.rename(os.path.join(self.root, "a", "b2"), os.path.join(self.root, "a", "b"))
        self.assert_body("/a/b/c/page.html", b"two\n")
        self.assert_tree_live(deep, "/a/b/c/")

    def test_directory_deleted_and_recreated(self):
        d = os.path.join(self.root, "d")
        self.make_dir(os.path.join(d, "sub"), b"one\n")
        self.assert_body("/d/sub/page.html", b"one\n")
        shutil.rmtree(d)
        self.assertEqual(self.get("/d/sub/page.html").status, 404)
        self.make_dir(os.path.join(d, "sub"), b"two\n")
        self.assert_body("/d/sub/page.html", b"two\n")
        self.assert_tree_live(os.path.join(d, "sub"), "/d/sub/")

    def test_directory_moved_in_from_outside(self):
        outside = self.make_tempdir()
        d = os.path.join(self.root, "in")
        self.make_dir(d, b"one\n")
        self.assert_body("/in/page.html", b"one\n")
        os.rename(d, os.path.join(outside, "was-in"))
        self.assertEqual(self.get("/in/page.html").status, 404)
        self.make_dir(os.path.join(outside, "new"), b"two\n")
        os.rename(os.path.join(outside, "new"), d)
        self.assert_body("/in/page.html", b"two\n")
        self.assert_tree_live(d, "/in/")
        # Edits to the tree moved out are no business of ours any more.
        overwrite(os.path.join(outside, "was-in", "page.html"), b"elsewhere\n")
        self.assertEqual(self.get("/in/page.html").status, 404)

    def test_queue_overflow_drops_every_watch(self):
        try:
            with open("/proc/sys/fs/inotify/max_queued_events") as f:
                limit = int(f.read())
        except OSError:
            self.skipTest("no /proc/sys/fs/inotify/max_queued_events")
        if limit > 200000:
            self.skipTest("inotify queue too long to overflow quickly")
        d = os.path.join(self.root, "sub")
        self.make_dir(d, b"one\n")
        a, b = os.path.join(self.root, "a.txt"), os.path.join(self.root, "b.txt")
        write(a, b"a")
        write(b, b"b")
        self.assert_body("/sub/page.html", b"one\n")
        self.assert_body("/a.txt", b"a")
        (pid,) = self.srv.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        try:
            # Alternating names: identical consecutive events are merged.
            for i in range(limit // 2 + 100):
                os.utime(a, (i, i))
                os.utime(b, (i, i))
            # Lost in the overflow: the rename that replaces sub/.
            os.rename(d, os.path.join(self.root, "sub-old"))
            self.make_dir(d, b"two\n")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assert_body("/sub/page.html", b"two\n")
        self.assert_tree_live(d, "/sub/")


class RootFollowTest(CacheTestBase):
    """The site root renamed away and replaced: followed within a tick."""

    def test_root_replaced_by_rename(self):
        base = self.make_tempdir()
        root = os.path.join(base, "site")
        write(os.path.join(root, "index.html"), b"one\n")
        write(os.path.join(root, "sub", "page.html"), b"sub one\n")
        self.srv = self.start_server(root=root, workers=1)
        conn = Conn(self.srv.port)
        self.addCleanup(conn.close)
        self.assertEqual(self.get_once("/", conn).body, b"one\n")
        self.assertEqual(self.get_once("/sub/page.html", conn).body, b"sub one\n")
        write(os.path.join(base, "site-new", "index.html"), b"two\n")
        write(os.path.join(base, "site-new", "only-new.html"), b"fresh\n")
        os.rename(root, os.path.join(base, "site-old"))
        os.rename(os.path.join(base, "site-new"), root)
        self.poll_body("/", b"two\n")
        self.assertEqual(self.get_once("/only-new.html").body, b"fresh\n")
        self.assertEqual(self.get_once("/sub/page.html").status, 404)
        # Once followed, the new root is watched like the old one was.
        overwrite(os.path.join(root, "index.html"), b"three\n")
        self.assertEqual(self.get_once("/", conn).body, b"three\n")

    def test_symlink_root_swapped(self):
        base = self.make_tempdir()
        write(os.path.join(base, "r1", "index.html"), b"first\n")
        write(os.path.join(base, "r2", "index.html"), b"second\n")
        link = os.path.join(base, "current")
        os.symlink("r1", link)
        self.srv = self.start_server(root=link, workers=1)
        self.assertEqual(self.get_once("/").body, b"first\n")
        os.symlink("r2", link + ".new")
        os.replace(link + ".new", link)
        self.poll_body("/", b"second\n")
        overwrite(os.path.join(base, "r2", "index.html"), b"edited\n")
        self.assertEqual(self.get_once("/").body, b"edited\n")


if __name__ == "__main__":
    unittest.main()
