/*
 * conn.c - the connection core, protocol-neutral: accept (with the
 * EMFILE policy and the connection limit), the listeners on and off,
 * the pool of connections and input buffers, the timeout lists, the
 * answer queue, the segment writer, and the drain. What the bytes mean
 * is the protocol's (h1.c, echo.c: struct proto), how they reach the
 * socket the transport's (xprt.h).
 *
 * Sockets are registered once, edge-triggered, and only when they first
 * have to wait (conn_watch): a request answered at once with Connection:
 * close costs accept4, read, sendmsg and close, nothing more.
 *
 * Timeouts: each connection sits in exactly one list, one per timeout
 * class. Every class has a fixed timeout, so appending at the tail
 * keeps a list sorted by deadline and a sweep only looks at the heads.
 *
 * Ownership: everything here is this file's (the struct conn_core
 * below), as fcache.c keeps its own. A connection closed during a batch
 * of events is put on the zombie list and freed after the batch
 * (conn_free_zombies), because a later event in the same batch may
 * still point at it.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "porter.h"
#include "xprt_tls.h"
#include "climit.h"

#define CONN_EVENTS	(EPOLLIN | EPOLLRDHUP | EPOLLET)
#define SENDFILE_CHUNK	(1 << 20)	/* let other clients in between */
#define ACCEPT_BATCH	64
#define FREE_KEEP	2048	/* spare buffers kept */
#define ACCEPT_PAUSE_MS	500
#define CONN_SLAB	32	/* connections per allocation */

_Static_assert((CLIMIT_S_COUNTED | CLIMIT_S_REFUSE | CLIMIT_S_EXEMPT) < 8,
    "conn.lim_state is a 3-bit field");

/*
 * Connections are allocated CONN_SLAB at a time and never freed (a
 * closed one goes to the free list), so each costs sizeof(struct conn)
 * and not a malloc chunk with its header: 152 bytes, not 160.
 */
struct conn_slab {
	struct conn_slab *next;
	struct conn	 conns[CONN_SLAB];
};

struct conn_list {
	struct conn	*head, *tail;
	uint64_t	 timeout_ms;
	size_t		 n;	/* in the list: the scoreboard's state gauges */
};

static struct {
	struct ev_loop	*loop;
	const struct conf *conf;
	struct listener	*ls;
	size_t		 nls;
	int		 accepting;
	int		 draining;
	long		 accept_timer;
	size_t		 nconns;
	uint64_t	 requests;
	struct conn_list lists[CONN_T__COUNT];
	struct conn	*zombies;	/* closed this turn, freed after it */
	struct conn	*free_conns;	/* reuse, no malloc churn */
	struct conn_slab *slabs;	/* where they all live */
	char		*free_bufs;	/* free input buffers, linked through their first bytes */
	unsigned	 nfree_bufs;	/* capped: a burst is not kept forever */
	struct conn	*queue_head;	/* to answer at the end of the batch */
	struct conn	*queue_tail;
} core;

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
static struct log_limit conn_ll_listen = LOG_LIMIT_INIT(LOG_LVL_ERR,
    "epoll_ctl on a listener");

static void	 conn_event(struct ev_loop *, struct ev_io *, uint32_t);
static void	 conn_handshake(struct conn *);

/* ---- the core's life ---------------------------------------------------- */

