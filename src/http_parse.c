/*
 * http_parse.c - resumable HTTP/1.1 request-head parser (RFC 9112,
 * RFC 9110). Its companion for chunked bodies is http_chunked.c.
 *
 * Both are byte-at-a-time state machines in the style of nginx's
 * ngx_http_parse.c: every byte is looked at once by the main loop, and a
 * finished token (the request-target, a field value) is looked at once
 * more to check its grammar. Which error a malformed request gets thus
 * depends only on its bytes, never on how they were split across reads.
 *
 * The parser is strict where a lenient reading could put porter out of
 * step with a proxy in front of it (framing, Host, bare CR, obs-fold)
 * and follows the RFC's "MAY accept" only for bare LF line endings and
 * leading empty lines.
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "http_chars.h"
#include "http_parse.h"

enum http_parse_state {
	S_START = 0,		/* before the request line; empty lines */
	S_START_LF,		/* CR of an empty line seen */
	S_METHOD,
	S_TARGET0,		/* first byte of the request-target */
	S_TARGET,
	S_VERSION,
	S_LINE_LF,		/* CR after the version seen */
	S_FIELD0,		/* start of a field line, or the empty line */
	S_NAME,
	S_OWS,			/* after the colon, before the value */
	S_VALUE,
	S_FIELD_LF,		/* CR after a field value seen */
	S_END_LF,		/* CR of the final empty line seen */
	S_DONE,
	S_ERROR
};

/* Host syntax, per where the host comes from. */
enum {
	HOST_FIELD,		/* Host: field; may be empty */
	HOST_URI,		/* absolute-form; host may not be empty */
	HOST_AUTHORITY		/* CONNECT; host and port both required */
};

/* r->mark2 records which enum http_hdr fields were seen, one bit each. */
#define SEEN(r, h)	((r)->mark2 & (1U << (h)))

static const char *const http_parse_methods[] = {
	[HTTP_M_UNKNOWN] = "UNKNOWN",
	[HTTP_M_GET] = "GET",
	[HTTP_M_HEAD] = "HEAD",
	[HTTP_M_POST] = "POST",
	[HTTP_M_PUT] = "PUT",
	[HTTP_M_DELETE] = "DELETE",
	[HTTP_M_OPTIONS] = "OPTIONS",
	[HTTP_M_TRACE] = "TRACE",
	[HTTP_M_CONNECT] = "CONNECT",
	[HTTP_M_PATCH] = "PATCH",
};

/* Lower case: names are compared ignoring ASCII case. */
static const char *const http_parse_known[HTTP_H__COUNT] = {
	[HTTP_H_HOST] = "host",
	[HTTP_H_CONNECTION] = "connection",
	[HTTP_H_CONTENT_LENGTH] = "content-length",
	[HTTP_H_TRANSFER_ENCODING] = "transfer-encoding",
	[HTTP_H_IF_NONE_MATCH] = "if-none-match",
	[HTTP_H_IF_MODIFIED_SINCE] = "if-modified-since",
	[HTTP_H_IF_MATCH] = "if-match",
	[HTTP_H_IF_UNMODIFIED_SINCE] = "if-unmodified-since",
	[HTTP_H_RANGE] = "range",
	[HTTP_H_IF_RANGE] = "if-range",
	[HTTP_H_ACCEPT_ENCODING] = "accept-encoding",
	[HTTP_H_REFERER] = "referer",
	[HTTP_H_USER_AGENT] = "user-agent",
	[HTTP_H_EXPECT] = "expect",
};

/* ---- character classes ------------------------------------------------- */

/* RFC 3986: unreserved and sub-delims, what a reg-name is made of. */
static int
http_parse_regname(unsigned char c)
{
	if (http_alpha(c) || http_digit(c))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=", c) != NULL;
}

static unsigned char
http_parse_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Does s[0..n) equal the lower-case literal lit, ignoring ASCII case? */
static int
http_parse_ci_eq(const unsigned char *s, size_t n, const char *lit)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' ||
		    http_parse_lower(s[i]) != (unsigned char)lit[i])
			return 0;
	return lit[n] == '\0';
}

static int
http_parse_fail(struct http_req *r, int status, const char *why)
{
	r->status = status;
	r->error = why;
	r->state = S_ERROR;
	return HTTP_PARSE_ERROR;
}

/* ---- host and request-target syntax ----------------------------------- */

