/*
 * h1.c - protocol "http": HTTP/1.1 on a connection. Reads the head,
 * skips a body, answers 100-continue, queues the request, renders the
 * response's head (status line, Server, Date, Connection) around the
 * fields http.c and serve.c built, sends it through the core's segment
 * writer, then keep-alive, pipelining, lingering close or close.
 *
 *   H1_HEAD --head parsed--> H1_BODY --body skipped--> H1_QUEUED
 *      ^                                                  |
 *      |                                               H1_SEND
 *      +---------------- keep-alive ----------------------+
 *                                                         |
 *                              H1_LINGER <-- close after -+
 *
 * We remember whether the socket may still hold unread bytes
 * (c->readable, which the transport's "drained" keeps) so that a
 * keep-alive request costs one read, one write and a share of one
 * epoll_wait.
 *
 * State: the request-state pool is this file's. What a connection needs
 * only while a request is under way (struct creq) is attached with the
 * input buffer when bytes arrive and returned when it goes idle: an
 * idle keep-alive connection is just its struct conn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "rep.h"

#define FREE_KEEP	2048	/* spare request states kept */

enum { H1_HEAD, H1_BODY, H1_QUEUED, H1_SEND, H1_LINGER };

struct creq {
	struct creq	*next_free;
	int64_t		 body_left;	/* Content-Length body still to skip */
	int		 body_chunked;
	struct http_chunked chunk;
	uint64_t	 rate_start;	/* ev_now() when the body began */
	uint64_t	 rate_bytes;	/* body bytes read since then */
	struct http_req	 req;
	struct request	 q;
	struct resp	 resp;
};

static struct {
	const struct conf *conf;
	struct creq	*free_rqs;
	unsigned	 nfree_rqs;	/* capped: a burst is not kept forever */
} h1;

static void	 h1_run(struct conn *c);
static void	 h1_fail(struct conn *c, int status);

void
h1_init(const struct conf *conf)
{
	h1.conf = conf;
}

/* ---- request state ----------------------------------------------------- */

/* A request begins: attach its state (recycled, with its response buffer). */
static void
h1_rq_get(struct conn *c)
{
	struct creq *rq = h1.free_rqs;
	char *buf;
	size_t cap;

	if (rq != NULL) {
		h1.free_rqs = rq->next_free;
		h1.nfree_rqs--;
		buf = rq->resp.buf;
		cap = rq->resp.buf_cap;
	} else {
		rq = xmalloc(sizeof(*rq));
		buf = NULL;
		cap = 0;
	}
	rq->next_free = NULL;
	rq->body_left = 0;
	rq->body_chunked = 0;
	memset(&rq->resp, 0, sizeof(rq->resp));
	rq->resp.buf = buf;
	rq->resp.buf_cap = cap;
	rq->resp.fd = -1;
	http_req_init(&rq->req, (uint32_t)h1.conf->max_header_size);
	rq->q.h = &rq->req;
	rq->q.peer = &c->peer.sa;
	c->rq = rq;
}

static void
h1_resp_release(struct conn *c)
{
	struct resp *r = &c->rq->resp;

	resp_file_release(r);
	if (r->release != NULL) {
		r->release(r->release_arg);
		r->release = NULL;
	}
	free(r->heap);
	r->heap = NULL;
}

/* The connection is idle or gone: its request state goes back to the pool. */
static void
h1_rq_put(struct conn *c)
{
	if (c->rq == NULL)
		return;
	h1_resp_release(c);
	if (h1.nfree_rqs >= FREE_KEEP) {
		free(c->rq->resp.buf);
		free(c->rq);
	} else {
		/* A huge response buffer (a big listing) is not worth keeping. */
		if (c->rq->resp.buf_cap > 16384) {
			free(c->rq->resp.buf);
			c->rq->resp.buf = NULL;
			c->rq->resp.buf_cap = 0;
		}
		c->rq->next_free = h1.free_rqs;
		h1.free_rqs = c->rq;
		h1.nfree_rqs++;
	}
	c->rq = NULL;
}

/* ---- reading ------------------------------------------------------------ */

