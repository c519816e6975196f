/*
 * h2_req.c - an HTTP/2 request's header fields turned into porter's
 * request record (struct http_req over one buffer), with the checks of
 * RFC 9113 8.2 (field validity, connection-specific fields) and 8.3
 * (pseudo-header fields). nghttp2 already refuses most malformed
 * requests before they get here; these checks are porter's own so the
 * mapping is safe on its own, and so unit tests can show each rule.
 *
 * No I/O, no nghttp2: fields in, a struct http_req out.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2.h"

/* hr->seen bits */
#define H2R_METHOD	0x01
#define H2R_SCHEME	0x02
#define H2R_AUTHORITY	0x04
#define H2R_PATH	0x08
#define H2R_PROTOCOL	0x10
#define H2R_HOST	0x20	/* a Host field (not a pseudo-header) */

/*
 * RFC 9110 5.6.2 token characters: H2R_T_TOKEN for those a field name
 * may have, H2R_T_UPPER for the upper-case letters only a method may
 * have (RFC 9113 8.2.1).
 */
#define H2R_T_TOKEN	1
#define H2R_T_UPPER	2
static const uint8_t h2_req_tchar[256] = {
	['a' ... 'z'] = H2R_T_TOKEN, ['0' ... '9'] = H2R_T_TOKEN,
	['A' ... 'Z'] = H2R_T_UPPER,
	['!'] = H2R_T_TOKEN, ['#'] = H2R_T_TOKEN, ['$'] = H2R_T_TOKEN,
	['%'] = H2R_T_TOKEN, ['&'] = H2R_T_TOKEN, ['\''] = H2R_T_TOKEN,
	['*'] = H2R_T_TOKEN, ['+'] = H2R_T_TOKEN, ['-'] = H2R_T_TOKEN,
	['.'] = H2R_T_TOKEN, ['^'] = H2R_T_TOKEN, ['_'] = H2R_T_TOKEN,
	['`'] = H2R_T_TOKEN, ['|'] = H2R_T_TOKEN, ['~'] = H2R_T_TOKEN,
};

void
h2_req_init(struct h2_req *hr, uint32_t max_header_size)
{
	char *hb = hr->hb;
	uint32_t cap = hr->hb_cap;
	const size_t tab = offsetof(struct h2_req, req.headers);
	const size_t tab_end = tab + sizeof(hr->req.headers);

	/* All but the header table, filled in order and read up to nheaders. */
	memset(hr, 0, tab);
	memset((char *)hr + tab_end, 0, sizeof(*hr) - tab_end);
	hr->hb = hb;
	hr->hb_cap = cap;
	hr->max = max_header_size;
	/* Byte 0 is no field's: an offset of 0 means absent. */
	hr->hb_len = 1;
	if (hr->hb == NULL) {
		hr->hb_cap = 512;
		hr->hb = xmalloc(hr->hb_cap);
	}
	hr->hb[0] = '\0';
	hr->req.content_length = -1;
	hr->req.version = 20;
}

void
h2_req_free(struct h2_req *hr)
{
	free(hr->hb);
	hr->hb = NULL;
	hr->hb_cap = hr->hb_len = 0;
}

/* Room for len more bytes; 0, or -1 past the limit (plus a line's slack). */
static int
h2_req_room(struct h2_req *hr, size_t len)
{
	size_t need = (size_t)hr->hb_len + len, cap;

	if (need > (size_t)hr->max + 64)
		return -1;
	if (need <= hr->hb_cap)
		return 0;
	for (cap = hr->hb_cap; cap < need; cap *= 2)
		;
	hr->hb = xrealloc(hr->hb, cap);
	hr->hb_cap = (uint32_t)cap;
	return 0;
}

static struct http_span
h2_req_put(struct h2_req *hr, const void *p, size_t len)
{
	struct http_span s = { hr->hb_len, (uint32_t)len };

	memcpy(hr->hb + hr->hb_len, p, len);
	hr->hb_len += (uint32_t)len;
	return s;
}