/* RFC 3986 dec-octet "." dec-octet "." dec-octet "." dec-octet */
static int
http_parse_ipv4(const unsigned char *s, size_t n)
{
	size_t	i = 0, start;
	int	octet, val;

	for (octet = 0; octet < 4; octet++) {
		if (octet > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		start = i;
		val = 0;
		while (i < n && http_digit(s[i]) && i - start < 3)
			val = val * 10 + (s[i++] - '0');
		/* no leading zeros: "01" is not a dec-octet */
		if (i == start || val > 255 ||
		    (s[start] == '0' && i - start > 1))
			return -1;
	}
	return i == n ? 0 : -1;
}

/* RFC 3986 IPv6address, the part between the brackets. */
static int
http_parse_ipv6(const unsigned char *s, size_t n)
{
	size_t	i = 0, h;
	int	groups = 0, elided = 0;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		elided = 1;
		i = 2;
	}
	while (i < n) {
		for (h = 0; i + h < n && h < 5 &&
		    http_hexval(s[i + h]) != -1; h++)
			;
		if (i + h < n && s[i + h] == '.') {
			/* a trailing IPv4 address counts as two groups */
			if (http_parse_ipv4(s + i, n - i) == -1)
				return -1;
			groups += 2;
			i = n;
			break;
		}
		if (h == 0 || h > 4)
			return -1;
		groups++;
		i += h;
		if (i == n)
			break;
		if (s[i++] != ':' || i == n)
			return -1;
		if (s[i] == ':') {
			if (elided)
				return -1;
			elided = 1;
			i++;
		}
	}
	if (elided)
		return groups <= 7 ? 0 : -1;
	return groups == 8 ? 0 : -1;
}

/* RFC 3986 IP-literal without its brackets: IPv6address or IPvFuture. */
static int
http_parse_ipliteral(const unsigned char *s, size_t n)
{
	size_t	i;

	if (n == 0 || (s[0] != 'v' && s[0] != 'V'))
		return http_parse_ipv6(s, n);
	for (i = 1; i < n && http_hexval(s[i]) != -1; i++)
		;
	if (i == 1 || i == n || s[i] != '.' || ++i == n)
		return -1;
	for (; i < n; i++)
		if (!http_parse_regname(s[i]) && s[i] != ':')
			return -1;
	return 0;
}

/* uri-host [ ":" port ], RFC 9110 7.2 and 4.2.1. */
static int
http_parse_host(const unsigned char *s, size_t n, int mode)
{
	size_t	i = 0, e;

	if (n > 0 && s[0] == '[') {
		for (e = 1; e < n && s[e] != ']'; e++)
			;
		if (e == n || http_parse_ipliteral(s + 1, e - 1) == -1)
			return -1;
		i = e + 1;
	} else {
		while (i < n && s[i] != ':') {
			if (s[i] == '%') {
				if (i + 2 >= n ||
				    http_hexval(s[i + 1]) == -1 ||
				    http_hexval(s[i + 2]) == -1)
					return -1;
				i += 3;
			} else if (http_parse_regname(s[i]))
				i++;
			else
				return -1;
		}
		/* RFC 9110 4.2.1: an http URI with an empty host is invalid */
		if (i == 0 && mode != HOST_FIELD)
			return -1;
	}
	if (i == n)
		return mode == HOST_AUTHORITY ? -1 : 0;
	if (s[i++] != ':')
		return -1;
	if (i == n && mode == HOST_AUTHORITY)
		return -1;
	for (; i < n; i++)
		if (!http_digit(s[i]))
			return -1;
	return 0;
}

int
http_host_ok(const char *s, size_t n, int connect)
{
	return http_parse_host((const unsigned char *)s, n,
	    connect ? HOST_AUTHORITY : HOST_FIELD) == 0;
}

/*
 * Split path-abempty [ "?" query ] at off into r->path and r->query. The
 * path is what the file code decodes, so a broken %-escape is caught
 * here; the query is ignored by a static server and is left alone.
 */
static int
http_parse_path(struct http_req *r, const unsigned char *buf, uint32_t off,
    uint32_t n)
{
	const unsigned char *s = buf + off;
	uint32_t	 i;

	for (i = 0; i < n && s[i] != '?'; i++) {
		if (s[i] == '%' && (i + 2 >= n ||
		    http_hexval(s[i + 1]) == -1 ||
		    http_hexval(s[i + 2]) == -1))
			return -1;
	}
	r->path.off = off;
	r->path.len = i;
	if (i < n) {
		r->query.off = off + i + 1;
		r->query.len = n - i - 1;
	}
	return 0;
}

