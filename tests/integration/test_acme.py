#!/usr/bin/python3
"""Integration tests for ACME (RFC 8555) with porter: the http-01
challenge path, the certbot deploy hook, and the whole flow against a
real ACME server on loopback.

- ``Webroot``: "/.well-known/acme-challenge/TOKEN" comes from the site's
  root, or from ``acme_challenge_root`` laid out as certbot's --webroot
  writes it; nothing leads out of that directory.
- ``DeployHook``: contrib/certbot-deploy-hook installs a lineage with the
  right modes and group and answers with porter's reload status.
- ``EndToEnd``: Debian's pebble (ACME server) and pebble-challtestsrv (its
  DNS, every name -> 127.0.0.1) with Debian's certbot: a certificate
  issued through porter's plain-HTTP webroot, installed by the deploy
  hook, porter reloaded and serving it over TLS (curl checks the chain
  against pebble's root), then renewed through the redirecting site and
  the new certificate served after the hook's reload; skipped only when
  pebble, certbot, openssl or curl is missing.

Run by ``make check`` with PORTER_BIN and PORTER_SRCDIR set, or by hand:
/usr/bin/python3 tests/integration/test_acme.py [-k PATTERN]
"""

import grp
import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import unittest
import urllib.request

sys.dont_write_bytecode = True  # never write into the (maybe read-only) srcdir
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import DEFAULT_TIMEOUT, HOST, get, wait_until  # noqa: E402

HOOK = os.path.join(harness.srcdir(), "contrib", "certbot-deploy-hook")
CHALLENGE = "/.well-known/acme-challenge/"


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    harness.write_file(path, data, mode=mode)


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def leaf_der(path):
    """DER of the first certificate in a PEM file (the leaf of a fullchain)."""
    pem = slurp(path).decode()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(pem[:pem.index(end) + len(end)])


def hget(port, path, host, method="GET"):
    """One request with Host: host on a fresh connection."""
    r, c = harness.fetch(port, harness.build_request(method, path, host=host),
                         head=(method == "HEAD"))
    c.close()
    return r


def my_group():
    return grp.getgrgid(os.getegid()).gr_name


