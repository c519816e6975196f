/*
 * h2_stream.c - an HTTP/2 stream's record (h2_int.h): made when its
 * HEADERS begin, logged once answered and closed, and kept as a spare
 * for the next stream once freed. (Its answer queue is h2_int.h's.)
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "h2_int.h"

/* ---- streams -------------------------------------------------------------------- */

/*
 * Freed streams are kept for the next ones, with their request and
 * response buffers: a stream is 3 KiB, past the allocator's per-thread
 * cache, and with its two buffers cost three allocations and three
 * frees per request (some 5% of a small request's time, perf). The
 * spares no stream needed for a whole tick are freed by h2_tick(), so
 * they last only as long as the load that made them. Buffers grown
 * past H2_SPARE_BUF (a listing, a long header block) are not kept.
 */
#define H2_SPARE_MAX	512
#define H2_SPARE_BUF	4096

static struct {
	struct h2_stream *list;		/* through ->next */
	unsigned	 n;
	unsigned	 low;		/* fewest in the list since the last tick */
} h2_spare;

struct h2_stream *
h2_stream_new(struct h2_sess *s, int32_t id)
{
	struct h2_stream *st;
	const size_t hr = offsetof(struct h2_stream, hr);
	const size_t segs = offsetof(struct h2_stream, resp.segs);
	const size_t segs_end = segs + sizeof(st->resp.segs);
	char *buf = NULL;
	size_t buf_cap = 0;

	if ((st = h2_spare.list) != NULL) {
		h2_spare.list = st->next;
		if (--h2_spare.n < h2_spare.low)
			h2_spare.low = h2_spare.n;
		buf = st->resp.buf;
		buf_cap = st->resp.buf_cap;
	} else {
		st = xmalloc(sizeof(*st));
		st->hr.hb = NULL;
		st->hr.hb_cap = 0;
	}
	/*
	 * Zeroed but for the request record (h2_req_init's) and the
	 * response's segment table, filled in order and read up to nsegs:
	 * the two tables are most of the stream's 3 KiB.
	 */
	memset(st, 0, hr);
	memset((char *)st + hr + sizeof(st->hr), 0, segs - hr - sizeof(st->hr));
	memset((char *)st + segs_end, 0, sizeof(*st) - segs_end);
	st->resp.buf = buf;
	st->resp.buf_cap = buf_cap;
	st->s = s;
	st->id = id;
	st->next = s->all;
	if (s->all != NULL)
		s->all->prev = st;
	s->all = st;
	h2_req_init(&st->hr, h2.max_header_list);
	st->resp.fd = -1;
	h2_data_init(&st->d);
	s->nstreams++;
	sb_h2_streams(1);
	return st;
}

void
h2_stream_free(struct h2_stream *st)
{
	struct resp *r = &st->resp;

	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		st->s->all = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	if (st->s->hdr == st)
		st->s->hdr = NULL;
	resp_file_release(r);
	if (r->release != NULL)
		r->release(r->release_arg);
	free(r->heap);
	if (h2_spare.n < H2_SPARE_MAX) {
		if (r->buf_cap > H2_SPARE_BUF) {
			free(r->buf);
			r->buf = NULL;
			r->buf_cap = 0;
		}
		if (st->hr.hb_cap > H2_SPARE_BUF)
			h2_req_free(&st->hr);
		st->next = h2_spare.list;
		h2_spare.list = st;
		h2_spare.n++;
		return;
	}
	free(r->buf);
	h2_req_free(&st->hr);
	free(st);
}

void
h2_tick(void)
{
	struct h2_stream *st;
	unsigned idle = h2_spare.low;

	/* That many spares were not taken since the last tick: let them go. */
	while (idle-- > 0 && (st = h2_spare.list) != NULL) {
		h2_spare.list = st->next;
		h2_spare.n--;
		free(st->resp.buf);
		h2_req_free(&st->hr);
		free(st);
	}
	h2_spare.low = h2_spare.n;
}

/* The access log's line for a stream that was answered. */
void
h2_log(struct h2_sess *s, struct h2_stream *st)
{
	const struct http_req *h = &st->hr.req;
	struct accesslog_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.peer = &s->c->peer.sa;
	rec.time = st->q.now;
	if (st->hr.line.len > 0) {
		rec.line = st->hr.hb + st->hr.line.off;
		rec.line_len = st->hr.line.len;
	}
	rec.status = st->resp.status;
	rec.bytes = st->d.framed;
	if (h->known[HTTP_H_REFERER].off != 0) {
		rec.referer = st->hr.hb + h->known[HTTP_H_REFERER].off;
		rec.referer_len = h->known[HTTP_H_REFERER].len;
	}
	if (h->known[HTTP_H_USER_AGENT].off != 0) {
		rec.agent = st->hr.hb + h->known[HTTP_H_USER_AGENT].off;
		rec.agent_len = h->known[HTTP_H_USER_AGENT].len;
	}
	accesslog_append(&rec);
	conn_count_request(st->resp.status, st->d.framed);
	sb_request_time(ev_now(conn_loop()) - st->start);
	sb_h2_request();
}
