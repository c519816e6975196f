#!/usr/bin/python3
"""Integration tests for a site's HTTPS policy, with real TLS:

- ``redirect_https``: plain-HTTP requests get 301 (GET, HEAD) or 308
  (others) to https:// with the validated host (never a Host the
  configuration does not know), the TLS port when it is not 443, path and
  query; ACME challenges are still served over plain HTTP; curl follows
  the redirect to the page.
- ``hsts``: Strict-Transport-Security on every response over TLS, errors
  and parse failures included, never over plain HTTP.

A throwaway CA is made per run (tests/unit/fixtures/tls-mkca.sh).

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_https_policy.py
"""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, DEFAULT_TIMEOUT, build_request  # noqa: E402

CA = None
HSTS = "max-age=63072000; includeSubDomains"


def fixtures():
    d = os.environ.get("FIXTURES")
    if d:
        return d
    return os.path.join(harness.srcdir(), "tests", "unit", "fixtures")


def setUpModule():
    global CA
    CA = tempfile.mkdtemp(prefix="porter-https-ca-")
    subprocess.run(["sh", os.path.join(fixtures(), "tls-mkca.sh"), CA], check=True,
                   capture_output=True)


def tearDownModule():
    if CA:
        shutil.rmtree(CA, True)


def ca(name):
    return os.path.join(CA, name)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class TLSConn(harness.Conn):
    """harness.Conn over TLS, trusting the test CA."""

    def __init__(self, port, server_hostname="example.org", timeout=DEFAULT_TIMEOUT):
        super().__init__(port, timeout=timeout)
        ctx = ssl.create_default_context(cafile=ca("root.pem"))
        self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)


def exchange(conn, data, head=False):
    try:
        conn.send(data)
        return conn.read_response(head=head)
    finally:
        conn.close()


