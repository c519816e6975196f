#!/usr/bin/python3
"""Per-client rate limits and temporary bans (client_limits, issue 13).

127.0.0.0/8 is all local on Linux, so a client can bind 127.0.0.N and
reach the server on 127.0.0.1 as a distinct address without root: each
test uses its own source addresses. Rates are kept short (a second or
two) so waiting as Retry-After says is quick; no test asserts a speed.
"""

import http.client
import os
import signal
import socket
import threading
import time
import unittest

import harness


def hget(port, path="/", src="127.0.0.1", ua="test-agent", conn=None):
    """One GET; returns (status, headers dict (lower-case), body, conn).
    With conn, reuses that keep-alive connection."""
    if conn is None:
        conn = http.client.HTTPConnection(harness.HOST, port, timeout=20,
                                          source_address=(src, 0))
    conn.request("GET", path, headers={"User-Agent": ua})
    r = conn.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    if r.will_close:
        conn.close()
        conn = None
    return r.status, hdrs, body, conn


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((harness.HOST, 0))
        return s.getsockname()[1]


class LimitsCase(harness.PorterTestCase):

    def limits(self, **kw):
        d = {"mode": "enforce"}
        d.update(kw)
        return d

    def start(self, root_files=None, workers=2, **limits):
        """A server on a fixed port (reloads and restarts keep it) with
        a pid file, so that porter -s finds it."""
        last = None
        for _ in range(5):
            srv = self.start_server(
                start=False, workers=workers, listen=["%s:%d" % (
                    harness.HOST, free_port())],
                client_limits=self.limits(**limits))
            srv.write_config(pid_file=os.path.join(srv.workdir, "porter.pid"))
            harness.write_file(os.path.join(srv.root, "index.html"),
                               b"<p>home</p>\n")
            for name, data in (root_files or {}).items():
                harness.write_file(os.path.join(srv.root, name), data)
            try:
                srv.start()
                return srv
            except harness.ServerError as e:
                last = e
                srv.close()
        raise last

    def ctl(self, srv, *args, ok=True):
        r = harness.run_porter("-c", srv.conf_path, "-s", *args)
        if ok:
            self.assertEqual(r.returncode, 0, "porter -s %s: %s%s" % (
                " ".join(args), r.stdout, r.stderr))
        return r

    def bans(self, srv):
        out = self.ctl(srv, "bans").stdout
        return [l.split("\t") for l in out.splitlines() if l]


