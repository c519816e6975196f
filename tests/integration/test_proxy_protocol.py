#!/usr/bin/python3
"""Integration tests for the PROXY protocol (v1 and v2) on listeners with
``proxy_protocol = true`` and a ``trusted`` list.

Covered: v1 and v2 headers from a trusted peer (the access log shows the
header's client address and port), a header and its request in one
write, a header sent one byte per write, v2 LOCAL and v1 UNKNOWN (the
real endpoints), an untrusted peer (127.0.0.2 on loopback: closed before
a byte is read), malformed and oversized headers, a request without a
header, no header within limits.proxy_timeout, a PROXY line on a plain
listener (400), the once-a-minute log line per peer, the config
errors, and client_limits behind a balancer: rates, the connection cap
and bans key on the header's client, never on the balancer, whose own
LOCAL and UNKNOWN connections are neither counted nor limited.

Every failure must close the connection without a single byte of
answer. Waits are bounded by the event waited for (a socket timeout,
harness.wait_until), never by a speed.

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_proxy_protocol.py [-k PATTERN]
"""

import ipaddress
import os
import socket
import struct
import sys
import unittest

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, Conn, build_request, parse_access_line, wait_until  # noqa: E402

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, sport, dst="192.0.2.1", dport=80):
    fam = "TCP6" if ":" in src else "TCP4"
    return ("PROXY %s %s %s %d %d\r\n" % (fam, src, dst, sport, dport)).encode()


def v2(src=None, sport=0, dst="192.0.2.1", dport=80, local=False, tlv=b""):
    """A v2 header: PROXY over TCP4/TCP6, or LOCAL (no addresses)."""
    if local:
        return V2_SIG + bytes([0x20, 0x00]) + struct.pack("!H", len(tlv)) + tlv
    if ":" in src:
        fam = 0x21
        addrs = (socket.inet_pton(socket.AF_INET6, src) +
                 socket.inet_pton(socket.AF_INET6, dst if ":" in dst else "::1"))
    else:
        fam = 0x11
        addrs = socket.inet_aton(src) + socket.inet_aton(dst)
    body = addrs + struct.pack("!HH", sport, dport) + tlv
    return V2_SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def conn_from(port, source=HOST):
    """A Conn whose socket is bound to ``source`` (any 127/8 address is
    local on loopback), before connecting."""
    c = Conn.__new__(Conn)
    c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.sock.settimeout(harness.DEFAULT_TIMEOUT)
    c.sock.bind((source, 0))
    c.sock.connect((HOST, port))
    c.timeout = harness.DEFAULT_TIMEOUT
    c.buf = b""
    c.eof = False
    return c


def log_slot(addr):
    """conn_proxy.c's slot for an IPv4 peer in its log-limit table (FNV-1a
    32 over the 16 address bytes, mod 64): two peers in different slots
    are limited apart."""
    h = 2166136261
    for b in ipaddress.IPv4Address(addr).packed + bytes(12):
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h % 64


