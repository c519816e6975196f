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
import http.client
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, DEFAULT_TIMEOUT, build_request, wait_until  # noqa: E402

CA = None  # the CA directory, made once in setUpModule


def fixtures():
    d = os.environ.get("FIXTURES")
    if d:
        return d
    return os.path.join(harness.srcdir(), "tests", "unit", "fixtures")


def make_local_leaf(d, name="local", days=90):
    """A leaf for localhost and 127.0.0.1, signed by the fixture's intermediate."""
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", name + ".key")
    run("openssl", "req", "-new", "-key", name + ".key", "-subj", "/CN=localhost",
        "-out", name + ".csr")
    with open(os.path.join(d, "local.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "int.pem", "-CAkey", "int.key",
        "-CAcreateserial", "-days", str(days), "-extfile", "local.ext", "-out", name + ".pem")
    with open(os.path.join(d, name + "-full.pem"), "w") as out:
        for part in (name + ".pem", "int.pem"):
            with open(os.path.join(d, part)) as f:
                out.write(f.read())


def setUpModule():
    global CA
    CA = tempfile.mkdtemp(prefix="porter-tls-ca-")
    subprocess.run(["sh", os.path.join(fixtures(), "tls-mkca.sh"), CA], check=True,
                   capture_output=True)
    make_local_leaf(CA)
    make_local_leaf(CA, "local2")
    make_local_leaf(CA, "soon", days=5)


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
    """Server settings: a plain and a TLS listener, three sites with
    certificates. HTTP/2 is off, so these tests see HTTP/1.1 over TLS
    (H2OverTLSTest has it on)."""
    s = {
        "listen": ["%s:0" % HOST, {"address": "%s:0" % HOST, "tls": True, "http2": False}],
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

    def start_tls(self, root=None, **over):
        srv = self.start_server(root or self.root, **tls_settings(**over))
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

    def test_file_truncated_while_sent(self):
        """The file shrinks under a 48 MiB response: the connection closes
        short of the promised length, with nothing but the file's bytes."""
        size = 48 << 20
        site_root = self.make_tempdir()
        path = os.path.join(site_root, "huge.bin")
        with open(path, "wb") as f:
            f.truncate(size)     # sparse zeros
        srv = self.start_tls(site_root, workers=1)
        c = TLSConn(srv.tls_port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.send(build_request("GET", "/huge.bin"))
        while b"\r\n\r\n" not in c.buf:
            self.assertTrue(c._fill(), "closed before the head")
        head, _, body = c.buf.partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: %d" % size, head)
        os.truncate(path, 1 << 20)
        got = len(body)
        while True:
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            self.assertEqual(chunk.count(0), len(chunk), "bytes that are not the file's")
            got += len(chunk)
        self.assertLess(got, size)
        c.close()
        # The worker said once which way file bodies go.
        srv.wait_for_stderr(r"info: TLS: no kernel TLS for sending \(the kernel has none\): "
                            r"file bodies go by pread and SSL_write")

    def test_alpn(self):
        # HTTP/2 on by default with TLS: h2 first
        srv = self.start_tls(listen=[{"address": "%s:0" % HOST},
                                     {"address": "%s:0" % HOST, "tls": True}])
        for offer in (["h2", "http/1.1"], ["http/1.1", "h2"], ["h2"]):
            c = TLSConn(srv.tls_port, alpn=offer)
            self.assertEqual(c.sock.selected_alpn_protocol(), "h2", offer)
            c.close()
        c = TLSConn(srv.tls_port, alpn=["http/1.1"])
        self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
        c.send(build_request("GET", "/", headers={}))
        self.assertEqual(c.read_response().status, 200)
        c.close()
        # http2 = false: HTTP/1.1 only
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


def kernel_has_tls_ulp():
    try:
        with open("/proc/sys/net/ipv4/tcp_available_ulp") as f:
            return "tls" in f.read().split()
    except OSError:
        return True


class KernelTLSTest(TLSTestCase):

    @unittest.skipUnless(shutil.which("strace") and os.geteuid() == 0,
                         "strace as root needed to watch the worker")
    @unittest.skipIf(kernel_has_tls_ulp(), "this kernel has kernel TLS")
    def test_no_ktls_tried_again_on_a_kernel_without_it(self):
        """ktls = "auto" on a kernel without the tls module: OpenSSL's
        two failing setsockopt() calls come with the first handshake
        of a worker only, not with every handshake after it."""
        srv = self.start_tls(workers=1)     # ktls = "auto" is the default
        pid = srv.worker_pids()[0]
        out = os.path.join(self.make_tempdir(), "strace.out")
        tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=setsockopt",
                                   "-o", out, "-p", str(pid)], stderr=subprocess.PIPE)
        self.addCleanup(lambda: tracer.poll() is None and tracer.kill())

        def traced():
            with open("/proc/%d/status" % pid) as f:
                return re.search(r"TracerPid:\s+[1-9]", f.read()) is not None
        wait_until(traced)
        for _ in range(4):
            with TLSConn(srv.tls_port) as t:
                t.send(build_request("GET", "/"))
                self.assertEqual(t.read_response().status, 200)
        tracer.terminate()
        tracer.wait(timeout=DEFAULT_TIMEOUT)
        with open(out) as f:
            ulp = [l for l in f if "TCP_ULP" in l]
        self.assertLessEqual(len(ulp), 1, "".join(ulp))


class TestBadInput(TLSTestCase):

    def test_plain_http_on_tls_port(self):
        srv = self.start_tls()
        for method in ("GET", "HEAD", "POST"):
            c = harness.Conn(srv.tls_port)
            c.send(build_request(method, "/", headers={"Content-Length": "0"}))
            r = c.read_response(head=(method == "HEAD"))
            self.assertEqual(r.status, 400)
            # No content for HEAD, whichever path answers (RFC 9110 9.3.2).
            self.assertEqual(b"HTTPS" in r.body, method != "HEAD", r.body)
            self.assertTrue(c.closed_by_peer(), "bytes after the response: %r" % c.buf)
            c.close()
        # "HEAD" split over several reads is still HEAD.
        c = harness.Conn(srv.tls_port)
        c.send_slowly(b"HEAD / HTTP/1.1\r\n", chunk=1)
        c.send(b"Host: localhost\r\n\r\n")
        self.assertEqual(c.read_response(head=True).status, 400)
        self.assertTrue(c.closed_by_peer(), "bytes after the response: %r" % c.buf)
        c.close()
        # The plain listener beside it is untouched, the TLS one still serves.
        self.assertEqual(harness.get(srv.port).status, 200)
        with TLSConn(srv.tls_port) as t:
            self.assertEqual(t.sock.version()[:3], "TLS")
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit): ", l)]
        self.assertEqual(errors, [])

    def test_random_bytes_closed(self):
        """Random bytes are closed: at once, perhaps after a TLS alert,
        or (when their first five bytes happen to read as a record header
        announcing more) at the handshake timeout."""
        srv = self.start_tls(limits={"handshake_timeout": 2})
        for _ in range(20):
            c = harness.Conn(srv.tls_port)
            c.send(os.urandom(3000))
            got = b""
            while not c.closed_by_peer():
                self.assertTrue(c.buf, "neither closed nor answered in %ds" % DEFAULT_TIMEOUT)
                got += c.buf
                c.buf = b""
            c.close()
            # Nothing but alert records (content type 21) may come back.
            while got:
                self.assertEqual(got[0], 21, got[:16])
                got = got[5 + int.from_bytes(got[3:5], "big"):]
        with TLSConn(srv.tls_port) as t:
            self.assertEqual(t.sock.version()[:3], "TLS")
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit): ", l)]
        self.assertEqual(errors, [])


