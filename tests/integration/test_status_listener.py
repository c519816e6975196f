#!/usr/bin/python3
"""Integration tests for the status listener (src/status.c, the "status"
and "health" groups of src/conf_status.c) and for draining
(``porter -s drain|undrain`` in src/master_ctl.c, ``health.shutdown_delay``
in src/master_stop.c):

- ``status.listen`` gets listeners of its own (never the public site);
  peers outside ``status.allow`` get 403, checked on the TCP peer;
- ``GET /metrics`` is Prometheus text 0.0.4 (parsed here with Debian's
  python3-prometheus-client) whose counters move by exactly what known
  requests did, never count the scrapes themselves, and never go back:
  not across a reload, a SIGKILLed worker, a max_requests recycle;
- ``promtool check metrics`` finds nothing in a live scrape, and a real
  Prometheus server (Debian's prometheus) scraping the listener stores
  the series;
- ``GET /health`` is 200 ``ok``, or 503 (404 with
  ``health.drain_status = 404``) ``draining`` after ``porter -s drain``,
  until ``porter -s undrain``; while draining responses on the public
  listeners say Connection: close and are still served;
- with ``health.shutdown_delay`` a TERM first drains with the listeners
  open (health fails, requests served, systemd hears STOPPING=1 with
  EXTEND_TIMEOUT_USEC), then stops as before.

Every wait is bounded by the event it waits for (harness.wait_until).

Run by ``make check`` or by hand:
    PORTER_BIN=build/src/porter /usr/bin/python3 tests/integration/test_status_listener.py
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import unittest
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import HOST, Conn, build_request, get, wait_until  # noqa: E402
from test_status import free_port  # noqa: E402
from test_systemd import NotifySocket  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # pragma: no cover - ./dev installs it
    text_string_to_metric_families = None

BODY = b"hello from the status tests\n"
STATUS_RE = re.compile(r"listening on (\d+\.\d+\.\d+\.\d+):(\d+) \(status\)")
FAMILIES = (
    "porter_build_info", "porter_config_info", "porter_start_time_seconds",
    "porter_generation", "porter_workers", "porter_worker_exits",
    "porter_config_reloads", "porter_config_last_reload_successful",
    "porter_connections_accepted", "porter_connections",
    "porter_connections_rejected", "porter_http_requests",
    "porter_http_sent_bytes", "porter_http_request_duration_seconds",
    "porter_draining",
)


def parse_metrics(text):
    """{(sample name, frozenset(labels)): value} of a /metrics body."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def families(text):
    return {fam.name for fam in text_string_to_metric_families(text)}


def code(c):
    return ("porter_http_requests_total", frozenset({("code", str(c))}))


def plain(name):
    return (name, frozenset())


COUNTERS_PLAIN = ("porter_connections_accepted_total", "porter_http_sent_bytes_total",
                  "porter_http_request_duration_seconds_count",
                  "porter_http_request_duration_seconds_sum")