void
conn_init(struct ev_loop *loop, const struct conf *conf, struct listener *ls,
    size_t nls)
{
	int t;

	memset(&core, 0, sizeof(core));
	core.loop = loop;
	core.conf = conf;
	core.ls = ls;
	core.nls = nls;
	for (t = 0; t < CONN_T__COUNT; t++)
		core.lists[t].head = core.lists[t].tail = NULL;
	core.lists[CONN_T_HEADER].timeout_ms = (uint64_t)conf->header_timeout * 1000;
	core.lists[CONN_T_BODY].timeout_ms = (uint64_t)conf->body_timeout * 1000;
	core.lists[CONN_T_SEND].timeout_ms = (uint64_t)conf->send_timeout * 1000;
	core.lists[CONN_T_IDLE].timeout_ms = (uint64_t)conf->keepalive_timeout * 1000;
	core.lists[CONN_T_LINGER].timeout_ms = 2000;
	core.lists[CONN_T_ECHO].timeout_ms =
	    (uint64_t)conf->echo_idle_timeout * 1000;
	core.lists[CONN_T_H2_IDLE].timeout_ms =
	    (uint64_t)conf->http2.idle_timeout * 1000;
	core.lists[CONN_T_HANDSHAKE].timeout_ms =
	    (uint64_t)conf->handshake_timeout * 1000;
	core.lists[CONN_T_PROXY].timeout_ms =
	    (uint64_t)conf->proxy_timeout * 1000;
}

struct ev_loop *
conn_loop(void)
{
	return core.loop;
}

const struct conf *
conn_conf(void)
{
	return core.conf;
}

int
conn_draining(void)
{
	return core.draining;
}

size_t
conn_count(void)
{
	return core.nconns;
}

size_t
conn_count_class(int tclass)
{
	return core.lists[tclass].n;
}

void
conn_count_request(int status, uint64_t bytes)
{
	core.requests++;
	sb_request_done(status, bytes);
}

uint64_t
conn_requests(void)
{
	return core.requests;
}

/* ---- timeout lists ---------------------------------------------------- */

/* c->tclass is -1 while c is in no list. */
static void
conn_list_remove(struct conn *c)
{
	struct conn_list *l;

	if (c->tclass < 0)
		return;
	l = &core.lists[c->tclass];
	l->n--;
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

/*
 * A timeout that restarts on progress lets a client trickle a byte per
 * period and keep its slot forever. So, as Apache's mod_reqtimeout
 * MinRate does, once a first timeout period of class tclass has passed
 * since start (ev_now() ms) the average rate must stay at or above
 * min_rate bytes/s (0: no check). Only called on progress: a client
 * making none meets the timeout.
 */
int
conn_too_slow(uint64_t start, uint64_t bytes, int tclass, int min_rate)
{
	uint64_t elapsed = ev_now(core.loop) - start;

	if (min_rate == 0 || elapsed < core.lists[tclass].timeout_ms)
		return 0;
	/* elapsed > 0 here: timeouts are at least a second */
	return bytes * 1000 / elapsed < (uint64_t)min_rate;
}

/*
 * Is a deadline (conn.deadline: ev_now() ms truncated to 32 bits) at or
 * before now? Wrap-safe while the two are within 24 days of each other.
 */
static inline int
conn_due(uint32_t deadline, uint64_t now)
{
	return (int32_t)(deadline - (uint32_t)now) <= 0;
}

/* (Re)start the timer of class tclass for c. */
void
conn_timer(struct conn *c, int tclass)
{
	struct conn_list *l;

	conn_list_remove(c);
	c->tclass = tclass;
	l = &core.lists[tclass];
	c->deadline = (uint32_t)(ev_now(core.loop) + l->timeout_ms);
	l->n++;
	c->prev = l->tail;
	c->next = NULL;
	if (l->tail != NULL)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
}

/*
 * Join the epoll set, edge-triggered, before waiting on the socket. The
 * add reports readiness that is already there, so nothing that arrived
 * before it is missed. Returns -1 (and closes c) on failure.
 */
int
conn_watch(struct conn *c, uint32_t extra)
{
	if (c->registered)
		return 0;
	if (ev_add(core.loop, &c->io, c->xio.fd, CONN_EVENTS | extra,
	    conn_event) == -1) {
		log_limited(&conn_ll_epoll, ev_now(core.loop), errno,
		    "epoll_ctl");
		conn_close(c);
		return -1;
	}
	c->registered = 1;
	return 0;
}

void
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
	if (ev_mod(core.loop, &c->io, CONN_EVENTS | (on ? EPOLLOUT : 0)) == -1)
		log_limited(&conn_ll_epoll, ev_now(core.loop), errno,
		    "epoll_ctl");
}