class Webroot(harness.PorterTestCase):

    def test_token_from_site_root(self):
        srv = self.start_server()
        write(os.path.join(srv.root, ".well-known/acme-challenge/tok-1"), b"tok-1.thumb")
        r = get(srv.port, CHALLENGE + "tok-1")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"tok-1.thumb")
        # Other dot files stay hidden.
        write(os.path.join(srv.root, ".well-known/.secret"), b"no")
        self.assertEqual(get(srv.port, "/.well-known/.secret").status, 404)

    def acme_server(self, **kw):
        """A server with two sites that inherit one acme_challenge_root, a
        directory, as certbot --webroot -w DIR writes it."""
        acme = self.make_tempdir()
        roots = [self.make_tempdir(), self.make_tempdir()]
        srv = self.start_server(acme_challenge_root=acme, sites=[
            {"names": ["a.test"], "root": roots[0]},
            {"names": ["b.test"], "root": roots[1]},
        ], **kw)
        return srv, acme, roots

    def test_token_from_acme_challenge_root(self):
        srv, acme, roots = self.acme_server()
        write(os.path.join(acme, ".well-known/acme-challenge/tok-2"), b"from acme dir")
        # The same path under the site's root is not what is served.
        write(os.path.join(roots[0], ".well-known/acme-challenge/tok-2"), b"from site root")
        for host in ("a.test", "b.test"):
            r = hget(srv.port, CHALLENGE + "tok-2", host)
            self.assertEqual(r.status, 200, host)
            self.assertEqual(r.body, b"from acme dir", host)
            self.assertEqual(r.header("Content-Type"), "application/octet-stream")
            h = hget(srv.port, CHALLENGE + "tok-2", host, method="HEAD")
            self.assertEqual(h.status, 200)
            self.assertEqual(h.header("Content-Length"), "13")
            self.assertEqual(h.body, b"")
        # The rest of the site still comes from its root.
        write(os.path.join(roots[0], "index.html"), b"site a")
        self.assertEqual(hget(srv.port, "/", "a.test").body, b"site a")

    def test_token_appears_after_start(self):
        # certbot writes the token a moment before the CA asks for it.
        srv, acme, _ = self.acme_server()
        self.assertEqual(hget(srv.port, CHALLENGE + "late", "a.test").status, 404)
        write(os.path.join(acme, ".well-known/acme-challenge/late"), b"now")
        r = hget(srv.port, CHALLENGE + "late", "a.test")
        self.assertEqual((r.status, r.body), (200, b"now"))

    def test_nothing_outside_acme_challenge_root(self):
        srv, acme, _ = self.acme_server()
        outside = self.make_tempdir()
        write(os.path.join(outside, "secret"), b"secret")
        os.makedirs(os.path.join(acme, ".well-known/acme-challenge"))
        os.symlink(os.path.join(outside, "secret"),
                   os.path.join(acme, ".well-known/acme-challenge/link"))
        os.mkdir(os.path.join(acme, ".well-known/acme-challenge/dir"))
        for path, want in ((CHALLENGE + "link", (403, 404)),
                           (CHALLENGE + "dir", (404,)),
                           (CHALLENGE + "dir/", (404,)),
                           (CHALLENGE, (404,)),
                           (CHALLENGE + "missing", (404,)),
                           (CHALLENGE + "%2e%2e/%2e%2e/%2e%2e" + outside + "/secret", (400, 404))):
            r = hget(srv.port, path, "a.test")
            self.assertIn(r.status, want, path)
            self.assertNotIn(b"secret", r.body, path)
        # Methods other than GET and HEAD: the usual answer.
        self.assertEqual(hget(srv.port, CHALLENGE + "x", "a.test", method="POST").status, 405)
        self.assertTrue(srv.running())

    def test_missing_acme_challenge_root_is_a_config_error(self):
        d = self.make_tempdir()
        conf = os.path.join(d, "porter.conf")
        with open(conf, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\n'
                    'acme_challenge_root = "%s/nope";\n' % (d, d))
        p = harness.check_config(conf)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:3: acme_challenge_root '%s/nope'" % (conf, d), p.stderr)
        with open(conf, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\n'
                    'acme_challenge_root = "%s";\n' % (d, conf))
        p = harness.check_config(conf)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("%s:3: acme_challenge_root '%s': Not a directory" % (conf, conf),
                      p.stderr)


