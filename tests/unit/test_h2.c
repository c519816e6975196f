/*
 * test_h2.c - the pure parts of HTTP/2: h2_req.c (header fields ->
 * porter's request record, with RFC 9113 8.2-8.3's checks as a table)
 * and h2_data.c (a response's segments -> DATA payloads: never more
 * than asked, memory copied, file bytes counted for sendfile, the end
 * of the stream in a file frame only when its bytes are read in before
 * its header is sent).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "h2.h"

/* ---- h2_req ---------------------------------------------------------------- */

struct field {
	const char	*name;
	const char	*value;
};

/* Feed fields (NULL-terminated); the first failing field's result, or finish's. */
static int
feed(struct h2_req *hr, const struct field *f)
{
	int rv;

	for (; f->name != NULL; f++) {
		rv = h2_req_field(hr, (const uint8_t *)f->name, strlen(f->name),
		    (const uint8_t *)f->value, strlen(f->value));
		if (rv != H2R_OK)
			return rv;
	}
	return h2_req_finish(hr);
}

#define BASE	{ ":method", "GET" }, { ":scheme", "https" }, \
		{ ":authority", "www.example.org" }, { ":path", "/a/b.html?x=1&y" }

static const char *
span(const struct h2_req *hr, struct http_span s)
{
	static char buf[256];

	cr_assert_lt(s.len, sizeof(buf));
	memcpy(buf, hr->hb + s.off, s.len);
	buf[s.len] = '\0';
	return buf;
}

Test(h2_req, maps_a_request)
{
	struct h2_req hr = { 0 };
	const struct field f[] = { BASE, { "user-agent", "ua/1" },
	    { "if-none-match", "\"e1\"" }, { "accept-encoding", "gzip" },
	    { "range", "bytes=0-9" }, { "cookie", "a=1" }, { "cookie", "b=2" },
	    { "te", "trailers" }, { NULL, NULL } };

	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, f), H2R_OK);
	cr_assert_eq(hr.status, 0);
	cr_assert_eq(hr.req.method, HTTP_M_GET);
	cr_assert_str_eq(span(&hr, hr.req.method_s), "GET");
	cr_assert_str_eq(span(&hr, hr.req.target), "/a/b.html?x=1&y");
	cr_assert_str_eq(span(&hr, hr.req.path), "/a/b.html");
	cr_assert_str_eq(span(&hr, hr.req.query), "x=1&y");
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_HOST]), "www.example.org");
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_USER_AGENT]), "ua/1");
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_IF_NONE_MATCH]), "\"e1\"");
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_ACCEPT_ENCODING]), "gzip");
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_RANGE]), "bytes=0-9");
	cr_assert_eq(hr.req.known[HTTP_H_REFERER].off, 0, "absent is offset 0");
	cr_assert_eq(hr.req.nheaders, 7);
	cr_assert_eq(hr.req.content_length, -1);
	cr_assert_eq(hr.req.version, 20);
	cr_assert_str_eq(span(&hr, hr.line), "GET /a/b.html?x=1&y HTTP/2.0");
	cr_assert_eq(hr.req.line_len, hr.line.len);
	h2_req_free(&hr);
}

Test(h2_req, methods_options_star_connect_host)
{
	struct h2_req hr = { 0 };
	const struct field opt[] = { { ":method", "OPTIONS" }, { ":scheme", "http" },
	    { ":path", "*" }, { "host", "h.example" }, { NULL, NULL } };
	const struct field brew[] = { { ":method", "BREW" }, { ":scheme", "http" },
	    { ":path", "/" }, { ":authority", "h.example" }, { NULL, NULL } };
	const struct field conn[] = { { ":method", "CONNECT" },
	    { ":authority", "h.example:443" }, { NULL, NULL } };
	const struct field same[] = { BASE, { "host", "WWW.example.org" },
	    { "content-length", "12" }, { "content-length", "12" }, { NULL, NULL } };

	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, opt), H2R_OK);
	cr_assert_eq(hr.req.method, HTTP_M_OPTIONS);
	cr_assert_eq(hr.req.path.len, 0);
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_HOST]), "h.example");
	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, brew), H2R_OK);
	cr_assert_eq(hr.req.method, HTTP_M_UNKNOWN, "answered 501 by http.c");
	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, conn), H2R_OK);
	cr_assert_eq(hr.req.method, HTTP_M_CONNECT, "answered 405 by http.c");
	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, same), H2R_OK);
	cr_assert_eq(hr.req.content_length, 12);
	h2_req_free(&hr);
}

