/*
 * conn.c - one client connection: accept, read the head, skip a body,
 * send the response, then keep-alive, lingering close or close.
 *
 *   CS_HEAD --head parsed--> CS_BODY --body skipped--> CS_SEND
 *      ^                                                  |
 *      +---------------- keep-alive ----------------------+
 *                                                         |
 *                             CS_LINGER <-- close after --+
 *
 * Sockets are registered once, edge-triggered, and only when they first
 * have to wait (conn_watch): a request answered at once with Connection:
 * close costs accept4, read, sendmsg and close, nothing more. We remember
 * whether the socket may still hold unread bytes (c->readable) so that a
 * keep-alive request costs one read, one write and a share of one
 * epoll_wait.
 *
 * Timeouts: each connection sits in exactly one of the worker's lists,
 * one per timeout class. Every class has a fixed timeout, so appending
 * at the tail keeps a list sorted by deadline and a sweep only looks at
 * the heads.
 *
 * Ownership: a connection closed during a batch of events is put on the
 * zombie list and freed after the batch (conn_free_zombies), because a
 * later event in the same batch may still point at it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "porter.h"

#define CONN_EVENTS	(EPOLLIN | EPOLLRDHUP | EPOLLET)
#define LINGER_MS	2000
#define SENDFILE_CHUNK	(1 << 20)	/* let other clients in between */
#define ACCEPT_BATCH	64
#define FREE_KEEP	2048	/* spare buffers and request states kept */

/*
 * Failures that can come once per connection or per loop turn are
 * logged through these, at most a line a second each (log_limited()).
 */
static struct log_limit conn_ll_epoll = LOG_LIMIT_INIT(LOG_LVL_ERR,
    "epoll_ctl on a connection");
static struct log_limit conn_ll_nofd = LOG_LIMIT_INIT(LOG_LVL_CRIT,
    "accept out of resources");
static struct log_limit conn_ll_accept = LOG_LIMIT_INIT(LOG_LVL_ERR,
    "accept");
static struct log_limit conn_ll_shrank = LOG_LIMIT_INIT(LOG_LVL_WARN,
    "file shrank while sending");

static void	 conn_event(struct ev_loop *, struct ev_io *, uint32_t);
static void	 conn_run(struct conn *c);
static void	 conn_fail(struct conn *c, int status);

/* ---- timeout lists ---------------------------------------------------- */

/* c->tclass is -1 while c is in no list. */
static void
conn_list_remove(struct conn *c)
{
	struct conn_list *l;

	if (c->tclass < 0)
		return;
	l = &worker->lists[c->tclass];
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	c->tclass = -1;
}