/* ---- buffers ---------------------------------------------------------- */

/*
 * Input buffers of CONN_INBUF bytes are recycled through a free list;
 * bigger ones (long heads) are plain malloc. An idle keep-alive
 * connection holds no buffer at all.
 */
void
conn_buf_attach(struct conn *c)
{
	char *b = core.free_bufs;

	if (b != NULL) {
		memcpy(&core.free_bufs, b, sizeof(char *));
		core.nfree_bufs--;
	} else
		b = xmalloc(CONN_INBUF);
	c->in = b;
	c->in_cap = CONN_INBUF;
	c->in_len = c->in_off = 0;
}

void
conn_buf_release(struct conn *c)
{
	if (c->in == NULL)
		return;
	if (c->in_cap == CONN_INBUF && core.nfree_bufs < FREE_KEEP) {
		memcpy(c->in, &core.free_bufs, sizeof(char *));
		core.free_bufs = c->in;
		core.nfree_bufs++;
	} else
		free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = c->in_off = 0;
}

/* ---- listeners and accept ------------------------------------------------ */

static void	 conn_accept_pause(void);

/*
 * Accept up to a batch of connections from l. Returns 1 when the batch
 * was full (more may be queued), 0 when the queue is empty, -1 when we
 * cannot take more now (connection limit, out of descriptors, an error).
 */
static int
conn_accept(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, i, at_limit;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		/*
		 * At the limit, an idle keep-alive connection gives its slot
		 * to a newcomer, as in nginx's ngx_drain_connections(),
		 * rather than the newcomer waiting for a keep-alive timeout.
		 * Only with none idle do we stop accepting (and, with
		 * EPOLLEXCLUSIVE, another worker takes the newcomer).
		 */
		at_limit = core.nconns >= (size_t)core.conf->max_connections;
		if (at_limit && !conn_have_idle()) {
			conn_accept_pause();
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
				log_limited(&conn_ll_nofd, ev_now(core.loop),
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
				conn_accept_pause();
				return -1;
			default:
				/* The listener stays readable: this may
				 * come back every loop turn. */
				log_limited(&conn_ll_accept, ev_now(core.loop),
				    errno, "accept on %s", l->text);
				return -1;
			}
		}
		/* Accepted first: an idle one is closed only for a newcomer. */
		if (at_limit)
			(void)conn_close_oldest_idle();
		(void)conn_adopt(fd, (struct sockaddr *)&ss, len, l);
	}
	return 1;
}

/* Put a new slab's connections on the free list, lowest address first. */
static void
conn_slab_grow(void)
{
	struct conn_slab *s;
	int i;

	s = xcalloc(1, sizeof(*s));
	s->next = core.slabs;
	core.slabs = s;
	for (i = CONN_SLAB - 1; i >= 0; i--) {
		s->conns[i].next = core.free_conns;
		core.free_conns = &s->conns[i];
	}
}

struct conn *
conn_adopt(int fd, const struct sockaddr *peer, socklen_t len,
    const struct listener *l)
{
	struct conn *c;

	if (core.free_conns == NULL)
		conn_slab_grow();
	c = core.free_conns;
	core.free_conns = c->next;
	memset(c, 0, sizeof(*c));
	c->xio.fd = fd;
	c->io.fd = fd;
	c->proto = l->proto;
	c->status = l->status ? 1 : 0;
	memcpy(&c->peer, peer, len < sizeof(c->peer) ? len : sizeof(c->peer));
	c->tclass = -1;
	core.nconns++;
	if (!l->status)
		sb_conn_opened();	/* any protocol; scrapes are not traffic */
	c->xp = l->xprt != NULL ? l->xprt : &xprt_plain;
	c->xio.cfg = l->xprt_cfg;
	/* Clients usually send at once: the first read comes before epoll. */
	c->readable = 1;
	/* A PROXY header comes first, on the raw socket (conn_proxy.c). */
	if (l->stage != NULL)
		l->stage(c, l);
	else
		conn_begin(c);
	return c;
}