/* RFC 9113 8.2 and 8.3: each of these is malformed. */
Test(h2_req, malformed_table)
{
	static const struct {
		const char	*why;
		struct field	 f[8];
	} cases[] = {
		{ "upper-case name", { BASE, { "User-Agent", "x" } } },
		{ "space in name", { BASE, { "user agent", "x" } } },
		{ "empty name", { BASE, { "", "x" } } },
		{ "connection", { BASE, { "connection", "close" } } },
		{ "proxy-connection", { BASE, { "proxy-connection", "x" } } },
		{ "keep-alive", { BASE, { "keep-alive", "1" } } },
		{ "transfer-encoding", { BASE, { "transfer-encoding", "chunked" } } },
		{ "upgrade", { BASE, { "upgrade", "h2c" } } },
		{ "te not trailers", { BASE, { "te", "gzip" } } },
		{ "8-bit name", { BASE, { "x-\xc3\xa9", "x" } } },
		{ "colon in name", { BASE, { "x:a", "x" } } },
		{ "LF in value", { BASE, { "x-a", "a\nb" } } },
		{ "CR in value", { BASE, { "x-a", "a\rb" } } },
		{ "leading space", { BASE, { "x-a", " a" } } },
		{ "trailing tab", { BASE, { "x-a", "a\t" } } },
		{ "pseudo after regular", { { ":method", "GET" }, { "x-a", "1" },
		    { ":scheme", "http" }, { ":path", "/" } } },
		{ "twice :method", { BASE, { ":method", "GET" } } },
		{ "unknown pseudo", { BASE, { ":foo", "1" } } },
		{ ":status in a request", { BASE, { ":status", "200" } } },
		{ ":protocol (no extended CONNECT)", { BASE, { ":protocol", "websocket" } } },
		{ "no :method", { { ":scheme", "http" }, { ":path", "/" } } },
		{ "no :scheme", { { ":method", "GET" }, { ":path", "/" } } },
		{ "no :path", { { ":method", "GET" }, { ":scheme", "http" } } },
		{ "empty :path", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "" } } },
		{ "relative :path", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "a.html" } } },
		{ "* for GET", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "*" } } },
		{ "space in :path", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "/a b" } } },
		{ "fragment in :path", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "/a#b" } } },
		{ "bad method", { { ":method", "G(T" }, { ":scheme", "http" },
		    { ":path", "/" } } },
		{ "CONNECT with :path", { { ":method", "CONNECT" },
		    { ":authority", "h:1" }, { ":path", "/" } } },
		{ "Host differs from :authority", { BASE, { "host", "evil.example" } } },
		{ "Content-Length not digits", { BASE, { "content-length", "1e3" } } },
		{ "no :authority nor Host", { { ":method", "GET" },
		    { ":scheme", "http" }, { ":path", "/" } } },
		{ "two Host fields", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "/" }, { "host", "a.example" }, { "host", "a.example" } } },
		{ "Host with a space", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "/" }, { "host", "a b" } } },
		{ "userinfo in :authority", { { ":method", "GET" },
		    { ":scheme", "http" }, { ":path", "/" },
		    { ":authority", "u@a.example" } } },
		{ "port not digits", { { ":method", "GET" }, { ":scheme", "http" },
		    { ":path", "/" }, { ":authority", "a.example:8x" } } },
		{ "CONNECT without a port", { { ":method", "CONNECT" },
		    { ":authority", "a.example" } } },
		{ ":scheme not a scheme", { { ":method", "GET" },
		    { ":scheme", "1http" }, { ":path", "/" }, { ":authority", "a" } } },
		{ ":scheme with a space", { { ":method", "GET" },
		    { ":scheme", "ht tp" }, { ":path", "/" }, { ":authority", "a" } } },
		{ "Content-Length disagrees", { BASE, { "content-length", "1" },
		    { "content-length", "2" } } },
	};
	struct h2_req hr = { 0 };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct field f[9];

		memcpy(f, cases[i].f, sizeof(cases[i].f));
		f[8].name = NULL;
		/* The table's unused slots are zero: a NULL name ends it. */
		h2_req_init(&hr, 8192);
		cr_assert_eq(feed(&hr, f), H2R_MALFORMED, "%s", cases[i].why);
	}
	h2_req_free(&hr);
}