/*
 * Read once into the input buffer. Returns bytes read, 0 if nothing is
 * there now, -1 if the connection is gone (and closed).
 */
static ssize_t
h1_fill(struct conn *c)
{
	uint32_t limit = (uint32_t)h1.conf->max_header_size + 1;
	size_t space;
	ssize_t n;
	int drained = 0;

	if (c->in == NULL) {
		conn_buf_attach(c);
		if (c->rq == NULL)
			h1_rq_get(c);
	}
	if (c->in_len == c->in_cap) {
		if (c->in_off > 0) {
			/* Move the unfinished request to the front. */
			memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
			c->in_len -= c->in_off;
			c->in_off = 0;
		} else if (c->in_cap < limit) {
			/* A long head: grow just past the limit, so the parser sees it. */
			uint32_t cap = c->in_cap * 2 > limit ? limit : c->in_cap * 2;
			char *nb = xmalloc(cap);
			uint32_t used = c->in_len;

			memcpy(nb, c->in, used);
			conn_buf_release(c);
			c->in = nb;
			c->in_cap = cap;
			c->in_len = used;
		} else {
			/*
			 * Full at max_header_size + 1 bytes: the parser has
			 * already refused such a head, so this is a safety net.
			 * Answer 431 and report progress so the caller sends it.
			 */
			h1_fail(c, 431);
			return 1;
		}
	}
	space = c->in_cap - c->in_len;
	n = c->xp->read(&c->xio, c->in + c->in_len, space, &drained);
	/*
	 * Drained: new bytes will raise an event once the socket is
	 * watched, which h1_read() does only if it has to wait: a request
	 * answered with Connection: close never joins the epoll set.
	 */
	if (drained)
		c->readable = 0;
	if (n > 0) {
		c->in_len += (uint32_t)n;
		return n;
	}
	if (n == IO_AGAIN)
		return 0;
	/* EOF or a reset: nothing more will come. */
	conn_close(c);
	return -1;
}

/*
 * More request bytes: read them if the socket may have some. When it has
 * none, watch it and return 0: this is the one place a connection starts
 * waiting for its client. -1: c was closed.
 */
static ssize_t
h1_read(struct conn *c)
{
	ssize_t n = c->readable ? h1_fill(c) : 0;

	if (n == 0 && conn_watch(c, 0) == -1)
		return -1;
	return n;
}

/* ---- the response head -------------------------------------------------- */

/*
 * The status line, Server and Date go into the room resp_begin() kept
 * in front of the fields; Connection and the empty line into the room
 * behind them. Segment 0 then spans the whole head.
 */
static void
h1_render_head(struct conn *c, struct resp *r)
{
	const char *text = resp_status_text(r->status);
	size_t tlen = strlen(text), len, start, tail;
	char line[RESP_HEAD_ROOM];
	char *p;

	static time_t last;
	static char common[64];
	static size_t common_len;
	time_t now = c->rq->q.now;

	/* "HTTP/1.1 200 OK", status always 3 digits: no printf here. */
	if (tlen > 48)
		tlen = 48;
	memcpy(line, "HTTP/1.1 ", 9);
	line[9] = (char)('0' + r->status / 100);
	line[10] = (char)('0' + r->status / 10 % 10);
	line[11] = (char)('0' + r->status % 10);
	line[12] = ' ';
	memcpy(line + 13, text, tlen);
	memcpy(line + 13 + tlen, "\r\n", 2);
	len = 15 + tlen;
	/* Server and Date change once a second at most: built once for it. */
	if (now != last) {
		char date[COND_DATE_SIZE];
		size_t n = cond_format_date(now, date);

		/* A clock that cannot be an HTTP-date sends no Date (RFC 9110 6.6.1). */
		memcpy(common, "Server: porter\r\n", 16);
		common_len = 16;
		if (n != 0) {
			memcpy(common + 16, "Date: ", 6);
			memcpy(common + 22, date, n);
			memcpy(common + 22 + n, "\r\n", 2);
			common_len = 22 + n + 2;
		}
		last = now;
	}
	memcpy(line + len, common, common_len);
	len += common_len;
	start = RESP_HEAD_ROOM - len;
	memcpy(r->buf + start, line, len);

	if (r->close)
		c->keepalive = 0;
	p = r->buf + r->fields_end;
	if (!c->keepalive) {
		r->close = 1;
		memcpy(p, "Connection: close\r\n\r\n", 21);
		tail = 21;
	} else if (c->rq->req.version == 10) {
		memcpy(p, "Connection: keep-alive\r\n\r\n", 26);
		tail = 26;
	} else {
		memcpy(p, "\r\n", 2);
		tail = 2;
	}
	r->segs[0].u.boff = start;
	r->segs[0].len = r->fields_end + tail - start;
	r->hdr_len = r->segs[0].len;
}

