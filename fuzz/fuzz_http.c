/*
 * fuzz_http.c - libFuzzer target for the request-head parser and the
 * chunked-body reader (src/http_parse.c, src/http_chunked.c).
 *
 * The property is differential: a stream of pipelined requests parsed
 * from one buffer holding every byte must give exactly what the same
 * bytes give when they arrive in small pieces, resumed the way conn.c
 * resumes the parsers: http_parse() is handed the whole request so far
 * on every read, http_chunked_skip() only the body bytes not consumed
 * yet. Both parsers promise that the result depends only on the bytes,
 * never on how they were split; a difference is what lets a client make
 * porter and a proxy in front of it disagree about where a request ends.
 *
 * Input: byte 0 picks the head limit (max_header_size), bytes 1-4 seed
 * the split points, the rest is the stream. Every piece is a fresh heap
 * copy of exactly the bytes received so far, so ASan sees any read past
 * them.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_parse.h"

#define FUZZ_HTTP_MAXREQ	16	/* pipelined requests compared */
#define FUZZ_HTTP_HDR		5	/* config bytes before the stream */

/* Where one request of the stream ended up. */
enum {
	FH_HEAD_AGAIN = 1,	/* the head is incomplete */
	FH_HEAD_ERROR,		/* http_parse() failed */
	FH_BODY_AGAIN,		/* the body is incomplete */
	FH_BODY_ERROR,		/* http_chunked_skip() failed */
	FH_DONE			/* head and body through */
};

struct fuzz_http_rec {
	int			 outcome;	/* FH_* */
	struct http_req		 req;
	struct http_chunked	 chunk;
	uint64_t		 body_end;	/* offset past the body */
};

struct fuzz_http_run {
	struct fuzz_http_rec	 rec[FUZZ_HTTP_MAXREQ];
	size_t			 n;
};

/* A small deterministic generator for the split points. */
static uint32_t
fuzz_http_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
fuzz_http_fail(const char *what, size_t k)
{
	fprintf(stderr, "fuzz_http: request %zu: %s differs\n", k, what);
	abort();
}

/* Results valid after HTTP_PARSE_DONE must lie inside the head. */
static void
fuzz_http_check_span(const struct http_span *s, uint32_t head_len)
{
	if (s->len > 0 && ((uint64_t)s->off + s->len > head_len))
		abort();
}

static void
fuzz_http_check_done(const struct http_req *r)
{
	unsigned	i;

	if (r->head_len == 0 || r->head_len > r->max_head)
		abort();
	if (r->version != 10 && r->version != 11)
		abort();
	if (r->method_s.len == 0 || r->target.len == 0)
		abort();
	/* RFC 9112 6.1, 6.3: one framing, and none an HTTP/1.0 peer lacks */
	if ((r->flags & HTTP_F_CHUNKED) &&
	    (r->content_length != -1 || r->version == 10))
		abort();
	if (r->line_len >= r->head_len || r->nheaders > HTTP_MAX_HEADERS)
		abort();
	fuzz_http_check_span(&r->method_s, r->head_len);
	fuzz_http_check_span(&r->target, r->head_len);
	fuzz_http_check_span(&r->path, r->head_len);
	fuzz_http_check_span(&r->query, r->head_len);
	for (i = 0; i < HTTP_H__COUNT; i++)
		fuzz_http_check_span(&r->known[i], r->head_len);
	for (i = 0; i < r->nheaders; i++) {
		fuzz_http_check_span(&r->headers[i].name, r->head_len);
		fuzz_http_check_span(&r->headers[i].value, r->head_len);
	}
	if (r->content_length < -1)
		abort();
}

static void
fuzz_http_check_error(const struct http_req *r)
{
	switch (r->status) {
	case 400: case 414: case 431: case 501: case 505:
		break;
	default:
		abort();
	}
	if (r->error == NULL)
		abort();
}

