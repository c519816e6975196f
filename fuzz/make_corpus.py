#!/usr/bin/env python3
"""make_corpus.py - write the seed corpora in fuzz/corpus/<target>/.

The seeds are small hand-written inputs, one file each, that reach the
main paths of each target; the fuzzer mutates from there. Run it again
after changing a target's input format (the leading config bytes) and
commit the result: the files are in git, this script only documents
where they came from.

    python3 fuzz/make_corpus.py
"""

import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_http: limit index (see limits[] in fuzz_http.c), 4-byte split seed.
LIMIT_8192 = 4
LIMIT_64 = 1

HTTP = {
    "get": b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
    "get-10": b"GET /index.html HTTP/1.0\r\n\r\n",
    "get-query": b"GET /a/b.txt?x=1&y=%zz HTTP/1.1\r\nHost: h\r\n\r\n",
    "get-escapes": b"GET /%41%2e%2E/caf%C3%A9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: h\n\n",
    "empty-lines": b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "head-keepalive": b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "close": b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close, x\r\n\r\n",
    "absolute": b"GET http://example.org:8080/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute-https": b"GET https://[::1]/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "ipv6-host": b"GET / HTTP/1.1\r\nHost: [2001:db8::1.2.3.4]:80\r\n\r\n",
    "ipvfuture": b"GET / HTTP/1.1\r\nHost: [v1.a:b]\r\n\r\n",
    "ipv4-host": b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n",
    "pct-host": b"GET / HTTP/1.1\r\nHost: a%41b\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "connect": b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n",
    "unknown-method": b"BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n",
    "version-12": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "version-2": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "conditional": (b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\", W/\"b\"\r\n"
                    b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    b"Range: bytes=0-1,5-\r\nIf-Range: \"a\"\r\n"
                    b"Accept-Encoding: gzip;q=0.5, br\r\n\r\n"),
    "many-headers": b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(
        b"X-%d: v\r\n" % i for i in range(70)) + b"\r\n",
    "post-length": b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    "post-length-list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
    "post-expect": (b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                    b"Content-Length: 2\r\n\r\nhi"),
    "chunked": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n0\r\n\r\n"),
    "chunked-ext": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                    b"3 ; a=b ; c=\"d\\\"e\" ;f\r\nabc\r\nA\r\n0123456789\r\n"
                    b"0\r\nTrailer: x\r\nOther:y\r\n\r\n"),
    "chunked-lf": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"1\na\n0\n\n"),
    "chunked-te-params": (b"POST / HTTP/1.1\r\nHost: h\r\n"
                          b"Transfer-Encoding: x;q=\"1\" , chunked\r\n\r\n0\r\n\r\n"),
    "chunked-huge": (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"7fffffffffffffff\r\nabc"),
    "pipeline": (b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                 b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"
                 b"POST /3 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"1\r\ny\r\n0\r\n\r\n"
                 b"GET /4 HTTP/1.0\r\n\r\n"),
    "te-and-cl": (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n"),
    "te-10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    "space-colon": b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    "bare-cr": b"GET / HTTP/1.1\rHost: h\r\n\r\n",
    "fragment": b"GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n",
    "obs-text": b"GET / HTTP/1.1\r\nHost: h\r\nX: \xff\xfe \t v\t\r\n\r\n",
    "cl-overflow": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
}

# fuzz_range: size index (sizes[] in fuzz_range.c), Content-Type index.
RANGE = {
    "first": (5, 0, b"bytes=0-499"),
    "open": (5, 1, b"bytes=500-"),
    "suffix": (5, 2, b"bytes=-200"),
    "suffix-big": (5, 3, b"bytes=-2000"),
    "multi": (5, 1, b"bytes=0-0,10-20, 30-40 ,-5"),
    "coalesce": (5, 1, b"bytes=0-10,5-20,21-30,100-,-1"),
    "upper": (5, 0, b"BYTES=1-2"),
    "ows": (4, 0, b" \tbytes=1-2 ,, 3-4\t"),
    "unsatisfiable": (3, 0, b"bytes=5000-6000"),
    "empty-file": (0, 0, b"bytes=-5"),
    "empty-file-first": (0, 0, b"bytes=0-"),
    "zero-suffix": (5, 0, b"bytes=-0"),
    "reversed": (5, 0, b"bytes=5-1"),
    "other-unit": (5, 0, b"items=0-1"),
    "no-specs": (5, 0, b"bytes="),
    "too-many": (5, 0, b"bytes=" + b",".join(b"%d-%d" % (i * 3, i * 3) for i in range(17))),
    "huge-numbers": (18, 1, b"bytes=9223372036854775806-99999999999999999999999"),
    "near-max": (17, 3, b"bytes=0-0,9223372036854775000-"),
    "max-suffix": (18, 2, b"bytes=-9223372036854775807"),
    "one-byte": (1, 0, b"bytes=0-0"),
    "small-size": (200, 1, b"bytes=1-3,7-9"),
    "garbage": (5, 0, b"bytes=1-2;x"),
}

