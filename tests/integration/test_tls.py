#!/usr/bin/python3
"""Integration tests for HTTPS: listeners with ``tls = true``.

A throwaway CA is made per run (tests/unit/fixtures/tls-mkca.sh, plus a
leaf for "localhost" and 127.0.0.1 made here), then real clients talk to
porter over TLS 1.2 and 1.3: curl and python3 (OpenSSL), wget and
gnutls-cli (GnuTLS), openssl s_client. Covered: GET, HEAD, keep-alive,
pipelining, conditional and range requests, 100-continue, a 1 MiB and a
20 MiB file compared by SHA-256, ALPN, SNI choosing the certificate (the
served leaf compared with the file), no SNI getting the default, plain
HTTP on the TLS port answered with a readable 400, and the config
errors porter -t reports with file and line.

Every wait is bounded by the event it waits for, never by a speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_tls.py [-k PATTERN]
"""

import hashlib
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

CA = None  # the CA directory, made once in setUpModule


def fixtures():
    d = os.environ.get("FIXTURES")
    if d:
        return d
    return os.path.join(harness.srcdir(), "tests", "unit", "fixtures")


def make_local_leaf(d):
    """A leaf for localhost and 127.0.0.1, signed by the fixture's intermediate."""
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", "local.key")
    run("openssl", "req", "-new", "-key", "local.key", "-subj", "/CN=localhost", "-out", "local.csr")
    with open(os.path.join(d, "local.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", "local.csr", "-CA", "int.pem", "-CAkey", "int.key",
        "-CAcreateserial", "-days", "90", "-extfile", "local.ext", "-out", "local.pem")
    with open(os.path.join(d, "local-full.pem"), "w") as out:
        for name in ("local.pem", "int.pem"):
            with open(os.path.join(d, name)) as f:
                out.write(f.read())


def setUpModule():
    global CA
    CA = tempfile.mkdtemp(prefix="porter-tls-ca-")
    subprocess.run(["sh", os.path.join(fixtures(), "tls-mkca.sh"), CA], check=True,
                   capture_output=True)
    make_local_leaf(CA)


def tearDownModule():
    if CA:
        shutil.rmtree(CA, True)


def ca(name):
    return os.path.join(CA, name)


def leaf_der(name):
    """DER of the first certificate in a PEM file."""
    with open(ca(name)) as f:
        pem = f.read()
    first = pem[:pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    return ssl.PEM_cert_to_DER_cert(first)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tls_settings(**over):
    """Server settings: a plain and a TLS listener, three sites with certificates."""
    s = {
        "listen": ["%s:0" % HOST, {"address": "%s:0" % HOST, "tls": True}],
        "tls": {"certificate": ca("local-full.pem"), "key": ca("local.key")},
        "sites": [
            {"names": ["*"]},
            {"names": ["example.org", "www.example.org"],
             "tls": {"certificate": ca("ec-full.pem"), "key": ca("ec.key")}},
            {"names": ["example.net", "*.example.net"],
             "tls": {"certificate": ca("rsa-full.pem"), "key": ca("rsa.key")}},
        ],
    }
    s.update(over)
    return s


def client_context(version=None, alpn=None):
    ctx = ssl.create_default_context(cafile=ca("root.pem"))
    if version == "1.2":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    elif version == "1.3":
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TLSConn(harness.Conn):
    """harness.Conn over TLS: keep-alive and pipelining read the same way."""

    def __init__(self, port, server_hostname="localhost", version=None, alpn=None,
                 timeout=DEFAULT_TIMEOUT):
        super().__init__(port, timeout=timeout)
        self.sock = client_context(version, alpn).wrap_socket(
            self.sock, server_hostname=server_hostname)


class TLSTestCase(harness.PorterTestCase):
    """One server with files for every test of the class."""

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="porter-tls-root-")
        os.chmod(cls.root, 0o755)
        with open(os.path.join(cls.root, "index.html"), "w") as f:
            f.write("hello over TLS\n")
        for name, size in (("1m.bin", 1 << 20), ("20m.bin", 20 << 20)):
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(os.urandom(size))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, True)

    def start_tls(self, **over):
        srv = self.start_server(self.root, **tls_settings(**over))
        srv.tls_port = srv.addrs[1][1]
        return srv

    def curl(self, srv, *args, version="1.3", host="localhost"):
        cmd = ["curl", "-sS", "--cacert", ca("root.pem"),
               "--resolve", "%s:%d:%s" % (host, srv.tls_port, HOST)]
        cmd += ["--tlsv1.2", "--tls-max", "1.2"] if version == "1.2" else ["--tlsv1.3"]
        p = subprocess.run(cmd + list(args), capture_output=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        return p

    def url(self, srv, path="/", host="localhost"):
        return "https://%s:%d%s" % (host, srv.tls_port, path)


class TestClients(TLSTestCase):

    def test_curl_get_head_files_both_versions(self):
        srv = self.start_tls()
        for v in ("1.2", "1.3"):
            with self.subTest(version=v):
                p = self.curl(srv, "-v", self.url(srv), version=v)
                self.assertEqual(p.stdout, b"hello over TLS\n")
                self.assertIn(("TLSv%s" % v).encode(), p.stderr)
                self.assertIn(b"ALPN: server accepted http/1.1", p.stderr)
                p = self.curl(srv, "-I", self.url(srv), version=v)
                self.assertRegex(p.stdout.decode(), r"^HTTP/1.1 200 OK\r\n")
                self.assertIn("Content-Length: 15\r\n", p.stdout.decode())
                for name in ("1m.bin", "20m.bin"):
                    p = self.curl(srv, self.url(srv, "/" + name), version=v)
                    self.assertEqual(hashlib.sha256(p.stdout).hexdigest(),
                                     sha256_file(os.path.join(self.root, name)), name)

    def test_curl_keepalive_conditional_range(self):
        srv = self.start_tls()
        p = self.curl(srv, "-v", self.url(srv), self.url(srv, "/1m.bin"))
        self.assertIn(b"Re-using existing connection", p.stderr)
        self.assertEqual(p.stdout[:15], b"hello over TLS\n")
        self.assertEqual(len(p.stdout), 15 + (1 << 20))
        head = self.curl(srv, "-I", self.url(srv)).stdout.decode()
        etag = re.search(r"ETag: (\S+)\r\n", head).group(1)
        p = self.curl(srv, "-i", "-H", "If-None-Match: " + etag, self.url(srv))
        self.assertRegex(p.stdout.decode(), r"^HTTP/1.1 304 ")
        p = self.curl(srv, "-i", "-r", "100-199", self.url(srv, "/1m.bin"))
        head, body = p.stdout.split(b"\r\n\r\n", 1)
        self.assertRegex(head.decode(), r"^HTTP/1.1 206 ")
        with open(os.path.join(self.root, "1m.bin"), "rb") as f:
            f.seek(100)
            self.assertEqual(body, f.read(100))

    def test_pipelining_and_100_continue(self):
        srv = self.start_tls()
        for v in ("1.2", "1.3"):
            with self.subTest(version=v):
                c = TLSConn(srv.tls_port, version=v)
                req = build_request("GET", "/", headers={})
                c.send(req * 3 + build_request("HEAD", "/1m.bin", headers={}))
                for _ in range(3):
                    r = c.read_response()
                    self.assertEqual((r.status, r.body), (200, b"hello over TLS\n"))
                r = c.read_response(head=True)
                self.assertEqual(r.header("Content-Length"), str(1 << 20))
                # 100-continue: the interim answer comes before the body is sent.
                c.send(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                       b"Expect: 100-continue\r\n\r\n")
                while b"\r\n\r\n" not in c.buf:
                    self.assertTrue(c._fill(), "closed before 100 Continue")
                self.assertTrue(c.buf.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), c.buf)
                c.buf = c.buf[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
                c.send(b"hello")
                r = c.read_response()
                self.assertEqual(r.status, 405)
                c.send(req)
                self.assertEqual(c.read_response().status, 200)
                c.close()

    def test_python_requests(self):
        import requests
        srv = self.start_tls()
        with requests.Session() as s:
            for name in ("/", "/1m.bin", "/"):
                r = s.get(self.url(srv, name), verify=ca("root.pem"), timeout=60)
                self.assertEqual(r.status_code, 200)
            self.assertEqual(r.text, "hello over TLS\n")

    def test_wget(self):
        srv = self.start_tls()
        for v, opt in (("1.2", "TLSv1_2"), ("1.3", "TLSv1_3")):
            with self.subTest(version=v):
                out = os.path.join(self.make_tempdir(), "out")
                p = subprocess.run(
                    ["wget", "-q", "--secure-protocol=" + opt, "--ca-certificate=" + ca("root.pem"),
                     "-O", out, "https://127.0.0.1:%d/20m.bin" % srv.tls_port],
                    capture_output=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(sha256_file(out), sha256_file(os.path.join(self.root, "20m.bin")))

    def test_gnutls_cli(self):
        srv = self.start_tls()
        for v, prio in (("1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.2"),
                        ("1.3", "NORMAL:-VERS-ALL:+VERS-TLS1.3")):
            with self.subTest(version=v):
                p = subprocess.run(
                    ["gnutls-cli", "--x509cafile=" + ca("root.pem"), "--priority=" + prio,
                     "--port=%d" % srv.tls_port, "localhost"],
                    input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                    capture_output=True, timeout=60)
                out = p.stdout.decode(errors="replace")
                self.assertIn("HTTP/1.1 200 OK", out, p.stderr)
                self.assertIn("hello over TLS", out)
                self.assertIn("(TLS%s-" % v, out)

    def test_openssl_s_client(self):
        srv = self.start_tls()
        for v in ("1.2", "1.3"):
            with self.subTest(version=v):
                p = subprocess.run(
                    ["openssl", "s_client", "-connect", "%s:%d" % (HOST, srv.tls_port),
                     "-servername", "localhost", "-CAfile", ca("root.pem"),
                     "-verify_return_error", "-tls" + v.replace(".", "_"), "-ign_eof"],
                    input=b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                    capture_output=True, timeout=60)
                out = p.stdout.decode(errors="replace")
                self.assertIn("Verify return code: 0 (ok)", out)
                self.assertIn("Protocol  : TLSv%s" % v, out)
                self.assertIn("hello over TLS", out)

    def test_alpn(self):
        srv = self.start_tls()
        c = TLSConn(srv.tls_port, alpn=["h2", "http/1.1"])
        self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
        c.close()
        # Nothing we speak: the handshake goes on without ALPN (RFC 7301 3.2).
        c = TLSConn(srv.tls_port, alpn=["h2"])
        self.assertIsNone(c.sock.selected_alpn_protocol())
        c.send(build_request("GET", "/", headers={}))
        self.assertEqual(c.read_response().status, 200)
        c.close()


class TestSNI(TLSTestCase):

    def served_leaf(self, port, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT) as s:
            with ctx.wrap_socket(s, server_hostname=name) as t:
                return t.getpeercert(binary_form=True)

    def test_certificate_by_name(self):
        srv = self.start_tls()
        p = srv.tls_port
        self.assertEqual(self.served_leaf(p, "example.org"), leaf_der("ec-full.pem"))
        self.assertEqual(self.served_leaf(p, "WWW.Example.ORG."), leaf_der("ec-full.pem"))
        self.assertEqual(self.served_leaf(p, "example.net"), leaf_der("rsa-full.pem"))
        self.assertEqual(self.served_leaf(p, "a.example.net"), leaf_der("rsa-full.pem"))
        # No SNI, or a name no site has: the default site's certificate.
        self.assertEqual(self.served_leaf(p, None), leaf_der("local-full.pem"))
        self.assertEqual(self.served_leaf(p, "unknown.test"), leaf_der("local-full.pem"))
        self.assertNotEqual(leaf_der("ec-full.pem"), leaf_der("local-full.pem"))

    def test_sni_with_curl_verifies(self):
        srv = self.start_tls()
        for host in ("example.org", "www.example.org", "example.net", "x.example.net"):
            p = self.curl(srv, self.url(srv, host=host), host=host)
            self.assertEqual(p.stdout, b"hello over TLS\n")


class TestBadInput(TLSTestCase):

    def test_plain_http_on_tls_port(self):
        srv = self.start_tls()
        for method in ("GET", "HEAD", "POST"):
            c = harness.Conn(srv.tls_port)
            c.send(build_request(method, "/", headers={"Content-Length": "0"}))
            r = c.read_response()
            self.assertEqual(r.status, 400)
            self.assertIn(b"HTTPS", r.body)
            self.assertTrue(c.closed_by_peer())
            c.close()
        # The plain listener beside it is untouched, the TLS one still serves.
        self.assertEqual(harness.get(srv.port).status, 200)
        with TLSConn(srv.tls_port) as t:
            self.assertEqual(t.sock.version()[:3], "TLS")
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit): ", l)]
        self.assertEqual(errors, [])

    def test_random_bytes_closed(self):
        srv = self.start_tls()
        c = harness.Conn(srv.tls_port)
        c.send(os.urandom(3000))
        self.assertTrue(c.closed_by_peer())
        c.close()
        with TLSConn(srv.tls_port) as t:
            self.assertEqual(t.sock.version()[:3], "TLS")
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit): ", l)]
        self.assertEqual(errors, [])


