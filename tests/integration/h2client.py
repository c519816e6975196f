"""A small HTTP/2 client for the tests, on Python's h2 state machine
(python3-h2), plus raw-frame helpers for what h2 refuses to send
(floods, malformed header blocks).

``H2Conn(port)`` speaks prior knowledge (RFC 9113 3.3) on a fresh TCP
connection. ``request()`` returns the stream id, ``response(sid)``
reads until that stream ends or is reset and returns an ``H2Response``.
Outbound header validation is off, so tests can send what a broken or
hostile client would.
"""

import socket
import struct

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hpack

from harness import HOST, DEFAULT_TIMEOUT

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types and error codes (RFC 9113 6, 7)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR = 0, 1, 2
REFUSED_STREAM, ENHANCE_YOUR_CALM = 7, 11
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


class H2Response:
    def __init__(self, sid):
        self.sid = sid
        self.status = None
        self.headers = []
        self.body = b""
        self.reset = None       # RST_STREAM error code, if reset
        self.ended = False

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None


class H2Conn:
    def __init__(self, port, settings=None, auto_ack=True, host=HOST, sock=None):
        # sock: a connected socket to use instead (TLS, ALPN h2 done)
        self.sock = sock or socket.create_connection((host, port), timeout=DEFAULT_TIMEOUT)
        cfg = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8",
            validate_outbound_headers=False, normalize_outbound_headers=False,
            validate_inbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.auto_ack = auto_ack
        self.streams = {}
        self.goaway = None      # (error_code, last_stream_id)
        self.closed = False
        self.remote_settings = {}
        self.rbuf = b""
        self.informational = []     # (stream id, status) of 1xx responses
        self.flush()

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, path, method="GET", authority=None, headers=(), body=None,
                end=True, raw_headers=None):
        sid = self.conn.get_next_available_stream_id()
        if raw_headers is None:
            raw_headers = [(":method", method), (":scheme", "http"),
                           (":authority", authority or "%s" % HOST), (":path", path)]
            raw_headers += list(headers)
        self.streams[sid] = H2Response(sid)
        self.conn.send_headers(sid, raw_headers, end_stream=(body is None and end))
        self.flush()
        if body is not None:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid, body, end=True):
        """DATA frames within the peer's windows and frame size; stops
        early when the server answered or reset the stream first."""
        r = self.streams[sid]
        while True:
            if r.reset is not None or r.ended:
                return False
            n = min(len(body), self.conn.max_outbound_frame_size,
                    self.conn.local_flow_control_window(sid))
            if n == 0 and body:
                if not self.pump():
                    return False
                continue
            self.conn.send_data(sid, body[:n], end_stream=(end and n == len(body)))
            self.flush()
            body = body[n:]
            if not body:
                return True

    def pump(self):
        """Read once and handle the events; False once the peer closed."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        # python-h2 closes its state machine on GOAWAY, while RFC 9113
        # 6.8 lets the streams at or below last-stream-id finish: so
        # GOAWAY is taken out here, and h2 sees the rest.
        self.rbuf += data
        keep = b""
        while len(self.rbuf) >= 9:
            n = struct.unpack(">I", b"\0" + self.rbuf[:3])[0]
            if len(self.rbuf) < 9 + n:
                break
            f, self.rbuf = self.rbuf[:9 + n], self.rbuf[9 + n:]
            if f[3] == GOAWAY:
                last = struct.unpack(">I", f[9:13])[0] & 0x7fffffff
                self.goaway = (struct.unpack(">I", f[13:17])[0], last)
            else:
                keep += f
        if keep:
            for ev in self.conn.receive_data(keep):
                self.handle(ev)
        self.flush()
        return True

    def handle(self, ev):
        if isinstance(ev, h2.events.InformationalResponseReceived):
            self.informational.append((ev.stream_id, int(dict(ev.headers)[":status"])))
        elif isinstance(ev, h2.events.ResponseReceived):
            r = self.streams[ev.stream_id]
            for k, v in ev.headers:
                if k == ":status":
                    r.status = int(v)
                else:
                    r.headers.append((k, v))
        elif isinstance(ev, h2.events.DataReceived):
            self.streams[ev.stream_id].body += ev.data
            if self.auto_ack:
                self.conn.acknowledge_received_data(ev.flow_controlled_length,
                                                    ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded):
            self.streams[ev.stream_id].ended = True
        elif isinstance(ev, h2.events.StreamReset):
            if ev.stream_id in self.streams:
                self.streams[ev.stream_id].reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            for k, v in ev.changed_settings.items():
                self.remote_settings[k] = v.new_value

    def response(self, sid):
        r = self.streams[sid]
        while not (r.ended or r.reset is not None):
            if not self.pump():
                raise AssertionError("connection closed before stream %d ended" % sid)
        return r

    def get(self, path, **kw):
        return self.response(self.request(path, **kw))


# ---- raw frames -------------------------------------------------------------

def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def settings_frame(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def header_block(headers):
    return hpack.Encoder().encode(headers)


def request_block(path="/", extra=()):
    return header_block([(":method", "GET"), (":scheme", "http"),
                         (":authority", HOST), (":path", path)] + list(extra))


class RawConn:
    """Prior knowledge by hand: the preface, then whatever the test writes."""

    def __init__(self, port, settings=()):
        self.sock = socket.create_connection((HOST, port), timeout=DEFAULT_TIMEOUT)
        self.sock.sendall(PREFACE + settings_frame(settings))
        self.buf = b""

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def frames_until_close(self):
        """Every frame the server sends until it closes: [(type, flags, sid, payload)]."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            self.buf += data
        buf = self.buf
        while len(buf) >= 9:
            n = struct.unpack(">I", b"\0" + buf[:3])[0]
            if len(buf) < 9 + n:
                break
            out.append((buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7fffffff,
                        buf[9:9 + n]))
            buf = buf[9 + n:]
        return out

    def close(self):
        self.sock.close()


def goaway_code(frames):
    """The error code of the first GOAWAY in frames, or None."""
    for t, _, _, p in frames:
        if t == GOAWAY:
            return struct.unpack(">I", p[4:8])[0]
    return None