# fuzz_encoding: available mask (bit 0 identity, 1 gzip, 2 zstd, 3 br,
# bit 4: absent header), then the value.
ENCODING = {
    "gzip": (0x0f, b"gzip"),
    "browser": (0x0f, b"gzip, deflate, br, zstd"),
    "weights": (0x0f, b"gzip;q=0.8, br;q=0.9, zstd;q=0.1"),
    "identity-zero": (0x0e, b"identity;q=0, *;q=0"),
    "star": (0x07, b"*;q=0.5, gzip;q=0"),
    "star-zero": (0x0f, b"*;q=0"),
    "x-gzip": (0x03, b"X-GZIP;Q=1.000"),
    "bad-q": (0x0f, b"gzip;q=1.5, br;q=abc, zstd;q=0.0001"),
    "params": (0x0f, b"gzip;level=9, br ; q=0.3"),
    "dup": (0x0f, b"br;q=0, br;q=1"),
    "empty": (0x0f, b""),
    "ows-only": (0x0e, b" \t "),
    "commas": (0x0f, b", ,gzip,, "),
    "absent": (0x1f, b""),
    "absent-no-identity": (0x16, b""),
    "none-available": (0x00, b"gzip"),
    "default-tie": (0x03, b"gzip;q=0.001"),
}

# fuzz_path: the small buffer's size, then the raw path.
PATH = {
    "root": (8, b"/"),
    "file": (16, b"/index.html"),
    "dirs": (16, b"/a/b/c/"),
    "dots": (32, b"/a/./b/../c/."),
    "dotdot-end": (32, b"/a/b/.."),
    "escape-root": (32, b"/../etc/passwd"),
    "escape-deep": (32, b"/a/b/../../../x"),
    "pct-dots": (32, b"/a/%2e%2E/b/.%2e/c"),
    "pct-slash": (32, b"/a%2fb"),
    "pct-nul": (32, b"/a%00b"),
    "pct-pct": (32, b"/%252e%252e/x%25"),
    "bad-escape": (32, b"/a%g0"),
    "cut-escape": (32, b"/a%4"),
    "double-slash": (32, b"//a//b///"),
    "no-slash": (32, b"a/b"),
    "empty": (32, b""),
    "tiny-out": (1, b"/"),
    "tight-out": (7, b"/abcdef"),
    "utf8": (32, b"/caf%C3%A9/\xc3\xa9t\xc3\xa9"),
    "three-dots": (32, b"/.../...."),
    "hidden": (32, b"/.well-known/acme/.x"),
    "long-then-up": (8, b"/aaaaaaaaaaaaaaaa/../b"),
    "raw-nul": (32, b"/a\x00b"),
}