class Policy(harness.PorterTestCase):

    def start(self, **site):
        """Plain and TLS listeners on fixed ports (the redirect names the
        TLS one); one site, example.org, with a certificate and site's keys."""
        last = None
        for _ in range(5):
            self.plain, self.tls = free_port(), free_port()
            s = {"names": ["example.org", "www.example.org"],
                 "tls": {"certificate": ca("ec-full.pem"), "key": ca("ec.key")}}
            s.update(site)
            srv = self.start_server(start=False, listen=[
                "%s:%d" % (HOST, self.plain),
                {"address": "%s:%d" % (HOST, self.tls), "tls": True}],
                sites=[s, {"names": ["other.test"]}])
            try:
                srv.start()
                harness.write_file(os.path.join(srv.root, "index.html"), b"hello")
                return srv
            except harness.ServerError as e:
                last = e
        raise last

    def plain_req(self, method="GET", path="/", host="example.org", body=b"", headers=None):
        c = harness.Conn(self.plain)
        return exchange(c, build_request(method, path, host=host, body=body,
                                         headers=headers), head=(method == "HEAD"))

    def tls_req(self, data, head=False):
        return exchange(TLSConn(self.tls), data, head=head)

    def test_redirect(self):
        self.start(redirect_https=True)
        loc = "https://example.org:%d" % self.tls
        for method, status in (("GET", 301), ("HEAD", 301)):
            r = self.plain_req(method, "/a/b?x=1&y=%41")
            self.assertEqual(r.status, status, method)
            self.assertEqual(r.header("Location"), loc + "/a/b?x=1&y=%41")
            self.assertIsNone(r.header("Strict-Transport-Security"))
        r = self.plain_req("POST", "/form", body=b"a=1", headers={"Content-Length": "3"})
        self.assertEqual(r.status, 308)
        self.assertEqual(r.header("Location"), loc + "/form")
        # A name of the site, as sent (case folded, port dropped).
        r = self.plain_req(host="WWW.example.org:%d" % self.plain)
        self.assertEqual(r.header("Location"), "https://www.example.org:%d/" % self.tls)

    def test_redirect_never_to_an_unknown_host(self):
        # The site is the default one (the first): a Host nobody claims
        # reaches it, and the redirect names the site, not that Host.
        self.start(redirect_https=True)
        r = self.plain_req(host="evil.test")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://example.org:%d/" % self.tls)
        # A site without redirect_https serves plain HTTP as before.
        r = self.plain_req(host="other.test")
        self.assertEqual((r.status, r.body), (200, b"hello"))

    def test_acme_challenge_stays_plain(self):
        srv = self.start(redirect_https=True)
        d = os.path.join(srv.root, ".well-known", "acme-challenge")
        os.makedirs(d)
        harness.write_file(os.path.join(d, "tok"), b"tok.key")
        r = self.plain_req(path="/.well-known/acme-challenge/tok")
        self.assertEqual((r.status, r.body), (200, b"tok.key"))
        r = self.plain_req(path="/.well-known/acme-challenge/missing")
        self.assertEqual(r.status, 404)

    def test_curl_follows_to_https(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        self.start(redirect_https=True, hsts={"max_age": 63072000, "include_subdomains": True})
        p = subprocess.run(
            ["curl", "-sS", "-L", "--cacert", ca("root.pem"), "-D", "-",
             "--resolve", "example.org:%d:%s" % (self.plain, HOST),
             "--resolve", "example.org:%d:%s" % (self.tls, HOST),
             "http://example.org:%d/" % self.plain],
            capture_output=True, text=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        heads = p.stdout.lower()
        self.assertTrue(heads.startswith("http/1.1 301"), heads)
        # curl speaks HTTP/2 over TLS when offered (ALPN), else HTTP/1.1.
        second = re.search(r"\nhttp/(?:1\.1|2) 200", heads)
        self.assertIsNotNone(second, heads)
        self.assertTrue(p.stdout.endswith("hello"), p.stdout)
        # HSTS only on the second, TLS, response.
        first, second = heads[:second.start()], heads[second.start():]
        self.assertNotIn("strict-transport-security", first)
        self.assertIn("strict-transport-security: " + HSTS.lower(), second)

    def test_hsts_over_tls_on_every_response(self):
        self.start(hsts={"max_age": 63072000, "include_subdomains": True})
        for path, status in (("/", 200), ("/missing", 404), ("/.hidden", 404)):
            r = self.tls_req(build_request("GET", path, host="example.org"))
            self.assertEqual(r.status, status, path)
            self.assertEqual(r.header("Strict-Transport-Security"), HSTS, path)
        r = self.tls_req(build_request("DELETE", "/", host="example.org"))
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("Strict-Transport-Security"), HSTS)
        # A request that does not parse gets its 400 with HSTS too.
        r = self.tls_req(b"GET / HTTP/1.1\r\nHost: example.org\r\nNo colon here\r\n\r\n")
        self.assertEqual(r.status, 400)
        self.assertEqual(r.header("Strict-Transport-Security"), HSTS)
        # Never over plain HTTP (RFC 6797 7.2), errors included.
        for path in ("/", "/missing"):
            r = self.plain_req(path=path)
            self.assertIsNone(r.header("Strict-Transport-Security"), path)

    def test_hsts_over_http2(self):
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        self.start(hsts={"max_age": 63072000, "include_subdomains": True})
        for path, status in (("/", "200"), ("/missing", "404")):
            p = subprocess.run(
                ["curl", "-sS", "--http2", "--cacert", ca("root.pem"), "-D", "-", "-o",
                 os.devnull, "--resolve", "example.org:%d:%s" % (self.tls, HOST),
                 "https://example.org:%d%s" % (self.tls, path)],
                capture_output=True, text=True, timeout=DEFAULT_TIMEOUT)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith("HTTP/2 %s" % status), p.stdout)
            self.assertIn("strict-transport-security: %s\n" % HSTS, p.stdout)

    def test_no_hsts_by_default(self):
        self.start()
        r = self.tls_req(build_request("GET", "/", host="example.org"))
        self.assertEqual(r.status, 200)
        self.assertIsNone(r.header("Strict-Transport-Security"))

    def test_redirect_needs_tls_listener(self):
        d = self.make_tempdir()
        conf = os.path.join(d, "porter.conf")
        with open(conf, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\n'
                    'redirect_https = true;\n' % d)
        p = harness.check_config(conf)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:3: 'redirect_https' needs a listener with tls = true" % conf,
                      p.stderr)


if __name__ == "__main__":
    unittest.main()
