/*
 * test_http_parse.c - unit tests for the request-head parser and the
 * chunked-body skipper (src/http_parse.c), which they link alone.
 *
 * Every case, valid or not, is also fed byte by byte and split in two
 * at every position; the parser must then reach the very result of one
 * parse over the whole buffer. Each partial buffer is a fresh heap copy
 * of exactly the bytes handed over, so ASan catches any read past them.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "http_parse.h"

#define MAX_HEAD	8192

/* A string literal and its length, NULs included. */
#define RAW(s)		s, sizeof(s) - 1

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/*
 * Criterion runs each test in a new process and copies the parameters
 * over as bytes, so pointers in them would be stale: the parameter is
 * an index into the case table instead.
 */
static size_t *
case_indices(size_t n)
{
	size_t	*p = cr_malloc(n * sizeof(*p)), i;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++)
		p[i] = i;
	return p;
}

static void
case_indices_free(struct criterion_test_params *crp)
{
	cr_free(crp->params);
}

static char *
copy(const char *raw, size_t len)
{
	char	*p;

	/* malloc(0) may give NULL; the parser reads nothing then anyway */
	p = malloc(len > 0 ? len : 1);
	cr_assert_not_null(p);
	memcpy(p, raw, len);
	return p;
}

static int
parse_whole(struct http_req *r, const char *raw, size_t len, uint32_t max)
{
	char	*p = copy(raw, len);
	int	 rv;

	http_req_init(r, max);
	rv = http_parse(r, p, len);
	free(p);
	return rv;
}

static int
span_is(const char *buf, struct http_span s, const char *want)
{
	if (want == NULL)
		return s.len == 0;
	return s.len == strlen(want) && memcmp(buf + s.off, want, s.len) == 0;
}

static void
same_span(struct http_span a, struct http_span b, const char *what,
    const char *ctx)
{
	cr_assert(a.off == b.off && a.len == b.len,
	    "%s: %s differs: %u+%u vs %u+%u", ctx, what,
	    a.off, a.len, b.off, b.len);
}

/* The results a caller may look at must match those of the one-shot parse. */
static void
same_result(const struct http_req *a, int rva, const struct http_req *b,
    int rvb, const char *ctx)
{
	unsigned	i;

	cr_assert_eq(rva, rvb, "%s: return %d vs %d", ctx, rva, rvb);
	if (rva == HTTP_PARSE_ERROR) {
		cr_assert_eq(a->status, b->status, "%s: status %d vs %d", ctx,
		    a->status, b->status);
		cr_assert_str_eq(a->error, b->error, "%s", ctx);
		return;
	}
	if (rva != HTTP_PARSE_DONE)
		return;
	cr_assert_eq(a->method, b->method, "%s", ctx);
	same_span(a->method_s, b->method_s, "method", ctx);
	same_span(a->target, b->target, "target", ctx);
	same_span(a->path, b->path, "path", ctx);
	same_span(a->query, b->query, "query", ctx);
	cr_assert_eq(a->version, b->version, "%s", ctx);
	cr_assert_eq(a->flags, b->flags, "%s", ctx);
	cr_assert_eq(a->content_length, b->content_length, "%s", ctx);
	for (i = 0; i < HTTP_H__COUNT; i++)
		same_span(a->known[i], b->known[i], "known[]", ctx);
	cr_assert_eq(a->nheaders, b->nheaders, "%s", ctx);
	for (i = 0; i < a->nheaders; i++) {
		same_span(a->headers[i].name, b->headers[i].name, "name", ctx);
		same_span(a->headers[i].value, b->headers[i].value, "value",
		    ctx);
	}
	cr_assert_eq(a->line_len, b->line_len, "%s", ctx);
	cr_assert_eq(a->head_len, b->head_len, "%s", ctx);
}

/*
 * Parse raw in one go, then growing by one byte a call, then in two
 * calls split at every position, and demand the same outcome each time.
 * Returns the one-shot result in *out.
 */
static int
parse_everywhere(struct http_req *out, const char *raw, size_t len,
    uint32_t max, const char *name)
{
	struct http_req	 r;
	char		 ctx[160];
	char		*p;
	size_t		 i, k;
	int		 rv, rv1;

	rv1 = parse_whole(out, raw, len, max);

	/* growing buffer: a new copy each call, as after a realloc */
	http_req_init(&r, max);
	rv = http_parse(&r, "", 0);
	cr_assert_eq(rv, HTTP_PARSE_AGAIN, "%s: empty buffer", name);
	for (i = 1; i <= len; i++) {
		p = copy(raw, i);
		rv = http_parse(&r, p, i);
		free(p);
		if (rv != HTTP_PARSE_AGAIN)
			break;
		/* all bytes so far were taken in: nothing is scanned twice */
		cr_assert_eq(r.pos, i, "%s: pos %u after %zu bytes", name,
		    r.pos, i);
	}
	snprintf(ctx, sizeof(ctx), "%s: byte by byte", name);
	same_result(&r, rv, out, rv1, ctx);

	for (k = 0; k <= len; k++) {
		http_req_init(&r, max);
		p = copy(raw, k);
		rv = http_parse(&r, p, k);
		free(p);
		if (rv == HTTP_PARSE_AGAIN) {
			p = copy(raw, len);
			rv = http_parse(&r, p, len);
			free(p);
		}
		snprintf(ctx, sizeof(ctx), "%s: split at %zu", name, k);
		same_result(&r, rv, out, rv1, ctx);
	}

	/* a finished parser stays finished */
	p = copy(raw, len);
	rv = http_parse(out, p, len);
	free(p);
	cr_assert_eq(rv, rv1, "%s: second call after the end", name);
	return rv1;
}

/* ---- valid requests ----------------------------------------------------- */

struct valid_case {
	const char	*name;
	const char	*raw;
	size_t		 len;
	int		 method;
	const char	*method_s;
	const char	*target;
	const char	*path;		/* NULL: empty */
	const char	*query;		/* NULL: empty */
	int		 version;
	unsigned	 flags;
	int64_t		 clen;
	unsigned	 nheaders;
	const char	*host;		/* known[HOST], NULL: empty */
	size_t		 tail;		/* bytes after the head */
};