class ProxyProtocolTest(harness.PorterTestCase):

    def start_proxy(self, trusted=("127.0.0.1",), **kw):
        """listen[0]: plain HTTP; listen[1]: PROXY protocol."""
        srv = self.start_server(listen=[
            "%s:0" % HOST,
            {"address": "%s:0" % HOST, "proxy_protocol": True,
             "trusted": list(trusted)}], **kw)
        harness.write_file(os.path.join(srv.root, "index.html"), b"hello\n")
        self.assertGreaterEqual(len(srv.addrs), 2, srv.addrs)  # + status
        srv.wait_for_stderr(r"listening on 127\.0\.0\.1:%d \(http, PROXY protocol\)"
                            % srv.addrs[1][1])
        return srv, srv.addrs[0][1], srv.addrs[1][1]

    def last_access(self, srv, n):
        lines = srv.wait_access_lines(n)
        rec = parse_access_line(lines[n - 1])
        self.assertIsNotNone(rec, lines[n - 1])
        return rec

    def hosts(self, srv, n):
        """(host, port) of the first n access-log lines, sorted: two
        workers write their lines in no fixed order."""
        return sorted((r["host"], r["port"]) for r in
                      map(parse_access_line, srv.wait_access_lines(n)))

    def assert_closed_silently(self, c):
        """The server closes c and never sends a byte."""
        self.assertTrue(c.closed_by_peer(), "connection left open")
        self.assertEqual(c.buf, b"", "the server answered")

    # -- headers that work ------------------------------------------------

    def test_v1_then_request_in_one_write(self):
        srv, _, pport = self.start_proxy()
        with conn_from(pport) as c:
            c.send(v1("198.51.100.7", 40123) + build_request("GET", "/"))
            r = c.read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"hello\n")
        rec = self.last_access(srv, 1)
        self.assertEqual((rec["host"], rec["port"]), ("198.51.100.7", "40123"))

    def test_v2_ipv4_and_ipv6_with_tlv(self):
        srv, _, pport = self.start_proxy()
        # A TLV (PP2_TYPE_AUTHORITY) is skipped; keep-alive goes on.
        with conn_from(pport) as c:
            c.send(v2("203.0.113.9", 5555, tlv=b"\x02\x00\x03abc") +
                   build_request("GET", "/"))
            self.assertEqual(c.read_response().status, 200)
            c.send(build_request("GET", "/"))
            self.assertEqual(c.read_response().status, 200)
        with conn_from(pport) as c:
            c.send(v2("2001:db8::42", 65535) + build_request("GET", "/"))
            self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.hosts(srv, 3), [("2001:db8::42", "65535"),
                                              ("203.0.113.9", "5555"),
                                              ("203.0.113.9", "5555")])

    def test_header_one_byte_per_write(self):
        srv, _, pport = self.start_proxy()
        for hdr in (v1("198.51.100.8", 1234), v2("198.51.100.9", 4321)):
            with conn_from(pport) as c:
                c.send_slowly(hdr + build_request("GET", "/"), chunk=1,
                              delay=0.002)
                self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.hosts(srv, 2), [("198.51.100.8", "1234"),
                                              ("198.51.100.9", "4321")])

    def test_header_alone_then_request(self):
        """The header in its own write, the request later: the stage
        waits for it, then hands over to HTTP."""
        srv, _, pport = self.start_proxy()
        with conn_from(pport) as c:
            c.send(v2("198.51.100.10", 777))
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Nothing comes back to a header alone.
            self.assertFalse(c.closed_by_peer(timeout=0.3))
            c.send(build_request("GET", "/"))
            self.assertEqual(c.read_response().status, 200)
        rec = self.last_access(srv, 1)
        self.assertEqual((rec["host"], rec["port"]), ("198.51.100.10", "777"))

    def test_local_and_unknown_use_the_real_peer(self):
        srv, _, pport = self.start_proxy()
        ports = []
        for hdr in (v2(local=True), b"PROXY UNKNOWN\r\n",
                    b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"):
            with conn_from(pport) as c:
                ports.append(str(c.local_port))
                c.send(hdr + build_request("GET", "/"))
                self.assertEqual(c.read_response().status, 200)
        self.assertEqual(self.hosts(srv, 3), sorted((HOST, p) for p in ports))

    # -- headers that do not -------------------------------------------

    def test_untrusted_peer_closed_without_answer(self):
        srv, _, pport = self.start_proxy(workers=1)
        with conn_from(pport, "127.0.0.2") as c:
            c.send(v1("198.51.100.7", 1) + build_request("GET", "/"))
            self.assert_closed_silently(c)
        srv.wait_for_stderr(r"PROXY protocol from 127\.0\.0\.2:\d+: "
                            r"untrusted peer, closed")
        self.assertEqual(srv.access_lines(), [])

    def test_bad_headers_closed_without_answer(self):
        srv, _, pport = self.start_proxy(trusted=["127.0.0.0/8"], workers=1)
        cases = [
            ("request without header", build_request("GET", "/"),
             "malformed header: bad_signature"),
            ("lower-case proxy", b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
             "malformed header: bad_signature"),
            ("port 65536", b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
             "malformed header: "),
            ("v2 version 3", V2_SIG + b"\x31\x11\x00\x0c" + bytes(12),
             "malformed header: "),
            ("v1 without CRLF", b"PROXY TCP4 " + b"1" * 120,
             "header too long"),
            ("v2 over the cap", V2_SIG + b"\x21\x11" + struct.pack("!H", 3000),
             "header too long"),
            ("EOF inside", b"PROXY TCP4 1.2.3.4",
             "malformed header: connection closed inside the header"),
        ]
        # A source address of its own per case (each in its own slot of
        # the log limit), so that each failure gets its line.
        sources, slots = [], set()
        for i in range(10, 250):
            a = "127.0.0.%d" % i
            if log_slot(a) not in slots:
                slots.add(log_slot(a))
                sources.append(a)
        for (name, data, word), src in zip(cases, sources):
            with self.subTest(name), conn_from(pport, src) as c:
                c.send(data)
                if name == "EOF inside":
                    c.sock.shutdown(socket.SHUT_WR)
                self.assert_closed_silently(c)
                srv.wait_for_stderr(r"PROXY protocol from %s:\d+: %s" % (
                    src.replace(".", r"\."), word))
        self.assertEqual(srv.access_lines(), [])

    def test_timeout(self):
        srv, _, pport = self.start_proxy(limits={"proxy_timeout": 1})
        with conn_from(pport) as c:
            self.assert_closed_silently(c)
        with conn_from(pport) as c:
            c.send(b"PROXY TCP4 ")     # half a header, then silence
            self.assert_closed_silently(c)
        srv.wait_for_stderr(r"no header in time")

    def test_plain_listener_answers_400_to_a_proxy_line(self):
        srv, plain, _ = self.start_proxy()
        with Conn(plain) as c:
            c.send(v1("198.51.100.7", 1) + build_request("GET", "/"))
            self.assertEqual(c.read_response().status, 400)

    def test_log_once_a_minute_per_peer(self):
        other = next("127.0.0.%d" % i for i in range(3, 250)
                     if log_slot("127.0.0.%d" % i) != log_slot("127.0.0.2"))
        srv, _, pport = self.start_proxy(workers=1)
        for _ in range(3):
            with conn_from(pport, "127.0.0.2") as c:
                self.assert_closed_silently(c)
        with conn_from(pport, other) as c:
            self.assert_closed_silently(c)
        # One worker handles them in order: once the last peer's line is
        # there, any second line about 127.0.0.2 would be too.
        srv.wait_for_stderr(r"PROXY protocol from %s:" % other.replace(".", r"\."))
        lines = [l for l in srv.stderr_lines()
                 if "PROXY protocol from 127.0.0.2:" in l]
        self.assertEqual(len(lines), 1, srv.stderr_text())

    # -- metrics ---------------------------------------------------------

    def test_metrics_count_headers_and_errors(self):
        """Exact deltas of the porter_proxy_protocol_* families on the
        status listener's /metrics after known connections."""
        srv, _, pport = self.start_proxy(limits={"proxy_timeout": 1},
                                         status={"listen": ["%s:0" % HOST]})
        m = srv.wait_for_stderr(r"listening on 127\.0\.0\.1:(\d+) \(status\)")
        sport = int(m.group(1))

        def scrape():
            with Conn(sport) as c:
                c.send(build_request("GET", "/metrics",
                                     headers={"Connection": "close"}))
                body = c.read_response().body.decode()
            out = {}
            for line in body.splitlines():
                if line.startswith("porter_proxy_protocol_"):
                    k, v = line.rsplit(" ", 1)
                    out[k] = float(v)
            return out

        before = scrape()
        for hdr in (v1("198.51.100.1", 1), v2("198.51.100.2", 2),
                    v2("198.51.100.3", 3), v2(local=True), b"PROXY UNKNOWN\r\n"):
            with conn_from(pport) as c:
                c.send(hdr + build_request("GET", "/"))
                self.assertEqual(c.read_response().status, 200)
        for src, data in (("127.0.0.2", v1("198.51.100.1", 1)),
                          (HOST, b"GET / HTTP/1.1\r\n\r\n"),
                          (HOST, b"PROXY TCP4 " + b"9" * 200),
                          (HOST, b"")):
            with conn_from(pport, src) as c:
                c.send(data)
                self.assert_closed_silently(c)
        want = {
            'porter_proxy_protocol_headers_total{version="1",command="proxy"}': 2,
            'porter_proxy_protocol_headers_total{version="2",command="proxy"}': 2,
            'porter_proxy_protocol_headers_total{version="2",command="local"}': 1,
            'porter_proxy_protocol_errors_total{reason="untrusted"}': 1,
            'porter_proxy_protocol_errors_total{reason="invalid"}': 1,
            'porter_proxy_protocol_errors_total{reason="too_long"}': 1,
            'porter_proxy_protocol_errors_total{reason="timeout"}': 1,
        }

        def deltas():
            after = scrape()
            return {k: after[k] - before.get(k, 0) for k in want}
        # The counters are written before each close; wait_until only
        # covers the scrape racing the last worker's close.
        try:
            wait_until(lambda: deltas() == want)
        except AssertionError:
            self.assertEqual(deltas(), want)

    # -- TLS -------------------------------------------------------------

    def test_tls_listener_header_before_the_handshake(self):
        """On a listener with tls and proxy_protocol, the header comes
        first and the handshake after it: with a v2 header and Python's
        OpenSSL, and with curl's v1 header (--haproxy-protocol)."""
        import ssl
        import subprocess
        import test_tls
        test_tls.setUpModule()
        self.addCleanup(test_tls.tearDownModule)
        srv = self.start_server(listen=[
            "%s:0" % HOST,
            {"address": "%s:0" % HOST, "tls": True, "proxy_protocol": True,
             "trusted": [HOST]}],
            tls={"certificate": test_tls.ca("local-full.pem"),
                 "key": test_tls.ca("local.key")})
        harness.write_file(os.path.join(srv.root, "index.html"), b"hello\n")
        port = srv.addrs[1][1]
        raw = socket.create_connection((HOST, port), timeout=harness.DEFAULT_TIMEOUT)
        # Corked: the header and the ClientHello leave in one segment,
        # so the server finds both in its first read.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        raw.sendall(v2("198.51.100.77", 6000))
        c = Conn.__new__(Conn)
        c.sock = test_tls.client_context().wrap_socket(
            raw, server_hostname="localhost", do_handshake_on_connect=False)
        c.sock.setblocking(False)
        try:
            c.sock.do_handshake()   # writes the ClientHello behind the header
        except ssl.SSLWantReadError:
            pass
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        c.sock.settimeout(harness.DEFAULT_TIMEOUT)
        c.sock.do_handshake()
        c.timeout, c.buf, c.eof = harness.DEFAULT_TIMEOUT, b"", False
        with c:
            c.send(build_request("GET", "/"))
            r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"hello\n"))
        p = subprocess.run(
            ["curl", "-sS", "--haproxy-protocol", "--cacert", test_tls.ca("root.pem"),
             "--resolve", "localhost:%d:%s" % (port, HOST),
             "https://localhost:%d/" % port], capture_output=True, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, b"hello\n"), p.stderr)
        recs = [parse_access_line(l) for l in srv.wait_access_lines(2)]
        self.assertIn(("198.51.100.77", "6000"), [(r["host"], r["port"]) for r in recs])
        # curl's v1 header names its own end of the connection
        self.assertEqual(sorted(r["host"] for r in recs), [HOST, "198.51.100.77"])
        # a TLS client that sends no header is closed before any handshake
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            with socket.create_connection((HOST, port), timeout=harness.DEFAULT_TIMEOUT) as s2:
                test_tls.client_context().wrap_socket(s2, server_hostname="localhost")

    # -- configuration ---------------------------------------------------

    def test_config_errors(self):
        d = self.make_tempdir()
        root = os.path.join(d, "root")
        os.mkdir(root)
        cases = [
            ('{ address = "127.0.0.1:0";\n proxy_protocol = true; }', "",
             r"porter\.conf:4: proxy_protocol = true needs a 'trusted' list"),
            ('{ address = "127.0.0.1:0"; proxy_protocol = true;\n trusted = [ ]; }', "",
             r"porter\.conf:4: 'trusted' is empty"),
            ('{ address = "127.0.0.1:0";\n trusted = [ "10.0.0.1" ]; }', "",
             r"porter\.conf:4: 'trusted' needs proxy_protocol = true"),
            ('{ address = "127.0.0.1:0"; proxy_protocol = true;\n trusted = [ "10.0.0.0/33" ]; }', "",
             r"porter\.conf:4: 'trusted': '10\.0\.0\.0/33' is not an address"),
            ('{ address = "127.0.0.1:0"; proxy_protocol = true; trusted = "10.0.0.1"; }',
             'limits: {\n proxy_timeout = 0; };\n',
             r"porter\.conf:6: .*proxy_timeout"),
        ]
        for entry, tail, want in cases:
            with self.subTest(want):
                path = os.path.join(d, "porter.conf")
                harness.write_file(path, (
                    'root = "%s";\nlisten = (\n%s\n);\n%s' % (root, entry, tail)).encode())
                p = harness.check_config(path)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertRegex(p.stderr, want)
        # A good one: a single trusted address as a string, and a network.
        harness.write_file(path, (
            'root = "%s";\nlisten = ( "127.0.0.1:0", { address = "127.0.0.1:0";'
            ' proxy_protocol = true; trusted = [ "10.0.0.0/8", "fd00::2" ]; } );\n'
            'limits: { proxy_timeout = 60; };\n' % root).encode())
        p = harness.check_config(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("trusts every peer", p.stderr)
        # Everyone trusted: allowed, with a warning naming the line.
        harness.write_file(path, (
            'root = "%s";\nlisten = ( { address = "127.0.0.1:0"; proxy_protocol = true;\n'
            ' trusted = [ "10.0.0.2", "::/0" ]; } );\n' % root).encode())
        p = harness.check_config(path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"porter\.conf:3: 'trusted': '::/0' trusts every peer")


class ProxyLimitsTest(harness.PorterTestCase):
    """client_limits on a PROXY listener key on the client the header
    names, never on the balancer that carries it (porter.conf(5),
    proxy_protocol); a balancer's own connection (v2 LOCAL, v1 UNKNOWN:
    its health checks) is neither counted nor limited. Every connection
    below comes from the same socket peer, 127.0.0.1, the trusted
    balancer."""

    def start_limited(self, **limits):
        d = {"mode": "enforce"}
        d.update(limits)
        srv = self.start_server(
            start=False, workers=2,
            listen=["%s:0" % HOST,
                    {"address": "%s:0" % HOST, "proxy_protocol": True,
                     "trusted": [HOST]}],
            client_limits=d)
        srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
        harness.write_file(os.path.join(srv.root, "index.html"), b"hello\n")
        srv.start()
        return srv, srv.addrs[0][1], srv.addrs[1][1]

    def ctl(self, srv, *args):
        r = harness.run_porter("-c", srv.conf_path, "-s", *args)
        self.assertEqual(r.returncode, 0, "porter -s %s: %s%s" % (
            " ".join(args), r.stdout, r.stderr))
        return r.stdout

    def proxied(self, pport, hdr, n=1, c=None):
        """n GETs behind hdr on one keep-alive connection (a new one
        unless c is given); returns (statuses, the connection)."""
        if c is None:
            c = conn_from(pport)
            self.addCleanup(c.close)
            c.send(hdr)
        got = []
        for _ in range(n):
            if not c.send(build_request("GET", "/")):
                got.append(None)
                break
            try:
                r = c.read_response()
            except harness.ConnectionClosed:
                got.append(None)
                break
            got.append(r.status)
            if r.has_token("Connection", "close"):
                break
        return got, c

    def plain(self, port, n):
        got = []
        for _ in range(n):
            with Conn(port) as c:
                c.send(build_request("GET", "/"))
                got.append(c.read_response().status)
        return got

    def test_rate_keys_on_the_header_client(self):
        """Two clients behind one balancer each get their own burst: the
        one over it gets 429, the other is still served, and so is the
        balancer's own address on the plain listener."""
        srv, plain, pport = self.start_limited(rate=0.01, burst=2.0)
        a = v2("198.51.100.20", 4000)
        got, _ = self.proxied(pport, a, 3)
        self.assertEqual(got, [200, 200, 429])
        # a new connection from the same client is still over its rate
        self.assertEqual(self.proxied(pport, v1("198.51.100.20", 4001))[0], [429])
        # another client through the same socket peer: its own burst
        got, _ = self.proxied(pport, v1("198.51.100.21", 4002), 3)
        self.assertEqual(got, [200, 200, 429])
        # the balancer's address was never charged for them
        self.assertEqual(self.plain(plain, 3), [200, 200, 429])
        srv.wait_for_stderr(r"limit: 198\.51\.100\.20 ua:[0-9a-f]{4} over")
        srv.wait_for_stderr(r"limit: 198\.51\.100\.21 ua:[0-9a-f]{4} over")
        recs = [parse_access_line(l) for l in srv.wait_access_lines(10)]
        self.assertEqual(sorted((r["host"], r["status"]) for r in recs
                                if r["status"] == "429"),
                         [(HOST, "429"), ("198.51.100.20", "429"),
                          ("198.51.100.20", "429"), ("198.51.100.21", "429")])

    def test_connection_cap_keys_on_the_header_client(self):
        """per_address_connections counts each header client's open
        connections: the client at its cap gets 429 and a close, another
        client through the same balancer is served."""
        srv, _, pport = self.start_limited(per_address_connections=2)
        held = [self.proxied(pport, v2("198.51.100.30", 5000 + i))
                for i in range(2)]
        self.assertEqual([g for g, _ in held], [[200], [200]])
        got, c = self.proxied(pport, v2("198.51.100.30", 5002))
        self.assertEqual(got, [429])
        self.assertTrue(c.closed_by_peer())
        # three more, from other clients, on the same balancer's socket
        others = [self.proxied(pport, v2("198.51.100.%d" % (31 + i), 6000))
                  for i in range(3)]
        self.assertEqual([g for g, _ in others], [[200]] * 3)
        # one of the capped client's connections ends: room again
        held[0][1].close()
        harness.wait_until(
            lambda: self.proxied(pport, v2("198.51.100.30", 5003))[0] == [200],
            message="a closed connection still counted")

    def test_ban_keys_on_the_header_client(self):
        """A ban on a client behind the balancer blocks that client only;
        a ban on the balancer's own address blocks none of its clients."""
        srv, plain, pport = self.start_limited()
        self.ctl(srv, "ban", "198.51.100.40", "600")
        got, c = self.proxied(pport, v1("198.51.100.40", 7000))
        self.assertEqual(got, [429])
        self.assertEqual(self.proxied(pport, v1("198.51.100.41", 7001))[0], [200])
        self.ctl(srv, "ban", HOST, "600")
        self.assertEqual(self.plain(plain, 1), [429])
        self.assertEqual(self.proxied(pport, v2("198.51.100.42", 7002))[0], [200])
        self.assertEqual(self.proxied(pport, v1("198.51.100.40", 7003))[0], [429])

    def test_local_connections_are_not_limited(self):
        """The balancer's health checks (LOCAL, UNKNOWN) pass however
        many there are and however many stay open, and do not count
        against the balancer's address: its first plain requests after
        them are still inside its burst."""
        srv, plain, pport = self.start_limited(rate=0.01, burst=2.0,
                                               per_address_connections=2)
        # over the rate: many requests on one LOCAL connection, and on
        # many, with each command
        got, _ = self.proxied(pport, v2(local=True), 10)
        self.assertEqual(got, [200] * 10)
        for hdr in (v2(local=True), b"PROXY UNKNOWN\r\n") * 3:
            self.assertEqual(self.proxied(pport, hdr, 2)[0], [200, 200])
        # over the connection cap: four LOCAL connections held open
        held = [self.proxied(pport, v2(local=True)) for _ in range(4)]
        self.assertEqual([g for g, _ in held], [[200]] * 4)
        for _, c in held:
            self.assertEqual(self.proxied(pport, None, 1, c)[0], [200])
        # the limits are on: a proxied client is limited, and the
        # balancer's address, on the plain listener, was not charged
        self.assertEqual(self.proxied(pport, v2("198.51.100.50", 1), 3)[0],
                         [200, 200, 429])
        self.assertEqual(self.plain(plain, 3), [200, 200, 429])


if __name__ == "__main__":
    unittest.main()