/* Every tchar of RFC 9110 5.6.2 in a name; upper case in a method only. */
Test(h2_req, every_token_character)
{
	struct h2_req hr = { 0 };
	const struct field f[] = { { ":method", "Get-It!#$%&'*+.^_`|~9" },
	    { ":scheme", "https" }, { ":path", "/" }, { ":authority", "h.example" },
	    { "x-!#$%&'*+-.^_`|~09az", "v" }, { NULL, NULL } };
	static const char nul[] = { 'a', '\0', 'b' };

	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, f), H2R_OK);
	cr_assert_eq(hr.req.method, HTTP_M_UNKNOWN);
	cr_assert_str_eq(span(&hr, hr.req.method_s), "Get-It!#$%&'*+.^_`|~9");
	cr_assert_str_eq(span(&hr, hr.req.headers[0].name),
	    "x-!#$%&'*+-.^_`|~09az");
	h2_req_init(&hr, 8192);
	cr_assert_eq(h2_req_field(&hr, (const uint8_t *)"x-a", 3,
	    (const uint8_t *)nul, sizeof(nul)), H2R_MALFORMED, "NUL in a value");
	h2_req_free(&hr);
}

/* A Host field alone names the authority; IPv6 and ports are fine. */
Test(h2_req, host_field_and_authority_forms)
{
	struct h2_req hr = { 0 };
	const struct field host[] = { { ":method", "GET" }, { ":scheme", "https" },
	    { ":path", "/" }, { "host", "a.example:8443" }, { NULL, NULL } };
	const struct field v6[] = { { ":method", "GET" }, { ":scheme", "https" },
	    { ":path", "/" }, { ":authority", "[::1]:443" }, { NULL, NULL } };

	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, host), H2R_OK);
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_HOST]), "a.example:8443");
	h2_req_init(&hr, 8192);
	cr_assert_eq(feed(&hr, v6), H2R_OK);
	cr_assert_str_eq(span(&hr, hr.req.known[HTTP_H_HOST]), "[::1]:443");
	h2_req_free(&hr);
}

/* RFC 9113 8.1: trailers carry regular fields only. */
Test(h2_req, trailer_fields)
{
#define TR(n, v)	h2_req_trailer((const uint8_t *)(n), strlen(n), \
	    (const uint8_t *)(v), strlen(v))
	cr_assert_eq(TR("x-checksum", "abc"), H2R_OK);
	cr_assert_eq(TR(":path", "/"), H2R_MALFORMED, "pseudo-header field");
	cr_assert_eq(TR("X-Checksum", "abc"), H2R_MALFORMED, "upper case");
	cr_assert_eq(TR("x-a", "a\nb"), H2R_MALFORMED, "LF in value");
	cr_assert_eq(TR("connection", "close"), H2R_MALFORMED);
	cr_assert_eq(TR("te", "gzip"), H2R_MALFORMED);
#undef TR
}

Test(h2_req, too_large_is_431_not_malformed)
{
	struct h2_req hr = { 0 };
	char big[3000];
	struct field f[] = { BASE, { "x-big", big }, { NULL, NULL } };

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	h2_req_init(&hr, 2048);
	cr_assert_eq(feed(&hr, f), H2R_OK);
	cr_assert_eq(hr.status, 431);
	cr_assert_leq(hr.hb_len, 2048 + 64, "nothing past the limit is kept");
	/* Still checked after the limit: a malformed field is reported. */
	h2_req_init(&hr, 2048);
	cr_assert_eq(h2_req_field(&hr, (const uint8_t *)"x-big", 5,
	    (const uint8_t *)big, strlen(big)), H2R_OK);
	cr_assert_eq(h2_req_field(&hr, (const uint8_t *)"Bad", 3,
	    (const uint8_t *)"1", 1), H2R_MALFORMED);
	h2_req_free(&hr);
}

/* ---- h2_data ----------------------------------------------------------------- */

static void
resp_with(struct resp *r, const char *mem, size_t memlen, off_t foff,
    size_t flen, const char *tail)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	resp_begin(r, 200);
	resp_head_done(r);
	if (memlen)
		resp_seg_mem(r, mem, memlen);
	if (flen)
		resp_seg_file(r, foff, flen);
	if (tail != NULL)
		resp_seg_mem(r, tail, strlen(tail));
}

