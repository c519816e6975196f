"""Reusable helpers for porter's integration tests.

Every integration test runs the real ``porter`` binary on an ephemeral
127.0.0.1 port, talks to it with real clients and inspects what it leaves
behind (stderr, access log, processes). This module holds the parts that
every such test needs, so that test files only say *what* they check:

``Server``
    Writes a config file from keyword arguments, starts ``porter -c FILE``
    in the foreground in its own session, reads its stderr in a thread
    (every line is kept, so the pipe never fills), parses the
    "listening on ADDR:PORT" lines, waits until the socket accepts and the
    workers exist, and on ``close()`` kills every process it started, even
    the ones whose master already died. Use it as a context manager or via
    ``PorterTestCase.start_server()``, which registers the cleanup and
    prints the server's stderr when the test fails.

``Conn``, ``build_request``, ``fetch``, ``Response``
    Raw-socket HTTP/1.1: send exact bytes, read one complete response at a
    time (Content-Length, chunked, or until close), so pipelining and
    keep-alive can be checked byte by byte.

``wait_until``
    Polls a predicate until it holds or a generous deadline passes. Use it
    instead of sleeps: it waits no longer than needed on a fast machine and
    long enough on a loaded one.

``parse_access_line``
    Parses one access-log line (Combined Log Format + client port).

The environment (set by ``make check``):

    PORTER_BIN     absolute path of the built binary
    PORTER_SRCDIR  repository root (for www/, etc/)
    FIXTURES       tests/unit/fixtures

Nothing here writes into the source tree: configs, logs and document roots
live in ``tempfile.mkdtemp()`` directories removed by ``close()``.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

# Deadline for "this should happen soon" conditions. Generous on purpose:
# it is a hang guard on a loaded 2-core machine, never a speed assertion.
DEFAULT_TIMEOUT = 20.0

HOST = "127.0.0.1"


# ---------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------

def srcdir():
    """Repository root: $PORTER_SRCDIR, else two levels above this file."""
    d = os.environ.get("PORTER_SRCDIR")
    if d:
        return os.path.abspath(d)
    return os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def porter_bin():
    """Path of the porter binary under test.

    $PORTER_BIN when set (make check always sets it), else
    SRCDIR/build/src/porter, the binary that ``./dev build`` produces.
    """
    b = os.environ.get("PORTER_BIN")
    if b:
        return b
    return os.path.join(srcdir(), "build", "src", "porter")


def require_binary():
    """Exit the test program early if there is no binary to test.

    An explicitly given $PORTER_BIN that is missing is an error (exit 1);
    without $PORTER_BIN and without a default build the run is skipped
    (exit 77, automake's SKIP), which is what a manual run in a fresh
    checkout should do.
    """
    b = porter_bin()
    if os.access(b, os.X_OK):
        return
    if os.environ.get("PORTER_BIN"):
        sys.stderr.write("PORTER_BIN=%s is not an executable file\n" % b)
        sys.exit(1)
    sys.stderr.write("SKIP: no porter binary at %s (set PORTER_BIN)\n" % b)
    sys.exit(77)


def is_root():
    return os.geteuid() == 0


# ---------------------------------------------------------------------------
# Polling
# ---------------------------------------------------------------------------

def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.05, message=None):
    """Call ``predicate()`` until it returns something truthy; return that.

    Raises AssertionError (so unittest reports a failure, not an error)
    with ``message`` if it never does within ``timeout`` seconds. The
    predicate is always called at least once more after the deadline, so
    a slow machine cannot turn a true condition into a failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            value = predicate()
            if value:
                return value
            raise AssertionError(message or "condition not met within %.0f s" % timeout)
        time.sleep(interval)


# ---------------------------------------------------------------------------
# Processes (/proc)
# ---------------------------------------------------------------------------

def _proc_stat(pid):
    """(state, ppid, pgrp) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    # comm is in parentheses and may contain anything: split after the last ')'.
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[2])


def write_file(path, data, mtime=None, mode=0o644):
    """Create path (and its directories) holding data (bytes or str), with
    mode and, if given, mtime; returns the bytes written."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return data


def pid_alive(pid):
    """True if ``pid`` exists and is not a zombie.

    Zombies count as dead: a worker orphaned by a dead master may be
    reparented to a PID 1 that never reaps it.
    """
    st = _proc_stat(pid)
    return st is not None and st[0] != "Z"


def _all_pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def children_of(ppid):
    """Sorted pids of the live (non-zombie) direct children of ``ppid``."""
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st is not None and st[1] == ppid and st[0] != "Z":
            out.append(pid)
    return sorted(out)


def pids_with_env(token):
    """Live pids whose initial environment contains the string ``token``."""
    needle = token.encode()
    out = []
    for pid in _all_pids():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env and pid_alive(pid):
            out.append(pid)
    return sorted(out)


def proc_uid(pid):
    """Real, effective uid of a process (from /proc/PID/status), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Uid:"):
                    fields = line.split()
                    return int(fields[1]), int(fields[2])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------
# libconfig rendering
# ---------------------------------------------------------------------------

def _render_value(v, indent):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        # A libconfig array holds scalars only: with a group inside
        # (listen = ( "*:80", { address = ...; } )) it must be a list.
        if any(isinstance(x, dict) for x in v):
            return "( " + ", ".join(_render_value(x, indent) for x in v) + " )"
        return "[ " + ", ".join(_render_value(x, indent) for x in v) + " ]"
    if isinstance(v, dict):
        pad = "  " * (indent + 1)
        lines = ["{"]
        for k, x in v.items():
            if x is None:
                continue
            lines.append("%s%s = %s;" % (pad, k, _render_value(x, indent + 1)))
        lines.append("  " * indent + "}")
        return "\n".join(lines)
    raise TypeError("cannot render %r as libconfig" % (v,))


def render_config(settings, extra=""):
    """libconfig text for a dict of settings.

    str -> "string", int -> int, bool -> true/false, list -> [ array ]
    (or ( list ) when it holds a dict), dict -> { group }. Keys whose value is None are left out. ``extra`` is
    appended verbatim (for syntax the dict cannot express).
    """
    lines = ["# written by tests/integration/harness.py"]
    for k, v in settings.items():
        if v is None:
            continue
        lines.append("%s = %s;" % (k, _render_value(v, 0)))
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def _merge(base, over):
    """Deep-merge ``over`` into a copy of ``base`` (dicts merge, rest replaces)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------
# Running porter
# ---------------------------------------------------------------------------

class ServerError(AssertionError):
    """The server did not start or behave as a test needed (a test failure)."""


# One error-log line: "porter[PID]: LEVEL: message" (anything before it,
# e.g. a timestamp, is allowed).
ERROR_LOG_RE = re.compile(r"porter\[(?P<pid>\d+)\]: (?P<level>debug|info|notice|warn|error|crit): (?P<msg>.*)$")

_LISTEN_RE = re.compile(r"listening on (?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>\d+\.\d+\.\d+\.\d+)):(?P<port>\d+)")


class Server:
    """One porter instance: its config, processes, stderr and files.

    ``Server(root=..., workers=2, limits={"max_body_size": 16})`` writes
    WORKDIR/porter.conf with these defaults, overridden (deep-merged for
    the ``log`` and ``limits`` groups) by the keyword arguments::

        listen = [ "127.0.0.1:0" ];   root = ROOT;   index = [ "index.html" ];
        workers = 2;   pid_file = "off";   shutdown_timeout = 10;
        log: { error = "stderr"; access = "WORKDIR/access.log"; };

    A keyword set to None removes the setting. ``root`` defaults to an empty
    WORKDIR/root. ``extra`` is raw config text appended at the end.
    ``env`` adds environment variables, ``args`` extra porter arguments,
    ``command_prefix`` a wrapper command that ends up exec'ing porter.

    Attributes after ``start()``: ``proc`` (the master's Popen), ``pid``,
    ``port`` (first listening port), ``addrs`` (list of (host, port)),
    ``workdir``, ``root``, ``conf_path``, ``access_log`` (path or None).

    Every process is started with a unique PORTER_TEST_TOKEN in its
    environment; ``close()`` kills every live process carrying it, so no
    worker survives a test, whatever happened to its master.
    """

    def __init__(self, root=None, *, extra="", env=None, args=None, command_prefix=None,
                 **settings):
        self.workdir = tempfile.mkdtemp(prefix="porter-it-")
        # mkdtemp makes 0700 directories; workers that drop privileges
        # (user = "nobody") must be able to reach the root inside.
        os.chmod(self.workdir, 0o755)
        if root is None:
            root = os.path.join(self.workdir, "root")
            os.mkdir(root)
            os.chmod(root, 0o755)
        self.root = os.path.abspath(root)
        self.conf_path = os.path.join(self.workdir, "porter.conf")
        self.extra = extra
        self.env = env or {}
        self.args = list(args or [])
        self.command_prefix = list(command_prefix or [])
        self.settings = _merge({
            "listen": ["%s:0" % HOST],
            "root": self.root,
            "index": ["index.html"],
            "workers": 2,
            "pid_file": "off",
            "shutdown_timeout": 10,
            "log": {"error": "stderr",
                    "access": os.path.join(self.workdir, "access.log")},
        }, settings)
        self.token = "porter-it-" + uuid.uuid4().hex
        self.proc = None
        self.pid = None
        self.addrs = []
        self._lines = []
        self._out_lines = []
        self._cond = threading.Condition()
        self._threads = []
        self.write_config()

    # -- config --------------------------------------------------------------

    def write_config(self, **overrides):
        """(Re)write the config file, deep-merging ``overrides`` first.

        For reload tests: change the config, then send SIGHUP.
        """
        if overrides:
            self.settings = _merge(self.settings, overrides)
        text = render_config(self.settings, self.extra)
        self._config_text = text
        tmp = self.conf_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.conf_path)
        return text

    @property
    def config_text(self):
        """The text last written by ``write_config()``."""
        return self._config_text

    @property
    def access_log(self):
        """Path of the access log, or None when it is "off"/"stderr"."""
        a = self.settings.get("log", {}).get("access")
        if not a or a in ("off", "stderr"):
            return None
        return a

    @property
    def port(self):
        return self.addrs[0][1]

    @property
    def expected_workers(self):
        w = self.settings.get("workers")
        return w if isinstance(w, int) else None

    def url(self, path="/"):
        host, port = self.addrs[0]
        if ":" in host:
            host = "[%s]" % host
        return "http://%s:%d%s" % (host, port, path)

    # -- life cycle ----------------------------------------------------------

    def command(self):
        """argv of the master: ``command_prefix`` (e.g. a socket-activation
        wrapper that execs porter) + porter -c CONF + ``args``."""
        return self.command_prefix + [porter_bin(), "-c", self.conf_path] + self.args

    def start(self, wait=True, timeout=DEFAULT_TIMEOUT):
        """Start the master. With ``wait``, block until it is ready (see
        ``wait_ready``); raises ServerError with its stderr if it is not."""
        env = dict(os.environ)
        env.update(self.env)
        env["PORTER_TEST_TOKEN"] = self.token
        self.proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, start_new_session=True, cwd=self.workdir)
        self.pid = self.proc.pid
        for stream, store in ((self.proc.stderr, self._lines),
                              (self.proc.stdout, self._out_lines)):
            t = threading.Thread(target=self._reader, args=(stream, store), daemon=True)
            t.start()
            self._threads.append(t)
        if wait:
            self.wait_ready(timeout)
        return self

    def _reader(self, stream, store):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                store.append(line)
                self._cond.notify_all()
        stream.close()
        with self._cond:
            self._cond.notify_all()

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        """Wait for one "listening on" line per ``listen`` entry, for each
        port to accept a TCP connection and for ``workers`` live workers."""
        nlisten = len(self.settings.get("listen") or [])
        deadline = time.monotonic() + timeout

        def remaining():
            return max(0.1, deadline - time.monotonic())

        def listening():
            if self.proc.poll() is not None:
                raise ServerError("porter exited with status %s during startup\n%s"
                                  % (self.proc.returncode, self.stderr_text()))
            found = []
            for line in self.stderr_lines():
                m = _LISTEN_RE.search(line)
                if m:
                    found.append((m.group("v6") or m.group("v4"), int(m.group("port"))))
            return found if len(found) >= max(nlisten, 1) else None

        try:
            self.addrs = wait_until(listening, remaining())
        except ServerError:
            raise
        except AssertionError:
            raise ServerError("no 'listening on' line from porter\n" + self.stderr_text())
        for host, port in self.addrs:
            def accepts(host=host, port=port):
                fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                with socket.socket(fam, socket.SOCK_STREAM) as s:
                    s.settimeout(2)
                    try:
                        s.connect((host, port))
                        return True
                    except OSError:
                        return False
            try:
                wait_until(accepts, remaining())
            except AssertionError:
                raise ServerError("porter does not accept on %s:%d\n%s"
                                  % (host, port, self.stderr_text()))
        n = self.expected_workers
        if n:
            try:
                wait_until(lambda: len(self.worker_pids()) == n, remaining())
            except AssertionError:
                raise ServerError("expected %d workers, have %r\n%s"
                                  % (n, self.worker_pids(), self.stderr_text()))
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def worker_pids(self):
        """Live (non-zombie) direct children of the master, sorted."""
        if self.pid is None:
            return []
        pids = children_of(self.pid)
        return pids

    def processes(self):
        """Every live process this server started (master, workers, any
        orphans), found by the environment token."""
        return pids_with_env(self.token)

    def send_signal(self, sig):
        """Send ``sig`` to the master only."""
        self.proc.send_signal(sig)

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        """Wait for the master to exit; return its status (Popen style:
        negative for a signal). Raises ServerError if it does not exit."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise ServerError("porter (pid %d) did not exit within %.0f s\n%s"
                              % (self.pid, timeout, self.stderr_text()))
        # Its last words may still be in the pipe: a master exits after its
        # workers, so end of file follows at once.
        self._join_readers()
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=DEFAULT_TIMEOUT):
        """Signal the master and wait for it to exit; return its status."""
        if self.running():
            self.send_signal(sig)
        return self.wait_exit(timeout)

    def _join_readers(self, timeout=5):
        for t in self._threads:
            t.join(timeout)

    def close(self, remove=True):
        """Kill everything this server started and remove its workdir.

        Safe to call more than once and after ``stop()``.
        """
        if self.proc is not None:
            if self.proc.poll() is None:
                # The master is unreaped, so its pid (= pgid) cannot have been
                # reused: killing the group is safe.
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except OSError:
                    pass
            # Anything left (workers that changed group, orphans): by token.
            for _ in range(50):
                left = [p for p in self.processes() if p != os.getpid()]
                if not left:
                    break
                for p in left:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.05)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._join_readers()
        if remove and self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- output --------------------------------------------------------------

    def stderr_lines(self):
        """Snapshot of every stderr line so far."""
        with self._cond:
            return list(self._lines)

    def stdout_lines(self):
        with self._cond:
            return list(self._out_lines)

    def log_records(self, level=None):
        """Parsed error-log lines from stderr: dicts with pid (int), level
        and msg; only those of ``level`` if given. Unparseable lines are
        left out (see ``stderr_lines()`` for everything)."""
        out = []
        for line in self.stderr_lines():
            m = ERROR_LOG_RE.search(line)
            if m and (level is None or m.group("level") == level):
                out.append({"pid": int(m.group("pid")), "level": m.group("level"),
                            "msg": m.group("msg")})
        return out

    def stderr_text(self):
        return "\n".join(self.stderr_lines())

    def wait_for_stderr(self, pattern, timeout=DEFAULT_TIMEOUT, start=0):
        """Wait for a stderr line (index >= ``start``) matching the regex
        ``pattern`` (a str or compiled); return the re.Match."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern

        def find():
            for line in self.stderr_lines()[start:]:
                m = rx.search(line)
                if m:
                    return m
            return None
        return wait_until(find, timeout, message="no stderr line matching %r within %.0f s; stderr:\n%s"
                          % (rx.pattern, timeout, self.stderr_text()))

    def access_lines(self):
        """Lines of the access log written so far ([] if none)."""
        if not self.access_log:
            return []
        try:
            with open(self.access_log, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        return [l for l in data.split("\n") if l]

    def wait_access_lines(self, n, timeout=DEFAULT_TIMEOUT):
        """Wait until the access log has at least ``n`` lines (it is
        flushed at least once per second while idle); return them."""
        return wait_until(lambda: len(self.access_lines()) >= n and self.access_lines(),
                          timeout, message="access log has %d lines, wanted %d"
                          % (len(self.access_lines()), n))

    def describe(self):
        """Config + stderr, for failure reports."""
        out = ["--- porter.conf (%s)" % self.conf_path, self.config_text.rstrip()]
        out.append("--- stderr (pid %s, status %s)" % (
            self.pid, None if self.proc is None else self.proc.returncode))
        out.extend(self.stderr_lines())
        return "\n".join(out)


def check_config(path, timeout=DEFAULT_TIMEOUT):
    """Run ``porter -t -c PATH``; return the CompletedProcess (text mode)."""
    return subprocess.run([porter_bin(), "-t", "-c", path], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


def run_porter(*args, timeout=DEFAULT_TIMEOUT):
    """Run ``porter ARGS`` to completion; return the CompletedProcess."""
    return subprocess.run([porter_bin()] + list(args), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------
# Raw HTTP over sockets
# ---------------------------------------------------------------------------

class ConnectionClosed(Exception):
    """The peer closed before a complete response arrived."""


class Response:
    """One parsed HTTP response.

    ``status`` (int), ``reason``, ``version`` ("HTTP/1.1"), ``headers``
    (list of (name, value) in order), ``body`` (bytes, already de-chunked),
    ``head`` (the raw header block bytes).
    """

    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.head = head

    def header(self, name, default=None):
        """First value of header ``name`` (case-insensitive), or default."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_token(self, name, token):
        """True if comma-separated header ``name`` contains ``token``
        (case-insensitive), e.g. has_token("Connection", "close")."""
        token = token.lower()
        for v in self.header_all(name):
            if token in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def __repr__(self):
        return "<Response %s %d %s, %d body bytes>" % (
            self.version, self.status, self.reason, len(self.body))


def build_request(method="GET", path="/", version="HTTP/1.1", headers=None,
                  body=b"", host=HOST):
    """Bytes of one request. ``headers`` is a list of (name, value) or a
    dict; Host is added first unless ``host`` is None. No Content-Length
    is added: put it in ``headers`` when the test wants one."""
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: %s" % host)
    if headers:
        items = headers.items() if isinstance(headers, dict) else headers
        for k, v in items:
            lines.append("%s: %s" % (k, v))
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Conn:
    """A client TCP connection with a read buffer kept across responses,
    so pipelined responses can be read one at a time."""

    MAX_HEAD = 1 << 20

    def __init__(self, port, host=HOST, timeout=DEFAULT_TIMEOUT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self.buf = b""
        self.eof = False

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        """Send all of ``data``. Returns False (instead of raising) if the
        server already closed or reset the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def send_slowly(self, data, chunk=1, delay=0.005):
        """Send ``data`` ``chunk`` bytes per send() with Nagle off and a
        small pause between sends, so the server sees many partial reads."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            time.sleep(delay)

    def _fill(self):
        """Read more bytes into the buffer; False on EOF/reset."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed("closed after %d of %d body bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionClosed("closed in the middle of a line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self, head=False):
        """Read one complete response. ``head=True`` for a response to
        HEAD (no body whatever Content-Length says). Interim 1xx responses
        are skipped. Raises ConnectionClosed if the connection ends first."""
        while True:
            while b"\r\n\r\n" not in self.buf:
                if len(self.buf) > self.MAX_HEAD:
                    raise ValueError("response header block over %d bytes" % self.MAX_HEAD)
                if not self._fill():
                    if self.buf:
                        raise ConnectionClosed("closed inside a response head: %r" % self.buf[:200])
                    raise ConnectionClosed("closed before a response")
            raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
            resp = parse_head(raw)
            if 100 <= resp.status < 200:
                continue
            break
        if head or resp.status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        cl = resp.header("Content-Length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size_line = self._read_line()
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_line() != b"":  # trailers
                        pass
                    break
                body += self._read_exact(size)
                if self._read_exact(2) != b"\r\n":
                    raise ValueError("bad chunk terminator")
            resp.body = body
        elif cl is not None:
            resp.body = self._read_exact(int(cl))
        else:
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed_by_peer(self, timeout=DEFAULT_TIMEOUT):
        """True if the server closes the connection (recv gives EOF or a
        reset) within ``timeout`` with no further data; False if more data
        arrives or it stays open."""
        if self.buf:
            return False
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)
        if data:
            self.buf += data
            return False
        self.eof = True
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def parse_head(raw):
    """Parse a response head (status line + headers, no final CRLFCRLF)."""
    text = raw.decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise ValueError("bad status line: %r" % lines[0])
    headers = []
    for line in lines[1:]:
        if ":" not in line:
            raise ValueError("bad header line: %r" % line)
        k, v = line.split(":", 1)
        headers.append((k.strip(), v.strip()))
    return Response(m.group(1), int(m.group(2)), m.group(3) or "", headers, b"", raw)


def fetch(port, data, head=False, host=HOST, timeout=DEFAULT_TIMEOUT):
    """Open a connection, send the request bytes ``data``, return
    (Response, Conn). The caller closes the Conn (or uses ``with``)."""
    c = Conn(port, host=host, timeout=timeout)
    try:
        c.send(data)
        return c.read_response(head=head), c
    except BaseException:
        c.close()
        raise


def get(port, path="/", headers=None, method="GET", version="HTTP/1.1", body=b""):
    """One request on a fresh connection; returns the Response."""
    r, c = fetch(port, build_request(method, path, version, headers, body),
                 head=(method == "HEAD"))
    c.close()
    return r


# ---------------------------------------------------------------------------
# Access log
# ---------------------------------------------------------------------------

# host ident user [time] "request" status bytes "referer" "user-agent" port
ACCESS_RE = re.compile(
    r'^(?P<host>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] '
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" (?P<port>\d+)$')


def parse_access_line(line):
    """dict of the fields of one access-log line, or None if it does not
    match the combined-format-plus-port layout."""
    m = ACCESS_RE.match(line)
    return m.groupdict() if m else None


# ---------------------------------------------------------------------------
# unittest glue
# ---------------------------------------------------------------------------

class PorterTestCase(unittest.TestCase):
    """TestCase with ``start_server()`` and failure diagnostics.

    Servers started with ``start_server()`` are closed after the test even
    when it fails; if the test failed or errored, each server's config and
    stderr are printed to stderr, so a CI log shows what porter said.
    """

    # What ASan, LSan and UBSan print: a worker that dies of one is
    # replaced by the master, so only its stderr tells.
    SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                         "runtime error:")

    def _check_sanitizers(self, srv):
        bad = [l for l in srv.stderr_lines()
               if any(m in l for m in self.SANITIZER_MARKERS)]
        if bad:
            self.fail("sanitizer report in porter's stderr:\n" + srv.stderr_text())

    def start_server(self, root=None, start=True, **kwargs):
        srv = Server(root, **kwargs)
        self._servers = getattr(self, "_servers", [])
        self._servers.append(srv)
        # Cleanups run last-in first-out: close first, then read what it said.
        self.addCleanup(self._check_sanitizers, srv)
        self.addCleanup(srv.close)
        if start:
            srv.start()
        return srv

    def make_tempdir(self):
        """A fresh temp directory (mode 0755) removed after the test."""
        d = tempfile.mkdtemp(prefix="porter-it-")
        os.chmod(d, 0o755)
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def run(self, result=None):
        self._servers = []
        before = None
        if result is not None:
            before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            for srv in self._servers:
                sys.stderr.write("\n=== %s: porter diagnostics\n%s\n" % (self.id(), srv.describe()))
        return out
