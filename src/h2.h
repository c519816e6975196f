/*
 * h2.h - HTTP/2 (RFC 9113) inside porter: the pieces h2.c (the
 * nghttp2 session and its callbacks) shares with h2_req.c (a stream's
 * header fields -> porter's request record) and h2_data.c (a response's
 * segments -> DATA frame payloads). h2_req.c and h2_data.c do no I/O
 * and know nothing of nghttp2, so unit tests drive them directly.
 */
#ifndef PORTER_H2_H
#define PORTER_H2_H

#include "porter.h"

/* ---- h2_req.c: a request from HEADERS ------------------------------------- */

/*
 * The fields of one request as they arrive, in one buffer (hb): each
 * field is copied in as "name: value\n" and the spans of struct
 * http_req point into it, so http.c and serve.c read an HTTP/2 request
 * exactly as they read an HTTP/1.1 one. Byte 0 is never a field's (a
 * span at offset 0 means "absent" to serve.c).
 */
struct h2_req {
	char		*hb;		/* malloc'd, hb_cap bytes */
	uint32_t	 hb_len, hb_cap;
	uint32_t	 max;		/* max_header_size: the fields' bytes */
	struct http_span method, scheme, authority, path, protocol;
	unsigned	 seen;		/* H2R_* pseudo-header bits */
	unsigned	 regular;	/* a regular field came: no more pseudo */
	int		 status;	/* 0, or 431: answer it, do not serve */
	struct http_req	 req;		/* the result (h2_req_finish) */
	struct http_span line;		/* "GET /path HTTP/2.0", for the log */
};

/* h2_req_field() results */
enum {
	H2R_OK = 0,
	H2R_MALFORMED = -1,	/* RFC 9113 8.1.1: stream error PROTOCOL_ERROR */
};

/*
 * Ready hr for a new request of at most max_header_size bytes of
 * fields. hr->hb and hr->hb_cap must be a buffer to reuse, or NULL and
 * 0 (the first time: a zeroed struct).
 */
void	 h2_req_init(struct h2_req *hr, uint32_t max_header_size);
void	 h2_req_free(struct h2_req *hr);
/*
 * One decoded field (name and value as HPACK gave them, any bytes).
 * Checks it as RFC 9113 8.2 and 8.3 ask: lower-case token names, no
 * CR, LF or NUL in values and no whitespace at their ends, pseudo-header
 * fields known, once each and before any regular field, no
 * connection-specific fields, TE only "trailers", one Host of RFC 9110
 * 7.2's syntax. H2R_OK or H2R_MALFORMED; past max bytes the fields are
 * dropped and hr->status becomes 431 (the request is answered, not
 * reset). These are the only checks: nghttp2's HTTP messaging is off.
 */
int	 h2_req_field(struct h2_req *hr, const uint8_t *name, size_t nlen,
	    const uint8_t *value, size_t vlen);
/*
 * One field of the request's trailers: the rules of a regular field
 * (8.2), and no pseudo-header field (8.1). H2R_OK or H2R_MALFORMED; the
 * field itself is dropped, as the body is.
 */
int	 h2_req_trailer(const uint8_t *name, size_t nlen, const uint8_t *value,
	    size_t vlen);
/*
 * The header block is complete: check the pseudo-header fields (8.3.1:
 * :method, and :scheme (RFC 3986's syntax) and :path unless CONNECT;
 * :path "/..." or "*" for OPTIONS; :authority as a Host field, and
 * host:port for CONNECT), :authority or Host present, a Host that
 * names another authority, and fill hr->req:
 * method, target, path, query, the known fields (Host from :authority),
 * content_length. H2R_OK or H2R_MALFORMED.
 */
int	 h2_req_finish(struct h2_req *hr);

/* ---- h2_data.c: DATA payloads from a response ------------------------------ */

/* h2_data_read() flags */
#define H2D_EOF		0x01	/* the body ends with this frame */
#define H2D_NOCOPY	0x02	/* file bytes: d->nc_off, returned length, from r->fd */

/*
 * Where a response's body stands: body segments are r->segs[1 ..
 * r->nsegs) (segment 0 is the head, which HEADERS carries).
 */
struct h2_data {
	int		 seg;		/* next segment to frame */
	size_t		 done;		/* bytes of it framed */
	off_t		 nc_off;	/* H2D_NOCOPY: where in r->fd */
	uint64_t	 framed;	/* body bytes framed so far */
	unsigned	 copied:1;	/* the caller's: file bytes are read in
					 * before their frame header is sent */
};

void	 h2_data_init(struct h2_data *d);
/* Body bytes in r's segments (the Content-Length that goes with them). */
uint64_t h2_data_length(const struct resp *r);
/*
 * The next DATA payload, at most len bytes. Bytes in memory (the
 * response's buffer, a cached small file) are copied into buf, across
 * segments; file bytes are not: the result has H2D_NOCOPY and the
 * sender takes them from r->fd at d->nc_off. A frame is all copied or
 * all file. A file frame carries the end of the stream only when
 * d->copied says its bytes are read before its header is sent; else
 * the end comes in an empty frame of its own, so a file that shrinks
 * after the header went out can still be reset as a stream error.
 * Returns the payload length (0 only with H2D_EOF).
 */
size_t	 h2_data_read(struct h2_data *d, const struct resp *r, uint8_t *buf,
	    size_t len, unsigned *flags);

#endif /* PORTER_H2_H */