def client_hello():
    """The bytes of a TLS ClientHello for localhost, made by Python's ssl."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_context().wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


class TestSlowAndHostile(TLSTestCase):

    def test_slow_client_hello_closed_at_handshake_timeout(self):
        # header_timeout far away: only the handshake's own class can close it.
        srv = self.start_tls(limits={"handshake_timeout": 2, "header_timeout": 600})
        hello = client_hello()
        self.assertGreater(len(hello), 100)
        c = harness.Conn(srv.tls_port)
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent = 0
        closed = False
        while sent < len(hello):
            if not c.send(hello[sent:sent + 1]):
                closed = True
                break
            sent += 1
            # One byte a second, unless the server closes meanwhile.
            if c.closed_by_peer(timeout=1.0):
                closed = True
                break
        self.assertTrue(closed, "the whole ClientHello went out, byte by byte")
        self.assertLess(sent, len(hello))
        c.close()
        # Others are served meanwhile and after; nothing logged as an error.
        with TLSConn(srv.tls_port) as t:
            t.send(build_request("GET", "/"))
            self.assertEqual(t.read_response().status, 200)
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit|warn): ", l)]
        self.assertEqual(errors, [])

    def test_truncated_handshake_and_garbage_after_hello(self):
        srv = self.start_tls()
        hello = client_hello()
        for data, half_close in ((hello[:len(hello) // 2], True),
                                 (hello + os.urandom(2000), False),
                                 (b"\x16\x03\x01\x00\x05" + os.urandom(5), False)):
            c = harness.Conn(srv.tls_port)
            c.send(data)
            if half_close:
                c.sock.shutdown(socket.SHUT_WR)
            # Whatever the server answers (a ServerHello, an alert), it closes.
            while c._fill():
                pass
            self.assertTrue(c.eof)
            c.close()
        with TLSConn(srv.tls_port) as t:
            t.send(build_request("GET", "/"))
            self.assertEqual(t.read_response().status, 200)
        errors = [l for l in srv.stderr_lines() if re.search(r": (error|crit|warn): ", l)]
        self.assertEqual(errors, [])

    def test_key_update(self):
        """TLS 1.3 KeyUpdate (RFC 8446 4.6.3) with update_requested, from
        openssl s_client's 'k' command, between two requests on one
        connection: porter answers with its own KeyUpdate and both
        requests are served."""
        srv = self.start_tls()
        p = subprocess.Popen(
            ["openssl", "s_client", "-connect", "%s:%d" % (HOST, srv.tls_port),
             "-servername", "localhost", "-CAfile", ca("root.pem"), "-tls1_3", "-crlf"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        lines, cond = [], threading.Condition()

        def reader():
            for raw in iter(p.stdout.readline, b""):
                with cond:
                    lines.append(raw.decode(errors="replace"))
                    cond.notify_all()
        threading.Thread(target=reader, daemon=True).start()

        def wait_count(pattern, n):
            with cond:
                ok = cond.wait_for(lambda: sum(1 for l in lines if re.search(pattern, l)) >= n
                                   or p.poll() is not None, timeout=DEFAULT_TIMEOUT)
            self.assertTrue(ok and sum(1 for l in lines if re.search(pattern, l)) >= n,
                            "".join(lines))

        req = b"GET / HTTP/1.1\nHost: localhost\n\n"
        p.stdin.write(req)
        p.stdin.flush()
        wait_count(r"^hello over TLS", 1)
        p.stdin.write(b"k\n")
        p.stdin.flush()
        wait_count(r"^KEYUPDATE", 1)
        p.stdin.write(req)
        p.stdin.flush()
        wait_count(r"^hello over TLS", 2)
        p.stdin.close()
        p.wait(DEFAULT_TIMEOUT)
        self.assertEqual(sum(1 for l in lines if l.startswith("HTTP/1.1 200 OK")), 2,
                         "".join(lines))


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



class H2OverTLSTest(TLSTestCase):
    """HTTP/2 negotiated by ALPN (RFC 9113 3.2), on by default with TLS."""

    def start_h2(self, **over):
        return self.start_tls(listen=[{"address": "%s:0" % HOST},
                                      {"address": "%s:0" % HOST, "tls": True}], **over)

    def test_curl_nghttp_h2load(self):
        srv = self.start_h2()
        p = self.curl(srv, "-v", "--http2", self.url(srv))
        self.assertEqual(p.stdout, b"hello over TLS\n")
        self.assertIn(b"ALPN: server accepted h2", p.stderr)
        self.assertIn(b"< HTTP/2 200", p.stderr)
        p = self.curl(srv, "--http2", self.url(srv, "/20m.bin"))
        self.assertEqual(hashlib.sha256(p.stdout).hexdigest(),
                         sha256_file(os.path.join(self.root, "20m.bin")))
        p = self.curl(srv, "--http1.1", "-v", self.url(srv))
        self.assertIn(b"ALPN: server accepted http/1.1", p.stderr)
        p = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10",
                            "https://localhost:%d/" % srv.tls_port], capture_output=True,
                           text=True, timeout=120)
        self.assertIn("200 succeeded, 0 failed", p.stdout, p.stdout + p.stderr)
        self.assertIn("Application protocol: h2", p.stdout)
        # Two workers flush their lines in either order: the first
        # request's line need not come first.
        harness.wait_until(lambda: any('"GET / HTTP/2.0" 200' in line
                                       for line in srv.access_lines()),
                           message="the HTTP/2 request in the access log")

    def test_421_for_a_name_of_another_certificate(self):
        """A connection for localhost (its certificate) asked for a site
        whose certificate is another: 421 (RFC 9110 15.5.20); a name
        the certificate covers, or no site's, is served."""
        import h2client
        srv = self.start_h2()
        raw = socket.create_connection((HOST, srv.tls_port), timeout=DEFAULT_TIMEOUT)
        sock = client_context(alpn=["h2"]).wrap_socket(raw, server_hostname="localhost")
        self.assertEqual(sock.selected_alpn_protocol(), "h2")
        with h2client.H2Conn(None, sock=sock) as c:
            self.assertEqual(c.get("/", authority="localhost").status, 200)
            self.assertEqual(c.get("/", authority="localhost:%d" % srv.tls_port).status, 200)
            r = c.get("/", authority="example.org")
            self.assertEqual(r.status, 421)
            self.assertEqual(c.get("/", authority="www.example.net").status, 421)
            self.assertEqual(c.get("/", authority="unknown.example").status, 200)
        # with SNI example.org, example.org is its own
        raw = socket.create_connection((HOST, srv.tls_port), timeout=DEFAULT_TIMEOUT)
        sock = client_context(alpn=["h2"]).wrap_socket(raw, server_hostname="example.org")
        with h2client.H2Conn(None, sock=sock) as c:
            self.assertEqual(c.get("/", authority="example.org").status, 200)
            self.assertEqual(c.get("/", authority="localhost").status, 421)

    def test_client_that_never_reads_costs_no_file_in_memory(self):
        """100 streams of a 20 MiB file with every window opened wide
        (2 GiB offered) from a client that never reads: porter frames no
        more than the socket takes, so the worker's peak memory grows by
        a bounded amount (its buffers, not the files), and send_timeout
        ends the connection (RFC 9113 leaves this to the server)."""
        import h2client
        import h2.settings
        srv = self.start_h2(limits={"send_timeout": 1})
        pid = srv.worker_pids()[0]

        def hwm():
            with open("/proc/%d/status" % pid) as f:
                return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024
        with h2client.H2Conn(None, sock=self.h2_socket(srv)) as c:
            self.assertEqual(c.get("/").status, 200)
        before = hwm()
        c = h2client.H2Conn(None, sock=self.h2_socket(srv), settings={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
        self.addCleanup(c.close)
        c.conn.increment_flow_control_window(2 ** 31 - 1 - 65535)
        for _ in range(100):
            c.request("/20m.bin", authority="localhost")
        srv.wait_for_stderr(r"HTTP/2 client .*no progress")
        grew = hwm() - before
        # Generous for sanitizer builds; one buffered file would be 20 MiB.
        self.assertLess(grew, 16 << 20, "worker peak grew by %d bytes" % grew)
        with h2client.H2Conn(None, sock=self.h2_socket(srv)) as c:
            self.assertEqual(c.get("/").status, 200)

    def h2_socket(self, srv):
        raw = socket.create_connection((HOST, srv.tls_port), timeout=DEFAULT_TIMEOUT)
        sock = client_context(alpn=["h2"]).wrap_socket(raw, server_hostname="localhost")
        self.assertEqual(sock.selected_alpn_protocol(), "h2")
        return sock

    @unittest.skipUnless(shutil.which("chromium"), "chromium missing")
    def test_chromium_demo_site_says_h2(self):
        """Headless Chromium loads the demo site (www/) over HTTPS; its
        script shows the page's nextHopProtocol."""
        www = os.path.join(harness.srcdir(), "www")
        srv = self.start_server(www, **tls_settings(listen=[
            {"address": "%s:0" % HOST}, {"address": "%s:0" % HOST, "tls": True}]))
        port = srv.addrs[1][1]
        profile = tempfile.mkdtemp(prefix="porter-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        # The throwaway CA is not in Chromium's store: its SPKI is trusted
        # by hash instead, for this run only.
        spki = subprocess.run(
            "openssl pkey -in %s -pubout -outform der"
            " | openssl dgst -sha256 -binary | base64" % ca("local.key"),
            shell=True, capture_output=True, text=True, check=True).stdout.strip()
        p = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--user-data-dir=" + profile,
                            "--ignore-certificate-errors-spki-list=" + spki,
                            "--virtual-time-budget=5000", "--dump-dom",
                            "https://localhost:%d/" % port],
                           capture_output=True, text=True, timeout=120)
        self.assertIn('<dd id="protocol">h2</dd>', p.stdout, p.stderr[-2000:])


# ---------------------------------------------------------------------------
# Reload, renewal, sessions
# ---------------------------------------------------------------------------

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def install_pair(dst_dir, cert, key):
    """Put cert and key in place as live.pem / live.key, each by rename
    (as a deploy hook does: key last)."""
    for src, dst in ((cert, "live.pem"), (key, "live.key")):
        tmp = os.path.join(dst_dir, dst + ".tmp")
        shutil.copyfile(ca(src), tmp)
        os.rename(tmp, os.path.join(dst_dir, dst))


def served_leaf(port, name="localhost"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname=name) as t:
            return t.getpeercert(binary_form=True)


def resume(port, session, ctx):
    """One request on a new connection offering session; (reused, new session)."""
    with socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT) as s:
        with ctx.wrap_socket(s, server_hostname="localhost", session=session) as t:
            t.sendall(build_request("GET", "/"))
            data = b""
            while b"hello over TLS" not in data:
                chunk = t.recv(65536)
                if not chunk:
                    break
                data += chunk
            if b"hello over TLS" not in data:
                raise AssertionError("no response: %r" % data[:200])
            return t.session_reused, t.session