/* A token (RFC 9110 5.6.2); upper case only if upper_ok (a method). */
static int
h2_req_token_ok(const uint8_t *p, size_t len, int upper_ok)
{
	unsigned ok = H2R_T_TOKEN | (upper_ok ? H2R_T_UPPER : 0);
	size_t i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (!(h2_req_tchar[p[i]] & ok))
			return 0;
	return 1;
}

/* RFC 9113 8.2.1: no NUL, CR or LF; no SP or HTAB at either end. */
static int
h2_req_value_ok(const uint8_t *p, size_t len)
{
	size_t i;

	if (len > 0 && (p[0] == ' ' || p[0] == '\t' || p[len - 1] == ' ' ||
	    p[len - 1] == '\t'))
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] <= '\r' && (p[i] == 0 || p[i] == '\r' || p[i] == '\n'))
			return 0;
	return 1;
}

static int
h2_req_is(const uint8_t *p, size_t len, const char *s, size_t slen)
{
	return len == slen && memcmp(p, s, len) == 0;
}

#define H2R_IS(p, len, lit)	h2_req_is(p, len, lit, sizeof(lit) - 1)

/* RFC 9113 8.2.2: a field of HTTP/1.1 connection management. */
static int
h2_req_conn_specific(const uint8_t *name, size_t len)
{
	switch (len) {
	case 7:
		return H2R_IS(name, len, "upgrade");
	case 10:
		return H2R_IS(name, len, "connection") ||
		    H2R_IS(name, len, "keep-alive");
	case 16:
		return H2R_IS(name, len, "proxy-connection");
	case 17:
		return H2R_IS(name, len, "transfer-encoding");
	}
	return 0;
}

static int
h2_req_pseudo(struct h2_req *hr, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen)
{
	struct http_span *span;
	unsigned bit;

	/* 8.3: pseudo-header fields come first, each at most once. */
	if (hr->regular)
		return H2R_MALFORMED;
	if (H2R_IS(name, nlen, ":method")) {
		bit = H2R_METHOD;
		span = &hr->method;
	} else if (H2R_IS(name, nlen, ":path")) {
		bit = H2R_PATH;
		span = &hr->path;
	} else if (H2R_IS(name, nlen, ":scheme")) {
		bit = H2R_SCHEME;
		span = &hr->scheme;
	} else if (H2R_IS(name, nlen, ":authority")) {
		bit = H2R_AUTHORITY;
		span = &hr->authority;
	} else if (H2R_IS(name, nlen, ":protocol")) {
		bit = H2R_PROTOCOL;
		span = &hr->protocol;
	} else
		return H2R_MALFORMED;	/* 8.3: an unknown pseudo-header field */
	if (hr->seen & bit)
		return H2R_MALFORMED;
	hr->seen |= bit;
	if (hr->status != 0 || h2_req_room(hr, vlen + 1) == -1) {
		hr->status = 431;
		return H2R_OK;
	}
	*span = h2_req_put(hr, value, vlen);
	h2_req_put(hr, "\n", 1);
	return H2R_OK;
}

/*
 * RFC 9113 8.2: a regular field, of the request or of its trailers: a
 * lower-case token for a name, a value without NUL, CR, LF or white
 * space at its ends, no field of HTTP/1.1 connection management, TE
 * only "trailers".
 */
static int
h2_req_regular_ok(const uint8_t *name, size_t nlen, const uint8_t *value,
    size_t vlen)
{
	if (!h2_req_token_ok(name, nlen, 0) || !h2_req_value_ok(value, vlen))
		return 0;
	if (h2_req_conn_specific(name, nlen))
		return 0;
	if (H2R_IS(name, nlen, "te") && !(vlen == 8 &&
	    strncasecmp((const char *)value, "trailers", 8) == 0))
		return 0;
	return 1;
}