void
conn_begin(struct conn *c)
{
	conn_list_remove(c);	/* a stage's timer (PROXY) is over */
	/*
	 * Client limits (off: one test), on the client's address: the
	 * PROXY header's when one came. A balancer's own connection
	 * (LOCAL) is never limited. A banned client may be shut out.
	 */
	if (c->balancer)
		c->lim_state |= CLIMIT_S_EXEMPT;
	else if (climit_conn_open(c) == -1) {
		conn_close(c);
		return;
	}
	if (c->xp == &xprt_plain) {
		/* The kernel socket: nothing to negotiate, no call. */
		c->proto->start(c);
		return;
	}
	c->handshake = 1;
	conn_timer(c, CONN_T_HANDSHAKE);
	conn_handshake(c);
}

/*
 * The transport's start (a TLS handshake) as a state of the connection:
 * tried at once, since the ClientHello has usually arrived with the
 * connection, then again on each event, under its own timeout class.
 * Failures are the client's business (scanners, probes, old clients):
 * logged at debug level only.
 */
static void
conn_handshake(struct conn *c)
{
	static int told;
	int rv = c->xp->start(&c->xio);

	if (rv == IO_AGAIN) {
		if (c->xio.want & XPRT_WANT_WRITE)
			conn_want_write(c, 1);
		else
			conn_watch(c, 0);
		return;
	}
	if (rv == IO_CLOSED) {
		/* Answered in clear text: read the rest, then close. */
		log_debug("TLS handshake from a client speaking plain HTTP: "
		    "answered 400");
		c->handshake = 0;
		c->refused = 1;
		conn_timer(c, CONN_T_LINGER);
		conn_discard(c);
		return;
	}
	if (rv != IO_DONE) {
		log_debug("TLS handshake failed: %s", xprt_tls_error());
		conn_close(c);
		return;
	}
	c->handshake = 0;
	if (!told && c->xp == &xprt_tls) {
		told = 1;
		if (xprt_tls_ktls_send(&c->xio))
			log_info("TLS: kernel TLS sends: file bodies go by "
			    "SSL_sendfile");
		else
			log_info("TLS: no kernel TLS for sending (%s): file "
			    "bodies go by pread and SSL_write",
			    core.conf->tls.ktls ? "the kernel has none" :
			    "ktls = \"off\"");
	}
	if (c->registered && (c->io.events & EPOLLOUT))
		conn_want_write(c, 0);
	/* The request often came right behind the handshake. */
	c->readable = 1;
	c->proto->start(c);
}

/*
 * Read and drop what the client sends until its end of file or an error
 * (then close), or until the socket is empty (then wait for it): a
 * lingering close (RFC 9112 9.6), a refused client, a protocol's last
 * words. The caller's timer bounds it.
 */
void
conn_discard(struct conn *c)
{
	char drain[4096];
	ssize_t n;
	int drained;

	for (;;) {
		n = c->xp->read(&c->xio, drain, sizeof(drain), &drained);
		if (n > 0)
			continue;
		if (n == IO_AGAIN) {
			conn_watch(c, 0);
			return;
		}
		conn_close(c);
		return;
	}
}

static void
conn_listen_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	/* Stopped earlier in this batch: the listener is closed. */
	if (core.draining)
		return;
	(void)conn_accept(ev_io_owner(io, struct listener, io));
}

void
conn_accepting(int on)
{
	size_t i;

	if (core.accepting == on)
		return;
	for (i = 0; i < core.nls; i++) {
		struct listener *l = &core.ls[i];

		if (on) {
			/* EPOLLEXCLUSIVE: one worker wakes per new connection. */
			/* Retried after every accept pause: at most a line a second. */
			if (ev_add(core.loop, &l->io, l->fd,
			    EPOLLIN | EPOLLEXCLUSIVE, conn_listen_cb) == -1)
				log_limited(&conn_ll_listen, ev_now(core.loop),
				    errno, "epoll_ctl %s", l->text);
		} else
			ev_del(core.loop, &l->io);
	}
	core.accepting = on;
}