/* (Re)start the timer of class tclass for c. */
static void
conn_timer(struct conn *c, int tclass)
{
	struct conn_list *l;

	conn_list_remove(c);
	c->tclass = tclass;
	l = &worker->lists[tclass];
	c->deadline = ev_now(worker->loop) + l->timeout_ms;
	c->prev = l->tail;
	c->next = NULL;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

/*
 * A timeout that restarts on progress lets a client trickle a byte per
 * period and keep its slot forever. So, as Apache's mod_reqtimeout
 * MinRate does, once a first timeout period has passed since start the
 * average rate must stay at or above min_rate bytes/s (0: no check).
 * Only called on progress: a client making none meets the timeout.
 */
static int
conn_too_slow(uint64_t start, uint64_t bytes, int tclass, int min_rate)
{
	uint64_t elapsed = ev_now(worker->loop) - start;

	if (min_rate == 0 || elapsed < worker->lists[tclass].timeout_ms)
		return 0;
	/* elapsed > 0 here: timeouts are at least a second */
	return bytes * 1000 / elapsed < (uint64_t)min_rate;
}

/*
 * Join the epoll set, edge-triggered, before waiting on the socket. The
 * add reports readiness that is already there, so nothing that arrived
 * before it is missed. Returns -1 (and closes c) on failure.
 */
static int
conn_watch(struct conn *c, uint32_t extra)
{
	if (c->registered)
		return 0;
	if (ev_add(worker->loop, &c->io, c->fd, CONN_EVENTS | extra, conn_event,
	    c) == -1) {
		log_limited(&conn_ll_epoll, ev_now(worker->loop), errno,
		    "epoll_ctl");
		conn_close(c);
		return -1;
	}
	c->registered = 1;
	return 0;
}

/* ---- buffers ---------------------------------------------------------- */

/*
 * Input buffers of CONN_INBUF bytes are recycled through a free list;
 * bigger ones (long heads) are plain malloc. An idle keep-alive
 * connection holds no buffer at all.
 */
static char *
conn_buf_get(void)
{
	char *b = worker->free_bufs;

	if (b != NULL) {
		memcpy(&worker->free_bufs, b, sizeof(char *));
		worker->nfree_bufs--;
		return b;
	}
	return xmalloc(CONN_INBUF);
}

static void
conn_buf_put(struct conn *c)
{
	if (c->in == NULL)
		return;
	if (c->in_cap == CONN_INBUF && worker->nfree_bufs < FREE_KEEP) {
		memcpy(c->in, &worker->free_bufs, sizeof(char *));
		worker->free_bufs = c->in;
		worker->nfree_bufs++;
	} else
		free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = c->in_off = 0;
}

/* ---- life cycle --------------------------------------------------------- */

/*
 * Accept up to a batch of connections from l. Returns 1 when the batch
 * was full (more may be queued), 0 when the queue is empty, -1 when we
 * cannot take more now (connection limit, out of descriptors, an error).
 */
int
conn_accept(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct conn *c;
	int fd, i, at_limit;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		/*
		 * At the limit, an idle keep-alive connection gives its slot
		 * to a newcomer, as in nginx's ngx_drain_connections(),
		 * rather than the newcomer waiting for a keep-alive timeout.
		 * Only with none idle do we stop accepting (and, with
		 * EPOLLEXCLUSIVE, another worker takes the newcomer).
		 */
		at_limit = worker->nconns >= (size_t)worker->conf->max_connections;
		if (at_limit && !conn_have_idle()) {
			worker_accept_pause();
			return -1;
		}
		len = sizeof(ss);
		fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			switch (errno) {
			case EAGAIN:
				return 0;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:	/* a firewall said no */
				continue;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				log_limited(&conn_ll_nofd, ev_now(worker->loop),
				    errno, "accept on %s", l->text);
				/*
				 * Out of descriptors: an idle keep-alive
				 * connection gives its descriptor to the
				 * newcomer, at once. Each retry has closed
				 * one, so this loop ends. With none idle, the
				 * pending connection stays readable and
				 * accepting again would spin: pause.
				 */
				if (conn_close_oldest_idle() == 0)
					continue;
				worker_accept_pause();
				return -1;
			default:
				/* The listener stays readable: this may
				 * come back every loop turn. */
				log_limited(&conn_ll_accept, ev_now(worker->loop),
				    errno, "accept on %s", l->text);
				return -1;
			}
		}
		/* Accepted first: an idle one is closed only for a newcomer. */
		if (at_limit)
			(void)conn_close_oldest_idle();
		if ((c = worker->free_conns) != NULL) {
			worker->free_conns = c->zombie_next;
			memset(c, 0, sizeof(*c));
		} else
			c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->state = CS_HEAD;
		memcpy(&c->peer, &ss, len < sizeof(c->peer) ? len : sizeof(c->peer));
		c->tclass = -1;
		conn_timer(c, CONN_T_HEADER);
		worker->nconns++;
		sb_conn_opened();
		/*
		 * Clients usually send at once: read before asking epoll. The
		 * socket joins the epoll set only when it has to wait, so a
		 * request answered at once with Connection: close never costs
		 * an epoll_ctl.
		 */
		c->keepalive = 1;
		c->readable = 1;
		c->io.fd = fd;
		conn_run(c);
	}
	return 1;
}