int
h2_req_field(struct h2_req *hr, const uint8_t *name, size_t nlen,
    const uint8_t *value, size_t vlen)
{
	struct http_req *q = &hr->req;
	struct http_header *f;
	int h;

	if (nlen > 0 && name[0] == ':') {
		if (!h2_req_value_ok(value, vlen))
			return H2R_MALFORMED;
		return h2_req_pseudo(hr, name, nlen, value, vlen);
	}
	hr->regular = 1;
	if (!h2_req_regular_ok(name, nlen, value, vlen))
		return H2R_MALFORMED;
	/* As RFC 9112 3.2 has it for HTTP/1.1: one Host, well formed. */
	if ((h = http_field_index(name, nlen)) == HTTP_H_HOST) {
		if ((hr->seen & H2R_HOST) ||
		    !http_host_ok((const char *)value, vlen, 0))
			return H2R_MALFORMED;
		hr->seen |= H2R_HOST;
	}
	if (hr->status != 0)
		return H2R_OK;	/* already too big: drop, keep checking */
	if (q->nheaders == HTTP_MAX_HEADERS ||
	    h2_req_room(hr, nlen + vlen + 3) == -1) {
		hr->status = 431;
		return H2R_OK;
	}
	f = &q->headers[q->nheaders++];
	f->name = h2_req_put(hr, name, nlen);
	h2_req_put(hr, ": ", 2);
	f->value = h2_req_put(hr, value, vlen);
	h2_req_put(hr, "\n", 1);
	/* The first value of a field porter acts on, as HTTP/1.1 keeps it. */
	if (h >= 0 && q->known[h].off == 0)
		q->known[h] = f->value;
	return H2R_OK;
}

int
h2_req_trailer(const uint8_t *name, size_t nlen, const uint8_t *value,
    size_t vlen)
{
	/* RFC 9113 8.1: no pseudo-header field (not a token: refused). */
	return h2_req_regular_ok(name, nlen, value, vlen) ? H2R_OK :
	    H2R_MALFORMED;
}

/* RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static int
h2_req_scheme_ok(const char *p, size_t len)
{
	size_t i;

	if (len == 0 || !((p[0] >= 'a' && p[0] <= 'z') ||
	    (p[0] >= 'A' && p[0] <= 'Z')))
		return 0;
	for (i = 1; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' &&
		    p[i] <= 'Z') || (p[i] >= '0' && p[i] <= '9') ||
		    p[i] == '+' || p[i] == '-' || p[i] == '.'))
			return 0;
	return 1;
}

/* ASCII case-insensitive equality of two spans of hb. */
static int
h2_req_span_eq(const struct h2_req *hr, struct http_span a,
    struct http_span b)
{
	return a.len == b.len && strncasecmp(hr->hb + a.off, hr->hb + b.off,
	    a.len) == 0;
}

/* Content-Length: digits only, every copy the same (RFC 9110 8.6). */
static int
h2_req_content_length(struct h2_req *hr)
{
	struct http_req *q = &hr->req;
	const struct http_span *cl = &q->known[HTTP_H_CONTENT_LENGTH];
	int64_t v = 0;
	unsigned i, h;

	if (cl->off == 0)
		return H2R_OK;
	if (cl->len == 0 || cl->len > 18)
		return H2R_MALFORMED;
	for (i = 0; i < cl->len; i++) {
		char ch = hr->hb[cl->off + i];

		if (ch < '0' || ch > '9')
			return H2R_MALFORMED;
		v = v * 10 + (ch - '0');
	}
	for (h = 0; h < q->nheaders; h++)
		if (H2R_IS((const uint8_t *)hr->hb + q->headers[h].name.off,
		    q->headers[h].name.len, "content-length") &&
		    !h2_req_span_eq(hr, q->headers[h].value, *cl))
			return H2R_MALFORMED;
	q->content_length = v;
	return H2R_OK;
}