/*
 * The whole stream at once: each request's head gets the rest of the
 * buffer, then its body is skipped over what follows.
 */
static void
fuzz_http_whole(const char *buf, size_t len, uint32_t max_head,
    struct fuzz_http_run *run)
{
	struct fuzz_http_rec *rec;
	size_t		 off = 0;
	ssize_t		 n;
	int		 rv, done;

	while (run->n < FUZZ_HTTP_MAXREQ && off < len) {
		rec = &run->rec[run->n++];
		http_req_init(&rec->req, max_head);
		rv = http_parse(&rec->req, buf + off, len - off);
		if (rv == HTTP_PARSE_AGAIN) {
			rec->outcome = FH_HEAD_AGAIN;
			return;
		}
		if (rv == HTTP_PARSE_ERROR) {
			fuzz_http_check_error(&rec->req);
			rec->outcome = FH_HEAD_ERROR;
			return;
		}
		fuzz_http_check_done(&rec->req);
		off += rec->req.head_len;
		if (rec->req.flags & HTTP_F_CHUNKED) {
			http_chunked_init(&rec->chunk);
			n = http_chunked_skip(&rec->chunk, buf + off,
			    len - off, &done);
			if (n < 0) {
				rec->outcome = FH_BODY_ERROR;
				return;
			}
			if ((size_t)n > len - off)
				abort();
			off += (size_t)n;
			if (!done) {
				rec->outcome = FH_BODY_AGAIN;
				return;
			}
		} else if (rec->req.content_length > 0) {
			if ((uint64_t)rec->req.content_length > len - off) {
				rec->outcome = FH_BODY_AGAIN;
				return;
			}
			off += (size_t)rec->req.content_length;
		}
		rec->body_end = off;
		rec->outcome = FH_DONE;
	}
}

/*
 * The same bytes in pieces of 1 to 16 bytes (a few long ones too), as
 * reads deliver them: after each piece the current parser resumes with
 * what it has, and loops while a finished request leaves bytes over
 * (pipelining).
 */
static void
fuzz_http_pieces(const char *data, size_t len, uint32_t max_head,
    uint32_t seed, struct fuzz_http_run *run)
{
	struct fuzz_http_rec *rec = NULL;
	char		*buf = NULL;
	size_t		 have = 0, off = 0, step;
	uint64_t	 body_left = 0;
	ssize_t		 n;
	int		 rv, done, in_body = 0;

	if (seed == 0)
		seed = 1;
	while (have < len) {
		step = fuzz_http_next(&seed) % 64;
		step = step < 60 ? step % 16 + 1 : step * 37;
		if (step > len - have)
			step = len - have;
		have += step;
		/* A fresh copy of exactly what arrived: no slack to read. */
		free(buf);
		if ((buf = malloc(have)) == NULL)
			abort();
		memcpy(buf, data, have);

		for (;;) {
			if (!in_body) {
				if (off == have)
					break;
				if (rec == NULL) {
					if (run->n == FUZZ_HTTP_MAXREQ)
						goto out;
					rec = &run->rec[run->n++];
					http_req_init(&rec->req, max_head);
				}
				rv = http_parse(&rec->req, buf + off,
				    have - off);
				if (rv == HTTP_PARSE_AGAIN) {
					rec->outcome = FH_HEAD_AGAIN;
					break;
				}
				if (rv == HTTP_PARSE_ERROR) {
					rec->outcome = FH_HEAD_ERROR;
					goto out;
				}
				off += rec->req.head_len;
				in_body = 1;
				body_left = rec->req.content_length > 0 ?
				    (uint64_t)rec->req.content_length : 0;
				if (rec->req.flags & HTTP_F_CHUNKED)
					http_chunked_init(&rec->chunk);
			}
			if (rec->req.flags & HTTP_F_CHUNKED) {
				n = http_chunked_skip(&rec->chunk, buf + off,
				    have - off, &done);
				if (n < 0) {
					rec->outcome = FH_BODY_ERROR;
					goto out;
				}
				off += (size_t)n;
				if (!done) {
					rec->outcome = FH_BODY_AGAIN;
					break;
				}
			} else {
				step = have - off;
				if (body_left > step) {
					body_left -= step;
					off = have;
					rec->outcome = FH_BODY_AGAIN;
					break;
				}
				off += (size_t)body_left;
				body_left = 0;
			}
			rec->body_end = off;
			rec->outcome = FH_DONE;
			rec = NULL;
			in_body = 0;
		}
	}
 out:
	free(buf);
}