/* A request begins: attach its state (recycled, with its response buffer). */
static void
conn_rq_get(struct conn *c)
{
	struct creq *rq = worker->free_rqs;
	char *buf;
	size_t cap;

	if (rq != NULL) {
		worker->free_rqs = rq->next_free;
		worker->nfree_rqs--;
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
	http_req_init(&rq->req, (uint32_t)worker->conf->max_header_size);
	c->rq = rq;
}

static void
conn_resp_release(struct conn *c);

/* The connection is idle or gone: its request state goes back to the pool. */
static void
conn_rq_put(struct conn *c)
{
	if (c->rq == NULL)
		return;
	conn_resp_release(c);
	if (worker->nfree_rqs >= FREE_KEEP) {
		free(c->rq->resp.buf);
		free(c->rq);
	} else {
		/* A huge response buffer (a big listing) is not worth keeping. */
		if (c->rq->resp.buf_cap > 16384) {
			free(c->rq->resp.buf);
			c->rq->resp.buf = NULL;
			c->rq->resp.buf_cap = 0;
		}
		c->rq->next_free = worker->free_rqs;
		worker->free_rqs = c->rq;
		worker->nfree_rqs++;
	}
	c->rq = NULL;
}

static void
conn_resp_release(struct conn *c)
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

void
conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	conn_list_remove(c);
	conn_rq_put(c);
	/* close() drops the epoll registration: no epoll_ctl needed. */
	close(c->fd);
	conn_buf_put(c);
	c->zombie_next = worker->zombies;
	worker->zombies = c;
	worker->nconns--;
}

void
conn_free_zombies(void)
{
	struct conn *c;

	while ((c = worker->zombies) != NULL) {
		worker->zombies = c->zombie_next;
		c->zombie_next = worker->free_conns;
		worker->free_conns = c;
	}
	if (worker->draining)
		worker_check_drained();
}

/* ---- reading ------------------------------------------------------------ */

/*
 * Read once into the input buffer. Returns bytes read, 0 if nothing is
 * there now, -1 if the connection is gone (and closed).
 */
static ssize_t
conn_fill(struct conn *c)
{
	uint32_t limit = (uint32_t)worker->conf->max_header_size + 1;
	size_t space;
	ssize_t n;

	if (c->in == NULL) {
		c->in = conn_buf_get();
		c->in_cap = CONN_INBUF;
		c->in_len = c->in_off = 0;
		if (c->rq == NULL)
			conn_rq_get(c);
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
			conn_buf_put(c);
			c->in = nb;
			c->in_cap = cap;
			c->in_len = used;
		} else {
			/*
			 * Full at max_header_size + 1 bytes: the parser has
			 * already refused such a head, so this is a safety net.
			 * Answer 431 and report progress so the caller sends it.
			 */
			conn_fail(c, 431);
			return 1;
		}
	}
	space = c->in_cap - c->in_len;
	n = read(c->fd, c->in + c->in_len, space);
	if (n > 0) {
		c->in_len += (uint32_t)n;
		/*
		 * A short read drained the socket; new bytes will raise an
		 * event once it is watched, which conn_read() does only if it
		 * has to wait: a request answered with Connection: close never
		 * joins the epoll set.
		 */
		if ((size_t)n < space)
			c->readable = 0;
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			c->readable = 0;
		return 0;
	}
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
conn_read(struct conn *c)
{
	ssize_t n = c->readable ? conn_fill(c) : 0;

	if (n == 0 && conn_watch(c, 0) == -1)
		return -1;
	return n;
}

/* Start a response already built in c->rq->resp. */
static void
conn_respond(struct conn *c)
{
	c->state = CS_SEND;
	c->rq->resp.cur = 0;
	c->rq->resp.cur_done = 0;
	c->rq->resp.sent = 0;
	c->rq->rate_start = ev_now(worker->loop);
}

/* A bad request: answer, then close without reading further. */
static void
conn_fail(struct conn *c, int status)
{
	c->keepalive = 0;
	http_error(c, status, 1);
	conn_respond(c);
}