/* Start a response built in c->rq->resp. */
static void
h1_respond(struct conn *c)
{
	struct resp *r = &c->rq->resp;

	h1_render_head(c, r);
	c->state = H1_SEND;
	r->cur = 0;
	r->cur_done = 0;
	r->sent = 0;
	r->send_start = ev_now(conn_loop());
}

/* The request as http.c and the log see it. */
static void
h1_request(struct conn *c)
{
	struct request *q = &c->rq->q;

	q->buf = c->in != NULL ? c->in + c->in_off : NULL;
	q->now = ev_time(conn_loop());
	q->lim_state = c->lim_state;
	q->tls = c->xp != &xprt_plain;	/* HSTS, redirect_https */
}

/* A bad request: answer, then close without reading further. */
static void
h1_fail(struct conn *c, int status)
{
	c->keepalive = 0;
	h1_request(c);
	c->rq->resp.close = 1;
	http_error(&c->rq->q, &c->rq->resp, status);
	h1_respond(c);
}

/* ---- the request -------------------------------------------------------- */

/* Skip body bytes already in the buffer; 1 when the body is through. */
static int
h1_skip_body(struct conn *c)
{
	uint32_t start = c->in_off + c->rq->req.head_len;
	uint32_t avail = c->in_len - start;
	int done = 0;

	/* The head stays in place for the access log; body bytes are dropped. */
	if (c->rq->body_chunked) {
		ssize_t n = http_chunked_skip(&c->rq->chunk, c->in + start, avail, &done);

		if (n < 0) {
			h1_fail(c, 400);
			return -1;
		}
		if ((int64_t)c->rq->chunk.total > h1.conf->max_body_size) {
			h1_fail(c, 413);
			return -1;
		}
		memmove(c->in + start, c->in + start + n, avail - (size_t)n);
		c->in_len -= (uint32_t)n;
		return done;
	}
	if ((int64_t)avail >= c->rq->body_left) {
		memmove(c->in + start, c->in + start + c->rq->body_left,
		    avail - (size_t)c->rq->body_left);
		c->in_len -= (uint32_t)c->rq->body_left;
		c->rq->body_left = 0;
		return 1;
	}
	c->rq->body_left -= avail;
	c->in_len = start;
	return 0;
}

/*
 * Heads read during a batch of events are answered at its end (the
 * core's answer queue), each after fcache_sync(), so the answers see
 * every file change made before their requests were sent.
 */
static void
h1_queue(struct conn *c)
{
	c->state = H1_QUEUED;
	conn_queue(c);
}

static void
h1_answer(struct conn *c)
{
	const struct http_req *q;

	if (c->state != H1_QUEUED)
		return;		/* timed out meanwhile */
	fcache_sync();		/* a flag test, unless files changed */
	q = &c->rq->req;
	if (q->version == 11)
		c->keepalive = !(q->flags & HTTP_F_CONN_CLOSE);
	else
		c->keepalive = (q->flags & HTTP_F_CONN_KEEPALIVE) &&
		    !(q->flags & HTTP_F_CONN_CLOSE);
	/*
	 * Draining (this worker, or the master said so for all: `porter -s
	 * drain`, a shutdown_delay): keep-alive clients move on.
	 */
	if (conn_draining() || sb_draining() ||
	    (h1.conf->keepalive_requests > 0 &&
	    c->nreq >= (uint32_t)h1.conf->keepalive_requests))
		c->keepalive = 0;
	h1_request(c);
	if (c->status)
		status_handle(&c->rq->q, &c->rq->resp);
	else
		http_handle(&c->rq->q, &c->rq->resp);
	h1_respond(c);
	h1_run(c);
}