class DeployHook(harness.PorterTestCase):
    """The hook as certbot runs it: RENEWED_LINEAGE in the environment."""

    def lineage(self, d, name, chain=b"CHAIN\n", key=b"KEY\n"):
        live = os.path.join(d, "live", name)
        write(os.path.join(live, "fullchain.pem"), chain)
        write(os.path.join(live, "privkey.pem"), key, mode=0o600)
        return live

    def run_hook(self, env):
        e = dict(os.environ)
        e.update(env)
        return subprocess.run([HOOK], env=e, capture_output=True, text=True,
                              timeout=DEFAULT_TIMEOUT)

    def test_installs_and_reloads(self):
        pid_file = os.path.join(self.make_tempdir(), "porter.pid")
        srv = self.start_server(pid_file=pid_file)
        d = self.make_tempdir()
        tls = os.path.join(d, "tls")
        os.mkdir(tls, 0o750)
        live = self.lineage(d, "example.org")
        p = self.run_hook({"RENEWED_LINEAGE": live, "PORTER_TLS_DIR": tls,
                           "PORTER_TLS_GROUP": my_group(), "PORTER": harness.porter_bin(),
                           "PORTER_CONF": srv.conf_path})
        self.assertEqual(p.returncode, 0, p.stderr)
        dest = os.path.join(tls, "example.org")
        for f, data, mode in (("fullchain.pem", b"CHAIN\n", 0o644),
                              ("privkey.pem", b"KEY\n", 0o640)):
            st = os.stat(os.path.join(dest, f))
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, f)
            self.assertEqual(st.st_gid, os.getegid(), f)
            with open(os.path.join(dest, f), "rb") as fh:
                self.assertEqual(fh.read(), data)
        self.assertEqual(stat.S_IMODE(os.stat(dest).st_mode), 0o750)
        self.assertEqual(sorted(os.listdir(dest)), ["fullchain.pem", "privkey.pem"])
        srv.wait_for_stderr(r"reload")
        # A renewal replaces the files in place.
        self.lineage(d, "example.org", chain=b"CHAIN2\n", key=b"KEY2\n")
        p = self.run_hook({"RENEWED_LINEAGE": live + "/", "PORTER_TLS_DIR": tls,
                           "PORTER_TLS_GROUP": my_group(), "PORTER": harness.porter_bin(),
                           "PORTER_CONF": srv.conf_path})
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(dest, "privkey.pem"), "rb") as fh:
            self.assertEqual(fh.read(), b"KEY2\n")
        self.assertEqual(sorted(os.listdir(dest)), ["fullchain.pem", "privkey.pem"])

    def test_reload_failure_is_the_hooks_answer(self):
        # No porter runs for this config (no pid file): the reload fails,
        # and so must the hook, with porter's message.
        d = self.make_tempdir()
        conf = os.path.join(d, "porter.conf")
        with open(conf, "w") as f:
            f.write('listen = [ "127.0.0.1:0" ];\nroot = "%s";\npid_file = "%s/none.pid";\n'
                    % (d, d))
        live = self.lineage(d, "example.org")
        p = self.run_hook({"RENEWED_LINEAGE": live, "PORTER_TLS_DIR": d,
                           "PORTER_TLS_GROUP": my_group(), "PORTER": harness.porter_bin(),
                           "PORTER_CONF": conf})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("none.pid", p.stderr)

    def test_refuses_without_certbot(self):
        d = self.make_tempdir()
        p = self.run_hook({"RENEWED_LINEAGE": "", "PORTER_TLS_DIR": d})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("RENEWED_LINEAGE", p.stderr)
        p = self.run_hook({"RENEWED_LINEAGE": os.path.join(d, "live", "x"),
                           "PORTER_TLS_DIR": d, "PORTER_TLS_GROUP": my_group()})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not readable", p.stderr)
        self.assertEqual(os.listdir(d), [])