/* Skip body bytes already in the buffer; 1 when the body is through. */
static int
conn_skip_body(struct conn *c)
{
	uint32_t start = c->in_off + c->rq->req.head_len;
	uint32_t avail = c->in_len - start;
	int done = 0;

	/* The head stays in place for the access log; body bytes are dropped. */
	if (c->rq->body_chunked) {
		ssize_t n = http_chunked_skip(&c->rq->chunk, c->in + start, avail, &done);

		if (n < 0) {
			conn_fail(c, 400);
			return -1;
		}
		if ((int64_t)c->rq->chunk.total > worker->conf->max_body_size) {
			conn_fail(c, 413);
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
 * Heads read during a batch of events are answered at its end (in
 * worker_hook), each after fcache_sync(), so the answers see every file
 * change made before their requests were sent.
 */
static void
conn_queue(struct conn *c)
{
	c->state = CS_QUEUED;
	c->qnext = NULL;
	if (worker->queue_tail != NULL)
		worker->queue_tail->qnext = c;
	else
		worker->queue_head = c;
	worker->queue_tail = c;
}

void
conn_run_queue(void)
{
	struct conn *c;

	while ((c = worker->queue_head) != NULL) {
		fcache_sync();		/* a flag test, unless files changed */
		worker->queue_head = c->qnext;
		if (worker->queue_head == NULL)
			worker->queue_tail = NULL;
		if (c->closed || c->state != CS_QUEUED)
			continue;	/* closed, or timed out meanwhile */
		http_handle(c);
		conn_respond(c);
		conn_run(c);
	}
}

static void
conn_head_done(struct conn *c)
{
	struct http_req *r = &c->rq->req;

	c->nreq++;
	if (r->content_length > 0 || (r->flags & HTTP_F_CHUNKED)) {
		if (r->content_length > worker->conf->max_body_size) {
			conn_fail(c, 413);
			return;
		}
		c->rq->body_left = r->content_length > 0 ? r->content_length : 0;
		c->rq->body_chunked = (r->flags & HTTP_F_CHUNKED) != 0;
		if (c->rq->body_chunked)
			http_chunked_init(&c->rq->chunk);
		if ((r->flags & HTTP_F_EXPECT_CONTINUE) && r->version == 11) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

			/* Tiny and first on the wire: a short write means the peer is gone. */
			if (send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL) !=
			    (ssize_t)sizeof(cont) - 1) {
				conn_close(c);
				return;
			}
		}
		c->state = CS_BODY;
		c->rq->rate_start = ev_now(worker->loop);
		/* Body bytes that came with the head count too. */
		c->rq->rate_bytes = c->in_len - c->in_off - r->head_len;
		conn_timer(c, CONN_T_BODY);
		return;
	}
	conn_queue(c);
}

/* ---- writing ------------------------------------------------------------ */

static void
conn_want_write(struct conn *c, int on)
{
	if (!c->registered) {
		if (on)
			conn_watch(c, EPOLLOUT);
		return;
	}
	/* ev_mod keeps io.events: no epoll_ctl when nothing changes. */
	if (!(c->io.events & EPOLLOUT) == !on)
		return;
	if (ev_mod(worker->loop, &c->io, CONN_EVENTS | (on ? EPOLLOUT : 0)) == -1)
		log_limited(&conn_ll_epoll, ev_now(worker->loop), errno,
		    "epoll_ctl");
}

/* Returns 1 when the response is out, 0 if the socket is full, -1 if closed. */
static int
conn_send(struct conn *c)
{
	struct resp *r = &c->rq->resp;
	struct iovec iov[RESP_MAXSEG];
	struct msghdr msg;
	struct seg *s;
	ssize_t n;
	int i, niov, flags;

	while (r->cur < r->nsegs) {
		s = &r->segs[r->cur];
		if (s->kind == SEG_FILE) {
			off_t off = s->u.foff + (off_t)r->cur_done;
			size_t count = s->len - r->cur_done;

			if (count > SENDFILE_CHUNK)
				count = SENDFILE_CHUNK;
			n = sendfile(c->fd, r->fd, &off, count);
			if (n == 0) {
				/* The file shrank under us: the framing is lost. */
				log_limited(&conn_ll_shrank,
				    ev_now(worker->loop), 0,
				    "file shrank while sending; closing");
				conn_close(c);
				return -1;
			}
		} else {
			niov = 0;
			for (i = r->cur; i < r->nsegs && r->segs[i].kind != SEG_FILE;
			    i++, niov++) {
				const char *base = r->segs[i].kind == SEG_BUF ?
				    r->buf + r->segs[i].u.boff : r->segs[i].u.mem;
				size_t skip = i == r->cur ? r->cur_done : 0;

				iov[niov].iov_base = (char *)base + skip;
				iov[niov].iov_len = r->segs[i].len - skip;
			}
			flags = MSG_NOSIGNAL;
			/*
			 * MSG_MORE holds the tail back: when file data follows,
			 * so they share packets; when we close right after, so
			 * close() can put the FIN on the same packet as the data.
			 */
			if (i < r->nsegs || r->close || !c->keepalive)
				flags |= MSG_MORE;
			memset(&msg, 0, sizeof(msg));
			msg.msg_iov = iov;
			msg.msg_iovlen = niov;
			n = sendmsg(c->fd, &msg, flags);
		}
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				conn_want_write(c, 1);
				if (c->closed)
					return -1;
				conn_timer(c, CONN_T_SEND);
				return 0;
			}
			if (errno != EPIPE && errno != ECONNRESET)
				log_debug("send: %s", strerror(errno));
			conn_close(c);
			return -1;
		}
		r->sent += (uint64_t)n;
		/* Advance over what went out. */
		while (n > 0 && r->cur < r->nsegs) {
			size_t left = r->segs[r->cur].len - r->cur_done;

			if ((size_t)n >= left) {
				n -= (ssize_t)left;
				r->cur++;
				r->cur_done = 0;
			} else {
				r->cur_done += (size_t)n;
				n = 0;
			}
		}
		if (c->tclass == CONN_T_SEND) {
			/* Progress, but the client may be reading too slowly. */
			if (conn_too_slow(c->rq->rate_start, r->sent, CONN_T_SEND,
			    worker->conf->min_send_rate)) {
				log_info("client reads below min_send_rate "
				    "(%llu bytes in %llu ms); closing",
				    (unsigned long long)r->sent,
				    (unsigned long long)(ev_now(worker->loop) -
				    c->rq->rate_start));
				conn_close(c);
				return -1;
			}
			conn_timer(c, CONN_T_SEND);
		}
	}
	return 1;
}