static void
fuzz_http_compare(const struct fuzz_http_run *a, const struct fuzz_http_run *b)
{
	const struct http_req *x, *y;
	size_t		 k;

	if (a->n != b->n)
		fuzz_http_fail("number of requests", a->n);
	for (k = 0; k < a->n; k++) {
		x = &a->rec[k].req;
		y = &b->rec[k].req;
		if (a->rec[k].outcome != b->rec[k].outcome)
			fuzz_http_fail("outcome", k);
		/* The parser's own state too: the same bytes were seen. */
		if (x->state != y->state || x->pos != y->pos ||
		    x->mark != y->mark || x->mark2 != y->mark2)
			fuzz_http_fail("parser state", k);
		if (x->status != y->status || x->error != y->error)
			fuzz_http_fail("error", k);
		if (x->method != y->method ||
		    memcmp(&x->method_s, &y->method_s, sizeof(x->method_s)))
			fuzz_http_fail("method", k);
		if (memcmp(&x->target, &y->target, sizeof(x->target)) ||
		    memcmp(&x->path, &y->path, sizeof(x->path)) ||
		    memcmp(&x->query, &y->query, sizeof(x->query)))
			fuzz_http_fail("target", k);
		if (x->version != y->version || x->line_len != y->line_len)
			fuzz_http_fail("version", k);
		if (x->flags != y->flags ||
		    x->content_length != y->content_length)
			fuzz_http_fail("framing", k);
		if (x->head_len != y->head_len)
			fuzz_http_fail("head length", k);
		if (memcmp(x->known, y->known, sizeof(x->known)))
			fuzz_http_fail("known headers", k);
		if (x->nheaders != y->nheaders ||
		    memcmp(x->headers, y->headers,
		    x->nheaders * sizeof(x->headers[0])))
			fuzz_http_fail("headers", k);
		if (a->rec[k].chunk.state != b->rec[k].chunk.state ||
		    a->rec[k].chunk.remaining != b->rec[k].chunk.remaining ||
		    a->rec[k].chunk.total != b->rec[k].chunk.total ||
		    a->rec[k].chunk.linelen != b->rec[k].chunk.linelen)
			fuzz_http_fail("chunked reader state", k);
		if (a->rec[k].body_end != b->rec[k].body_end)
			fuzz_http_fail("body end", k);
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small limits reach the 414/431 paths; 8192 is the default. */
	static const uint32_t limits[] = { 16, 64, 256, 1024, 8192, 65536 };
	static struct fuzz_http_run whole, pieces;
	uint32_t	 max_head, seed;
	char		*buf;
	size_t		 len;

	if (size < FUZZ_HTTP_HDR)
		return 0;
	max_head = limits[data[0] % (sizeof(limits) / sizeof(limits[0]))];
	seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	data += FUZZ_HTTP_HDR;
	len = size - FUZZ_HTTP_HDR;

	/* Zeroed so that unused fields compare equal. */
	memset(&whole, 0, sizeof(whole));
	memset(&pieces, 0, sizeof(pieces));
	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(buf, data, len);
	fuzz_http_whole(buf, len, max_head, &whole);
	free(buf);
	fuzz_http_pieces((const char *)data, len, max_head, seed, &pieces);
	fuzz_http_compare(&whole, &pieces);
	return 0;
}