# fuzz_proxy: cap index (caps[] in fuzz_proxy.c: 0 default, 2 is 28 bytes,
# 5 is 536), 4-byte split seed, then what the connection receives.
SIG2 = b"\r\n\r\n\x00\r\nQUIT\n"
V6MAX = b"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
GET = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
PROXY = {
    "v1-tcp4": (0, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + GET),
    "v1-tcp6": (0, b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 80\r\n" + GET),
    "v1-tcp6-mapped": (0, b"PROXY TCP6 ::ffff:192.0.2.1 ::1 5 6\r\n"),
    "v1-tcp6-max": (0, b"PROXY TCP6 " + V6MAX + b" " + V6MAX + b" 65535 65535\r\n"),
    "v1-unknown": (0, b"PROXY UNKNOWN\r\n" + GET),
    "v1-unknown-max": (0, b"PROXY UNKNOWN " + V6MAX + b" " + V6MAX + b" 65535 65535\r\n"),
    "v1-lone-lf": (0, b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
    "v1-leading-zero": (0, b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"),
    "v1-port": (0, b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
    "v1-too-long": (0, b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n"),
    "v2-tcp4": (0, SIG2 + b"\x21\x11\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07"
                   b"\xd4\x31\x01\xbb" + GET),
    "v2-tcp6": (0, SIG2 + b"\x21\x21\x00\x24" + b"\x20\x01\x0d\xb8" + bytes(11)
                   + b"\x01" + b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02"
                   + b"\x04\xd2\x00\x50"),
    "v2-tlvs": (5, SIG2 + b"\x21\x11\x00\x1c\x0a\x00\x00\x01\x0a\x00\x00\x02"
                   b"\x00\x01\x00\x02\x01\x00\x02h2\x04\x00\x00"
                   b"\x20\x00\x05\x01\x00\x00\x00\x00" + GET),
    "v2-tlv-lies": (0, SIG2 + b"\x21\x11\x00\x0f\x0a\x00\x00\x01\x0a\x00\x00\x02"
                       b"\x00\x01\x00\x02\x04\x00\x01"),
    "v2-local": (0, SIG2 + b"\x20\x00\x00\x00" + GET),
    "v2-unspec": (0, SIG2 + b"\x21\x00\x00\x03abc"),
    "v2-unix": (0, SIG2 + b"\x21\x31\x00\xd8" + b"/" * 216),
    "v2-short-block": (0, SIG2 + b"\x21\x21\x00\x0c" + bytes(12)),
    "v2-cap": (2, SIG2 + b"\x21\x11\x00\x0d" + bytes(13)),
    "v2-version": (0, SIG2 + b"\x11\x11\x00\x0c"),
    "http": (0, GET),
}


def h2_seeds():
    """fuzz_h2: byte 0 = read size / 64, then the frames after the preface."""
    import struct
    import hpack     # python3-hpack, with python3-h2

    def frame(t, flags, sid, payload=b""):
        return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + \
            struct.pack(">I", sid) + payload

    def req(path, method="GET", extra=()):
        return hpack.Encoder().encode([(":method", method), (":scheme", "http"),
                                       (":authority", "h"), (":path", path)] + list(extra))
    settings = frame(4, 0, 0, struct.pack(">HI", 4, 65535) + struct.pack(">HI", 5, 16384))
    wu = frame(8, 0, 0, struct.pack(">I", 1 << 20)) + frame(8, 0, 1, struct.pack(">I", 1 << 20))
    return {
        "get": (255, settings + frame(1, 5, 1, req("/"))),
        "get-split": (0, settings + frame(1, 5, 1, req("/index.html?x=1"))),
        "get-big": (255, settings + frame(1, 5, 1, req("/big.txt")) + wu),
        "range-gzip": (255, settings + frame(1, 5, 1, req("/big.txt", extra=[
            ("range", "bytes=0-9,100-200"), ("accept-encoding", "gzip")]))),
        "head-listing": (3, settings + frame(1, 5, 1, req("/", "HEAD")) +
                         frame(1, 5, 3, req("/nope/"))),
        "post-body": (255, settings + frame(1, 4, 1, req("/", "POST")) +
                      frame(0, 0, 1, b"x" * 100) + frame(0, 1, 1, b"y")),
        "continuation": (255, settings + frame(1, 0, 1, req("/")[:5]) +
                         frame(9, 4, 1, req("/")[5:])),
        "rst-ping": (255, settings + frame(1, 5, 1, req("/big.txt")) +
                     frame(3, 0, 1, struct.pack(">I", 8)) + frame(6, 0, 0, b"12345678")),
        "bad-headers": (255, settings + frame(1, 5, 1, req("/", extra=[
            ("Upper", "1"), ("connection", "close")]))),
        "goaway": (255, settings + frame(7, 0, 0, struct.pack(">II", 0, 0))),
    }


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    for t in ("http", "range", "encoding", "path", "proxy", "h2"):
        shutil.rmtree(os.path.join(HERE, "corpus", t), ignore_errors=True)
    for i, (name, req) in enumerate(sorted(HTTP.items())):
        # a whole-buffer seed and a split one; one with a tiny head limit
        seed = (0x9e3779b9 * (i + 1)) & 0xffffffff
        write("http", name, bytes([LIMIT_8192]) + seed.to_bytes(4, "little") + req)
    write("http", "get-limit-64", bytes([LIMIT_64, 1, 2, 3, 4]) + HTTP["conditional"])
    for name, (size, ctype, value) in sorted(RANGE.items()):
        write("range", name, bytes([size, ctype]) + value)
    for name, (mask, value) in sorted(ENCODING.items()):
        write("encoding", name, bytes([mask]) + value)
    for name, (outsz, raw) in sorted(PATH.items()):
        write("path", name, bytes([outsz]) + raw)
    for i, (name, (cap, raw)) in enumerate(sorted(PROXY.items())):
        seed = (0x9e3779b9 * (i + 1)) & 0xffffffff
        write("proxy", name, bytes([cap]) + seed.to_bytes(4, "little") + raw)
    for name, (chunk, raw) in sorted(h2_seeds().items()):
        write("h2", name, bytes([chunk]) + raw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
