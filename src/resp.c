/*
 * resp.c - the response builder, protocol-neutral: a status, the
 * header fields as bytes ("Name: value\r\n" lines, no status line, no
 * Date, no Connection), the body as segments (bytes of the response's
 * own buffer, memory someone else keeps alive, or a range of the held
 * file), and the file the body is sent from. The protocol renders the
 * rest: h1.c writes the status line and its own fields into room kept
 * free in front of the fields and behind them, so the whole head still
 * goes out as one segment, built in one pass, with no copy and no
 * printf on the fast path.
 *
 *   buf: [ RESP_HEAD_ROOM | fields ... | RESP_TAIL_ROOM | body bytes ... ]
 *          ^ the protocol's status line ends here  ^ its last fields and CRLF
 *
 * Ownership: a held file (resp_file_hold) is let go by
 * resp_file_release(); r->release(r->release_arg) and r->heap are the
 * connection's to call and free once the response is sent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"

static const struct {
	int		 code;
	const char	*text;
} resp_statuses[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 204, "No Content" },
	{ 206, "Partial Content" },
	{ 301, "Moved Permanently" },
	{ 304, "Not Modified" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 421, "Misdirected Request" },
	{ 429, "Too Many Requests" },	/* RFC 6585 4 */
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" },
};

const char *
resp_status_text(int status)
{
	size_t i;

	for (i = 0; i < sizeof(resp_statuses) / sizeof(resp_statuses[0]); i++)
		if (resp_statuses[i].code == status)
			return resp_statuses[i].text;
	return "Unknown";
}

void
resp_reset(struct resp *r)
{
	r->status = 0;
	r->close = 0;
	r->buf_len = 0;
	r->fields_end = 0;
	r->nsegs = 0;
	r->cur = 0;
	r->cur_done = 0;
	r->hdr_len = 0;
	r->sent = 0;
}

/* Room for more bytes at buf + buf_len (for writers that fill it in place). */
void
resp_reserve(struct resp *r, size_t more)
{
	size_t cap;

	if (r->buf_len + more <= r->buf_cap)
		return;
	cap = r->buf_cap ? r->buf_cap : 512;
	while (cap < r->buf_len + more)
		cap *= 2;
	r->buf = xrealloc(r->buf, cap);
	r->buf_cap = cap;
}

void
resp_append(struct resp *r, const char *p, size_t len)
{
	resp_reserve(r, len);
	memcpy(r->buf + r->buf_len, p, len);
	r->buf_len += len;
}

void
resp_printf(struct resp *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	resp_reserve(r, 256);
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->buf_len, r->buf_cap - r->buf_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= r->buf_cap - r->buf_len) {
		resp_reserve(r, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(r->buf + r->buf_len, r->buf_cap - r->buf_len, fmt, ap);
		va_end(ap);
	}
	r->buf_len += (size_t)n;
}

static struct seg *
resp_seg(struct resp *r, int kind, size_t len)
{
	struct seg *s;

	if (r->nsegs == RESP_MAXSEG)
		abort();	/* a caller bug: segments are counted up front */
	s = &r->segs[r->nsegs++];
	s->kind = kind;
	s->len = len;
	return s;
}

/* A new head: the fields start after the protocol's room. */
void
resp_begin(struct resp *r, int status)
{
	r->status = status;
	r->buf_len = 0;
	r->nsegs = 0;
	resp_reserve(r, RESP_HEAD_ROOM);
	r->buf_len = RESP_HEAD_ROOM;
}

/* The fields are complete: the head becomes segment 0. */
void
resp_head_done(struct resp *r)
{
	if (r->extra != NULL)
		resp_append(r, r->extra, r->extra_len);
	r->fields_end = r->buf_len;
	resp_reserve(r, RESP_TAIL_ROOM);
	r->buf_len += RESP_TAIL_ROOM;
	/* Its bounds are the protocol's to set (h1_render_head). */
	resp_seg(r, SEG_BUF, 0)->u.boff = 0;
}

void
resp_seg_buf(struct resp *r, size_t off, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_BUF, len)->u.boff = off;
}

void
resp_seg_mem(struct resp *r, const char *p, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_MEM, len)->u.mem = p;
}

void
resp_seg_file(struct resp *r, off_t off, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_FILE, len)->u.foff = off;
}

/*
 * The response sends from fd, found by fcache_lookup(): from now on it
 * holds the cache entry fe, or without one the fd itself. A small cached
 * file goes out from memory, in the same write as the headers: the file
 * segments added so far are switched to it here, later ones by calling
 * resp_file_mem() once they are in place.
 */
void
resp_file_hold(struct resp *r, struct fcache_entry *fe, int fd)
{
	r->fd = fd;
	r->fe = fe;
	r->fd_owned = fe == NULL;
	resp_file_mem(r);
}

/* Sends from a cached file whose bytes are in memory: use those. */
void
resp_file_mem(struct resp *r)
{
	int i;

	if (r->fe == NULL || r->fe->data == NULL || r->fd != r->fe->fd)
		return;
	for (i = 0; i < r->nsegs; i++)
		if (r->segs[i].kind == SEG_FILE) {
			r->segs[i].u.mem = r->fe->data + r->segs[i].u.foff;
			r->segs[i].kind = SEG_MEM;
		}
}

/* Let go of the file the response was to send from, if any. */
void
resp_file_release(struct resp *r)
{
	if (r->fd != -1 && r->fd_owned)
		close(r->fd);
	r->fd = -1;
	r->fd_owned = 0;
	if (r->fe != NULL) {
		fcache_unref(r->fe);
		r->fe = NULL;
	}
}

/*
 * More fields for a head already done, as long as nothing was put in
 * buf behind it (its body is a file or memory): the tail room moves.
 */
void
resp_add_fields(struct resp *r, const char *p, size_t len)
{
	if (r->buf_len != r->fields_end + RESP_TAIL_ROOM)
		abort();	/* a caller bug: a body is in buf */
	r->buf_len = r->fields_end;
	resp_append(r, p, len);
	r->fields_end = r->buf_len;
	resp_reserve(r, RESP_TAIL_ROOM);
	r->buf_len += RESP_TAIL_ROOM;
}
