/*
 * h2.c - HTTP/2 (RFC 9113) on a connection, with nghttp2 doing the
 * framing, HPACK and flow control. porter keeps the event loop and the
 * I/O: bytes read through the transport are fed to
 * nghttp2_session_mem_recv(); frames nghttp2 wants to send are gathered
 * in one output buffer (send_callback) and written through the
 * transport; DATA from a file goes out as nghttp2 "no-copy" frames
 * (send_data_callback), so flow control and SETTINGS_MAX_FRAME_SIZE are
 * still nghttp2's to enforce. On the kernel socket (and under kernel
 * TLS) the 9-byte frame header goes from the buffer and the payload by
 * sendfile. Where the transport must copy anyway (TLS), the payload is
 * read from the file straight into the buffer behind its header, a
 * frame and its header fill one TLS record, and several frames leave
 * in one write.
 *
 * A stream's request is mapped to porter's request record (h2_req.c),
 * queued, and answered at the end of the batch of events like an
 * HTTP/1.1 request (the core's answer queue): http_handle() builds the
 * response, h2_data.c cuts its body into DATA payloads. So HTTP/2 means
 * what HTTP/1.1 means: sites, validators, ranges, gzip, error pages.
 *
 * Over TLS, ALPN "h2" (RFC 9113 3.2) picks HTTP/2, anything else
 * HTTP/1.1. On a plain listener with http2 on, prior knowledge (RFC
 * 9113 3.3): a connection whose first bytes are the client preface
 * speaks HTTP/2, any other HTTP/1.1 (h1.c takes the bytes read so
 * far). No Upgrade: h2c (RFC 9113 deprecates it).
 *
 * Protections: limits nghttp2 enforces (concurrent streams, the
 * stream-reset rate of CVE-2023-44487, CONTINUATION frames per header
 * block, queued SETTINGS/PING acknowledgements) and porter's own (a
 * budget for frames that cost the client nothing, the decoded size of
 * a header block, a stream that makes no progress). Each ends the
 * connection with GOAWAY and its error code, and one log line.
 *
 * Ownership: struct h2_sess is c->h2's; each struct h2_stream is its
 * session's, freed when nghttp2 closes the stream and nothing of it is
 * still queued or on the wire.
 *
 * The pieces, which share h2_int.h: this file, the protocol's entry
 * points, the session and nghttp2's callbacks for what the client sent;
 * h2_out.c, the output side and a stream's response; h2_stream.c, a
 * stream's record; h2_mem.c, what a session holds in memory.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "h2_int.h"
#include "xprt_tls.h"

#define H2_PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN	24
#define H2_READ_BUF	16384
/* Frames that cost the client nothing (PING, SETTINGS, PRIORITY, empty
 * DATA, RST_STREAM) allowed per H2_CHEAP_WINDOW_MS, plus one per request. */
#define H2_CHEAP_MAX	1000
#define H2_CHEAP_WINDOW_MS	10000
/* A header block decoding to more than this many times the limit is a bomb. */
#define H2_HPACK_BOMB	4

static struct log_limit h2_ll_bad = LOG_LIMIT_INIT(LOG_LVL_INFO,
    "HTTP/2 client misbehaving");

static void	 h2_run(struct conn *c);

/* ---- bad clients ------------------------------------------------------------ */

/* End the session: GOAWAY with code, then close once it is out. Logged once. */
static void
h2_terminate(struct h2_sess *s, uint32_t code, const char *why)
{
	char addr[NET_ADDRSTRLEN];

	if (s->terminated)
		return;
	s->terminated = 1;
	(void)nghttp2_session_terminate_session(s->ng, code);
	if (why != NULL && !s->logged) {
		s->logged = 1;
		net_addr_format(&s->c->peer.sa, addr, sizeof(addr), 1);
		log_limited(&h2_ll_bad, ev_now(conn_loop()), 0,
		    "HTTP/2 client %s: %s; GOAWAY %s", addr, why,
		    nghttp2_http2_strerror(code));
	}
}

