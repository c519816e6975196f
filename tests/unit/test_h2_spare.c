/*
 * test_h2_spare.c - h2_stream.c's spare streams: a freed stream is kept
 * for the next one with its buffers, comes back as clean as a new one,
 * and h2_tick() frees the spares that a whole tick did not need.
 * h2_stream.c is included to reach its file-static state; no nghttp2
 * session is made (h2_stream_new() and h2_stream_free() do not use one).
 */
#include <criterion/criterion.h>

#include "../../src/h2_stream.c"

static struct sb_slot slot;
static struct h2_sess sess;

static void
setup(void)
{
	sb_self = &slot;	/* the worker's own slot, without shared memory */
	h2.max_header_list = 8192;
	memset(&sess, 0, sizeof(sess));
}

TestSuite(h2_spare, .init = setup);

/* Streams 1, 3, ... n of them, all freed again. */
static void
burst(unsigned n)
{
	struct h2_stream *st[64];
	unsigned i;

	cr_assert_leq(n, 64);
	for (i = 0; i < n; i++)
		st[i] = h2_stream_new(&sess, (int32_t)(2 * i + 1));
	for (i = 0; i < n; i++)
		h2_stream_free(st[i]);
	cr_assert_null(sess.all);
}

Test(h2_spare, reused_clean_with_its_buffers)
{
	struct h2_stream *st;
	char *hb, *buf;

	st = h2_stream_new(&sess, 1);
	cr_assert_eq(h2_req_field(&st->hr, (const uint8_t *)":method", 7,
	    (const uint8_t *)"GET", 3), H2R_OK);
	resp_begin(&st->resp, 404);
	st->err = 413;
	st->answered = 1;
	st->body = 12;
	st->d.framed = 99;
	hb = st->hr.hb;
	buf = st->resp.buf;
	h2_stream_free(st);
	cr_assert_eq(h2_spare.n, 1);

	st = h2_stream_new(&sess, 3);
	cr_assert_eq(h2_spare.n, 0);
	cr_assert_eq(st->hr.hb, hb, "the request buffer is kept");
	cr_assert_eq(st->resp.buf, buf, "the response buffer is kept");
	cr_assert_eq(st->id, 3);
	cr_assert_eq(st->s, &sess);
	cr_assert(!st->answered && !st->queued && !st->closed && !st->on_wire);
	cr_assert_eq(st->err, 0);
	cr_assert_eq(st->body, 0);
	cr_assert_eq(st->hr.seen, 0);
	cr_assert_eq(st->hr.req.nheaders, 0);
	cr_assert_eq(st->hr.hb_len, 1);
	cr_assert_eq(st->hr.req.content_length, -1);
	cr_assert_eq(st->resp.status, 0);
	cr_assert_eq(st->resp.buf_len, 0);
	cr_assert_eq(st->resp.nsegs, 0);
	cr_assert_eq(st->resp.fd, -1);
	cr_assert_eq(st->d.seg, 1);
	cr_assert_eq(st->d.framed, 0);
	h2_stream_free(st);
}

Test(h2_spare, big_buffers_are_not_kept)
{
	struct h2_stream *st = h2_stream_new(&sess, 1);

	resp_reserve(&st->resp, 2 * H2_SPARE_BUF);
	h2_stream_free(st);
	st = h2_stream_new(&sess, 3);
	cr_assert_null(st->resp.buf);
	cr_assert_eq(st->resp.buf_cap, 0);
	h2_stream_free(st);
}

Test(h2_spare, a_tick_frees_what_the_last_did_not_use)
{
	burst(40);
	cr_assert_eq(h2_spare.n, 40);
	h2_tick();	/* the first tick only starts counting */
	cr_assert_eq(h2_spare.n, 40);
	burst(10);	/* 30 never left the list */
	h2_tick();
	cr_assert_eq(h2_spare.n, 10);
	burst(10);	/* all were needed */
	h2_tick();
	cr_assert_eq(h2_spare.n, 10);
	h2_tick();	/* an idle second */
	cr_assert_eq(h2_spare.n, 0);
	cr_assert_null(h2_spare.list);
	burst(5);	/* and back when streams come again */
	cr_assert_eq(h2_spare.n, 5);
}

Test(h2_spare, at_most_H2_SPARE_MAX)
{
	unsigned i;

	for (i = 0; i < H2_SPARE_MAX + 10; i++)
		(void)h2_stream_new(&sess, (int32_t)(2 * i + 1));
	while (sess.all != NULL)
		h2_stream_free(sess.all);
	cr_assert_eq(h2_spare.n, H2_SPARE_MAX);
}