static void
conn_accept_resume(struct ev_loop *loop, void *arg)
{
	core.accept_timer = 0;
	if (core.draining)
		return;
	/* At the limit, idle keep-alive connections can make room. */
	if (core.nconns < (size_t)core.conf->max_connections ||
	    conn_have_idle())
		conn_accepting(1);
	else
		conn_accept_pause();
}

/* Out of descriptors or at max_connections: stop accepting for a while. */
static void
conn_accept_pause(void)
{
	conn_accepting(0);
	if (core.accept_timer == 0)
		core.accept_timer = ev_timer_add(core.loop, ACCEPT_PAUSE_MS,
		    conn_accept_resume, NULL);
}

/*
 * The worker drains: no more accepting. With EPOLLEXCLUSIVE the kernel
 * may have handed the queued connections to us alone, and when we are
 * the last holder of a removed address, our close() would reset them:
 * take them first, unless they are not ours to take (a worker of a
 * failed reload never accepted).
 */
void
conn_stop(int take_queued)
{
	size_t i;

	if (core.draining)
		return;
	core.draining = 1;
	conn_accepting(0);
	for (i = 0; i < core.nls; i++) {
		if (take_queued)
			while (conn_accept(&core.ls[i]) == 1)
				;
		close(core.ls[i].fd);
	}
	core.nls = 0;
	/* Protocols that can say "no more" on an open connection do (GOAWAY). */
	for (i = 0; i < CONN_T__COUNT; i++) {
		struct conn *c, *next;

		for (c = core.lists[i].head; c != NULL; c = next) {
			next = c->next;
			if (c->proto->drain != NULL)
				c->proto->drain(c);
		}
	}
}

/* ---- closing ------------------------------------------------------------ */

void
conn_close(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = 1;
	conn_list_remove(c);
	if (c->lim_state)
		climit_conn_close(c);
	/* A protocol that never started has nothing to free. */
	if (!c->handshake && !c->refused)
		c->proto->close(c);
	c->xp->close(&c->xio);
	conn_buf_release(c);
	/* In no timeout list now (conn_list_remove): next is free. */
	c->next = core.zombies;
	core.zombies = c;
	core.nconns--;
}

void
conn_free_zombies(void)
{
	struct conn *c;

	while ((c = core.zombies) != NULL) {
		core.zombies = c->next;
		c->next = core.free_conns;
		core.free_conns = c;
	}
}

/* ---- the answer queue ---------------------------------------------------- */

/*
 * Requests read during a batch of events are answered at its end (in
 * the worker's hook), in order, so that the protocol can first catch
 * up with the world (h1.c: file changes made before the requests).
 */
void
conn_queue(struct conn *c)
{
	c->queued = 1;
	c->qnext = NULL;
	if (core.queue_tail != NULL)
		core.queue_tail->qnext = c;
	else
		core.queue_head = c;
	core.queue_tail = c;
}

void
conn_run_queue(void)
{
	struct conn *c;

	while ((c = core.queue_head) != NULL) {
		core.queue_head = c->qnext;
		if (core.queue_head == NULL)
			core.queue_tail = NULL;
		c->queued = 0;
		if (c->closed)
			continue;
		c->proto->answer(c);
	}
}

/* ---- the segment writer ------------------------------------------------- */

/*
 * A transport that cannot send from a file (TLS without kTLS): read a
 * piece and write it. Only what was written counts: the rest is read
 * again next time, so nothing is kept between calls.
 */
static ssize_t
conn_send_copy(struct conn *c, int fd, off_t off, size_t count, int flags)
{
	char buf[16384];
	struct iovec iov;
	ssize_t n;

	if (count > sizeof(buf)) {
		count = sizeof(buf);
		flags |= XPRT_MORE;	/* the rest of the segment follows */
	}
	n = pread(fd, buf, count, off);
	if (n == 0)
		return IO_CLOSED;	/* the file shrank */
	if (n < 0)
		return IO_ERROR;
	iov.iov_base = buf;
	iov.iov_len = (size_t)n;
	return c->xp->writev(&c->xio, &iov, 1, flags);
}