/* RFC 9112 3.2: which of the four forms, and is it the right one here? */
static int
http_parse_target(struct http_req *r, const unsigned char *buf)
{
	const unsigned char *t = buf + r->target.off;
	uint32_t	 n = r->target.len, i, a;

	if (r->method == HTTP_M_CONNECT) {
		if (http_parse_host(t, n, HOST_AUTHORITY) == -1)
			return http_parse_fail(r, 400, "bad CONNECT target");
		return 0;
	}
	if (t[0] == '/') {
		if (http_parse_path(r, buf, r->target.off, n) == -1)
			return http_parse_fail(r, 400, "bad %-escape in path");
		return 0;
	}
	if (n == 1 && t[0] == '*') {
		if (r->method != HTTP_M_OPTIONS)
			return http_parse_fail(r, 400,
			    "* target without OPTIONS");
		return 0;
	}

	/* absolute-form; only http and https name resources we serve */
	if (n > 7 && http_parse_ci_eq(t, 7, "http://"))
		i = 7;
	else if (n > 8 && http_parse_ci_eq(t, 8, "https://"))
		i = 8;
	else
		return http_parse_fail(r, 400, "bad request-target");
	for (a = i; a < n && t[a] != '/' && t[a] != '?'; a++)
		;
	/* userinfo fails here too: RFC 9110 4.2.4 says treat it as an error */
	if (http_parse_host(t + i, a - i, HOST_URI) == -1)
		return http_parse_fail(r, 400, "bad authority in target");
	if (http_parse_path(r, buf, r->target.off + a, n - a) == -1)
		return http_parse_fail(r, 400, "bad %-escape in path");
	/* RFC 9112 3.2.2: the target's authority overrides any Host field */
	r->known[HTTP_H_HOST].off = r->target.off + i;
	r->known[HTTP_H_HOST].len = a - i;
	r->flags |= HTTP_F_ABSOLUTE_FORM;
	return 0;
}

static void
http_parse_method(struct http_req *r, const unsigned char *buf)
{
	const unsigned char *m = buf + r->method_s.off;
	size_t		 i, n = r->method_s.len;

	/* methods are case-sensitive: "get" is some other, unknown method */
	r->method = HTTP_M_UNKNOWN;
	for (i = HTTP_M_GET; i <= HTTP_M_PATCH; i++) {
		if (strlen(http_parse_methods[i]) == n &&
		    memcmp(http_parse_methods[i], m, n) == 0) {
			r->method = (int)i;
			break;
		}
	}
}

/* "HTTP/" DIGIT "." DIGIT, already checked byte by byte. */
static int
http_parse_version(struct http_req *r, const unsigned char *buf)
{
	const unsigned char *v = buf + r->mark;

	/*
	 * RFC 9110 2.5: a higher minor version than ours is to be handled
	 * as the highest minor version we implement, so 1.2 is 1.1.
	 */
	if (v[5] == '1')
		r->version = v[7] == '0' ? 10 : 11;
	else
		return http_parse_fail(r, 505, "unsupported HTTP version");
	return 0;
}

/* ---- field values the parser acts on ---------------------------------- */

/*
 * Content-Length = 1*DIGIT; RFC 9110 8.6 lets a recipient accept a list
 * of one repeated value ("42, 42"), and so all fields and list members
 * must agree.
 */
static int
http_parse_clen(struct http_req *r, const unsigned char *v, size_t n)
{
	size_t	 i = 0, s;
	int64_t	 val;
	int	 d;

	for (;;) {
		while (i < n && http_ows(v[i]))
			i++;
		s = i;
		val = 0;
		while (i < n && http_digit(v[i])) {
			d = v[i++] - '0';
			if (val > (INT64_MAX - d) / 10)
				return http_parse_fail(r, 400,
				    "Content-Length too large");
			val = val * 10 + d;
		}
		if (i == s)
			return http_parse_fail(r, 400, "bad Content-Length");
		if (r->content_length != -1 && r->content_length != val)
			return http_parse_fail(r, 400,
			    "conflicting Content-Length");
		r->content_length = val;
		while (i < n && http_ows(v[i]))
			i++;
		if (i == n)
			return 0;
		if (v[i++] != ',')
			return http_parse_fail(r, 400, "bad Content-Length");
	}
}