/* The response is out: log it, then keep-alive, linger or close. */
static void
conn_finish_request(struct conn *c)
{
	struct resp *r = &c->rq->resp;
	int clean;

	accesslog_write(c);
	worker->requests++;
	sb_request_done(r->status, r->sent);
	if (c->io.events & EPOLLOUT)
		conn_want_write(c, 0);
	conn_resp_release(c);

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
		shutdown(c->fd, SHUT_WR);
		c->state = CS_LINGER;
		conn_timer(c, CONN_T_LINGER);
		return;
	}

	/* Next request: it may already be in the buffer (pipelining). */
	c->in_off += c->rq->req.head_len;
	c->rq->req.head_len = 0;
	c->rq->body_left = 0;
	c->rq->body_chunked = 0;
	c->state = CS_HEAD;
	http_req_init(&c->rq->req, (uint32_t)worker->conf->max_header_size);
	if (c->in_off == c->in_len) {
		/* Idle connections hold no buffer and no request state. */
		conn_buf_put(c);
		conn_rq_put(c);
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
conn_linger(struct conn *c)
{
	char drain[4096];
	ssize_t n;

	for (;;) {
		n = read(c->fd, drain, sizeof(drain));
		if (n > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN) {
			/* The timer or the peer's FIN ends it. */
			conn_watch(c, 0);
			return;
		}
		conn_close(c);
		return;
	}
}

static void
conn_run(struct conn *c)
{
	ssize_t n;
	int rv;

	while (!c->closed) {
		switch (c->state) {
		case CS_HEAD:
			if (c->in != NULL && c->in_len > c->in_off) {
				rv = http_parse(&c->rq->req, c->in + c->in_off,
				    c->in_len - c->in_off);
				if (rv == HTTP_PARSE_DONE) {
					conn_head_done(c);
					continue;
				}
				if (rv == HTTP_PARSE_ERROR) {
					conn_fail(c, c->rq->req.status);
					continue;
				}
			}
			if (c->in != NULL && c->in_len == c->in_off)
				c->in_len = c->in_off = 0;
			if ((n = conn_read(c)) <= 0)
				return;
			/* First bytes of a request: the header clock starts. */
			if (c->tclass == CONN_T_IDLE)
				conn_timer(c, CONN_T_HEADER);
			break;
		case CS_BODY:
			rv = conn_skip_body(c);
			if (rv < 0)
				continue;
			if (rv == 1) {
				conn_queue(c);
				continue;
			}
			if ((n = conn_read(c)) <= 0)
				return;
			c->rq->rate_bytes += (uint64_t)n;
			if (conn_too_slow(c->rq->rate_start, c->rq->rate_bytes,
			    CONN_T_BODY, worker->conf->min_body_rate)) {
				/* 408 (as mod_reqtimeout), then close. */
				conn_fail(c, 408);
				continue;
			}
			conn_timer(c, CONN_T_BODY);
			break;
		case CS_QUEUED:
			return;		/* answered at the end of the batch */
		case CS_SEND:
			if ((rv = conn_send(c)) <= 0)
				return;
			conn_finish_request(c);
			break;
		case CS_LINGER:
			conn_linger(c);
			return;
		}
	}
}

static void
conn_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct conn *c = io->arg;

	if (c->closed)
		return;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if ((events & EPOLLERR) && c->state != CS_LINGER) {
		conn_close(c);
		return;
	}
	if (c->state == CS_SEND && !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
		return;		/* a pipelined request waits its turn */
	conn_run(c);
}

/* ---- timeouts and draining --------------------------------------------- */

void
conn_timeouts(uint64_t now)
{
	struct conn *c;
	int t;

	for (t = 0; t < CONN_T__COUNT; t++) {
		while ((c = worker->lists[t].head) != NULL && c->deadline <= now) {
			if (t == CONN_T_HEADER && c->in != NULL &&
			    c->in_len > c->in_off && c->state == CS_HEAD) {
				/* Part of a request came, then nothing: say so. */
				conn_fail(c, 408);
				conn_timer(c, CONN_T_SEND);
				conn_run(c);
				continue;
			}
			conn_close(c);
		}
	}
}

/*
 * Graceful stop: close keep-alive connections that have sat idle for
 * grace_ms. A connection that became idle just now may have a request
 * on the way; it gets the grace period, or is answered with
 * Connection: close if the request arrives.
 */
void
conn_drain_idle(uint64_t now, uint64_t grace_ms)
{
	struct conn *c, *next;
	int t;
	static const int classes[] = { CONN_T_IDLE, CONN_T_HEADER };

	for (t = 0; t < 2; t++) {
		struct conn_list *l = &worker->lists[classes[t]];

		for (c = l->head; c != NULL; c = next) {
			next = c->next;
			if (c->state != CS_HEAD ||
			    (c->in != NULL && c->in_len > c->in_off))
				continue;	/* a request has started: finish it */
			if (c->readable)
				continue;
			/* deadline - timeout = when it went idle */
			if (c->deadline - l->timeout_ms + grace_ms <= now)
				conn_close(c);
		}
	}
}

/*
 * Free a slot for a newcomer: close the keep-alive connection that has
 * been idle longest (the head of its list, which is sorted). One whose
 * socket has turned readable in this batch is skipped: its next request
 * is there, and closing over it would reset the connection. Returns 0
 * when one was closed, -1 when none is idle.
 */
int
conn_close_oldest_idle(void)
{
	struct conn *c;

	for (c = worker->lists[CONN_T_IDLE].head; c != NULL; c = c->next) {
		if (c->readable)
			continue;
		conn_close(c);
		return 0;
	}
	return -1;
}

/* Is there an idle keep-alive connection conn_close_oldest_idle() may close? */
int
conn_have_idle(void)
{
	struct conn *c;

	for (c = worker->lists[CONN_T_IDLE].head; c != NULL; c = c->next)
		if (!c->readable)
			return 1;
	return 0;
}