class ReloadTLSTestCase(TLSTestCase):

    def start_live(self, **over):
        """A server on a fixed port pair (reloads keep them) with a pid file,
        serving the default site from WORKDIR/live.pem and live.key."""
        last = None
        for _ in range(5):
            plain, tls = free_port(), free_port()
            srv = self.start_server(self.root, start=False, **tls_settings(
                listen=["%s:%d" % (HOST, plain), {"address": "%s:%d" % (HOST, tls), "tls": True}],
                **over))
            install_pair(srv.workdir, "local-full.pem", "local.key")
            srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"),
                             tls=dict(srv.settings["tls"],
                                      certificate=os.path.join(srv.workdir, "live.pem"),
                                      key=os.path.join(srv.workdir, "live.key")))
            try:
                srv.start()
                srv.tls_port = tls
                return srv
            except harness.ServerError as e:
                last = e
                srv.close()
        raise last

    def reload(self, srv, expect_ok=True):
        r = harness.run_porter("-s", "reload", "-c", srv.conf_path, timeout=120)
        if expect_ok:
            self.assertEqual(r.returncode, 0, "reload failed: %s %s\n%s"
                             % (r.stdout, r.stderr, srv.stderr_text()))
        return r


class TestReload(ReloadTLSTestCase):

    def test_renewal_served_at_reload_and_bad_pair_refused(self):
        srv = self.start_live()
        p = srv.tls_port
        self.assertEqual(served_leaf(p), leaf_der("local-full.pem"))
        # Same config, new files: the reload reads them again.
        install_pair(srv.workdir, "local2-full.pem", "local2.key")
        mark = len(srv.stderr_lines())
        self.reload(srv)
        self.assertEqual(served_leaf(p), leaf_der("local2-full.pem"))
        self.assertTrue(any("live.pem: CN=localhost" in l and "[unchanged]" not in l
                            for l in srv.stderr_lines()[mark:]), srv.stderr_text())
        # Unchanged files: the context is reused, and says so.
        mark = len(srv.stderr_lines())
        self.reload(srv)
        srv.wait_for_stderr(r"live\.pem: CN=localhost.*\[unchanged\]", start=mark)
        self.assertEqual(served_leaf(p), leaf_der("local2-full.pem"))
        # Half-installed renewal: the old key beside the new certificate.
        shutil.copyfile(ca("local-full.pem"), os.path.join(srv.workdir, "live.pem"))
        r = self.reload(srv, expect_ok=False)
        self.assertNotEqual(r.returncode, 0)
        line = next(i for i, l in enumerate(srv.config_text.splitlines(), 1)
                    if "live.pem" in l)
        self.assertIn("%s:%d:" % (srv.conf_path, line), r.stderr)
        self.assertIn("does not match", r.stderr)
        self.assertEqual(served_leaf(p), leaf_der("local2-full.pem"))
        # The key follows: the next reload serves the pair.
        shutil.copyfile(ca("local.key"), os.path.join(srv.workdir, "live.key"))
        self.reload(srv)
        self.assertEqual(served_leaf(p), leaf_der("local-full.pem"))
        errors = [l for l in srv.stderr_lines() if re.search(r": crit: ", l)]
        self.assertEqual(errors, [])

    def test_expiring_certificate_warns(self):
        p, srv = None, harness.Server(self.root, **tls_settings(
            tls={"certificate": ca("soon-full.pem"), "key": ca("soon.key")}))
        self.addCleanup(srv.close)
        p = harness.check_config(srv.conf_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"warn: certificate \S+soon-full\.pem: CN=localhost, .*"
                         r"\([45] days left\); renew it soon")
        # 80-odd days: a notice, no warning.
        self.assertRegex(p.stderr, r"notice: certificate \S+ec-full\.pem: .*\(8\d days left\)\n")