static void
h1_head_done(struct conn *c)
{
	struct http_req *r = &c->rq->req;

	c->nreq++;
	if (r->content_length > 0 || (r->flags & HTTP_F_CHUNKED)) {
		if (r->content_length > h1.conf->max_body_size) {
			h1_fail(c, 413);
			return;
		}
		c->rq->body_left = r->content_length > 0 ? r->content_length : 0;
		c->rq->body_chunked = (r->flags & HTTP_F_CHUNKED) != 0;
		if (c->rq->body_chunked)
			http_chunked_init(&c->rq->chunk);
		if ((r->flags & HTTP_F_EXPECT_CONTINUE) && r->version == 11) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			struct iovec iov = { (void *)cont, sizeof(cont) - 1 };

			/* Tiny and first on the wire: a short write means the peer is gone. */
			if (c->xp->writev(&c->xio, &iov, 1, 0) !=
			    (ssize_t)sizeof(cont) - 1) {
				conn_close(c);
				return;
			}
		}
		c->state = H1_BODY;
		c->rq->rate_start = ev_now(conn_loop());
		/* Body bytes that came with the head count too. */
		c->rq->rate_bytes = c->in_len - c->in_off - r->head_len;
		conn_timer(c, CONN_T_BODY);
		return;
	}
	h1_queue(c);
}

/* ---- after the response ------------------------------------------------- */

/*
 * The access log's record: the request line and two fields of the head
 * (buf is NULL when no head was read, as for a 408), the status and
 * the body bytes sent.
 */
static void
h1_log(struct conn *c)
{
	const struct request *q = &c->rq->q;
	const struct http_req *h = q->h;
	const struct resp *r = &c->rq->resp;
	struct accesslog_rec rec;

	memset(&rec, 0, sizeof(rec));
	rec.peer = q->peer;
	rec.time = q->now;
	if (q->buf != NULL && h->line_len) {
		rec.line = q->buf;
		rec.line_len = h->line_len;
	}
	rec.status = r->status;
	rec.bytes = r->sent > r->hdr_len ? r->sent - r->hdr_len : 0;
	if (q->buf != NULL && h->head_len) {
		rec.referer = q->buf + h->known[HTTP_H_REFERER].off;
		rec.referer_len = h->known[HTTP_H_REFERER].len;
		rec.agent = q->buf + h->known[HTTP_H_USER_AGENT].off;
		rec.agent_len = h->known[HTTP_H_USER_AGENT].len;
	}
	accesslog_append(&rec);
}

/* The response is out: log it, then keep-alive, linger or close. */
static void
h1_finish_request(struct conn *c)
{
	struct resp *r = &c->rq->resp;
	int clean;

	/* Scrapes are not traffic: neither counted nor, unless asked, logged. */
	if (!c->status) {
		h1_log(c);
		conn_count_request(r->status, r->sent);
		sb_request_time(ev_now(conn_loop()) - r->send_start);
	} else if (status_logged())
		h1_log(c);
	if (c->io.events & EPOLLOUT)
		conn_want_write(c, 0);
	h1_resp_release(c);

	if (r->close || !c->keepalive) {
		/*
		 * Unread bytes (a pipelined request, an unread body) would
		 * make close() send a reset that can destroy the response
		 * in flight: half-close and drain them first.
		 */
		clean = c->in == NULL || c->in_len == c->in_off + c->rq->req.head_len;
		if (clean && !c->readable && r->status < 400) {
			conn_close(c);
			return;
		}
		(void)c->xp->shutdown(&c->xio);
		c->state = H1_LINGER;
		conn_timer(c, CONN_T_LINGER);
		return;
	}

	/* Next request: it may already be in the buffer (pipelining). */
	c->in_off += c->rq->req.head_len;
	c->rq->req.head_len = 0;
	c->rq->body_left = 0;
	c->rq->body_chunked = 0;
	c->state = H1_HEAD;
	http_req_init(&c->rq->req, (uint32_t)h1.conf->max_header_size);
	if (c->in_off == c->in_len) {
		/* Idle connections hold no buffer and no request state. */
		conn_buf_release(c);
		h1_rq_put(c);
		conn_timer(c, CONN_T_IDLE);
	} else
		conn_timer(c, CONN_T_HEADER);
	/*
	 * Draining: not closed here even if idle. The client may already be
	 * sending its next request on this keep-alive connection;
	 * conn_drain_idle() closes it after a grace period, and a request
	 * that arrives meanwhile is answered with Connection: close.
	 */
}