int
h2_req_finish(struct h2_req *hr)
{
	struct http_req *q = &hr->req;
	const char *p;
	const char *name;
	size_t i;
	int m, is_connect;

	if (!(hr->seen & H2R_METHOD))
		return H2R_MALFORMED;
	if (hr->status != 0)
		return H2R_OK;	/* 431: nothing more to look at */
	q->method_s = hr->method;
	q->method = HTTP_M_UNKNOWN;
	for (m = HTTP_M_GET; m <= HTTP_M_PATCH; m++) {
		name = http_method_name(m);
		if (strlen(name) == hr->method.len &&
		    memcmp(name, hr->hb + hr->method.off, hr->method.len) == 0) {
			q->method = m;
			break;
		}
	}
	if (!h2_req_token_ok((const uint8_t *)hr->hb + hr->method.off,
	    hr->method.len, 1))
		return H2R_MALFORMED;
	is_connect = q->method == HTTP_M_CONNECT;
	/* 8.5: CONNECT has :authority and neither :scheme nor :path
	 * (extended CONNECT, RFC 8441, is not offered). */
	if (hr->seen & H2R_PROTOCOL)
		return H2R_MALFORMED;
	/* 8.3.1: the authority without userinfo; a host and port for CONNECT. */
	if ((hr->seen & H2R_AUTHORITY) && !http_host_ok(hr->hb +
	    hr->authority.off, hr->authority.len, is_connect))
		return H2R_MALFORMED;
	if (is_connect) {
		if ((hr->seen & (H2R_SCHEME | H2R_PATH)) ||
		    !(hr->seen & H2R_AUTHORITY))
			return H2R_MALFORMED;
		q->target = hr->authority;
	} else {
		/*
		 * 8.3.1: :scheme and a non-empty :path, always; an http or
		 * https URI has an authority, so :authority or Host.
		 */
		if ((hr->seen & (H2R_SCHEME | H2R_PATH)) !=
		    (H2R_SCHEME | H2R_PATH) || hr->path.len == 0 ||
		    !h2_req_scheme_ok(hr->hb + hr->scheme.off, hr->scheme.len) ||
		    !(hr->seen & (H2R_AUTHORITY | H2R_HOST)))
			return H2R_MALFORMED;
		p = hr->hb + hr->path.off;
		if (p[0] == '*') {
			if (hr->path.len != 1 || q->method != HTTP_M_OPTIONS)
				return H2R_MALFORMED;
		} else if (p[0] != '/')
			return H2R_MALFORMED;
		q->target = hr->path;
		q->path = hr->path;
		q->query.len = 0;
		for (i = 0; i < hr->path.len; i++) {
			/* Bytes the HTTP/1.1 parser refuses in a target. */
			if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
				return H2R_MALFORMED;
			if (p[i] == '#')
				return H2R_MALFORMED;
		}
		for (i = 0; i < hr->path.len; i++)
			if (p[i] == '?') {
				q->path.len = (uint32_t)i;
				q->query.off = hr->path.off + (uint32_t)i + 1;
				q->query.len = hr->path.len - (uint32_t)i - 1;
				break;
			}
		if (p[0] == '*')
			q->path.len = 0;
	}
	/*
	 * 8.3.1: :authority stands for Host; a Host that names something
	 * else makes the request malformed.
	 */
	if (hr->seen & H2R_AUTHORITY) {
		if (q->known[HTTP_H_HOST].off != 0 &&
		    !h2_req_span_eq(hr, q->known[HTTP_H_HOST], hr->authority))
			return H2R_MALFORMED;
		if (hr->authority.len > 0)
			q->known[HTTP_H_HOST] = hr->authority;
	}
	if (h2_req_content_length(hr) != H2R_OK)
		return H2R_MALFORMED;
	/* The access log's request line. */
	if (h2_req_room(hr, (size_t)hr->method.len + q->target.len + 10) == -1) {
		hr->status = 431;
		return H2R_OK;
	}
	hr->line.off = hr->hb_len;
	h2_req_put(hr, hr->hb + hr->method.off, hr->method.len);
	h2_req_put(hr, " ", 1);
	h2_req_put(hr, hr->hb + q->target.off, q->target.len);
	h2_req_put(hr, " HTTP/2.0", 9);
	hr->line.len = hr->hb_len - hr->line.off;
	q->line_len = hr->line.len;
	return H2R_OK;
}