class RateTest(LimitsCase):

    def test_429_with_retry_after_then_allowed(self):
        srv = self.start(rate=1.0, burst=5.0, contact="abuse@example.org")
        conn = None
        codes = []
        for _ in range(5):
            st, h, body, conn = hget(srv.port, src="127.0.0.2", conn=conn)
            codes.append(st)
        self.assertEqual(codes, [200] * 5)
        st, h, body, conn = hget(srv.port, src="127.0.0.2", conn=conn)
        self.assertEqual(st, 429)
        ra = h.get("retry-after")
        self.assertIsNotNone(ra, h)
        self.assertTrue(ra.isdigit() and int(ra) >= 1, ra)
        self.assertEqual(h.get("cache-control"), "no-store")
        self.assertIn(b"your network", body)
        self.assertIn(b"abuse@example.org", body)
        # another address is not affected
        self.assertEqual(hget(srv.port, src="127.0.0.3")[0], 200)
        # waiting as told is enough
        time.sleep(int(ra))
        st, h, body, conn = hget(srv.port, src="127.0.0.2", conn=conn)
        self.assertEqual(st, 200)
        srv.wait_for_stderr(r"limit: 127\.0\.0\.2 ua:[0-9a-f]{4} over 1/s "
                            r"burst 5: 429 for \d+ s$")
        lines = srv.wait_access_lines(8)
        self.assertEqual(sum(1 for l in lines if '" 429 ' in l), 1, lines)

    def test_assets_and_304_cost_less(self):
        # asset_weight 0.25: a burst of 2 pages is 8 stylesheets
        srv = self.start(rate=0.01, burst=2.0, root_files={"s.css": b"p{}"})
        got = [hget(srv.port, "/s.css", src="127.0.0.4")[0] for _ in range(9)]
        self.assertEqual(got, [200] * 8 + [429])
        got = [hget(srv.port, "/", src="127.0.0.5")[0] for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])

    def test_dry_run_only_logs(self):
        srv = self.start(mode="dry-run", rate=1.0, burst=3.0)
        got = [hget(srv.port, src="127.0.0.6")[0] for _ in range(8)]
        self.assertEqual(got, [200] * 8)
        srv.wait_for_stderr(r"limit: 127\.0\.0\.6 ua:[0-9a-f]{4} over 1/s "
                            r"burst 3: 429 for \d+ s \(dry-run\)$")
        st = dict(l.split(": ", 1) for l in self.ctl(srv, "status").stdout.splitlines()
                  if ": " in l)
        self.assertEqual(st["client_limits_mode"], "dry-run")
        self.assertEqual(int(st["client_rejected_rate_dry_run"]), 5)
        self.assertEqual(int(st["client_rejected_rate"]), 0)

    def test_allow_list_is_never_limited(self):
        srv = self.start(rate=1.0, burst=2.0, allow=["127.0.0.7/32"])
        got = [hget(srv.port, src="127.0.0.7")[0] for _ in range(20)]
        self.assertEqual(got, [200] * 20)
        got = [hget(srv.port, src="127.0.0.8")[0] for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])

    def test_bad_config_names_file_and_line(self):
        d = self.make_tempdir()
        path = os.path.join(d, "porter.conf")
        with open(path, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\n'
                    'client_limits: {\n  mode = "enforce";\n'
                    '  burst = 0.5;\n};\n' % d)
        r = harness.check_config(path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("porter.conf:5:", r.stderr)
        self.assertIn("burst", r.stderr)
        with open(path, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\n'
                    'client_limits: {\n  mode = "enforce";\n'
                    '  allow = [ "10.0.0.0/33" ];\n};\n' % d)
        r = harness.check_config(path)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("porter.conf:5:", r.stderr)


class MetricsTest(LimitsCase):

    def test_counters_on_the_status_listener(self):
        srv = self.start(rate=1.0, burst=2.0)
        srv.stop()
        srv.write_config(status={"listen": ["%s:%d" % (harness.HOST, free_port())]})
        srv.start()
        m = srv.wait_for_stderr(r"listening on 127\.0\.0\.1:(\d+) \(status\)")
        sport = int(m.group(1))
        got = [hget(srv.port, src="127.0.5.1")[0] for _ in range(4)]
        self.assertEqual(got, [200, 200, 429, 429])
        self.ctl(srv, "ban", "127.0.5.2", "60")
        st, h, body, _ = hget(sport, "/metrics")
        self.assertEqual(st, 200)
        text = body.decode()
        self.assertIn('porter_client_rejected_total{reason="rate",mode="enforce"} 2\n', text)
        self.assertIn('porter_client_bans_total{cause="manual"} 1\n', text)
        self.assertIn("porter_client_bans_active 1\n", text)
        self.assertIn('porter_client_table_capacity{table="clients"} 65536\n', text)


class BanTest(LimitsCase):

    def test_probe_storm_bans_and_unban_lifts(self):
        srv = self.start(rate=100.0, burst=1000.0,
                         ban={"probe_points": 10, "probe_window": 300})
        # one missing favicon over and over is not probing
        for _ in range(30):
            self.assertEqual(hget(srv.port, "/favicon.ico", src="127.0.1.1")[0], 404)
        self.assertEqual(self.bans(srv), [])
        got = [hget(srv.port, "/admin%d.php" % i, src="127.0.1.2")[0]
               for i in range(15)]
        self.assertIn(429, got)
        self.assertEqual(got[:10], [404] * 10)
        st, h, body, _ = hget(srv.port, "/", src="127.0.1.2")
        self.assertEqual(st, 429)
        self.assertGreaterEqual(int(h["retry-after"]), 500)
        self.assertIn(b"blocked", body)
        bans = self.bans(srv)
        self.assertEqual(len(bans), 1, bans)
        self.assertTrue(bans[0][0].startswith("127.0.1.2/32 ua:"), bans)
        self.assertEqual(bans[0][1:3], ["auto", "probe"])
        srv.wait_for_stderr(r"ban: 127\.0\.1\.2 ua:[0-9a-f]{4} for 600 s: "
                            r"400/403/404s on distinct paths$")
        # another agent on the same address is not banned
        self.assertEqual(hget(srv.port, "/", src="127.0.1.2", ua="other")[0], 200)
        out = self.ctl(srv, "unban", "127.0.1.2").stdout
        self.assertIn("127.0.1.2/32 ua:", out)
        self.assertEqual(self.bans(srv), [])
        self.assertEqual(hget(srv.port, "/", src="127.0.1.2")[0], 200)

    def test_manual_ban_expires(self):
        srv = self.start()
        r = self.ctl(srv, "ban", "127.0.1.3", "2", "testing")
        self.assertIn("banned 127.0.1.3/32 for 2 s", r.stdout)
        st, h, body, _ = hget(srv.port, src="127.0.1.3")
        self.assertEqual(st, 429)
        # the ban ends on a whole second: 2 s from now, rounded up
        self.assertIn(int(h["retry-after"]), (1, 2, 3))
        self.assertEqual(h.get("connection"), "close")
        self.assertEqual(hget(srv.port, src="127.0.1.4")[0], 200)
        harness.wait_until(lambda: hget(srv.port, src="127.0.1.3")[0] == 200,
                           message="manual ban did not expire")
        self.assertEqual(self.bans(srv), [])
        srv.wait_for_stderr(r"unban: 127\.0\.1\.3/32 \(expired\)$")
        srv.wait_for_stderr(r"ban: 127\.0\.1\.3/32 for 2 s: porter -s ban: testing$")
        # bad input gets a clear answer
        r = self.ctl(srv, "ban", "127.0.1.3", "0", ok=False)
        self.assertNotEqual(r.returncode, 0)
        r = self.ctl(srv, "ban", "not-an-address", "5", ok=False)
        self.assertIn("not an address", r.stderr)

    def test_ban_close_action_closes_at_accept(self):
        srv = self.start(ban={"action": "close"})
        self.ctl(srv, "ban", "127.0.1.5", "600")
        c = harness.Conn(srv.port)
        c.sock.close()
        s = socket.create_connection((harness.HOST, srv.port), timeout=20,
                                     source_address=("127.0.1.5", 0))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        s.close()
        self.assertEqual(data, b"")

    def test_ban_survives_reload(self):
        srv = self.start()
        self.ctl(srv, "ban", "127.0.1.6", "600", "reload test")
        self.ctl(srv, "reload")
        st, h, _, _ = hget(srv.port, src="127.0.1.6")
        self.assertEqual(st, 429)
        self.assertGreater(int(h["retry-after"]), 500)
        self.assertEqual(len(self.bans(srv)), 1)

    def test_ban_survives_restart_with_state_file(self):
        srv = self.start()
        state = os.path.join(srv.workdir, "bans")
        srv.stop()
        srv.write_config(client_limits={"state_file": state})
        srv.start()
        self.ctl(srv, "ban", "127.0.1.7", "600")
        srv.stop()
        self.assertIn("127.0.1.7/32", open(state).read())
        srv.start()
        st, h, _, _ = hget(srv.port, src="127.0.1.7")
        self.assertEqual(st, 429)
        self.assertGreater(int(h["retry-after"]), 500)
        srv.wait_for_stderr(r"1 bans restored from")

    def test_limits_reset_keeps_bans(self):
        srv = self.start(rate=0.01, burst=2.0)
        self.ctl(srv, "ban", "127.0.1.8", "600")
        got = [hget(srv.port, src="127.0.1.9")[0] for _ in range(3)]
        self.assertEqual(got, [200, 200, 429])
        out = self.ctl(srv, "limits-reset").stdout
        self.assertRegex(out, r"^\d+ keys reset")
        self.assertEqual(hget(srv.port, src="127.0.1.9")[0], 200)
        self.assertEqual(len(self.bans(srv)), 1)
        out = self.ctl(srv, "clients", "5").stdout.splitlines()
        self.assertTrue(out and all(len(l.split("\t")) == 8 for l in out), out)
        out = self.ctl(srv, "client", "127.0.1.8").stdout
        self.assertIn("127.0.1.8/32\tmanual\tmanual", out)


class ConnectionCapTest(LimitsCase):

    def open_conns(self, srv, n, src):
        conns = []
        for _ in range(n):
            c = http.client.HTTPConnection(harness.HOST, srv.port, timeout=20,
                                           source_address=(src, 0))
            c.request("GET", "/")
            r = c.getresponse()
            r.read()
            conns.append((c, r.status))
        return conns

    def test_cap_answers_429_and_closes(self):
        srv = self.start(per_address_connections=4)
        held = self.open_conns(srv, 4, "127.0.2.1")
        self.assertEqual([s for _, s in held], [200] * 4)
        st, h, _, conn = hget(srv.port, src="127.0.2.1")
        self.assertEqual(st, 429)
        self.assertEqual(h.get("connection"), "close")
        self.assertEqual(hget(srv.port, src="127.0.2.2")[0], 200)
        for c, _ in held:
            c.close()
        harness.wait_until(lambda: hget(srv.port, src="127.0.2.1")[0] == 200,
                           message="closed connections still counted")

    def test_sigkilled_worker_leaves_no_stuck_count(self):
        srv = self.start(per_address_connections=4)
        held = self.open_conns(srv, 4, "127.0.2.3")
        self.assertEqual([s for _, s in held], [200] * 4)
        self.assertEqual(hget(srv.port, src="127.0.2.3")[0], 429)
        old = set(srv.worker_pids())
        for pid in old:
            os.kill(pid, signal.SIGKILL)
        harness.wait_until(lambda: len(set(srv.worker_pids()) - old) == 2,
                           message="workers not replaced")
        for c, _ in held:
            c.close()
        again = self.open_conns(srv, 4, "127.0.2.3")
        self.assertEqual([s for _, s in again], [200] * 4)
        for c, _ in again:
            c.close()


class SharedTest(LimitsCase):

    def test_one_client_many_workers_many_connections(self):
        rate, burst, secs = 20.0, 40.0, 3.0
        srv = self.start(workers=4, rate=rate, burst=burst,
                         per_address_connections=0)
        ok = [0] * 16
        stop = time.monotonic() + secs
        start = time.monotonic()

        def run(i):
            conn = None
            while time.monotonic() < stop:
                st, _, _, conn = hget(srv.port, src="127.0.3.1", conn=conn)
                if st == 200:
                    ok[i] += 1
        ts = [threading.Thread(target=run, args=(i,)) for i in range(16)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.monotonic() - start
        total = sum(ok)
        bound = (rate * elapsed + burst) * 1.01
        self.assertLessEqual(total, bound, "%d accepted in %.2f s" % (total, elapsed))
        self.assertGreaterEqual(total, burst)

    def classroom(self, port, pupils=30, assets=30, src="127.0.4.1",
                  agents=("Mozilla/5.0 (X11) Firefox/128.0",
                          "Mozilla/5.0 (Windows) Chrome/130.0",
                          "Mozilla/5.0 (Macintosh) Safari/17")):
        """Each pupil: one page and its assets on one keep-alive
        connection, all pupils at once. Returns every status seen."""
        seen = []
        lock = threading.Lock()

        def pupil(i):
            ua = agents[0] if i % 10 else agents[(i // 10) % len(agents)]
            conn = None
            got = []
            st, _, _, conn = hget(port, "/index.html", src=src, ua=ua, conn=conn)
            got.append(st)
            for a in range(assets):
                path = "/a%d.%s" % (a, ("css", "js", "png")[a % 3])
                st, _, _, conn = hget(port, path, src=src, ua=ua, conn=conn)
                got.append(st)
            if conn is not None:
                conn.close()
            with lock:
                seen.extend(got)
        ts = [threading.Thread(target=pupil, args=(i,)) for i in range(pupils)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return seen

    def assets(self):
        files = {}
        for a in range(30):
            files["a%d.%s" % (a, ("css", "js", "png")[a % 3])] = b"x" * 100
        return files

    def test_classroom_behind_one_address_sees_no_429(self):
        # the default limits, as shipped
        srv = self.start(root_files=self.assets())
        seen = self.classroom(srv.port)
        self.assertEqual(len(seen), 30 * 31)
        self.assertEqual(seen.count(429), 0)
        self.assertEqual(seen.count(200), len(seen))

    def test_scraper_next_door_is_banned_pupils_are_not(self):
        files = self.assets()
        for i in range(500):
            files["p%d.html" % i] = b"<p>page</p>"
        srv = self.start(root_files=files, ban={"ignore_seconds": 2})
        src = "127.0.4.2"
        conn = None
        statuses = []
        deadline = time.monotonic() + harness.DEFAULT_TIMEOUT
        i = 0
        banned = False
        while time.monotonic() < deadline and not banned:
            st, h, body, conn = hget(srv.port, "/p%d.html" % (i % 500), src=src,
                                     ua="scrapy/2.11", conn=conn)
            statuses.append(st)
            banned = st == 429 and b"blocked" in body
            i += 1
        self.assertIn(429, statuses)
        self.assertTrue(banned, "the scraper was never banned")
        bans = self.bans(srv)
        self.assertEqual(len(bans), 1, bans)
        self.assertTrue(bans[0][0].startswith(src + "/32 ua:"), bans)
        self.assertEqual(bans[0][2], "ignored_429")
        seen = self.classroom(srv.port, src=src)
        self.assertEqual(len(seen), 30 * 31)
        self.assertLess(seen.count(429), len(seen) / 100)
        self.assertEqual(len(self.bans(srv)), 1)


if __name__ == "__main__":
    unittest.main()
