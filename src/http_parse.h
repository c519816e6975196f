/*
 * http_parse.h - resumable HTTP/1.1 request-head parser (RFC 9112).
 *
 * Stand-alone: needs nothing but libc. It does no I/O, no allocation and
 * no logging. The caller keeps the request's bytes in one buffer that
 * starts at the request's first byte and only grows at the end; every
 * call hands the parser the whole buffer so far and the parser resumes
 * where it stopped. Results are offsets into that buffer (struct
 * http_span), so the buffer may be reallocated between calls but its
 * prefix must not change.
 */
#ifndef PORTER_HTTP_PARSE_H
#define PORTER_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum http_method {
	HTTP_M_UNKNOWN = 0,	/* a valid token we do not implement: 501/405 */
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS,
	HTTP_M_TRACE,
	HTTP_M_CONNECT,
	HTTP_M_PATCH,
};

/* Headers the server acts on, found without a scan of headers[]. */
enum http_hdr {
	HTTP_H_HOST,
	HTTP_H_CONNECTION,
	HTTP_H_CONTENT_LENGTH,
	HTTP_H_TRANSFER_ENCODING,
	HTTP_H_IF_NONE_MATCH,
	HTTP_H_IF_MODIFIED_SINCE,
	HTTP_H_IF_MATCH,
	HTTP_H_IF_UNMODIFIED_SINCE,
	HTTP_H_RANGE,
	HTTP_H_IF_RANGE,
	HTTP_H_ACCEPT_ENCODING,
	HTTP_H_REFERER,
	HTTP_H_USER_AGENT,
	HTTP_H_EXPECT,
	HTTP_H__COUNT
};

/*
 * Which HTTP_H_* field name (n bytes, not NUL-terminated) is, ignoring
 * ASCII case (RFC 9110 5.1); -1 for a field porter does not act on.
 * Shared by the HTTP/1.1 parser and the HTTP/2 request mapping.
 */
int	http_field_index(const unsigned char *name, size_t n);

struct http_span {
	uint32_t	off;	/* offset of the first byte in the buffer */
	uint32_t	len;	/* 0: absent (or empty) */
};

struct http_header {
	struct http_span name;
	struct http_span value;	/* leading/trailing OWS trimmed */
};

#define HTTP_MAX_HEADERS	64

enum {
	HTTP_PARSE_ERROR = -1,	/* r->status says which 4xx/5xx */
	HTTP_PARSE_AGAIN = 0,	/* need more bytes */
	HTTP_PARSE_DONE = 1,	/* head complete: r->head_len bytes */
};

/* r->flags */
#define HTTP_F_CONN_CLOSE	0x01	/* Connection: close */
#define HTTP_F_CONN_KEEPALIVE	0x02	/* Connection: keep-alive */
#define HTTP_F_CHUNKED		0x04	/* Transfer-Encoding ends in chunked */
#define HTTP_F_EXPECT_CONTINUE	0x08	/* Expect: 100-continue */
#define HTTP_F_ABSOLUTE_FORM	0x10	/* target was http://host/path */

struct http_req {
	/* limits, set by http_req_init() */
	uint32_t	max_head;	/* request line + headers, bytes */

	/* parser state: private to http_parse.c */
	int		state;
	uint32_t	pos;		/* next byte to look at */
	uint32_t	mark;		/* start of the token being read */
	uint32_t	mark2;

	/* results, valid once http_parse() returned HTTP_PARSE_DONE */
	int		method;		/* enum http_method */
	struct http_span method_s;	/* the method as sent */
	struct http_span target;	/* request-target as sent */
	struct http_span path;		/* origin-form path, before '?' */
	struct http_span query;		/* after '?', without it */
	int		version;	/* 10 or 11 */
	unsigned	flags;		/* HTTP_F_* */
	int64_t		content_length;	/* -1: no Content-Length */
	struct http_span known[HTTP_H__COUNT];	/* first value of each */
	struct http_header headers[HTTP_MAX_HEADERS];
	unsigned	nheaders;
	uint32_t	line_len;	/* request line, without CRLF */
	uint32_t	head_len;	/* whole head, with the empty line */

	/* on HTTP_PARSE_ERROR: 400, 414, 431, 501 or 505 */
	int		status;
	const char	*error;		/* short reason, for the error log */
};

void	 http_req_init(struct http_req *r, uint32_t max_head);
int	 http_parse(struct http_req *r, const char *buf, size_t len);
/* First value of a header by name (case-insensitive); NULL when absent. */
const struct http_span *http_req_header(const struct http_req *r,
	    const char *buf, const char *name);
const char *http_method_name(int method);
/*
 * A Host field value or an HTTP/2 :authority, RFC 9110 7.2: uri-host
 * [ ":" port ], no userinfo; the host may be empty. With connect, a
 * CONNECT request's authority: host and port both required. 1 if valid.
 */
int	 http_host_ok(const char *s, size_t n, int connect);

/*
 * Chunked request bodies (http_chunked.c) are read and thrown away: the
 * server serves files, but it must stay in step with the client that
 * sent a body.
 */
struct http_chunked {
	int		state;
	uint64_t	remaining;	/* of the current chunk */
	uint64_t	total;		/* data bytes so far */
	uint32_t	linelen;	/* bytes in the current size/trailer line */
};

void	 http_chunked_init(struct http_chunked *c);
/*
 * Consume up to len bytes of a chunked body. Returns the bytes consumed
 * (>= 0) and sets *done once the last chunk and trailers are through;
 * returns -1 on malformed framing. c->total grows as data goes by, up
 * to INT64_MAX where it stays, so the caller can enforce a body limit.
 */
ssize_t	 http_chunked_skip(struct http_chunked *c, const char *buf,
	    size_t len, int *done);

#endif