def make_site_leaf(d, name, serial):
    """d/NAME.pem (leaf + intermediate) and d/NAME.key for NAME, signed by
    the fixture's intermediate, each put in place by rename (a renewal
    replaces both files)."""
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:%s\n" % name)
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", name + ".key.new", "-subj", "/CN=" + name, "-out", name + ".csr")
    run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca("int.pem"), "-CAkey",
        ca("int.key"), "-set_serial", str(serial), "-days", "30", "-extfile", ext,
        "-out", name + ".leaf")
    with open(os.path.join(d, name + ".pem.new"), "w") as out:
        for part in (os.path.join(d, name + ".leaf"), ca("int.pem")):
            with open(part) as f:
                out.write(f.read())
    os.rename(os.path.join(d, name + ".pem.new"), os.path.join(d, name + ".pem"))
    os.rename(os.path.join(d, name + ".key.new"), os.path.join(d, name + ".key"))


def pem_leaf_der(path):
    with open(path) as f:
        pem = f.read()
    end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    return ssl.PEM_cert_to_DER_cert(pem[:end])


class TestManySites(ReloadTLSTestCase):

    NSITES = 20

    def test_every_site_renewed_at_one_reload(self):
        """20 sites, each with its own certificate and key files. All of
        them renewed (new files, by rename) and one reload: every name
        gets its own new certificate, with its chain. Then half renewed
        again: those are read again, the others are taken as they were
        ("[unchanged]") and still served."""
        d = tempfile.mkdtemp(prefix="porter-tls-sites-")
        self.addCleanup(shutil.rmtree, d, True)
        names = ["site%d.example.com" % i for i in range(self.NSITES)]
        for i, n in enumerate(names):
            make_site_leaf(d, n, 1000 + i)
        sites = [{"names": ["*"]}] + [
            {"names": [n], "tls": {"certificate": os.path.join(d, n + ".pem"),
                                   "key": os.path.join(d, n + ".key")}} for n in names]
        srv = self.start_live(sites=sites)
        ctx = client_context()

        def served(name):
            with socket.create_connection((HOST, srv.tls_port), timeout=DEFAULT_TIMEOUT) as s:
                with ctx.wrap_socket(s, server_hostname=name) as t:   # verifies the chain
                    return t.getpeercert(binary_form=True)

        def check_all():
            for n in names:
                self.assertEqual(served(n), pem_leaf_der(os.path.join(d, n + ".pem")), n)

        check_all()
        before = [served(n) for n in names]
        for i, n in enumerate(names):
            make_site_leaf(d, n, 2000 + i)
        mark = len(srv.stderr_lines())
        self.reload(srv)
        check_all()
        self.assertTrue(all(served(n) != b for n, b in zip(names, before)))
        logged = srv.stderr_lines()[mark:]
        for n in names:
            self.assertTrue(any("%s.pem: CN=%s" % (n, n) in l and "[unchanged]" not in l
                                for l in logged), n)

        renewed = names[::2]
        for i, n in enumerate(renewed):
            make_site_leaf(d, n, 3000 + i)
        mark = len(srv.stderr_lines())
        self.reload(srv)
        check_all()
        logged = srv.stderr_lines()[mark:]
        for n in names:
            line = next(l for l in logged if "%s.pem: CN=%s" % (n, n) in l)
            self.assertEqual("[unchanged]" in line, n not in renewed, line)
        # An unknown name, or none, gets the default site's certificate.
        self.assertEqual(served_leaf(srv.tls_port, "unknown.example.com"),
                         leaf_der("local-full.pem"))
        self.assertEqual(served_leaf(srv.tls_port, None), leaf_der("local-full.pem"))