static const struct valid_case valid_cases[] = {
	{ "simple GET", RAW("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1,
	    "example.com", 0 },
	{ "HEAD with query",
	    RAW("HEAD /a/b.txt?x=1&y=/?z HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_HEAD, "HEAD", "/a/b.txt?x=1&y=/?z", "/a/b.txt",
	    "x=1&y=/?z", 11, 0, -1, 1, "h", 0 },
	{ "empty query",
	    RAW("GET /x? HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_GET, "GET", "/x?", "/x", NULL, 11, 0, -1, 1, "h", 0 },
	{ "POST with body",
	    RAW("POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"
	    "a\r\n\0b"),
	    HTTP_M_POST, "POST", "/form", "/form", NULL, 11, 0, 5, 2, "h", 5 },
	{ "HTTP/1.0 without Host",
	    RAW("GET /index.html HTTP/1.0\r\n\r\n"),
	    HTTP_M_GET, "GET", "/index.html", "/index.html", NULL, 10, 0, -1,
	    0, NULL, 0 },
	{ "HTTP/1.2 is handled as 1.1",
	    RAW("GET / HTTP/1.2\r\nHost: h\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1, "h", 0 },
	{ "absolute-form",
	    RAW("GET http://example.com:8080/p/q?z=1 HTTP/1.1\r\n"
	    "Host: other.example\r\n\r\n"),
	    HTTP_M_GET, "GET", "http://example.com:8080/p/q?z=1", "/p/q",
	    "z=1", 11, HTTP_F_ABSOLUTE_FORM, -1, 1, "example.com:8080", 0 },
	{ "absolute-form https, no path",
	    RAW("GET HTTPS://example.com?x HTTP/1.0\r\n\r\n"),
	    HTTP_M_GET, "GET", "HTTPS://example.com?x", NULL, "x", 10,
	    HTTP_F_ABSOLUTE_FORM, -1, 0, "example.com", 0 },
	{ "absolute-form IPv6",
	    RAW("GET http://[::1]:81/ HTTP/1.1\r\nHost: bar\r\n\r\n"),
	    HTTP_M_GET, "GET", "http://[::1]:81/", "/", NULL, 11,
	    HTTP_F_ABSOLUTE_FORM, -1, 1, "[::1]:81", 0 },
	{ "double slash is a path",
	    RAW("GET //user@host/a HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_GET, "GET", "//user@host/a", "//user@host/a", NULL, 11, 0,
	    -1, 1, "h", 0 },
	{ "%-escapes in path",
	    RAW("GET /a%20b%2Fc?%zz HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_GET, "GET", "/a%20b%2Fc?%zz", "/a%20b%2Fc", "%zz", 11, 0,
	    -1, 1, "h", 0 },
	{ "OPTIONS *", RAW("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_OPTIONS, "OPTIONS", "*", NULL, NULL, 11, 0, -1, 1, "h", 0 },
	{ "CONNECT authority",
	    RAW("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
	    "\r\n"),
	    HTTP_M_CONNECT, "CONNECT", "example.com:443", NULL, NULL, 11, 0,
	    -1, 1, "example.com:443", 0 },
	{ "PUT", RAW("PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
	    HTTP_M_PUT, "PUT", "/f", "/f", NULL, 11, 0, 0, 2, "h", 0 },
	{ "DELETE", RAW("DELETE /f HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_DELETE, "DELETE", "/f", "/f", NULL, 11, 0, -1, 1, "h", 0 },
	{ "TRACE", RAW("TRACE /f HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_TRACE, "TRACE", "/f", "/f", NULL, 11, 0, -1, 1, "h", 0 },
	{ "PATCH", RAW("PATCH /f HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_PATCH, "PATCH", "/f", "/f", NULL, 11, 0, -1, 1, "h", 0 },
	{ "unknown method", RAW("PURGE /f HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_UNKNOWN, "PURGE", "/f", "/f", NULL, 11, 0, -1, 1, "h", 0 },
	{ "methods are case-sensitive",
	    RAW("get / HTTP/1.0\r\n\r\n"),
	    HTTP_M_UNKNOWN, "get", "/", "/", NULL, 10, 0, -1, 0, NULL, 0 },
	{ "GETX is not GET", RAW("GETX / HTTP/1.0\r\n\r\n"),
	    HTTP_M_UNKNOWN, "GETX", "/", "/", NULL, 10, 0, -1, 0, NULL, 0 },
	{ "LF-only lines",
	    RAW("GET / HTTP/1.1\nHost: h\nX: y\n\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 2, "h", 0 },
	{ "mixed CRLF and LF",
	    RAW("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 2, "h", 0 },
	{ "leading empty lines",
	    RAW("\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1, "h", 0 },
	{ "obs-text and OWS in values",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t caf\xc3\xa9 \xff \t\r\n"
	    "X-B:\r\nX-C: \t \r\nX-D:a  b\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 5, "h", 0 },
	{ "names are case-insensitive",
	    RAW("GET / HTTP/1.1\r\nhOsT: h\r\ncontent-LENGTH: 3\r\n\r\nabc"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, 3, 2, "h", 3 },
	{ "many headers",
	    RAW("GET /a HTTP/1.1\r\nHost: h\r\nUser-Agent: t/1.0\r\n"
	    "Accept: */*\r\nAccept-Encoding: gzip, br\r\n"
	    "If-None-Match: \"abc\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 "
	    "08:49:37 GMT\r\nIf-Match: *\r\nIf-Unmodified-Since: x\r\n"
	    "Range: bytes=0-1\r\nRange: bytes=5-\r\nIf-Range: \"e\"\r\n"
	    "Referer: http://x/\r\nCookie: a=b; c=d\r\n\r\n"),
	    HTTP_M_GET, "GET", "/a", "/a", NULL, 11, 0, -1, 13, "h", 0 },
	{ "Connection close",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, HTTP_F_CONN_CLOSE, -1, 2,
	    "h", 0 },
	{ "Connection list",
	    RAW("GET / HTTP/1.0\r\nConnection: Upgrade ,, Keep-Alive\r\n"
	    "Connection: foo\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 10, HTTP_F_CONN_KEEPALIVE, -1,
	    2, NULL, 0 },
	{ "Connection both, upper case",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive,CLOSE\r\n"
	    "\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11,
	    HTTP_F_CONN_CLOSE | HTTP_F_CONN_KEEPALIVE, -1, 2, "h", 0 },
	{ "Connection tokens are whole",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed, keep\r\n"
	    "\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 2, "h", 0 },
	{ "Expect 100-continue",
	    RAW("PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
	    "Content-Length: 10\r\n\r\n"),
	    HTTP_M_PUT, "PUT", "/u", "/u", NULL, 11, HTTP_F_EXPECT_CONTINUE,
	    10, 3, "h", 0 },
	{ "Expect ignored in 1.0",
	    RAW("PUT /u HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 1\r\n\r\nx"),
	    HTTP_M_PUT, "PUT", "/u", "/u", NULL, 10, 0, 1, 2, NULL, 1 },
	{ "chunked",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "\r\n0\r\n\r\n"),
	    HTTP_M_POST, "POST", "/", "/", NULL, 11, HTTP_F_CHUNKED, -1, 2,
	    "h", 5 },
	{ "chunked after other codings",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip;q=\"a;b\" ,, x-foo ; p = v\r\n"
	    "Transfer-Encoding: , ChunKed \r\n\r\n"),
	    HTTP_M_POST, "POST", "/", "/", NULL, 11, HTTP_F_CHUNKED, -1, 3,
	    "h", 0 },
	{ "repeated Content-Length",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\n"
	    "Content-Length: 007\r\n\r\n"),
	    HTTP_M_POST, "POST", "/", "/", NULL, 11, 0, 7, 3, "h", 0 },
	{ "largest Content-Length",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 9223372036854775807\r\n\r\n"),
	    HTTP_M_POST, "POST", "/", "/", NULL, 11, 0, INT64_MAX, 2, "h", 0 },
	{ "empty Host", RAW("GET / HTTP/1.1\r\nHost:\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1, NULL, 0 },
	{ "Host IPv6 with port",
	    RAW("GET / HTTP/1.1\r\nHost: [2001:db8::1:0:0:1]:8080\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1,
	    "[2001:db8::1:0:0:1]:8080", 0 },
	{ "Host IPv6 with IPv4 tail",
	    RAW("GET / HTTP/1.1\r\nHost: [::ffff:192.0.2.1]\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1,
	    "[::ffff:192.0.2.1]", 0 },
	{ "Host IPvFuture",
	    RAW("GET / HTTP/1.1\r\nHost: [v1f.a:b]\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1, "[v1f.a:b]", 0 },
	{ "Host sub-delims and %-escapes",
	    RAW("GET / HTTP/1.1\r\nHost: a%2Eb!$&'()*+,;=_~-.0:\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 1,
	    "a%2Eb!$&'()*+,;=_~-.0:", 0 },
	{ "first Range wins in known[]",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=1-2\r\n"
	    "Range: bytes=3-4\r\n\r\n"),
	    HTTP_M_GET, "GET", "/", "/", NULL, 11, 0, -1, 3, "h", 0 },
	{ "next request follows",
	    RAW("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\n"),
	    HTTP_M_GET, "GET", "/1", "/1", NULL, 11, 0, -1, 1, "h", 17 },
};

ParameterizedTestParameters(http_parse, valid)
{
	return cr_make_param_array(size_t, case_indices(NELEM(valid_cases)),
	    NELEM(valid_cases), case_indices_free);
}

ParameterizedTest(size_t *i, http_parse, valid)
{
	const struct valid_case *c = &valid_cases[*i];
	struct http_req	 r;
	const char	*b = c->raw;
	int		 rv;

	rv = parse_everywhere(&r, c->raw, c->len, MAX_HEAD, c->name);
	cr_assert_eq(rv, HTTP_PARSE_DONE, "%s: rv %d status %d (%s)", c->name,
	    rv, r.status, r.error ? r.error : "");
	cr_assert_eq(r.method, c->method, "%s", c->name);
	cr_assert(span_is(b, r.method_s, c->method_s), "%s: method", c->name);
	cr_assert(span_is(b, r.target, c->target), "%s: target", c->name);
	cr_assert(span_is(b, r.path, c->path), "%s: path", c->name);
	cr_assert(span_is(b, r.query, c->query), "%s: query", c->name);
	cr_assert_eq(r.version, c->version, "%s", c->name);
	cr_assert_eq(r.flags, c->flags, "%s: flags %#x", c->name, r.flags);
	cr_assert_eq(r.content_length, c->clen, "%s", c->name);
	cr_assert_eq(r.nheaders, c->nheaders, "%s: %u headers", c->name,
	    r.nheaders);
	cr_assert(span_is(b, r.known[HTTP_H_HOST], c->host), "%s: host",
	    c->name);
	cr_assert_eq(r.head_len, c->len - c->tail, "%s: head_len %u",
	    c->name, r.head_len);
	/* the request line starts at the method and ends before CR/LF */
	cr_assert(b[r.method_s.off + r.line_len] == '\r' ||
	    b[r.method_s.off + r.line_len] == '\n', "%s", c->name);
	cr_assert(b[r.method_s.off + r.line_len - 1] == '1' ||
	    b[r.method_s.off + r.line_len - 1] == '0' ||
	    b[r.method_s.off + r.line_len - 1] == '2', "%s", c->name);
	cr_assert_eq(r.status, 0, "%s", c->name);
}

/* ---- invalid requests --------------------------------------------------- */

struct error_case {
	const char	*name;
	const char	*raw;
	size_t		 len;
	int		 status;
	uint32_t	 max_head;	/* 0: MAX_HEAD */
};

static const struct error_case error_cases[] = {
	/* request line */
	{ "leading space", RAW(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "bare CR before request", RAW("\rGET / HTTP/1.1\r\n\r\n"), 400, 0 },
	{ "non-token method", RAW("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "NUL in method", RAW("G\0ET / HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "tab after method", RAW("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "two spaces after method",
	    RAW("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "two spaces after target",
	    RAW("GET /  HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "no target", RAW("GET HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "method only", RAW("GET\r\n\r\n"), 400, 0 },
	{ "HTTP/0.9 request", RAW("GET /\r\n\r\n"), 400, 0 },
	{ "HTTP/0.9 request, LF", RAW("GET /index.html\n"), 400, 0 },
	{ "space inside target",
	    RAW("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "CTL in target", RAW("GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "NUL in target", RAW("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "DEL in target", RAW("GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "8-bit byte in target",
	    RAW("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "fragment in target",
	    RAW("GET /a#b HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "bad %-escape", RAW("GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "short %-escape at end",
	    RAW("GET /a%4 HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "short %-escape before query",
	    RAW("GET /a%4?x HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "relative target",
	    RAW("GET ../../etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "asterisk without OPTIONS",
	    RAW("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "authority-form without CONNECT",
	    RAW("GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "CONNECT with a path",
	    RAW("CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "CONNECT without port",
	    RAW("CONNECT example.com HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "CONNECT empty port",
	    RAW("CONNECT example.com: HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "absolute-form, other scheme",
	    RAW("GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "absolute-form, empty host",
	    RAW("GET http:///etc/passwd HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "absolute-form, scheme only",
	    RAW("GET http:// HTTP/1.1\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "absolute-form, userinfo",
	    RAW("GET http://u:p@example.com/ HTTP/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "absolute-form, bad port",
	    RAW("GET http://localhost:80x/ HTTP/1.0\r\n\r\n"), 400, 0 },
	{ "absolute-form, two ports",
	    RAW("GET http://localhost:80:80/ HTTP/1.0\r\n\r\n"), 400, 0 },
	{ "absolute-form, bad IPv6",
	    RAW("GET http://[4712::abcd::]/ HTTP/1.0\r\n\r\n"), 400, 0 },
	{ "absolute-form, unbracketed IPv6",
	    RAW("GET http://4713::abcd:8001/ HTTP/1.0\r\n\r\n"), 400, 0 },
	{ "absolute-form, bad %-escape in path",
	    RAW("GET http://h/%g0 HTTP/1.0\r\n\r\n"), 400, 0 },
	{ "lower-case version", RAW("GET / http/1.1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "version without minor", RAW("GET / HTTP/1\r\nHost: h\r\n\r\n"), 400,
	    0 },
	{ "version two-digit minor",
	    RAW("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "version two-digit major",
	    RAW("GET / HTTP/10.0\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "empty version", RAW("GET / \r\nHost: h\r\n\r\n"), 400, 0 },
	{ "version HTTP/", RAW("GET / HTTP/\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "not HTTP", RAW("GET / RTSP/1.0\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "space after version",
	    RAW("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), 400, 0 },
	{ "NUL after version", RAW("GET / HTTP/1.0\0\r\n\r\n"), 400, 0 },
	{ "bare CR after version", RAW("GET / HTTP/1.1\rHost: h\r\n\r\n"), 400,
	    0 },
	{ "CR CR LF after version",
	    RAW("GET / HTTP/1.1\r\r\nHost: h\r\n\r\n"), 400, 0 },
	{ "HTTP/2.0", RAW("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505, 0 },
	{ "HTTP/0.9 with version", RAW("GET / HTTP/0.9\r\n\r\n"), 505, 0 },
	{ "HTTP/3.1", RAW("GET / HTTP/3.1\r\n\r\n"), 505, 0 },

	/* limits */
	{ "request line too long",
	    RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n"
	    "Host: h\r\n\r\n"), 414, 32 },
	{ "request line too long, no end yet",
	    RAW("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), 414, 32 },
	{ "method too long",
	    RAW("GETGETGETGETGETGETGETGETGETGETGETGET / HTTP/1.1\r\n"), 414,
	    32 },
	{ "only the CRLF does not fit",
	    RAW("GET /aaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n"), 414,
	    35 },
	{ "head too large",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX: aaaaaaaaaaaaaaaaaaaaaaaa\r\n"
	    "\r\n"), 431, 40 },
	{ "head one byte too large",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), 431, 26 },
	{ "empty lines only", RAW("\r\n\r\n\r\n\r\n\r\n"), 400, 6 },

	/* field syntax */
	{ "obs-fold", RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
	    400, 0 },
	{ "obs-fold with tab",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"), 400, 0 },
	{ "space before first field",
	    RAW("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), 400, 0 },
	{ "space before colon", RAW("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), 400,
	    0 },
	{ "tab before colon",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nFoo\t: bar\r\n\r\n"), 400, 0 },
	{ "space inside name",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nFoo bar: baz\r\n\r\n"), 400, 0 },
	{ "no colon", RAW("GET / HTTP/1.1\r\nHost: h\r\nFoo\r\n\r\n"), 400, 0 },
	{ "empty name", RAW("GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n"), 400,
	    0 },
	{ "non-token name", RAW("GET / HTTP/1.1\r\nHost: h\r\nX@: y\r\n\r\n"),
	    400, 0 },
	{ "NUL in name", RAW("GET / HTTP/1.1\r\nHost: h\r\nX\0Y: z\r\n\r\n"),
	    400, 0 },
	{ "NUL in value", RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"),
	    400, 0 },
	{ "NUL first in value",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX: \0\r\n\r\n"), 400, 0 },
	{ "CTL in value", RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01" "b\r\n"
	    "\r\n"), 400, 0 },
	{ "DEL in value", RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"),
	    400, 0 },
	{ "bare CR in value",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), 400, 0 },
	{ "CR CR LF after value",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n"), 400, 0 },
	{ "bare CR in final line",
	    RAW("GET / HTTP/1.1\r\nHost: h\r\n\rX"), 400, 0 },
	{ "bare CR in name", RAW("GET / HTTP/1.1\r\nHost: h\r\nX\rY: 1\r\n"
	    "\r\n"), 400, 0 },

	/* framing */
	{ "negative Content-Length",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: -1\r\n\r\n"), 400, 0 },
	{ "Content-Length with sign",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: +1\r\n\r\n"), 400, 0 },
	{ "Content-Length with space inside",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n"),
	    400, 0 },
	{ "empty Content-Length",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n"), 400,
	    0 },
	{ "hex Content-Length",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n"),
	    400, 0 },
	{ "Content-Length trailing comma",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 1,\r\n\r\n"), 400, 0 },
	{ "Content-Length list differs",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n"),
	    400, 0 },
	{ "Content-Length fields differ",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	    "Content-Length: 4\r\n\r\n"), 400, 0 },
	{ "Content-Length overflow",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 9223372036854775808\r\n\r\n"), 400, 0 },
	{ "Content-Length far overflow",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 1000000000000000000000\r\n\r\n"), 400, 0 },
	{ "TE then CL",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n"), 400, 0 },
	{ "CL then TE",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), 400, 0 },
	{ "TE identity",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n"
	    "\r\n"), 400, 0 },
	{ "TE chunked not last",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip"
	    "\r\n\r\n"), 400, 0 },
	{ "TE chunked not last, two fields",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n"), 400, 0 },
	{ "TE chunked twice",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, "
	    "chunked\r\n\r\n"), 400, 0 },
	{ "TE chunked twice, two fields",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n"), 400, 0 },
	{ "TE chunkedchunked",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunkedchunked\r\n\r\n"), 400, 0 },
	{ "TE empty",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding:\r\n\r\n"), 400, 0 },
	{ "TE chunked with parameter",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=b"
	    "\r\n\r\n"), 400, 0 },
	{ "TE bad parameter",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip;, chunked"
	    "\r\n\r\n"), 400, 0 },
	{ "TE unterminated quoted parameter",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip;a=\"b, "
	    "chunked\r\n\r\n"), 400, 0 },
	{ "TE two tokens without comma",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip chunked"
	    "\r\n\r\n"), 400, 0 },
	{ "TE with VT",
	    RAW("POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: \x0b" "chunked"
	    "\r\n\r\n"), 400, 0 },
	{ "TE in HTTP/1.0",
	    RAW("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), 400,
	    0 },

	/* Host */
	{ "no Host", RAW("GET / HTTP/1.1\r\n\r\n"), 400, 0 },
	{ "no Host, absolute-form",
	    RAW("GET http://h/ HTTP/1.1\r\n\r\n"), 400, 0 },
	{ "two Host fields",
	    RAW("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), 400, 0 },
	{ "two Host fields in 1.0",
	    RAW("GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"), 400, 0 },
	{ "Host {", RAW("GET / HTTP/1.1\r\nHost: {\r\n\r\n"), 400, 0 },
	{ "Host backslash", RAW("GET / HTTP/1.1\r\nHost: abc\\foo\r\n\r\n"),
	    400, 0 },
	{ "Host with space", RAW("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400,
	    0 },
	{ "Host with slash", RAW("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400,
	    0 },
	{ "Host with userinfo", RAW("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400,
	    0 },
	{ "Host 8-bit", RAW("GET / HTTP/1.0\r\nHost: abc\xa0\r\n\r\n"), 400,
	    0 },
	{ "Host bad port", RAW("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400,
	    0 },
	{ "Host two ports", RAW("GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n"), 400,
	    0 },
	{ "Host bad %-escape", RAW("GET / HTTP/1.1\r\nHost: a%2\r\n\r\n"), 400,
	    0 },
	{ "Host unbracketed IPv6", RAW("GET / HTTP/1.1\r\nHost: ::1\r\n\r\n"),
	    400, 0 },
	{ "Host unclosed bracket", RAW("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"),
	    400, 0 },
	{ "Host junk after bracket",
	    RAW("GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n"), 400, 0 },
	{ "Host empty brackets", RAW("GET / HTTP/1.1\r\nHost: []\r\n\r\n"), 400,
	    0 },
	{ "Host IPv6 two ::", RAW("GET / HTTP/1.1\r\nHost: [1::2::3]\r\n\r\n"),
	    400, 0 },
	{ "Host IPv6 nine groups",
	    RAW("GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7:8:9]\r\n\r\n"), 400,
	    0 },
	{ "Host IPv6 seven groups",
	    RAW("GET / HTTP/1.1\r\nHost: [1:2:3:4:5:6:7]\r\n\r\n"), 400, 0 },
	{ "Host IPv6 long group",
	    RAW("GET / HTTP/1.1\r\nHost: [12345::1]\r\n\r\n"), 400, 0 },
	{ "Host IPv6 trailing colon",
	    RAW("GET / HTTP/1.1\r\nHost: [1::2:]\r\n\r\n"), 400, 0 },
	{ "Host IPv6 bad IPv4 tail",
	    RAW("GET / HTTP/1.1\r\nHost: [::1.2.3.256]\r\n\r\n"), 400, 0 },
	{ "Host IPv6 zone id",
	    RAW("GET / HTTP/1.1\r\nHost: [::1%25en0]:80\r\n\r\n"), 400, 0 },
	{ "Host IPvFuture without dot",
	    RAW("GET / HTTP/1.1\r\nHost: [v1]\r\n\r\n"), 400, 0 },
};

ParameterizedTestParameters(http_parse, invalid)
{
	return cr_make_param_array(size_t, case_indices(NELEM(error_cases)),
	    NELEM(error_cases), case_indices_free);
}

ParameterizedTest(size_t *i, http_parse, invalid)
{
	const struct error_case *c = &error_cases[*i];
	struct http_req	r;
	int		rv;

	rv = parse_everywhere(&r, c->raw, c->len,
	    c->max_head ? c->max_head : MAX_HEAD, c->name);
	cr_assert_eq(rv, HTTP_PARSE_ERROR, "%s: rv %d", c->name, rv);
	cr_assert_eq(r.status, c->status, "%s: status %d, want %d (%s)",
	    c->name, r.status, c->status, r.error);
	cr_assert(r.error != NULL && r.error[0] != '\0', "%s", c->name);
}

/* ---- limits built at run time ------------------------------------------ */

/* A request with n fields "Xi: v" after Host, total length in *len. */
static char *
many_fields(unsigned n, size_t *len)
{
	size_t	 size = 64 + (size_t)n * 16, off;
	char	*p = malloc(size);
	unsigned i;

	cr_assert_not_null(p);
	off = (size_t)snprintf(p, size, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(p + off, size - off, "X%u: v\r\n", i);
	off += (size_t)snprintf(p + off, size - off, "\r\n");
	*len = off;
	return p;
}

Test(http_parse, header_count_limit)
{
	struct http_req	 r;
	size_t		 len;
	char		*p;

	p = many_fields(HTTP_MAX_HEADERS - 1, &len);
	cr_assert_eq(parse_everywhere(&r, p, len, MAX_HEAD, "64 fields"),
	    HTTP_PARSE_DONE);
	cr_assert_eq(r.nheaders, HTTP_MAX_HEADERS);
	cr_assert(span_is(p, r.headers[HTTP_MAX_HEADERS - 1].name, "X62"));
	free(p);

	p = many_fields(HTTP_MAX_HEADERS, &len);
	cr_assert_eq(parse_everywhere(&r, p, len, MAX_HEAD, "65 fields"),
	    HTTP_PARSE_ERROR);
	cr_assert_eq(r.status, 431);
	free(p);
}

Test(http_parse, head_exactly_max)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\nBODY";
	struct http_req	 r;
	uint32_t	 n = sizeof(req) - 1 - 4;

	cr_assert_eq(parse_whole(&r, req, sizeof(req) - 1, n), HTTP_PARSE_DONE);
	cr_assert_eq(r.head_len, n);
	cr_assert_eq(parse_whole(&r, req, sizeof(req) - 1, n - 1),
	    HTTP_PARSE_ERROR);
	cr_assert_eq(r.status, 431);
}

Test(http_parse, line_exactly_max)
{
	/* the request line, CRLF included, may take the whole limit */
	static const char req[] = "GET /abc HTTP/1.1\r\n";
	struct http_req	 r;
	uint32_t	 n = sizeof(req) - 1;

	cr_assert_eq(parse_whole(&r, req, n, n), HTTP_PARSE_AGAIN);
	cr_assert_eq(parse_whole(&r, req, n, n - 1), HTTP_PARSE_ERROR);
	cr_assert_eq(r.status, 414);
}

Test(http_parse, big_value_under_limit)
{
	size_t		 n = 100000, len;
	char		*p = malloc(n + 64);
	struct http_req	 r;

	cr_assert_not_null(p);
	len = (size_t)sprintf(p, "GET / HTTP/1.1\r\nHost: h\r\nX: ");
	memset(p + len, 'v', n);
	len += n;
	memcpy(p + len, "\r\n\r\n", 4);
	len += 4;
	cr_assert_eq(parse_whole(&r, p, len, (uint32_t)len), HTTP_PARSE_DONE);
	cr_assert_eq(r.headers[1].value.len, n);
	cr_assert_eq(parse_whole(&r, p, len, 8192), HTTP_PARSE_ERROR);
	cr_assert_eq(r.status, 431);
	free(p);
}

/* ---- pipelining and what comes after the head -------------------------- */

Test(http_parse, pipelined)
{
	static const char two[] =
	    "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
	    "HEAD /second?q HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n";
	struct http_req	 r1, r2;
	size_t		 len = sizeof(two) - 1;

	cr_assert_eq(parse_everywhere(&r1, two, len, MAX_HEAD, "pipeline 1"),
	    HTTP_PARSE_DONE);
	cr_assert(span_is(two, r1.path, "/first"));
	cr_assert_eq(r1.flags, 0);

	/* the first head alone is enough: nothing past it is needed */
	cr_assert_eq(parse_whole(&r2, two, r1.head_len, MAX_HEAD),
	    HTTP_PARSE_DONE);
	cr_assert_eq(r2.head_len, r1.head_len);

	cr_assert_eq(parse_everywhere(&r2, two + r1.head_len,
	    len - r1.head_len, MAX_HEAD, "pipeline 2"), HTTP_PARSE_DONE);
	cr_assert_eq(r2.method, HTTP_M_HEAD);
	cr_assert(span_is(two + r1.head_len, r2.path, "/second"));
	cr_assert(span_is(two + r1.head_len, r2.query, "q"));
	cr_assert(span_is(two + r1.head_len, r2.known[HTTP_H_HOST], "b"));
	cr_assert_eq(r2.flags, HTTP_F_CONN_CLOSE);
	cr_assert_eq(r1.head_len + r2.head_len, len);
}

Test(http_parse, body_is_not_parsed)
{
	/* a body that would be an error as a head is left alone */
	static const char req[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n\r\r\0 ";
	struct http_req	 r;

	cr_assert_eq(parse_everywhere(&r, req, sizeof(req) - 1, MAX_HEAD,
	    "body"), HTTP_PARSE_DONE);
	cr_assert_eq(r.head_len, sizeof(req) - 1 - 4);
	cr_assert_eq(r.content_length, 4);
}

/* ---- spans and lookups --------------------------------------------------- */

Test(http_parse, spans)
{
	static const char req[] =
	    "\r\nPOST /p?q HTTP/1.1\r\nHost:  h.example:8080 \r\n"
	    "X-Empty:\r\nUser-Agent: \tua/1 (x)\t\r\nContent-Length: 2\r\n"
	    "If-None-Match: \"a\", \"b\"\r\nx-empty: second\r\n\r\nhi";
	struct http_req	 r;
	const struct http_span *s;

	cr_assert_eq(parse_whole(&r, req, sizeof(req) - 1, MAX_HEAD),
	    HTTP_PARSE_DONE);
	cr_assert_eq(r.method_s.off, 2);
	cr_assert_eq(r.line_len, strlen("POST /p?q HTTP/1.1"));
	cr_assert_eq(r.head_len, sizeof(req) - 1 - 2);
	cr_assert_eq(r.nheaders, 6);
	cr_assert(span_is(req, r.headers[0].name, "Host"));
	cr_assert(span_is(req, r.headers[0].value, "h.example:8080"));
	cr_assert(span_is(req, r.known[HTTP_H_HOST], "h.example:8080"));
	cr_assert(span_is(req, r.known[HTTP_H_USER_AGENT], "ua/1 (x)"));
	cr_assert(span_is(req, r.known[HTTP_H_CONTENT_LENGTH], "2"));
	cr_assert(span_is(req, r.known[HTTP_H_IF_NONE_MATCH],
	    "\"a\", \"b\""));
	cr_assert_eq(r.known[HTTP_H_RANGE].len, 0);
	cr_assert_eq(r.headers[1].value.len, 0);

	s = http_req_header(&r, req, "x-EMPTY");
	cr_assert_not_null(s);
	cr_assert_eq(s, &r.headers[1].value, "the first one is found");
	s = http_req_header(&r, req, "user-agent");
	cr_assert(s != NULL && span_is(req, *s, "ua/1 (x)"));
	cr_assert_null(http_req_header(&r, req, "Accept"));
	cr_assert_null(http_req_header(&r, req, "Hos"));
	cr_assert_null(http_req_header(&r, req, "Hostx"));
}

Test(http_parse, known_fields)
{
	static const char req[] =
	    "GET / HTTP/1.1\r\nhost: h\r\nCONNECTION: c\r\n"
	    "content-length: 1\r\nIf-None-Match: inm\r\n"
	    "If-Modified-Since: ims\r\nIf-Match: im\r\n"
	    "If-Unmodified-Since: ius\r\nRange: r\r\nIf-Range: ir\r\n"
	    "Accept-Encoding: ae\r\nReferer: ref\r\nUser-Agent: ua\r\n"
	    "Expect: e\r\nRange: second\r\nX-Range: no\r\n\r\n";
	static const char *const want[HTTP_H__COUNT] = {
		[HTTP_H_HOST] = "h",
		[HTTP_H_CONNECTION] = "c",
		[HTTP_H_CONTENT_LENGTH] = "1",
		[HTTP_H_IF_NONE_MATCH] = "inm",
		[HTTP_H_IF_MODIFIED_SINCE] = "ims",
		[HTTP_H_IF_MATCH] = "im",
		[HTTP_H_IF_UNMODIFIED_SINCE] = "ius",
		[HTTP_H_RANGE] = "r",
		[HTTP_H_IF_RANGE] = "ir",
		[HTTP_H_ACCEPT_ENCODING] = "ae",
		[HTTP_H_REFERER] = "ref",
		[HTTP_H_USER_AGENT] = "ua",
		[HTTP_H_EXPECT] = "e",
	};
	struct http_req	r;
	int		h;

	cr_assert_eq(parse_whole(&r, req, sizeof(req) - 1, MAX_HEAD),
	    HTTP_PARSE_DONE);
	for (h = 0; h < HTTP_H__COUNT; h++)
		cr_assert(span_is(req, r.known[h], want[h]), "known[%d]", h);
	cr_assert_eq(r.nheaders, 15);
	cr_assert_eq(r.flags, 0);
}

Test(http_parse, absolute_form_host_wins)
{
	static const char req[] =
	    "GET http://a.example/x HTTP/1.1\r\nHost: b.example\r\n\r\n";
	struct http_req	r;
	const struct http_span *s;

	cr_assert_eq(parse_whole(&r, req, sizeof(req) - 1, MAX_HEAD),
	    HTTP_PARSE_DONE);
	cr_assert(span_is(req, r.known[HTTP_H_HOST], "a.example"));
	/* the field itself is still there for whoever wants it */
	s = http_req_header(&r, req, "host");
	cr_assert(s != NULL && span_is(req, *s, "b.example"));
}

Test(http_parse, method_names)
{
	cr_assert_str_eq(http_method_name(HTTP_M_GET), "GET");
	cr_assert_str_eq(http_method_name(HTTP_M_HEAD), "HEAD");
	cr_assert_str_eq(http_method_name(HTTP_M_POST), "POST");
	cr_assert_str_eq(http_method_name(HTTP_M_PUT), "PUT");
	cr_assert_str_eq(http_method_name(HTTP_M_DELETE), "DELETE");
	cr_assert_str_eq(http_method_name(HTTP_M_OPTIONS), "OPTIONS");
	cr_assert_str_eq(http_method_name(HTTP_M_TRACE), "TRACE");
	cr_assert_str_eq(http_method_name(HTTP_M_CONNECT), "CONNECT");
	cr_assert_str_eq(http_method_name(HTTP_M_PATCH), "PATCH");
	cr_assert_str_eq(http_method_name(HTTP_M_UNKNOWN), "UNKNOWN");
	cr_assert_str_eq(http_method_name(-1), "UNKNOWN");
	cr_assert_str_eq(http_method_name(HTTP_M_PATCH + 1), "UNKNOWN");
}

Test(http_parse, error_is_sticky)
{
	struct http_req	r;

	http_req_init(&r, MAX_HEAD);
	cr_assert_eq(http_parse(&r, "GET\t", 4), HTTP_PARSE_ERROR);
	cr_assert_eq(http_parse(&r, "GET\t/ HTTP/1.1\r\n\r\n", 18),
	    HTTP_PARSE_ERROR);
	cr_assert_eq(r.status, 400);
}

/*
 * Which methods porter knows decides 405 against 501, and HEAD decides
 * whether a response has content: only the exact, case-sensitive token
 * counts (RFC 9110 9.1).
 */
Test(http_parse, method_classification)
{
	static const struct {
		const char	*method;
		int		 want;
	} cases[] = {
		{ "GET", HTTP_M_GET }, { "HEAD", HTTP_M_HEAD },
		{ "POST", HTTP_M_POST }, { "PUT", HTTP_M_PUT },
		{ "DELETE", HTTP_M_DELETE }, { "OPTIONS", HTTP_M_OPTIONS },
		{ "TRACE", HTTP_M_TRACE }, { "PATCH", HTTP_M_PATCH },
		{ "FOO", HTTP_M_UNKNOWN }, { "get", HTTP_M_UNKNOWN },
		{ "Get", HTTP_M_UNKNOWN }, { "head", HTTP_M_UNKNOWN },
		{ "HEADX", HTTP_M_UNKNOWN }, { "HEA", HTTP_M_UNKNOWN },
		{ "post", HTTP_M_UNKNOWN }, { "PROPFIND", HTTP_M_UNKNOWN },
		{ "M-SEARCH", HTTP_M_UNKNOWN }, { "G", HTTP_M_UNKNOWN },
	};
	struct http_req	r;
	char		buf[128];
	size_t		i;
	int		n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = snprintf(buf, sizeof(buf), "%s /x HTTP/1.1\r\nHost: h\r\n"
		    "\r\n", cases[i].method);
		http_req_init(&r, MAX_HEAD);
		cr_expect_eq(http_parse(&r, buf, (size_t)n), HTTP_PARSE_DONE,
		    "%s", cases[i].method);
		cr_expect_eq(r.method, cases[i].want, "%s", cases[i].method);
	}
}

/* A request that fails is HEAD only if the whole token was read. */
Test(http_parse, method_known_when_failing)
{
	struct http_req	r;

	http_req_init(&r, MAX_HEAD);
	cr_assert_eq(http_parse(&r, "HEAD / HTTP/1.1\r\nbad\r\n\r\n", 24),
	    HTTP_PARSE_ERROR);
	cr_expect_eq(r.method, HTTP_M_HEAD);
	http_req_init(&r, MAX_HEAD);
	cr_assert_eq(http_parse(&r, "HE\x01AD / HTTP/1.1\r\n\r\n", 20),
	    HTTP_PARSE_ERROR);
	cr_expect_eq(r.method, HTTP_M_UNKNOWN);
	http_req_init(&r, MAX_HEAD);
	cr_assert_eq(http_parse(&r, "HEAD\t/ HTTP/1.1\r\n\r\n", 19),
	    HTTP_PARSE_ERROR);
	cr_expect_eq(r.method, HTTP_M_UNKNOWN);
}

/* ---- chunked bodies ------------------------------------------------------ */

struct chunk_case {
	const char	*name;
	const char	*raw;
	size_t		 len;
	int		 ok;		/* 0: must fail with -1 */
	size_t		 body;		/* body length, if ok */
	uint64_t	 total;		/* data bytes, when ok */
};

static const struct chunk_case chunk_cases[] = {
	{ "last chunk only", RAW("0\r\n\r\n"), 1, 5, 0 },
	{ "one chunk", RAW("5\r\nhello\r\n0\r\n\r\n"), 1, 15, 5 },
	{ "two chunks, hex size",
	    RAW("a\r\n0123456789\r\n1E\r\nall your base are belong to us\r\n"
	    "000\r\n\r\n"), 1, 58, 40 },
	{ "LF only", RAW("3\nabc\n0\n\n"), 1, 9, 3 },
	{ "data with CR LF NUL", RAW("4\r\n\r\n\0\r\r\n0\r\n\r\n"), 1, 14, 4 },
	{ "extensions",
	    RAW("5;a;b=c ; d = \"x\\\"y;z\" ;e\r\nhello\r\n0;last\r\n\r\n"), 1,
	    44, 5 },
	{ "space before extension", RAW("5 \t;a=b\r\nhello\r\n0\r\n\r\n"), 1,
	    21, 5 },
	{ "trailers",
	    RAW("3\r\nfoo\r\n0\r\nVary: *\r\nX-T:\r\nX-U: a b\xff\n\r\n"),
	    1, 38, 3 },
	{ "next request follows",
	    RAW("3\r\nfoo\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n"),
	    1, 13, 3 },
	{ "next request follows LF end",
	    RAW("3\r\nfoo\r\n0\n\nGET / HTTP/1.1\r\n"), 1, 11, 3 },
	{ "upper-case hex", RAW("A\r\n0123456789\r\n0\r\n\r\n"), 1, 20, 10 },
	{ "leading zeros",
	    RAW("00000000000000000000000001\r\nx\r\n0\r\n\r\n"), 1, 36, 1 },

	{ "empty size line", RAW("\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "non-hex size", RAW("g\r\n"), 0, 0, 0 },
	{ "size with 0x", RAW("0x5\r\nhello\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "negative size", RAW("-1\r\n"), 0, 0, 0 },
	{ "junk after size", RAW("2 erfrferferf\r\naa\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "space after size", RAW("a \r\n0123456789\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "space line after size", RAW("3 \n  \r\nfoo\r\n\r\n"), 0, 0, 0 },
	{ "empty extension", RAW("2;\r\naa\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "extension empty value", RAW("2;a=\r\naa\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "extension trailing space", RAW("2;a \r\naa\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "extension unterminated quote",
	    RAW("5;a=\"def; ghi\r\nhello\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "extension junk after quote",
	    RAW("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "extension CTL", RAW("5;a=\x01\r\nhello\r\n0\r\n\r\n"), 0, 0, 0 },
	{ "bare CR after size", RAW("5\r\r;ABCD\r\n34\r\nE\r\n0\r\n\r\n"), 0, 0,
	    0 },
	{ "missing CRLF after data", RAW("3\r\nfoo\r\n\r\n"), 0, 0, 0 },
	{ "data too long", RAW("5\r\nABCDE0\r\n\r\n"), 0, 0, 0 },
	{ "CR without LF after data", RAW("3\r\nfoo\rX0\r\n\r\n"), 0, 0, 0 },
	{ "size overflows 63 bits",
	    RAW("8000000000000000\r\n"), 0, 0, 0 },
	{ "size overflows 64 bits",
	    RAW("10000000000000000\r\n"), 0, 0, 0 },
	{ "obs-fold in trailer", RAW("0\r\nA: b\r\n c\r\n\r\n"), 0, 0, 0 },
	{ "trailer without colon", RAW("0\r\nAbc\r\n\r\n"), 0, 0, 0 },
	{ "trailer bad name", RAW("0\r\nA b: c\r\n\r\n"), 0, 0, 0 },
	{ "trailer NUL", RAW("0\r\nA: \0\r\n\r\n"), 0, 0, 0 },
	{ "bare CR ending trailers", RAW("0\r\n\rX"), 0, 0, 0 },
	{ "bare CR in trailer", RAW("0\r\nA: b\rc\r\n\r\n"), 0, 0, 0 },
};

ParameterizedTestParameters(http_chunked, cases)
{
	return cr_make_param_array(size_t, case_indices(NELEM(chunk_cases)),
	    NELEM(chunk_cases), case_indices_free);
}

/*
 * Skip raw[0..len) in pieces of at most step bytes, or split in two at
 * split when step is 0. Returns the bytes consumed, or -1; sets *done.
 */
static ssize_t
chunk_feed(struct http_chunked *c, const char *raw, size_t len, size_t step,
    size_t split, int *done)
{
	size_t	 off = 0, n, calls;
	ssize_t	 rv;
	char	*p;

	http_chunked_init(c);
	*done = 0;
	for (calls = 0; off < len; calls++) {
		n = step ? step : (calls == 0 ? split : len - off);
		if (n > len - off)
			n = len - off;
		p = copy(raw + off, n);
		rv = http_chunked_skip(c, p, n, done);
		free(p);
		if (rv == -1)
			return -1;
		cr_assert((size_t)rv <= n);
		off += (size_t)rv;
		if (*done)
			break;
		/* until the end, every byte offered is taken */
		cr_assert_eq((size_t)rv, n, "short read before the end");
	}
	return (ssize_t)off;
}

ParameterizedTest(size_t *i, http_chunked, cases)
{
	const struct chunk_case *c = &chunk_cases[*i];
	struct http_chunked ch;
	ssize_t		 rv;
	size_t		 k;
	int		 done;

	/* one call */
	rv = chunk_feed(&ch, c->raw, c->len, c->len, 0, &done);
	if (!c->ok) {
		cr_assert_eq(rv, -1, "%s: accepted", c->name);
		/* an error is sticky */
		cr_assert_eq(http_chunked_skip(&ch, "0\r\n\r\n", 5, &done), -1);
	} else {
		cr_assert_eq(rv, (ssize_t)c->body, "%s: consumed %zd", c->name,
		    rv);
		cr_assert(done, "%s: not done", c->name);
		cr_assert_eq(ch.total, c->total, "%s", c->name);
		/* once done, nothing more is taken */
		cr_assert_eq(http_chunked_skip(&ch, "GET", 3, &done), 0);
		cr_assert(done);
	}

	/* byte by byte, and split in two everywhere */
	rv = chunk_feed(&ch, c->raw, c->len, 1, 0, &done);
	cr_assert_eq(rv, c->ok ? (ssize_t)c->body : -1, "%s: byte by byte",
	    c->name);
	if (c->ok)
		cr_assert(done && ch.total == c->total, "%s", c->name);
	for (k = 0; k <= c->len; k++) {
		rv = chunk_feed(&ch, c->raw, c->len, 0, k, &done);
		cr_assert_eq(rv, c->ok ? (ssize_t)c->body : -1,
		    "%s: split at %zu", c->name, k);
		if (c->ok)
			cr_assert(done && ch.total == c->total,
			    "%s: split at %zu", c->name, k);
	}
}

Test(http_chunked, incomplete)
{
	struct http_chunked c;
	int		 done;

	http_chunked_init(&c);
	cr_assert_eq(http_chunked_skip(&c, "", 0, &done), 0);
	cr_assert(!done);
	cr_assert_eq(http_chunked_skip(&c, "10\r\nabc", 7, &done), 7);
	cr_assert(!done);
	cr_assert_eq(c.remaining, 13);
	cr_assert_eq(c.total, 3);
	cr_assert_eq(http_chunked_skip(&c, "0123456789abc\r\n0\r\n", 18,
	    &done), 18);
	cr_assert(!done);
	cr_assert_eq(c.total, 16);
	cr_assert_eq(http_chunked_skip(&c, "\r\nX", 3, &done), 2);
	cr_assert(done);
}

Test(http_chunked, largest_size)
{
	static const char big[] = "7fffffffffffffff\r\nabc";
	struct http_chunked c;
	int		 done;

	http_chunked_init(&c);
	cr_assert_eq(http_chunked_skip(&c, big, sizeof(big) - 1, &done),
	    (ssize_t)sizeof(big) - 1);
	cr_assert(!done);
	cr_assert_eq(c.remaining, (uint64_t)INT64_MAX - 3);
	cr_assert_eq(c.total, 3);
}

/* Many chunks of 2^63 - 1 bytes: the running total stops at INT64_MAX
 * rather than wrap below an int64_t body limit. */
Test(http_chunked, total_saturates)
{
	static const char big[] = "7fffffffffffffff\r\nabc";
	struct http_chunked c;
	int		 done;

	http_chunked_init(&c);
	cr_assert_eq(http_chunked_skip(&c, big, sizeof(big) - 1, &done),
	    (ssize_t)sizeof(big) - 1);
	c.total = (uint64_t)INT64_MAX - 1;	/* as after many such chunks */
	cr_assert_eq(http_chunked_skip(&c, "xyz", 3, &done), 3);
	cr_assert_eq(c.total, (uint64_t)INT64_MAX);
	c.total = UINT64_MAX - 1;
	cr_assert_eq(http_chunked_skip(&c, "xyz", 3, &done), 3);
	cr_assert_eq(c.total, (uint64_t)INT64_MAX);
}

static void
chunk_long_line(const char *head, size_t fill, char ch, int ok)
{
	struct http_chunked c;
	size_t		 hl = strlen(head), len = hl + fill + 2;
	char		*p = malloc(len);
	ssize_t		 rv;
	int		 done;

	cr_assert_not_null(p);
	memcpy(p, head, hl);
	memset(p + hl, ch, fill);
	memcpy(p + hl + fill, "\r\n", 2);
	http_chunked_init(&c);
	rv = http_chunked_skip(&c, p, len, &done);
	if (ok)
		cr_assert_eq(rv, (ssize_t)len, "%zu bytes of %c", fill, ch);
	else
		cr_assert_eq(rv, -1, "%zu bytes of %c", fill, ch);
	free(p);
}

Test(http_chunked, line_limits)
{
	/* a size line of 4096 bytes, line end included, is the most */
	chunk_long_line("1;", 4092, 'e', 1);
	chunk_long_line("1;", 4093, 'e', 0);
	chunk_long_line("", 4094, '0', 1);
	chunk_long_line("", 4095, '0', 0);
	chunk_long_line("0\r\nX:", 4092, 'v', 1);
	chunk_long_line("0\r\nX:", 4093, 'v', 0);
}

Test(http_chunked, trailer_limit)
{
	struct http_chunked c;
	char		 line[] =
	    "X-Trailer: 0123456789012345678901234567890\r\n";
	size_t		 n = sizeof(line) - 1, i;
	ssize_t		 rv = 0;
	int		 done = 0;

	/* as many 44-byte lines as fit in 16 KiB, then one too many */
	cr_assert_eq(n, 44);
	http_chunked_init(&c);
	cr_assert_eq(http_chunked_skip(&c, "0\r\n", 3, &done), 3);
	for (i = 0; i < 16 * 1024 / n; i++) {
		rv = http_chunked_skip(&c, line, n, &done);
		cr_assert_eq(rv, (ssize_t)n, "line %zu", i);
	}
	rv = http_chunked_skip(&c, line, n, &done);
	cr_assert_eq(rv, -1);
}