Test(h2_data, memory_copied_within_the_window)
{
	struct resp r;
	struct h2_data d;
	uint8_t buf[64];
	unsigned flags;
	size_t n;
	const char *body = "0123456789abcdefghij";

	resp_with(&r, body, 20, 0, 0, "XYZ");
	cr_assert_eq(h2_data_length(&r), 23);
	h2_data_init(&d);
	n = h2_data_read(&d, &r, buf, 7, &flags);
	cr_assert_eq(n, 7);
	cr_assert_eq(flags, 0);
	cr_assert_eq(memcmp(buf, "0123456", 7), 0);
	/* across segments, up to what is asked */
	n = h2_data_read(&d, &r, buf, 15, &flags);
	cr_assert_eq(n, 15);
	cr_assert_eq(memcmp(buf, "789abcdefghijXY", 15), 0);
	cr_assert_eq(flags, 0);
	n = h2_data_read(&d, &r, buf, 64, &flags);
	cr_assert_eq(n, 1);
	cr_assert_eq(buf[0], 'Z');
	cr_assert_eq(flags, H2D_EOF);
	cr_assert_eq(d.framed, 23);
	free(r.buf);
}

Test(h2_data, file_frames_are_nocopy_and_never_end_the_stream)
{
	struct resp r;
	struct h2_data d;
	uint8_t buf[64];
	unsigned flags;
	size_t n;

	resp_with(&r, "--b\r\n", 5, 1000, 40000, "\r\n--b--\r\n");
	h2_data_init(&d);
	n = h2_data_read(&d, &r, buf, 16384, &flags);
	cr_assert_eq(n, 5, "memory stops at the file segment");
	cr_assert_eq(flags, 0);
	n = h2_data_read(&d, &r, buf, 16384, &flags);
	cr_assert_eq(n, 16384);
	cr_assert_eq(flags, H2D_NOCOPY);
	cr_assert_eq(d.nc_off, 1000);
	n = h2_data_read(&d, &r, buf, 10, &flags);
	cr_assert_eq(n, 10, "a smaller window is obeyed");
	cr_assert_eq(d.nc_off, 1000 + 16384);
	n = h2_data_read(&d, &r, buf, 65536, &flags);
	cr_assert_eq(n, 40000 - 16384 - 10, "no more than the segment");
	cr_assert_eq(flags, H2D_NOCOPY);
	n = h2_data_read(&d, &r, buf, 64, &flags);
	cr_assert_eq(n, 9);
	cr_assert_eq(flags, H2D_EOF);
	cr_assert_eq(d.framed, 5 + 40000 + 9);
	free(r.buf);

	/* a body that is one file: its end comes in an empty frame */
	resp_with(&r, NULL, 0, 0, 100, NULL);
	h2_data_init(&d);
	n = h2_data_read(&d, &r, buf, 16384, &flags);
	cr_assert_eq(n, 100);
	cr_assert_eq(flags, H2D_NOCOPY);
	n = h2_data_read(&d, &r, buf, 16384, &flags);
	cr_assert_eq(n, 0);
	cr_assert_eq(flags, H2D_EOF);
	free(r.buf);
}

Test(h2_data, copied_file_frames_may_end_the_stream)
{
	struct resp r;
	struct h2_data d;
	uint8_t buf[64];
	unsigned flags;
	size_t n;

	/* Read in before the header leaves (TLS): the end rides along. */
	resp_with(&r, NULL, 0, 0, 100, NULL);
	h2_data_init(&d);
	d.copied = 1;
	n = h2_data_read(&d, &r, buf, 60, &flags);
	cr_assert_eq(n, 60);
	cr_assert_eq(flags, H2D_NOCOPY, "not the end yet");
	n = h2_data_read(&d, &r, buf, 16384, &flags);
	cr_assert_eq(n, 40);
	cr_assert_eq(d.nc_off, 60);
	cr_assert_eq(flags, H2D_NOCOPY | H2D_EOF, "the last file frame ends it");
	cr_assert_eq(d.framed, 100);
	free(r.buf);

	/* Memory after the file still comes in a frame of its own. */
	resp_with(&r, "--b\r\n", 5, 1000, 30, "\r\n--b--\r\n");
	h2_data_init(&d);
	d.copied = 1;
	n = h2_data_read(&d, &r, buf, 64, &flags);
	cr_assert_eq(n, 5);
	n = h2_data_read(&d, &r, buf, 64, &flags);
	cr_assert_eq(n, 30);
	cr_assert_eq(flags, H2D_NOCOPY);
	n = h2_data_read(&d, &r, buf, 64, &flags);
	cr_assert_eq(n, 9);
	cr_assert_eq(flags, H2D_EOF);
	free(r.buf);
}