/* quoted-string at v[*i], RFC 9110 5.6.4; CTLs are already ruled out. */
static int
http_parse_quoted(const unsigned char *v, size_t n, size_t *i)
{
	size_t	j = *i + 1;

	for (; j < n; j++) {
		if (v[j] == '"') {
			*i = j + 1;
			return 0;
		}
		if (v[j] == '\\' && ++j == n)
			break;
	}
	return -1;
}

/*
 * Transfer-Encoding = #( token *( OWS ";" OWS token BWS "=" BWS
 * ( token / quoted-string ) ) ), over all fields in order. chunked must
 * be the final coding and may occur once (RFC 9112 6.1, 7): any coding
 * after a chunked is an error. Codings before it need no decoder here,
 * since the body is only skipped, so "gzip, chunked" is fine.
 */
static int
http_parse_te(struct http_req *r, const unsigned char *v, size_t n)
{
	size_t	i = 0, s;
	int	chunked, params;

	for (;;) {
		/* RFC 9110 5.6.1.2: empty list elements are ignored */
		while (i < n && (v[i] == ',' || http_ows(v[i])))
			i++;
		if (i == n)
			return 0;
		for (s = i; i < n && http_tchar(v[i]); i++)
			;
		if (i == s)
			goto bad;
		chunked = http_parse_ci_eq(v + s, i - s, "chunked");
		params = 0;
		for (;;) {
			while (i < n && http_ows(v[i]))
				i++;
			if (i == n || v[i] == ',')
				break;
			if (v[i++] != ';')
				goto bad;
			while (i < n && http_ows(v[i]))
				i++;
			for (s = i; i < n && http_tchar(v[i]); i++)
				;
			if (i == s)
				goto bad;
			while (i < n && http_ows(v[i]))
				i++;
			if (i == n || v[i++] != '=')
				goto bad;
			while (i < n && http_ows(v[i]))
				i++;
			if (i < n && v[i] == '"') {
				if (http_parse_quoted(v, n, &i) == -1)
					goto bad;
			} else {
				s = i;
				while (i < n && http_tchar(v[i]))
					i++;
				if (i == s)
					goto bad;
			}
			params = 1;
		}
		if (r->flags & HTTP_F_CHUNKED)
			return http_parse_fail(r, 400,
			    "Transfer-Encoding after chunked");
		if (chunked) {
			if (params)
				goto bad;
			r->flags |= HTTP_F_CHUNKED;
		}
	}
 bad:
	return http_parse_fail(r, 400, "bad Transfer-Encoding");
}

/* Connection = #connection-option; only two options matter to us. */
static void
http_parse_connection(struct http_req *r, const unsigned char *v, size_t n)
{
	size_t	i = 0, s, e;

	while (i < n) {
		while (i < n && (v[i] == ',' || http_ows(v[i])))
			i++;
		for (s = i; i < n && v[i] != ','; i++)
			;
		for (e = i; e > s && http_ows(v[e - 1]); e--)
			;
		if (http_parse_ci_eq(v + s, e - s, "close"))
			r->flags |= HTTP_F_CONN_CLOSE;
		else if (http_parse_ci_eq(v + s, e - s, "keep-alive"))
			r->flags |= HTTP_F_CONN_KEEPALIVE;
	}
}

int
http_field_index(const unsigned char *name, size_t n)
{
	int	h;

	for (h = 0; h < HTTP_H__COUNT; h++)
		if (http_parse_ci_eq(name, n, http_parse_known[h]))
			return h;
	return -1;
}