/* A frame that costs the client nothing and us a little. */
static int
h2_cheap(struct h2_sess *s, const char *what)
{
	uint64_t now = ev_now(conn_loop());

	if (now - s->cheap_since >= H2_CHEAP_WINDOW_MS) {
		s->cheap_since = now;
		s->cheap = 0;
		s->resets = 0;
	}
	if (++s->cheap <= H2_CHEAP_MAX + s->requests)
		return 0;
	h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM, what);
	return -1;
}

/* ---- nghttp2's callbacks: what the client sent ------------------------------------ */

/*
 * The stream of id: the one whose header block is being read (each
 * of its fields comes in a callback of its own), else nghttp2's map.
 */
static struct h2_stream *
h2_stream_get(struct h2_sess *s, int32_t id)
{
	struct h2_stream *st = s->hdr;

	if (st != NULL && st->id == id && !st->closed)
		return st;
	return nghttp2_session_get_stream_user_data(s->ng, id);
}

/* RFC 9113 8.1.1: a malformed request is a stream error. */
static void
h2_stream_malformed(struct h2_sess *s, struct h2_stream *st)
{
	if (st->reset)
		return;
	st->reset = 1;
	(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id,
	    NGHTTP2_PROTOCOL_ERROR);
}

/*
 * RFC 9113 8.1.1: a request's DATA add up to its Content-Length, if it
 * has one: never more, and (at the end of the stream) as much.
 */
static int
h2_body_fits(const struct h2_stream *st, int end)
{
	int64_t cl = st->hr.req.content_length;

	if (cl < 0)
		return 1;
	return end ? st->body == cl : st->body <= cl;
}

static int
h2_begin_headers_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = h2_stream_new(s, frame->hd.stream_id);
	if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
		s->nstreams--;
		sb_h2_streams(-1);
		h2_stream_free(st);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	s->hdr = st;
	s->progress++;
	return 0;
}

static int
h2_header_cb(nghttp2_session *ng, const nghttp2_frame *frame,
    const uint8_t *name, size_t nlen, const uint8_t *value, size_t vlen,
    uint8_t flags, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	st = h2_stream_get(s, frame->hd.stream_id);
	if (st == NULL)
		return 0;
	/* RFC 7541 4.1's size: small on the wire, huge decoded is a bomb. */
	st->decoded += nlen + vlen + 32;
	if (st->decoded > (uint64_t)H2_HPACK_BOMB * h2.max_header_list) {
		h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
		    "header block decodes far past max_header_list_size "
		    "(HPACK bomb)");
		return NGHTTP2_ERR_PAUSE;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
		/* Trailers: checked, then dropped as the body is. */
		if (h2_req_trailer(name, nlen, value, vlen) != H2R_OK)
			st->malformed = 1;
		return 0;
	}
	if (h2_req_field(&st->hr, name, nlen, value, vlen) != H2R_OK)
		st->malformed = 1;
	return 0;
}

/*
 * Expect: 100-continue (RFC 9110 10.1.1): the client waits for a 100
 * before its body. It is read and dropped anyway, so say go at once.
 */
static void
h2_continue(struct h2_sess *s, struct h2_stream *st)
{
	const struct http_span *e = &st->hr.req.known[HTTP_H_EXPECT];
	static const nghttp2_nv nv[] = { { (uint8_t *)":status",
	    (uint8_t *)"100", 7, 3, NGHTTP2_NV_FLAG_NONE } };

	if (e->off == 0 || e->len != 12 ||
	    strncasecmp(st->hr.hb + e->off, "100-continue", 12) != 0)
		return;
	(void)nghttp2_submit_headers(s->ng, NGHTTP2_FLAG_NONE, st->id, NULL,
	    nv, 1, NULL);
}

/* The headers of a request are complete. */
static void
h2_headers_done(struct h2_sess *s, struct h2_stream *st, int end_stream)
{
	if (st->malformed || h2_req_finish(&st->hr) != H2R_OK ||
	    (end_stream && !h2_body_fits(st, 1))) {
		h2_stream_malformed(s, st);
		return;
	}
	if (st->hr.status == 0 &&
	    st->hr.req.content_length > h2.conf->max_body_size) {
		st->err = 413;
		h2_stream_queue(s, st);
		return;
	}
	if (end_stream || st->hr.status != 0) {
		h2_stream_queue(s, st);
		return;
	}
	h2_continue(s, st);
}