def raw_get(port, path, source=None, headers=""):
    """One GET with Connection: close on a fresh socket (from source, if
    given; headers: extra header lines); returns (status, headers dict,
    body, every byte received)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(harness.DEFAULT_TIMEOUT)
    try:
        if source:
            s.bind((source, 0))
        s.connect((HOST, port))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n" %
                   (path, headers)).encode())
        data = b""
        while True:  # Connection: close: the response ends at end of file
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split()[1]), headers, body, len(data)


class StatusListenerCase(harness.PorterTestCase):

    def start_with_status(self, status=None, health=None, fixed=False, env=None, **settings):
        """A server with a status listener and a pid file (for porter -s).
        fixed: the public and status ports are fixed free ports, so a
        reload keeps them. Sets self.sport."""
        last = None
        for _ in range(5):
            root = self.make_tempdir()
            harness.write_file(os.path.join(root, "index.html"), BODY)
            st = {"listen": ["%s:%d" % (HOST, free_port() if fixed else 0)]}
            st.update(status or {})
            if fixed:
                settings.setdefault("listen", ["%s:%d" % (HOST, free_port())])
            srv = self.start_server(root, start=False, env=env, status=st, **settings)
            if health is not None:
                srv.write_config(health=health)
            srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
            try:
                srv.start()
                srv.wait_for_stderr(r"\d+ workers ready")
                self.sport = self.status_port(srv)
                return srv
            except harness.ServerError as e:
                last = e
                srv.close()
        raise last

    def status_port(self, srv, start=0):
        m = srv.wait_for_stderr(STATUS_RE.pattern, start=start)
        ports = [int(STATUS_RE.search(line).group(2)) for line in srv.stderr_lines()[start:]
                 if STATUS_RE.search(line)]
        return ports[-1] if ports else int(m.group(2))

    def scrape(self, port=None):
        status, headers, body, _ = raw_get(port or self.sport, "/metrics")
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        return body.decode()

    def porter_s(self, srv, cmd):
        r = harness.run_porter("-s", cmd, "-c", srv.conf_path)
        self.assertEqual(r.returncode, 0, "porter -s %s: %s\n%s" % (cmd, r.stderr, srv.stderr_text()))
        return r.stdout


@unittest.skipIf(text_string_to_metric_families is None,
                 "python3-prometheus-client is not installed (./dev installs it)")
class MetricsTest(StatusListenerCase):

    def test_families_and_exact_deltas(self):
        srv = self.start_with_status(workers=2)
        # the harness's readiness probe was a connection of its own
        wait_until(lambda: parse_metrics(self.scrape())[
            plain("porter_connections_accepted_total")] >= 1)
        before = parse_metrics(self.scrape())
        text = self.scrape()
        self.assertTrue(set(FAMILIES) <= families(text), sorted(families(text)))
        # scrapes are not traffic: the ones above changed nothing
        again = parse_metrics(self.scrape())
        for k, v in before.items():
            if k[0].startswith("porter_http") or k[0] == "porter_connections_accepted_total":
                self.assertEqual(again[k], v, k)

        received = 0
        statuses = []
        for path in ("/", "/", "/index.html", "/missing", "/missing/too", "/"):
            status, headers, _, n = raw_get(srv.port, path)
            statuses.append(status)
            received += n
        etag = headers["etag"]
        status, _, _, n = raw_get(srv.port, "/", headers="If-None-Match: %s\r\n" % etag)
        statuses.append(status)
        received += n
        self.assertEqual(statuses, [200, 200, 200, 404, 404, 200, 304])

        # A worker counts a request once its response is sent: with two
        # workers the scrape may come before the last count. Wait for it.
        dur = plain("porter_http_request_duration_seconds_count")
        wait_until(lambda: parse_metrics(self.scrape()).get(dur, 0) - before.get(dur, 0) >= 7)
        after = parse_metrics(self.scrape())
        delta = {k: after[k] - before.get(k, 0) for k in after}
        self.assertEqual(delta[code(200)], 4)
        self.assertEqual(delta[code(404)], 2)
        self.assertEqual(delta[code(304)], 1)
        for c in ("206", "400", "500", "other"):
            self.assertEqual(delta[code(c)], 0, c)
        self.assertEqual(delta[plain("porter_connections_accepted_total")], 7)
        self.assertEqual(delta[plain("porter_http_sent_bytes_total")], received)
        self.assertEqual(delta[plain("porter_http_request_duration_seconds_count")], 7)
        inf = ("porter_http_request_duration_seconds_bucket", frozenset({("le", "+Inf")}))
        self.assertEqual(delta[inf], 7)
        self.assertEqual(after[plain("porter_generation")], 1)
        self.assertEqual(after[plain("porter_draining")], 0)
        self.assertEqual(after[("porter_workers", frozenset({("state", "ready")}))], 2)
        with open(srv.conf_path, "rb") as f:
            data = f.read()
        h = 0xcbf29ce484222325
        for b in data:
            h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
        self.assertIn(("porter_config_info", frozenset({("hash", "%016x" % h)})), after)
        # nothing per address or per pid
        pids = {str(p) for p in srv.worker_pids() + [srv.pid]}
        for name, labels in after:
            for k, v in labels:
                self.assertNotIn(k, ("pid", "address", "addr", "peer", "client", "ip"), name)
                self.assertNotIn(v, pids, name)
                self.assertNotRegex(v, r"^\d+\.\d+\.\d+\.\d+|:.*:", name)

    def test_counters_never_go_back(self):
        srv = self.start_with_status(workers=2, fixed=True, max_requests=20)
        seen = []

        def check():
            m = parse_metrics(self.scrape())
            if seen:
                for k, v in seen[-1].items():
                    if k[0].endswith(("_total", "_count", "_sum", "_bucket")):
                        self.assertGreaterEqual(m.get(k, 0), v, "%s went back" % (k,))
            seen.append(m)
            return m

        def traffic(n):
            for _ in range(n):
                self.assertEqual(get(srv.port, "/").status, 200)

        def counted(n):
            # A worker counts a request once its response is sent, so the
            # client may see the 10th response before its count: wait.
            wait_until(lambda: parse_metrics(self.scrape()).get(code(200), 0) == n)

        traffic(10)
        counted(10)
        first = check()
        self.porter_s(srv, "reload")
        wait_until(lambda: parse_metrics(self.scrape())[plain("porter_generation")] == 2)
        check()
        traffic(10)
        check()
        # the old generation gone, a worker of the new one is the victim
        wait_until(lambda: len(srv.worker_pids()) == 2)
        victim = srv.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: parse_metrics(self.scrape())[
            ("porter_worker_exits_total", frozenset({("reason", "crash")}))] >= 1)
        check()
        # max_requests = 20 per worker: 60 more requests recycle at least one
        traffic(60)
        wait_until(lambda: parse_metrics(self.scrape())[
            ("porter_worker_exits_total", frozenset({("reason", "max_requests")}))] >= 1)
        counted(80)
        last = check()
        self.assertEqual(last[code(200)] - first[code(200)], 70)
        self.assertEqual(last[("porter_config_reloads_total",
                               frozenset({("result", "success")}))], 1)

    def test_connection_states(self):
        srv = self.start_with_status(workers=1)
        harness.write_file(os.path.join(srv.root, "big.bin"), b"x" * (32 << 20))

        def conns():
            m = parse_metrics(self.scrape())
            return tuple(int(m[("porter_connections", frozenset({("state", s)}))])
                         for s in ("reading", "writing", "idle"))
        wait_until(lambda: conns() == (0, 0, 0))
        idle = []
        for _ in range(5):
            c = Conn(srv.port)
            self.addCleanup(c.close)
            c.send(build_request("GET", "/"))
            self.assertEqual(c.read_response().body, BODY)
            idle.append(c)
        reading = Conn(srv.port)
        self.addCleanup(reading.close)
        reading.send(b"GET / HTTP/1.1\r\nHost: x\r\n")   # the head is not over
        writing = socket.create_connection((HOST, srv.port))
        writing.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.addCleanup(writing.close)
        writing.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")  # never read
        wait_until(lambda: conns() == (1, 1, 5), message="gauges never showed 1, 1, 5")
        # the worker dies: its gauges go with it, once reaped
        os.kill(srv.worker_pids()[0], signal.SIGKILL)
        wait_until(lambda: conns() == (0, 0, 0), message="a dead worker's connections stayed")

    def test_promtool_accepts_a_live_scrape(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool not installed (Debian's prometheus package)")
        srv = self.start_with_status(workers=1)
        for p in ("/", "/missing"):
            get(srv.port, p)
        text = self.scrape()
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip() + r.stderr.strip(), "", "promtool complains")

    def test_prometheus_server_scrapes_it(self):
        prom = shutil.which("prometheus")
        if prom is None:
            self.skipTest("prometheus not installed (Debian's prometheus package)")
        srv = self.start_with_status(workers=1)
        get(srv.port, "/")
        work = self.make_tempdir()
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: porter\n    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (HOST, self.sport))
        for _ in range(5):
            pport = free_port()
            p = subprocess.Popen([prom, "--config.file=" + cfg,
                                  "--storage.tsdb.path=" + os.path.join(work, "data"),
                                  "--web.listen-address=%s:%d" % (HOST, pport)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.addCleanup(p.wait, 30)
            self.addCleanup(p.terminate)

            def query(q, pport=pport):
                url = "http://%s:%d/api/v1/query?query=%s" % (HOST, pport, urllib.parse.quote(q))
                try:
                    with urllib.request.urlopen(url, timeout=5) as r:
                        return json.load(r)["data"]["result"]
                except OSError:
                    if p.poll() is not None:
                        raise AssertionError("prometheus exited: %s" % p.stderr.read())
                    return None
            try:
                res = wait_until(lambda: query('porter_http_requests_total{code="200"}'),
                                 60, message="prometheus stored no porter series")
                break
            except AssertionError:
                if p.poll() is None:
                    raise
        self.assertEqual(res[0]["metric"]["job"], "porter")
        self.assertGreaterEqual(float(res[0]["value"][1]), 1)
        up = wait_until(lambda: query('up{job="porter"}'), 30)
        self.assertEqual(up[0]["value"][1], "1")
        hist = wait_until(lambda: query("porter_http_request_duration_seconds_count"), 30)
        self.assertGreaterEqual(float(hist[0]["value"][1]), 1)


class StatusEndpointsTest(StatusListenerCase):

    def test_health_status_and_not_found(self):
        srv = self.start_with_status(workers=2)
        status, headers, body, _ = raw_get(self.sport, "/health")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertEqual(headers["cache-control"], "no-store")
        status, _, body, _ = raw_get(self.sport, "/status")
        self.assertEqual(status, 200)
        text = body.decode()
        for pid in srv.worker_pids():
            self.assertRegex(text, r"(?m)^%d +1 +ready " % pid)
        self.assertRegex(text, r"(?m)^uptime: \d+ s$")
        self.assertRegex(text, r"(?m)^generation: 1$")
        self.assertRegex(text, r"(?m)^last reload: none$")
        self.assertRegex(text, r"(?m)^workers: 2 ready, 0 starting, 0 draining$")
        self.assertRegex(text, r"(?m)^requests: \d+ \(1xx \d+, 2xx \d+, 3xx \d+, 4xx \d+, "
                               r"5xx \d+\)$")
        self.assertEqual(raw_get(self.sport, "/")[0], 404)
        self.assertEqual(raw_get(self.sport, "/index.html")[0], 404)
        self.assertEqual(get(self.sport, "/metrics", method="POST", body=b"x").status, 405)
        self.assertEqual(get(self.sport, "/health", method="HEAD").status, 200)
        # the public listeners know nothing of it: /metrics is a file lookup
        self.assertEqual(raw_get(srv.port, "/metrics")[0], 404)
        self.assertEqual(raw_get(srv.port, "/health")[0], 404)
        # answers on the status listener are not logged; those three are
        get(srv.port, "/")
        lines = srv.wait_access_lines(3)
        self.assertEqual(sorted(l.split('"')[1] for l in lines),
                         ["GET / HTTP/1.1", "GET /health HTTP/1.1", "GET /metrics HTTP/1.1"])

    def test_peer_outside_allow_gets_403(self):
        srv = self.start_with_status(status={"allow": ["127.0.0.1/32"]}, workers=1)
        self.assertEqual(raw_get(self.sport, "/health")[0], 200)
        status, _, body, _ = raw_get(self.sport, "/metrics", source="127.0.0.2")
        self.assertEqual(status, 403, body)
        self.assertNotIn(b"porter_", body)
        self.assertEqual(raw_get(self.sport, "/health", source="127.0.0.2")[0], 403)
        srv.wait_for_stderr(r"127\.0\.0\.2 is not in status\.allow")
        # the public site still answers that peer
        self.assertEqual(raw_get(srv.port, "/", source="127.0.0.2")[0], 200)

    def test_allow_by_network(self):
        self.start_with_status(status={"allow": ["127.0.0.0/8"]}, workers=1)
        self.assertEqual(raw_get(self.sport, "/health", source="127.0.0.2")[0], 200)

    def test_access_log_when_asked(self):
        srv = self.start_with_status(status={"access_log": True}, workers=1)
        raw_get(self.sport, "/health")
        lines = srv.wait_access_lines(1)
        self.assertIn("GET /health", lines[0])

    def test_reload_moves_the_status_listener(self):
        srv = self.start_with_status(workers=1, fixed=True)
        old = self.sport
        self.assertEqual(raw_get(old, "/health")[0], 200)
        new = free_port()
        mark = len(srv.stderr_lines())
        srv.write_config(status={"listen": ["%s:%d" % (HOST, new)]})
        self.porter_s(srv, "reload")
        self.assertEqual(self.status_port(srv, mark), new)
        self.assertEqual(raw_get(new, "/health")[0], 200)

        def refused():
            try:
                raw_get(old, "/health")
                return False
            except OSError:
                return True
        wait_until(refused, message="old status port still open")
        # the public port was kept: it still serves
        self.assertEqual(get(srv.port, "/").status, 200)


class DrainTest(StatusListenerCase):

    def test_drain_and_undrain(self):
        srv = self.start_with_status(workers=2)
        self.assertEqual(raw_get(self.sport, "/health")[:3:2], (200, b"ok\n"))
        out = self.porter_s(srv, "drain")
        self.assertIn("draining: yes", out)
        status, _, body, _ = raw_get(self.sport, "/health")
        self.assertEqual((status, body), (503, b"draining\n"))
        m = parse_metrics(self.scrape()) if text_string_to_metric_families else None
        if m is not None:
            self.assertEqual(m[plain("porter_draining")], 1)
        # still served, but keep-alive clients are told to go
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/"))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (200, BODY))
            self.assertTrue(r.has_token("Connection", "close"), r.headers)
        st = self.porter_s(srv, "status")
        self.assertIn("state: draining\n", st)
        self.assertIn("draining: yes\n", st)
        out = self.porter_s(srv, "undrain")
        self.assertIn("draining: no", out)
        st = self.porter_s(srv, "status")
        self.assertIn("state: running\n", st)
        self.assertIn("draining: no\n", st)
        self.assertEqual(raw_get(self.sport, "/health")[:3:2], (200, b"ok\n"))
        with Conn(srv.port) as c:
            c.send(build_request("GET", "/"))
            r = c.read_response()
            self.assertFalse(r.has_token("Connection", "close"), r.headers)

    def test_drain_status_404(self):
        srv = self.start_with_status(health={"drain_status": 404}, workers=1)
        self.porter_s(srv, "drain")
        status, _, body, _ = raw_get(self.sport, "/health")
        self.assertEqual((status, body), (404, b"draining\n"))

    def test_drain_survives_a_reload(self):
        srv = self.start_with_status(workers=1, fixed=True)
        self.porter_s(srv, "drain")
        self.porter_s(srv, "reload")
        self.assertEqual(raw_get(self.sport, "/health")[0], 503)

    def test_shutdown_delay_drains_first(self):
        ns = NotifySocket()
        self.addCleanup(ns.close)
        # a long delay, ended by a second TERM: the order is checked,
        # never how long anything took
        srv = self.start_with_status(health={"shutdown_delay": 600}, workers=2,
                                     env={"NOTIFY_SOCKET": ns.path})
        ns.wait_events(1)
        srv.send_signal(signal.SIGTERM)
        srv.wait_for_stderr(r"draining for 600 s before stopping")
        wait_until(lambda: raw_get(self.sport, "/health")[0] == 503)
        # listeners open, requests served with Connection: close
        for _ in range(3):
            with Conn(srv.port) as c:
                c.send(build_request("GET", "/"))
                r = c.read_response()
                self.assertEqual((r.status, r.body), (200, BODY))
                self.assertTrue(r.has_token("Connection", "close"), r.headers)
        ns.sync()
        ext = ns.with_field("EXTEND_TIMEOUT_USEC")
        self.assertEqual(len(ext), 1, ns.snapshot())
        self.assertEqual(ext[0].fields.get("STOPPING"), "1")
        self.assertEqual(int(ext[0].fields["EXTEND_TIMEOUT_USEC"]), (600 + 10 + 5) * 1000000)
        # still running: nothing has stopped yet
        self.assertTrue(srv.running())
        self.assertEqual(len(srv.worker_pids()), 2)
        self.assertNotIn("graceful stop", srv.stderr_text())
        # reloads and undrain are refused while stopping
        r = harness.run_porter("-s", "undrain", "-c", srv.conf_path)
        self.assertNotEqual(r.returncode, 0)
        # a second TERM ends the delay: the usual graceful stop follows
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(), 0)
        err = srv.stderr_text()
        self.assertLess(err.index("draining for 600 s"), err.index("graceful stop"))

    def test_shutdown_delay_runs_out_by_itself(self):
        srv = self.start_with_status(health={"shutdown_delay": 1}, workers=1)
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(), 0)
        err = srv.stderr_text()
        a = err.index("draining for 1 s before stopping")
        b = err.index("shutdown delay over")
        c = err.index("graceful stop")
        self.assertLess(a, b)
        self.assertLess(b, c)

    def test_no_delay_by_default(self):
        srv = self.start_with_status(workers=1)
        srv.send_signal(signal.SIGTERM)
        self.assertEqual(srv.wait_exit(), 0)
        self.assertNotIn("draining for", srv.stderr_text())


class ConfigTest(harness.PorterTestCase):

    def check(self, text):
        d = self.make_tempdir()
        root = os.path.join(d, "root")
        os.mkdir(root)
        path = os.path.join(d, "porter.conf")
        with open(path, "w") as f:
            f.write('listen = [ "127.0.0.1:8080" ];\nroot = "%s";\npid_file = "off";\n%s\n'
                    % (root, text))
        r = harness.run_porter("-t", "-c", path)
        return r.returncode, r.stderr, path

    def assert_error(self, text, line, pattern):
        rc, err, path = self.check(text)
        self.assertNotEqual(rc, 0, err)
        self.assertRegex(err, re.escape("%s:%d:" % (path, line)) + ".*" + pattern)

    def test_errors_name_file_and_line(self):
        self.assert_error('status: {\n listen = [ "127.0.0.1:8080" ];\n};', 5,
                          "overlaps listen '127.0.0.1:8080'")
        self.assert_error('status: {\n listen = [ "127.0.0.1:9180", "127.0.0.1:9180" ];\n};', 5,
                          "overlaps '127.0.0.1:9180'")
        self.assert_error('status: {\n allow = [ "10.0.0.0/33" ];\n};', 5,
                          "not an address or a CIDR")
        self.assert_error('status: {\n listen = [ "nowhere" ];\n};', 5, "")
        self.assert_error('status: {\n colour = "blue";\n};', 5, "colour")
        self.assert_error('health: {\n drain_status = 500;\n};', 5, "drain_status")
        self.assert_error('health: {\n shutdown_delay = -1;\n};', 5, "shutdown_delay")

    def test_good_config(self):
        rc, err, _ = self.check('status: { listen = [ "127.0.0.1:9180", "[::1]:9180" ];\n'
                                ' allow = [ "127.0.0.1", "::1/128", "10.0.0.0/8" ];\n'
                                ' access_log = true; };\n'
                                'health: { drain_status = 404; shutdown_delay = 5; };')
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    unittest.main()