/* A field line is complete: record it and check the ones we act on. */
static int
http_parse_field(struct http_req *r, const unsigned char *buf)
{
	struct http_header *f = &r->headers[r->nheaders++];
	const unsigned char *v = buf + f->value.off;
	size_t		 n = f->value.len;
	int		 h;

	if ((h = http_field_index(buf + f->name.off, f->name.len)) == -1)
		return 0;

	switch (h) {
	case HTTP_H_HOST:
		/* RFC 9112 3.2: both MUST be answered with 400 */
		if (SEEN(r, h))
			return http_parse_fail(r, 400, "more than one Host");
		if (http_parse_host(v, n, HOST_FIELD) == -1)
			return http_parse_fail(r, 400, "bad Host");
		break;
	case HTTP_H_CONTENT_LENGTH:
		if (SEEN(r, HTTP_H_TRANSFER_ENCODING))
			return http_parse_fail(r, 400,
			    "Transfer-Encoding with Content-Length");
		if (http_parse_clen(r, v, n) != 0)
			return HTTP_PARSE_ERROR;
		break;
	case HTTP_H_TRANSFER_ENCODING:
		/* RFC 9112 6.1: faulty framing, a 1.0 peer can't know TE */
		if (r->version == 10)
			return http_parse_fail(r, 400,
			    "Transfer-Encoding in HTTP/1.0");
		if (SEEN(r, HTTP_H_CONTENT_LENGTH))
			return http_parse_fail(r, 400,
			    "Transfer-Encoding with Content-Length");
		if (http_parse_te(r, v, n) != 0)
			return HTTP_PARSE_ERROR;
		break;
	case HTTP_H_CONNECTION:
		http_parse_connection(r, v, n);
		break;
	case HTTP_H_EXPECT:
		/* RFC 9110 10.1.1: ignored in an HTTP/1.0 request */
		if (r->version == 11 && http_parse_ci_eq(v, n, "100-continue"))
			r->flags |= HTTP_F_EXPECT_CONTINUE;
		break;
	}

	if (!SEEN(r, h) &&
	    !(h == HTTP_H_HOST && (r->flags & HTTP_F_ABSOLUTE_FORM)))
		r->known[h] = f->value;
	r->mark2 |= 1U << h;
	return 0;
}

/* The empty line ending the head was seen at r->pos. */
static int
http_parse_end(struct http_req *r)
{
	if (r->version == 11 && !SEEN(r, HTTP_H_HOST))
		return http_parse_fail(r, 400, "no Host");
	if (SEEN(r, HTTP_H_TRANSFER_ENCODING) && !(r->flags & HTTP_F_CHUNKED))
		return http_parse_fail(r, 400,
		    "Transfer-Encoding does not end in chunked");
	r->head_len = ++r->pos;
	r->state = S_DONE;
	return HTTP_PARSE_DONE;
}

/* ---- public ----------------------------------------------------------- */

void
http_req_init(struct http_req *r, uint32_t max_head)
{
	memset(r, 0, sizeof(*r));
	r->max_head = max_head;
	r->state = S_START;
	r->content_length = -1;
}