static int
h2_frame_recv_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st;
	int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		st = h2_stream_get(s, frame->hd.stream_id);
		if (st == NULL)
			break;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST)
			h2_headers_done(s, st, end);
		else if (!end || st->malformed || !h2_body_fits(st, 1))
			/* 8.1: trailers end the stream, as regular fields. */
			h2_stream_malformed(s, st);
		else
			h2_stream_queue(s, st);
		break;
	case NGHTTP2_DATA:
		st = nghttp2_session_get_stream_user_data(ng,
		    frame->hd.stream_id);
		if (frame->hd.length == 0 && !end &&
		    h2_cheap(s, "empty DATA frame flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		if (st != NULL && end) {
			if (!h2_body_fits(st, 1))
				h2_stream_malformed(s, st);
			else
				h2_stream_queue(s, st);
		}
		break;
	case NGHTTP2_PING:
		if (h2_cheap(s, "PING flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_SETTINGS:
		if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
		    h2_cheap(s, "SETTINGS flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_PRIORITY:
		if (h2_cheap(s, "PRIORITY flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		break;
	case NGHTTP2_RST_STREAM:
		/*
		 * CVE-2023-44487: streams opened and reset at once cost the
		 * client nothing and escape max_concurrent_streams. A browser
		 * cancels a few; more than two windows' worth of streams
		 * beyond the requests answered is an attack.
		 */
		if (h2_cheap(s, "RST_STREAM flood") == -1)
			return NGHTTP2_ERR_PAUSE;
		if (++s->resets > 2 * h2.max_streams + s->requests) {
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "streams opened and reset at once (rapid reset, "
			    "CVE-2023-44487)");
			return NGHTTP2_ERR_PAUSE;
		}
		break;
	}
	return 0;
}

static int
h2_data_chunk_cb(nghttp2_session *ng, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (st == NULL)
		return 0;
	/* Read and dropped, under the body limit. */
	st->body += (int64_t)len;
	s->progress++;
	if (!h2_body_fits(st, 0)) {
		h2_stream_malformed(s, st);
		return 0;
	}
	if (st->body > h2.conf->max_body_size && st->err == 0 &&
	    !st->answered) {
		st->err = 413;
		h2_stream_queue(s, st);
	}
	return 0;
}

static int
h2_frame_send_cb(nghttp2_session *ng, const nghttp2_frame *frame, void *arg)
{
	struct h2_sess *s = arg;

	if ((frame->hd.type == NGHTTP2_HEADERS ||
	    frame->hd.type == NGHTTP2_DATA) &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    !nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id)) {
		/* Answered before the body was all in (413): RFC 9113 8.1. */
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE,
		    frame->hd.stream_id, NGHTTP2_NO_ERROR);
	}
	if (frame->hd.type == NGHTTP2_GOAWAY &&
	    frame->goaway.error_code != NGHTTP2_NO_ERROR && !s->logged) {
		/* nghttp2's own limits (floods, rapid reset) end up here. */
		char addr[NET_ADDRSTRLEN];

		s->logged = 1;
		s->terminated = 1;
		net_addr_format(&s->c->peer.sa, addr, sizeof(addr), 1);
		log_limited(&h2_ll_bad, ev_now(conn_loop()), 0,
		    "HTTP/2 client %s: GOAWAY %s", addr,
		    nghttp2_http2_strerror(frame->goaway.error_code));
	}
	return 0;
}

static int
h2_stream_close_cb(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	struct h2_sess *s = arg;
	struct h2_stream *st = nghttp2_session_get_stream_user_data(ng, id);

	if (st == NULL)
		return 0;
	(void)nghttp2_session_set_stream_user_data(ng, id, NULL);
	s->nstreams--;
	sb_h2_streams(-1);
	s->progress++;
	if (st->answered)
		h2_log(s, st);
	st->closed = 1;
	if (!st->queued && !st->on_wire)
		h2_stream_free(st);
	return 0;
}

/* ---- the session --------------------------------------------------------------- */

void
h2_init(const struct conf *conf)
{
	nghttp2_session_callbacks *cb;

	h2.conf = conf;
	h2.max_streams = (uint32_t)conf->http2.max_concurrent_streams;
	h2.max_header_list = (uint32_t)conf->http2.max_header_list_size;
	if (h2.cbs != NULL)
		return;
	if (nghttp2_session_callbacks_new(&cb) != 0 ||
	    nghttp2_option_new(&h2.opt) != 0)
		fatalx(EXIT_TEMP, "nghttp2: out of memory");
	nghttp2_session_callbacks_set_send_callback(cb, h2_send_cb);
	nghttp2_session_callbacks_set_send_data_callback(cb, h2_send_data_cb);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb,
	    h2_read_length_cb);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    h2_begin_headers_cb);
	nghttp2_session_callbacks_set_on_header_callback(cb, h2_header_cb);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    h2_frame_recv_cb);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    h2_data_chunk_cb);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb,
	    h2_frame_send_cb);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    h2_stream_close_cb);
	h2.cbs = cb;
	h2.page = (size_t)sysconf(_SC_PAGESIZE);
	/* Streams beyond SETTINGS_MAX_CONCURRENT_STREAMS are refused. */
	nghttp2_option_set_max_settings(h2.opt, 32);
	/*
	 * CONTINUATION frames per header block (CVE-2024-28182): nghttp2's
	 * default, said here so that the package depends on a libnghttp2
	 * that has the cap (configure checks for it too).
	 */
	nghttp2_option_set_max_continuations(h2.opt, 8);
	/*
	 * A closed stream is freed at once. nghttp2 would otherwise keep up
	 * to max_concurrent_streams of them (232 bytes each in 1.52: 30 KB
	 * on an idle connection after a burst of 128) only so that a new
	 * stream may name one as its parent in RFC 7540's priority tree,
	 * which RFC 9113 deprecates and nghttp2 1.65 dropped altogether.
	 * Such a stream gets the default priority instead (RFC 9113 5.3.2).
	 */
	nghttp2_option_set_no_closed_streams(h2.opt, 1);
	/*
	 * HPACK's dynamic table for the fields we send: 1 KB holds the
	 * fields that repeat (server, content-type, cache-control, date),
	 * as many as fit in a response's head. nghttp2's default, 4 KB,
	 * fills over a connection's life with dates and last-modified
	 * values (each 200-odd bytes of entry, name and value copies in
	 * memory), 12 KB an idle connection keeps for nothing. The table
	 * we decode (the client's, SETTINGS_HEADER_TABLE_SIZE) stays at
	 * 4 KB: it spares us decoding the same request fields again.
	 */
	nghttp2_option_set_max_deflate_dynamic_table_size(h2.opt, 1024);
	/*
	 * RFC 9113 8.1-8.3's rules for a request are porter's own
	 * (h2_req.c, the Content-Length and trailer checks here), as
	 * HTTP/1.1's are: nghttp2 checking every field again cost a tenth
	 * of a small request's instructions.
	 */
	nghttp2_option_set_no_http_messaging(h2.opt, 1);
}