/* ---- the state machine -------------------------------------------------- */

static void
h1_run(struct conn *c)
{
	ssize_t n;
	int rv;

	while (!c->closed) {
		switch (c->state) {
		case H1_HEAD:
			if (c->in != NULL && c->in_len > c->in_off) {
				rv = http_parse(&c->rq->req, c->in + c->in_off,
				    c->in_len - c->in_off);
				if (rv == HTTP_PARSE_DONE) {
					h1_head_done(c);
					continue;
				}
				if (rv == HTTP_PARSE_ERROR) {
					h1_fail(c, c->rq->req.status);
					continue;
				}
			}
			if (c->in != NULL && c->in_len == c->in_off)
				c->in_len = c->in_off = 0;
			if ((n = h1_read(c)) <= 0)
				return;
			/* First bytes of a request: the header clock starts. */
			if (c->tclass == CONN_T_IDLE)
				conn_timer(c, CONN_T_HEADER);
			break;
		case H1_BODY:
			rv = h1_skip_body(c);
			if (rv < 0)
				continue;
			if (rv == 1) {
				h1_queue(c);
				continue;
			}
			if ((n = h1_read(c)) <= 0)
				return;
			c->rq->rate_bytes += (uint64_t)n;
			if (conn_too_slow(c->rq->rate_start, c->rq->rate_bytes,
			    CONN_T_BODY, h1.conf->min_body_rate)) {
				/* 408 (as mod_reqtimeout), then close. */
				h1_fail(c, 408);
				continue;
			}
			conn_timer(c, CONN_T_BODY);
			break;
		case H1_QUEUED:
			return;		/* answered at the end of the batch */
		case H1_SEND:
			if ((rv = conn_send(c, &c->rq->resp,
			    c->rq->resp.close || !c->keepalive)) <= 0)
				return;
			h1_finish_request(c);
			break;
		case H1_LINGER:
			conn_discard(c);
			return;
		}
	}
}

/* ---- the protocol's face to the core ------------------------------------ */

static void
h1_start(struct conn *c)
{
	c->state = H1_HEAD;
	c->keepalive = 1;
	/*
	 * Bytes already read (a PROXY header brought them along, or h2.c
	 * looked for the HTTP/2 preface): a request under way.
	 */
	if (c->in != NULL && c->rq == NULL)
		h1_rq_get(c);
	conn_timer(c, CONN_T_HEADER);
	h1_run(c);
}

static void
h1_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if ((events & EPOLLERR) && c->state != H1_LINGER) {
		conn_close(c);
		return;
	}
	if (c->state == H1_SEND && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return;		/* a pipelined request waits its turn */
	h1_run(c);
}

static void
h1_timeout(struct conn *c)
{
	if (c->tclass == CONN_T_HEADER && c->in != NULL &&
	    c->in_len > c->in_off && c->state == H1_HEAD) {
		/* Part of a request came, then nothing: say so. */
		h1_fail(c, 408);
		conn_timer(c, CONN_T_SEND);
		h1_run(c);
		return;
	}
	conn_close(c);
}

/* Nothing under way: no request started, nothing unread. */
static int
h1_idle(const struct conn *c)
{
	return c->state == H1_HEAD && (c->in == NULL || c->in_len == c->in_off) &&
	    !c->readable && (c->tclass == CONN_T_IDLE ||
	    c->tclass == CONN_T_HEADER);
}

static void
h1_close(struct conn *c)
{
	h1_rq_put(c);
}

const struct proto h1_proto = {
	.name = "http",
	.start = h1_start,
	.event = h1_event,
	.answer = h1_answer,
	.timeout = h1_timeout,
	.idle = h1_idle,
	.close = h1_close,
};