int
http_parse(struct http_req *r, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	struct http_header *f;
	unsigned char	 c;
	uint32_t	 k;

	if (r->state == S_DONE)
		return HTTP_PARSE_DONE;
	if (r->state == S_ERROR)
		return HTTP_PARSE_ERROR;

	for (; r->pos < len; r->pos++) {
		if (r->pos >= r->max_head) {
			if (r->state <= S_START_LF)
				return http_parse_fail(r, 400,
				    "too many empty lines");
			if (r->state <= S_LINE_LF)
				return http_parse_fail(r, 414,
				    "request line too long");
			return http_parse_fail(r, 431,
			    "request head too large");
		}
		c = p[r->pos];

		switch (r->state) {
		case S_START:
			/* RFC 9112 2.2: empty lines before the request line */
			if (c == '\r')
				r->state = S_START_LF;
			else if (c == '\n')
				;
			else if (http_tchar(c)) {
				r->method_s.off = r->pos;
				r->state = S_METHOD;
			} else
				return http_parse_fail(r, 400,
				    "bad request line");
			break;

		case S_START_LF:
			if (c != '\n')
				return http_parse_fail(r, 400, "bare CR");
			r->state = S_START;
			break;

		case S_METHOD:
			if (http_tchar(c))
				break;
			if (c != ' ')
				return http_parse_fail(r, 400, "bad method");
			r->method_s.len = r->pos - r->method_s.off;
			http_parse_method(r, p);
			r->state = S_TARGET0;
			break;

		case S_TARGET0:
			r->target.off = r->pos;
			r->state = S_TARGET;
			if (c == ' ')
				return http_parse_fail(r, 400,
				    "empty request-target");
			/* FALLTHROUGH */
		case S_TARGET:
			if (c == ' ') {
				r->target.len = r->pos - r->target.off;
				if (http_parse_target(r, p) != 0)
					return HTTP_PARSE_ERROR;
				r->mark = r->pos + 1;
				r->state = S_VERSION;
			} else if (c == '\r' || c == '\n')
				return http_parse_fail(r, 400,
				    "no HTTP version");
			else if (c <= 0x20 || c >= 0x7f)
				return http_parse_fail(r, 400,
				    "bad byte in request-target");
			else if (c == '#')
				/* a fragment is not part of a request-target */
				return http_parse_fail(r, 400,
				    "fragment in request-target");
			break;

		case S_VERSION:
			k = r->pos - r->mark;
			if (k < 8) {
				if (k < 5 ? c != (unsigned char)"HTTP/"[k] :
				    k == 6 ? c != '.' : !http_digit(c))
					return http_parse_fail(r, 400,
					    "bad HTTP version");
				break;
			}
			if (c != '\r' && c != '\n')
				return http_parse_fail(r, 400,
				    "bad HTTP version");
			r->line_len = r->pos - r->method_s.off;
			if (http_parse_version(r, p) != 0)
				return HTTP_PARSE_ERROR;
			r->state = c == '\r' ? S_LINE_LF : S_FIELD0;
			break;

		case S_LINE_LF:
			if (c != '\n')
				return http_parse_fail(r, 400, "bare CR");
			r->state = S_FIELD0;
			break;

		case S_FIELD0:
			if (c == '\r') {
				r->state = S_END_LF;
				break;
			}
			if (c == '\n')
				return http_parse_end(r);
			/* obs-fold (RFC 9112 5.2), or space after line 1 */
			if (http_ows(c))
				return http_parse_fail(r, 400,
				    "line starts with whitespace");
			if (!http_tchar(c))
				return http_parse_fail(r, 400,
				    "bad field name");
			if (r->nheaders == HTTP_MAX_HEADERS)
				return http_parse_fail(r, 431,
				    "too many header fields");
			f = &r->headers[r->nheaders];
			f->name.off = r->pos;
			r->state = S_NAME;
			break;

		case S_NAME:
			if (http_tchar(c))
				break;
			if (c != ':') {
				/* RFC 9112 5.1: MUST be rejected with 400 */
				if (http_ows(c))
					return http_parse_fail(r, 400,
					    "whitespace before colon");
				return http_parse_fail(r, 400,
				    "bad field name");
			}
			f = &r->headers[r->nheaders];
			f->name.len = r->pos - f->name.off;
			f->value.off = r->pos + 1;
			f->value.len = 0;
			r->state = S_OWS;
			break;

		case S_OWS:
		case S_VALUE:
			f = &r->headers[r->nheaders];
			if (http_vchar(c)) {
				/* the value ends at its last non-OWS byte */
				if (r->state == S_OWS) {
					f->value.off = r->pos;
					r->state = S_VALUE;
				}
				f->value.len = r->pos - f->value.off + 1;
			} else if (http_ows(c))
				;
			else if (c == '\r')
				r->state = S_FIELD_LF;
			else if (c == '\n') {
				if (http_parse_field(r, p) != 0)
					return HTTP_PARSE_ERROR;
				r->state = S_FIELD0;
			} else
				return http_parse_fail(r, 400,
				    "bad byte in field value");
			break;

		case S_FIELD_LF:
			if (c != '\n')
				return http_parse_fail(r, 400, "bare CR");
			if (http_parse_field(r, p) != 0)
				return HTTP_PARSE_ERROR;
			r->state = S_FIELD0;
			break;

		case S_END_LF:
			if (c != '\n')
				return http_parse_fail(r, 400, "bare CR");
			return http_parse_end(r);

		default:
			return http_parse_fail(r, 400, "parser state");
		}
	}
	return HTTP_PARSE_AGAIN;
}

const struct http_span *
http_req_header(const struct http_req *r, const char *buf, const char *name)
{
	const unsigned char *b = (const unsigned char *)buf;
	const struct http_header *f;
	size_t		 n = strlen(name), i;
	unsigned	 j;

	for (j = 0; j < r->nheaders; j++) {
		f = &r->headers[j];
		if (f->name.len != n)
			continue;
		for (i = 0; i < n; i++)
			if (http_parse_lower(b[f->name.off + i]) !=
			    http_parse_lower((unsigned char)name[i]))
				break;
		if (i == n)
			return &f->value;
	}
	return NULL;
}

const char *
http_method_name(int method)
{
	if (method < HTTP_M_UNKNOWN || method > HTTP_M_PATCH)
		return "UNKNOWN";
	return http_parse_methods[method];
}