static int
h2_session_start(struct conn *c)
{
	struct h2_sess *s = xcalloc(1, sizeof(*s));
	nghttp2_settings_entry iv[3] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_streams },
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list },
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	/* nghttp2 keeps a copy; s is the allocator's user data. */
	nghttp2_mem mem = { s, h2_mem_malloc, h2_mem_free, h2_mem_calloc,
	    h2_mem_realloc };
	int rv;

	s->creating = 1;
	rv = nghttp2_session_server_new3(&s->ng, h2.cbs, s, h2.opt, &mem);
	s->creating = 0;
	if (rv != 0) {
		free(s);
		conn_close(c);
		return -1;
	}
	s->c = c;
	s->cheap_since = ev_now(conn_loop());
	c->h2 = s;
	c->state = H2_RUN;
	sb_h2_conn(1);
	(void)nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3);
	return 0;
}

size_t
h2_session_bytes(const struct conn *c)
{
	const struct h2_sess *s;

	if (c->proto != &h2_proto || c->state == H2_SNIFF || c->h2 == NULL)
		return 0;
	s = c->h2;
	return sizeof(*s) + s->mem - s->released + (s->ob != NULL ? s->ob_cap : 0);
}

/* Feed bytes to nghttp2; -1 if the session is over (GOAWAY queued). */
static int
h2_feed(struct h2_sess *s, const uint8_t *p, size_t len)
{
	ssize_t rv;

	if (s->terminated)
		return -1;	/* after GOAWAY: read and dropped */
	rv = nghttp2_session_mem_recv(s->ng, p, len);
	if (rv >= 0)
		return 0;
	switch (rv) {
	case NGHTTP2_ERR_BAD_CLIENT_MAGIC:
		h2_terminate(s, NGHTTP2_PROTOCOL_ERROR, NULL);
		break;
	case NGHTTP2_ERR_FLOODED:
		h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
		    "SETTINGS or PING acknowledgements piling up (flood)");
		break;
	default:
		/* Debian's nghttp2 caps CONTINUATION frames (CVE-2024-27983). */
		if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "CONTINUATION flood");
			break;
		}
		h2_terminate(s, NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror((int)rv));
		break;
	}
	return -1;
}