int
conn_send(struct conn *c, struct resp *r, int closing)
{
	struct iovec iov[RESP_MAXSEG];
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
			n = c->xp->sendfile(&c->xio, r->fd, &off, count);
			if (n == IO_NOTSUP)
				n = conn_send_copy(c, r->fd, off, count,
				    r->cur + 1 < r->nsegs || closing ||
				    count < s->len - r->cur_done ? XPRT_MORE : 0);
			if (n == IO_CLOSED) {
				/* The file shrank under us: the framing is lost. */
				log_limited(&conn_ll_shrank, ev_now(core.loop), 0,
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
			/*
			 * "More" holds the tail back: when file data follows,
			 * so they share packets; when we close right after, so
			 * close() can put the FIN on the same packet as the data.
			 */
			flags = i < r->nsegs || closing ? XPRT_MORE : 0;
			n = c->xp->writev(&c->xio, iov, niov, flags);
		}
		if (n < 0) {
			if (n == IO_AGAIN) {
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
			if (conn_too_slow(r->send_start, r->sent, CONN_T_SEND,
			    core.conf->min_send_rate)) {
				log_info("client reads below min_send_rate "
				    "(%llu bytes in %llu ms); closing",
				    (unsigned long long)r->sent,
				    (unsigned long long)(ev_now(core.loop) -
				    r->send_start));
				conn_close(c);
				return -1;
			}
			conn_timer(c, CONN_T_SEND);
		}
	}
	return 1;
}

/* ---- events, timeouts and draining -------------------------------------- */

static void
conn_event(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct conn *c = ev_io_owner(io, struct conn, io);

	if (c->closed)
		return;
	/* Before the protocol starts, the events are the transport's. */
	if (__builtin_expect(c->handshake | c->refused, 0)) {
		if (events & EPOLLERR)
			conn_close(c);
		else if (c->handshake)
			conn_handshake(c);
		else
			conn_discard(c);
		return;
	}
	c->proto->event(c, events);
}

void
conn_timeouts(uint64_t now)
{
	struct conn *c;
	int t;

	for (t = 0; t < CONN_T__COUNT; t++) {
		while ((c = core.lists[t].head) != NULL &&
		    conn_due(c->deadline, now)) {
			if (c->handshake || c->refused) {
				/* The protocol has not started: nothing to say. */
				if (c->handshake)
					log_debug("TLS handshake timed out");
				conn_close(c);
				continue;
			}
			c->proto->timeout(c);
			/* The protocol answers (a new timer) or closes: never loops. */
			if (core.lists[t].head == c && !c->closed)
				conn_close(c);
		}
	}
}

/*
 * Graceful stop: close connections that have sat idle (the protocol
 * says nothing is under way) for grace_ms. One that became idle just
 * now may have a request on the way; it gets the grace period, or is
 * answered with Connection: close if the request arrives.
 */
void
conn_drain_idle(uint64_t now, uint64_t grace_ms)
{
	struct conn *c, *next;
	int t;

	for (t = 0; t < CONN_T__COUNT; t++) {
		struct conn_list *l = &core.lists[t];

		for (c = l->head; c != NULL; c = next) {
			next = c->next;
			if (c->handshake || c->refused || !c->proto->idle(c))
				continue;
			/* deadline - timeout = when it went idle */
			if (conn_due((uint32_t)(c->deadline - l->timeout_ms +
			    grace_ms), now))
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

	for (c = core.lists[CONN_T_IDLE].head; c != NULL; c = c->next) {
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

	for (c = core.lists[CONN_T_IDLE].head; c != NULL; c = c->next)
		if (!c->readable)
			return 1;
	return 0;
}