class TestSessions(ReloadTLSTestCase):

    def test_resumption_across_workers_and_reloads(self):
        srv = self.start_live(workers=4)
        for v in ("1.2", "1.3"):
            with self.subTest(version=v):
                ctx = client_context(v)
                reused, sess = resume(srv.tls_port, None, ctx)
                self.assertFalse(reused)
                self.assertTrue(sess.has_ticket)
                results = [resume(srv.tls_port, sess, ctx)[0] for _ in range(20)]
                self.assertEqual(results, [True] * 20)
                # Every worker of the new generation is a new process.
                old = set(srv.worker_pids())
                self.reload(srv)
                harness.wait_until(lambda: not (set(srv.worker_pids()) & old))
                results = [resume(srv.tls_port, sess, ctx)[0] for _ in range(20)]
                self.assertEqual(results, [True] * 20)
        # A new master makes new keys: old tickets mean a full handshake.
        ctx = client_context("1.3")
        _, sess = resume(srv.tls_port, None, ctx)
        srv.stop()
        srv.start()
        self.assertFalse(resume(srv.tls_port, sess, ctx)[0])

    def test_ticket_past_its_lifetime_is_refused(self):
        # TLS 1.2: the client offers a ticket whatever its age (TLS 1.3
        # clients drop old ones themselves), so the refusal is porter's.
        srv = self.start_live(workers=2, tls={"ticket_lifetime": 2,
                                              "certificate": ca("local-full.pem"),
                                              "key": ca("local.key")})
        ctx = client_context("1.2")
        _, sess = resume(srv.tls_port, None, ctx)
        self.assertTrue(sess.has_ticket)
        time.sleep(4)   # past the lifetime (2 s) and the ring's 1.5 lifetime bound
        reused, fresh = resume(srv.tls_port, sess, ctx)
        self.assertFalse(reused)
        self.assertTrue(fresh.has_ticket)