/* Read what the socket holds and feed it; -1: c closed. */
static int
h2_read(struct h2_sess *s)
{
	struct conn *c = s->c;
	uint8_t buf[H2_READ_BUF];
	ssize_t n;
	int drained;

	while (c->readable) {
		drained = 0;
		n = c->xp->read(&c->xio, buf, sizeof(buf), &drained);
		if (drained)
			c->readable = 0;
		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return -1;
		}
		(void)h2_feed(s, buf, (size_t)n);
	}
	return 0;
}

/* The stream timer: idle_timeout with no stream, send_timeout without progress. */
static void
h2_timer(struct h2_sess *s)
{
	struct conn *c = s->c;

	if (c->closed)
		return;
	if (s->nstreams == 0) {
		if (c->tclass != CONN_T_H2_IDLE)
			conn_timer(c, CONN_T_H2_IDLE);
		h2_mem_idle(s);
		return;
	}
	h2_mem_busy(s);
	if (c->tclass != CONN_T_SEND || s->progress != s->progress_seen) {
		s->progress_seen = s->progress;
		conn_timer(c, CONN_T_SEND);
	}
}

/*
 * Graceful: GOAWAY NO_ERROR with the last stream we took (RFC 9113
 * 6.8); open streams finish, nghttp2 refuses newer ones, and once none
 * is left h2_out() closes.
 */
static void
h2_goaway_drain(struct h2_sess *s)
{
	if (s->terminated || s->draining)
		return;
	s->draining = 1;
	(void)nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
	    nghttp2_session_get_last_proc_stream_id(s->ng), NGHTTP2_NO_ERROR,
	    NULL, 0);
}

static void
h2_run(struct conn *c)
{
	struct h2_sess *s = c->h2;

	if (h2_read(s) == -1)
		return;
	if (conn_draining())
		h2_goaway_drain(s);
	if (h2_out(s) == -1)
		return;
	if (!c->registered && conn_watch(c, 0) == -1)
		return;
	h2_timer(s);
}

/* ---- prior knowledge: HTTP/2 or HTTP/1.1? ------------------------------------- */

/*
 * Read the first bytes: the client preface means HTTP/2; anything else
 * goes to h1.c with the bytes read so far.
 */
static void
h2_sniff(struct conn *c)
{
	ssize_t n;
	int drained = 0;
	size_t cmp;

	if (c->in == NULL)
		conn_buf_attach(c);
	while (c->in_len < H2_PREFACE_LEN && c->readable) {
		n = c->xp->read(&c->xio, c->in + c->in_len,
		    c->in_cap - c->in_len, &drained);
		if (drained)
			c->readable = 0;
		if (n == IO_AGAIN)
			break;
		if (n < 0) {
			conn_close(c);
			return;
		}
		c->in_len += (uint32_t)n;
	}
	cmp = c->in_len < H2_PREFACE_LEN ? c->in_len : H2_PREFACE_LEN;
	if (memcmp(c->in, H2_PREFACE, cmp) != 0) {
		c->proto = &h1_proto;
		c->proto->start(c);
		return;
	}
	if (c->in_len < H2_PREFACE_LEN) {
		(void)conn_watch(c, 0);
		return;
	}
	if (h2_session_start(c) == -1)
		return;
	/* nghttp2 checks the preface again and keeps what it needs. */
	(void)h2_feed(c->h2, (const uint8_t *)c->in, c->in_len);
	conn_buf_release(c);
	h2_run(c);
}