def free_port():
    """A loopback TCP port nothing listens on now, for pebble's own
    listeners (they take no port 0); porter's ports come from the harness."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
CERTBOT = shutil.which("certbot")
OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
MISSING = [n for n, p in (("pebble", PEBBLE), ("pebble-challtestsrv", CHALLTESTSRV),
                          ("certbot", CERTBOT), ("openssl", OPENSSL), ("curl", CURL))
           if p is None]


@unittest.skipIf(MISSING, "not installed: %s (Debian packages pebble, certbot, "
                 "openssl, curl; ./dev deps installs them)" % ", ".join(MISSING))
class EndToEnd(harness.PorterTestCase):
    """certbot obtains a certificate from pebble through porter's plain
    HTTP port; its deploy hook installs it and reloads porter; porter
    serves it over TLS (curl verifies the chain against pebble's root),
    and serves the renewed one after the hook's next reload."""

    NAME = "www.porter-acme.test"

    def spawn(self, argv, log, env=None):
        e = dict(os.environ)
        e.update(env or {})
        f = open(log, "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             env=e, start_new_session=True)
        f.close()

        def stop():
            p.kill()
            p.wait()
        self.addCleanup(stop)
        self.logs.append(log)
        return p

    def accepts(self, port):
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return True
        except OSError:
            return False

    def dump_logs(self):
        for log in self.logs:
            with open(log, errors="replace") as f:
                sys.stderr.write("\n=== %s\n%s" % (log, f.read()[-4000:]))

    def setUp(self):
        self.d = self.make_tempdir()
        self.logs = []

    def start_fixed(self, **kw):
        """start_server on a port picked here, again if it got taken."""
        last = None
        for _ in range(5):
            port = free_port()
            srv = self.start_server(start=False, listen=["%s:%d" % (HOST, port)], **kw)
            try:
                srv.start()
                return srv
            except harness.ServerError as e:
                last = e
        raise last

    def start_acme(self, http_port):
        """pebble and its DNS; returns (directory URL, CA bundle for
        pebble's own HTTPS, management port)."""
        d = self.d
        # pebble's ACME endpoint needs a certificate certbot trusts.
        tls_key, tls_cert = os.path.join(d, "pebble.key"), os.path.join(d, "pebble.pem")
        subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
                        "/CN=pebble", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", tls_key, "-out", tls_cert],
                       check=True, capture_output=True, timeout=DEFAULT_TIMEOUT)
        dns, mgmt, acme, cmgmt = free_port(), free_port(), free_port(), free_port()
        # Every name resolves to 127.0.0.1, none to an IPv6 address.
        self.spawn([CHALLTESTSRV, "-dns01", "%s:%d" % (HOST, dns), "-http01", "",
                    "-https01", "", "-tlsalpn01", "",
                    "-management", "%s:%d" % (HOST, cmgmt),
                    "-defaultIPv4", HOST, "-defaultIPv6", ""],
                   os.path.join(d, "challtestsrv.log"))
        # It binds the UDP side of dns01 before the TCP one.
        wait_until(lambda: self.accepts(dns), message="pebble-challtestsrv does not listen")
        conf = os.path.join(d, "pebble.json")
        with open(conf, "w") as f:
            json.dump({"pebble": {
                "listenAddress": "%s:%d" % (HOST, acme),
                "managementListenAddress": "%s:%d" % (HOST, mgmt),
                "certificate": tls_cert, "privateKey": tls_key,
                # http-01 goes to porter's plain port instead of 80.
                "httpPort": http_port, "tlsPort": free_port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        # No random wait before validating, no nonces refused on purpose:
        # the run is deterministic.
        self.spawn([PEBBLE, "-config", conf, "-dnsserver", "%s:%d" % (HOST, dns)],
                   os.path.join(d, "pebble.log"),
                   env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        wait_until(lambda: self.accepts(acme) and self.accepts(mgmt),
                   message="pebble does not listen")
        return "https://%s:%d/dir" % (HOST, acme), tls_cert, mgmt

    def certbot(self, *args, server, bundle, env=None):
        d = self.d
        e = dict(os.environ)
        e.update(env or {})
        e["REQUESTS_CA_BUNDLE"] = bundle
        argv = [CERTBOT, "--non-interactive", "--agree-tos",
                "--register-unsafely-without-email", "--server", server,
                "--config-dir", os.path.join(d, "le", "conf"),
                "--work-dir", os.path.join(d, "le", "work"),
                "--logs-dir", os.path.join(d, "le", "logs")] + list(args)
        p = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            self.dump_logs()
        self.assertEqual(p.returncode, 0, "certbot failed:\n%s\n%s" % (p.stdout, p.stderr))
        return p

    def test_issue_install_reload(self):
        d = self.d
        pid_file = os.path.join(d, "porter.pid")
        webroot = os.path.join(d, "acme")
        os.mkdir(webroot)
        os.chmod(webroot, 0o755)
        tls = os.path.join(d, "tls")
        os.mkdir(tls, 0o750)
        # The site redirects nothing yet and has no certificate: the
        # challenge must work over plain HTTP before any exists.
        # A fixed port: pebble is told it once, and a reload of
        # "127.0.0.1:0" would bind another.
        srv = self.start_fixed(pid_file=pid_file, acme_challenge_root=webroot,
                               sites=[{"names": [self.NAME]}])
        write(os.path.join(srv.root, "index.html"), b"hello over acme")
        server, bundle, mgmt = self.start_acme(srv.port)
        hook_env = {"PORTER_TLS_DIR": tls, "PORTER_TLS_GROUP": my_group(),
                    "PORTER": harness.porter_bin(), "PORTER_CONF": srv.conf_path}
        self.certbot("certonly", "--webroot", "-w", webroot, "-d", self.NAME,
                     "--deploy-hook", HOOK, server=server, bundle=bundle, env=hook_env)

        # The CA fetched the token through porter, from the webroot.
        lines = [l for l in srv.access_lines() if CHALLENGE in l]
        self.assertTrue(lines, "no challenge request in porter's access log")
        self.assertTrue(all('" 200 ' in l for l in lines), lines)

        # The hook installed what certbot got, with the right modes.
        live = os.path.join(d, "le", "conf", "live", self.NAME)
        dest = os.path.join(tls, self.NAME)
        for f, mode in (("fullchain.pem", 0o644), ("privkey.pem", 0o640)):
            self.assertEqual(slurp(os.path.join(live, f)), slurp(os.path.join(dest, f)), f)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(dest, f)).st_mode), mode)
        # Issued by pebble's CA for our name: check the chain with openssl
        # against the root pebble hands out.
        ctx = ssl.create_default_context(cafile=bundle)
        with urllib.request.urlopen("https://%s:%d/roots/0" % (HOST, mgmt), context=ctx,
                                    timeout=DEFAULT_TIMEOUT) as r:
            root = r.read()
        root_path = os.path.join(d, "pebble-root.pem")
        with open(root_path, "wb") as f:
            f.write(root)
        full = os.path.join(dest, "fullchain.pem")
        p = subprocess.run([OPENSSL, "verify", "-CAfile", root_path, "-untrusted", full,
                            "-verify_hostname", self.NAME, full],
                           capture_output=True, text=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

        # The admin turns HTTPS on with the installed files and reloads;
        # clients that trust pebble's root get the page over TLS.
        tls_port = free_port()
        srv.write_config(
            listen=["%s:%d" % (HOST, srv.port), {"address": "%s:%d" % (HOST, tls_port),
                                                "tls": True}],
            sites=[{"names": [self.NAME], "redirect_https": True,
                    "tls": {"certificate": full,
                            "key": os.path.join(dest, "privkey.pem")}}])
        p = harness.run_porter("-c", srv.conf_path, "-s", "reload")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.served_leaf(tls_port, root_path), leaf_der(full))
        # The plain port now redirects, but challenges stay on it: the
        # renewal below needs that.
        r = get(srv.port, "/")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("Location"), "https://%s:%d/" % (self.NAME, tls_port))

        # Renewal: a new certificate, installed by the hook, served after
        # the hook's reload.
        before = slurp(full)
        self.certbot("renew", "--force-renewal", "--no-random-sleep-on-renew",
                     "--deploy-hook", HOOK, server=server, bundle=bundle, env=hook_env)
        self.assertNotEqual(slurp(full), before)
        self.assertNotEqual(leaf_der(full), ssl.PEM_cert_to_DER_cert(before.decode()))
        self.assertEqual(self.served_leaf(tls_port, root_path), leaf_der(full))

    def served_leaf(self, port, root_path):
        """curl verifies the chain porter serves against pebble's root and
        gets the page; returns the served leaf (DER) for comparison."""
        p = subprocess.run(["curl", "-sS", "--cacert", root_path, "--resolve",
                            "%s:%d:%s" % (self.NAME, port, HOST),
                            "https://%s:%d/" % (self.NAME, port)],
                           capture_output=True, timeout=DEFAULT_TIMEOUT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"hello over acme")
        ctx = ssl.create_default_context(cafile=root_path)
        with socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT) as s:
            with ctx.wrap_socket(s, server_hostname=self.NAME) as t:
                return t.getpeercert(binary_form=True)


if __name__ == "__main__":
    unittest.main()