class TLSLoad:
    """Steady HTTPS load until stop(): keep-alive clients (http.client over
    TLS) and a new TLS connection per request; any error or unexpected
    answer is a failure."""

    def __init__(self, port, keepalive=3, fresh=2, pause=0.002):
        self.port, self.pause = port, pause
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.ok = {"keepalive": 0, "fresh": 0}
        self.failures = []
        self.threads = [threading.Thread(target=self._keepalive, daemon=True)
                        for _ in range(keepalive)]
        self.threads += [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def total(self):
        with self.lock:
            return sum(self.ok.values()) + len(self.failures)

    def _record(self, kind, status, body):
        with self.lock:
            if status == 200 and body == b"hello over TLS\n":
                self.ok[kind] += 1
            else:
                self.failures.append((kind, "status %s body %r" % (status, body[:60])))

    def _fail(self, kind, exc):
        with self.lock:
            self.failures.append((kind, "%s: %s" % (type(exc).__name__, exc)))

    def _keepalive(self):
        ctx = client_context()
        conn = http.client.HTTPSConnection("localhost", self.port, timeout=15, context=ctx)
        conn.sock = None
        while not self.done.is_set():
            try:
                if conn.sock is None:
                    conn.sock = ctx.wrap_socket(socket.create_connection((HOST, self.port), 15),
                                                server_hostname="localhost")
                conn.request("GET", "/")
                r = conn.getresponse()
                self._record("keepalive", r.status, r.read())
            except (OSError, http.client.HTTPException) as e:
                self._fail("keepalive", e)
                conn.close()
            time.sleep(self.pause)
        conn.close()

    def _fresh(self):
        ctx = client_context()
        while not self.done.is_set():
            try:
                with TLSConn(self.port, timeout=15) as c:
                    c.send(build_request("GET", "/", headers={"Connection": "close"}))
                    r = c.read_response()
                self._record("fresh", r.status, r.body)
            except (OSError, harness.ConnectionClosed, ValueError) as e:
                self._fail("fresh", e)
            time.sleep(self.pause)
        del ctx

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(30)


class TestZeroLoss(ReloadTLSTestCase):

    def test_reloads_under_https_load_with_certificate_changes(self):
        srv = self.start_live()
        load = TLSLoad(srv.tls_port).start()
        self.addCleanup(load.stop)
        harness.wait_until(lambda: load.total() >= 50, message="load does not get going")
        pairs = [("local2-full.pem", "local2.key"), ("local-full.pem", "local.key")]
        for i in range(20):
            if i % 4 == 0:   # a renewal every fourth reload, in the middle of the load
                cert, key = pairs[(i // 4) % 2]
                install_pair(srv.workdir, cert, key)
                want = leaf_der(cert)
            self.reload(srv)
            self.assertEqual(served_leaf(srv.tls_port), want, "reload %d" % (i + 1))
            n = load.total()
            harness.wait_until(lambda: load.total() >= n + 20, message="load stalled")
        load.stop()
        print("\nHTTPS reloads under load: %s ok, %d failed"
              % (load.ok, len(load.failures)), flush=True)
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok["keepalive"], 0)
        self.assertGreater(load.ok["fresh"], 0)


if __name__ == "__main__":
    harness.require_binary()
    unittest.main()