/* ---- the protocol's face to the core ------------------------------------------ */

static void
h2_start(struct conn *c)
{
	const unsigned char *name;
	unsigned len;

	c->state = H2_SNIFF;
	c->h2 = NULL;	/* the union may hold the PROXY stage's pointer */
	conn_timer(c, CONN_T_HEADER);
	if (c->xp != &xprt_tls) {
		h2_sniff(c);	/* the kernel socket (or a test's transport) */
		return;
	}
	/* TLS: ALPN said (RFC 9113 3.2); no ALPN or "http/1.1" is HTTP/1.1. */
	if (xprt_tls_alpn(&c->xio, &name, &len) && len == 2 &&
	    memcmp(name, "h2", 2) == 0) {
		if (h2_session_start(c) == -1)
			return;
		h2_run(c);
		return;
	}
	c->proto = &h1_proto;
	c->proto->start(c);
}

static void
h2_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (c->state == H2_SNIFF) {
		h2_sniff(c);
		return;
	}
	if (c->state == H2_LINGER) {
		conn_discard(c);
		return;
	}
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	h2_run(c);
}

static void
h2_answer(struct conn *c)
{
	struct h2_sess *s = c->h2;
	struct h2_stream *st;

	if (s == NULL || c->state != H2_RUN)
		return;
	fcache_sync();
	while ((st = s->qhead) != NULL) {
		s->qhead = st->qnext;
		if (s->qhead == NULL)
			s->qtail = NULL;
		st->queued = 0;
		if (st->closed) {
			/* Reset before its turn (rapid reset): no work done. */
			if (!st->on_wire)
				h2_stream_free(st);
			continue;
		}
		if (st->reset)
			continue;	/* freed once its RST_STREAM closes it */
		h2_answer_stream(s, st);
	}
	if (h2_out(s) == -1)
		return;
	h2_timer(s);
}

static void
h2_timeout(struct conn *c)
{
	struct h2_sess *s = c->h2;

	if (s != NULL && c->state == H2_RUN) {
		/* No stream: idle. Streams without progress: a stalled client. */
		if (s->nstreams == 0)
			h2_terminate(s, NGHTTP2_NO_ERROR, NULL);
		else
			h2_terminate(s, NGHTTP2_ENHANCE_YOUR_CALM,
			    "no progress within send_timeout");
		c->readable = 0;
		if (h2_out(s) == -1)
			return;
	}
	conn_close(c);
}

static int
h2_idle(const struct conn *c)
{
	const struct h2_sess *s = c->h2;

	if (c->state == H2_SNIFF)
		return c->in == NULL || c->in_len == 0;
	if (c->state == H2_LINGER)
		return 1;
	return s->nstreams == 0 && (s->ob == NULL || s->ob_len == s->ob_off) &&
	    s->tail == NULL;
}

static void
h2_close(struct conn *c)
{
	struct h2_sess *s = c->h2;
	struct h2_stream *st;

	if (s == NULL)
		return;
	c->h2 = NULL;
	/* Each open stream is closed (and logged if answered) by nghttp2. */
	if (s->tail != NULL) {
		s->tail->on_wire = 0;
		s->tail = NULL;
	}
	/* nghttp2_session_del() calls no callback: the streams are ours to free. */
	sb_h2_streams(-(int)s->nstreams);
	sb_h2_conn(-1);
	h2_rel_unlink(s);
	nghttp2_session_del(s->ng);
	while ((st = s->all) != NULL)
		h2_stream_free(st);
	free(s->ob);
	free(s);
}

static void
h2_drain(struct conn *c)
{
	if (c->state != H2_RUN || c->h2 == NULL)
		return;
	h2_goaway_drain(c->h2);
	(void)h2_out(c->h2);
}

const struct proto h2_proto = {
	.name = "h2c",
	.start = h2_start,
	.event = h2_event,
	.answer = h2_answer,
	.timeout = h2_timeout,
	.idle = h2_idle,
	.close = h2_close,
	.drain = h2_drain,
};