class TestConfig(TLSTestCase):

    def check(self, **over):
        srv = harness.Server(self.root, **tls_settings(**over))
        self.addCleanup(srv.close)
        return harness.check_config(srv.conf_path), srv

    def line_of(self, srv, needle):
        for i, line in enumerate(srv.config_text.splitlines(), 1):
            if needle in line:
                return i
        self.fail("%r not in the config" % needle)

    def test_valid_logs_certificates(self):
        p, _ = self.check()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("configuration", p.stderr)
        self.assertRegex(p.stderr, r"CN=example\.org, 2 names \(example\.org, www\.example\.org\), "
                         r"ECDSA P-256, expires \S+ \S+ UTC \(8\d days left\)")
        self.assertIn("RSA 2048", p.stderr)

    def test_tls_listener_without_certificate(self):
        p, srv = self.check(tls=None, sites=[{"names": ["*"]}])
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (srv.conf_path, self.line_of(srv, "tls = true")), p.stderr)
        self.assertIn("no site has a certificate", p.stderr)

    def test_mismatched_key_names_file_and_line(self):
        sites = tls_settings()["sites"]
        sites[1]["tls"]["key"] = ca("other.key")
        p, srv = self.check(sites=sites)
        self.assertEqual(p.returncode, 1)
        line = self.line_of(srv, ca("ec-full.pem"))
        self.assertIn("%s:%d:" % (srv.conf_path, line), p.stderr)
        self.assertIn("does not match", p.stderr)

    def test_missing_file_and_bad_settings(self):
        sites = tls_settings()["sites"]
        sites[2]["tls"]["certificate"] = ca("nonexistent.pem")
        p, srv = self.check(sites=sites)
        self.assertEqual(p.returncode, 1)
        self.assertIn("%s:%d:" % (srv.conf_path, self.line_of(srv, "nonexistent.pem")), p.stderr)
        self.assertIn("No such file", p.stderr)
        for key, value, why in (("ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:NOPE", "NOPE"),
                                ("ciphersuites", "TLS_AES_128_GCM_SHA256:TLS_FOO", "TLS_FOO"),
                                ("groups", "X25519:P-999", "groups"),
                                ("profile", "ancient", "unknown profile"),
                                ("protocols", ["TLSv1.1"], "TLSv1.1")):
            with self.subTest(key=key):
                t = dict(tls_settings()["tls"])
                t[key] = value
                p, srv = self.check(tls=t)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn("%s:%d:" % (srv.conf_path, self.line_of(srv, key + " =")), p.stderr)
                self.assertIn(why, p.stderr)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main()
