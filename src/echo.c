/*
 * echo.c - protocol "echo" (RFC 862 over TCP): every byte a client
 * sends comes back, byte for byte, until it closes or half-closes;
 * then what is left is sent and the connection closed.
 *
 * Memory is bounded: a session holds one pool buffer of CONN_INBUF
 * bytes. When it is full because the client does not read, we stop
 * reading; the kernel's receive window then fills and the client's
 * send() blocks. Reading resumes when the buffer drains.
 *
 * The connection core (conn.c) accepts, counts, times out and drains
 * these connections like HTTP ones; the bytes go through the
 * connection's transport (xprt.h), and count in the scoreboard (bytes
 * here, connections in the core). Each finished session is logged at
 * info level to the error log: the access log stays HTTP-only, so
 * goaccess and friends keep parsing it.
 */
#include <stdlib.h>
#include <string.h>

#include "porter.h"

struct echo_sess {
	uint64_t	 start;		/* ev_now() at accept, ms */
	uint64_t	 in, out;	/* bytes read, bytes written */
};

static void	 echo_run(struct conn *c);

static void
echo_start(struct conn *c)
{
	c->es = xmalloc(sizeof(*c->es));
	c->es->start = ev_now(conn_loop());
	c->es->in = c->es->out = 0;
	c->readable = 1;	/* clients usually send at once */
	conn_timer(c, CONN_T_ECHO);
	echo_run(c);
}

static void
echo_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (events & (EPOLLRDHUP | EPOLLHUP))
		c->rdhup = 1;
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	echo_run(c);
}

/* c is closing (end, timeout, error, shutdown): log the session. */
static void
echo_close(struct conn *c)
{
	char addr[NET_ADDRSTRLEN];

	if (c->es == NULL)
		return;
	net_addr_format(&c->peer.sa, addr, sizeof(addr), 1);
	log_info("echo %s: %llu bytes in, %llu out, %llu ms", addr,
	    (unsigned long long)c->es->in, (unsigned long long)c->es->out,
	    (unsigned long long)(ev_now(conn_loop()) - c->es->start));
	free(c->es);
	c->es = NULL;
}

/* Write what the buffer holds: 1 all out, 0 must wait, -1 closed. */
static int
echo_flush(struct conn *c)
{
	struct iovec iov;
	ssize_t n;

	while (c->in_off < c->in_len) {
		iov.iov_base = c->in + c->in_off;
		iov.iov_len = c->in_len - c->in_off;
		n = c->xp->writev(&c->xio, &iov, 1, 0);
		if (n == IO_AGAIN) {
			conn_want_write(c, 1);
			return c->closed ? -1 : 0;
		}
		if (n < 0) {
			conn_close(c);
			return -1;
		}
		c->in_off += (uint32_t)n;
		c->es->out += (uint64_t)n;
		/*
		 * The scoreboard's byte count (porter -s status) includes
		 * echo; its accepted and open counts come from the core.
		 * Sessions are not responses: no status class.
		 */
		SB_ADD(sb_self->c.bytes, (uint64_t)n);
		conn_timer(c, CONN_T_ECHO);	/* progress */
	}
	c->in_off = c->in_len = 0;
	if (c->registered && (c->io.events & EPOLLOUT))
		conn_want_write(c, 0);
	return 1;
}

static void
echo_run(struct conn *c)
{
	ssize_t n;
	int drained;

	if (c->in == NULL)
		conn_buf_attach(c);
	for (;;) {
		if (echo_flush(c) == -1)
			return;
		if (c->rdclosed) {
			if (c->in_off < c->in_len)
				return;		/* EPOLLOUT brings us back */
			/* All echoed: our FIN follows the client's. */
			conn_close(c);
			return;
		}
		if (c->in_len == c->in_cap || !c->readable)
			break;
		n = c->xp->read(&c->xio, c->in + c->in_len,
		    c->in_cap - c->in_len, &drained);
		/*
		 * A FIN that came with the last bytes is announced once:
		 * after EPOLLRDHUP, read on until the read returns it.
		 */
		if (drained && !c->rdhup)
			c->readable = 0;
		if (n > 0) {
			c->in_len += (uint32_t)n;
			c->es->in += (uint64_t)n;
			conn_timer(c, CONN_T_ECHO);
			continue;
		}
		if (n == IO_CLOSED) {
			c->rdclosed = 1;
			continue;
		}
		if (n != IO_AGAIN) {
			conn_close(c);
			return;
		}
	}
	/*
	 * Waiting: for bytes (readable is 0) or for the client to read
	 * (buffer full, EPOLLOUT is on). Edge-triggered, so an event that
	 * came while the buffer was full is kept in c->readable.
	 */
	(void)conn_watch(c, 0);
}

static void
echo_answer(struct conn *c)
{
	(void)c;		/* echo never queues */
}

/* No byte either way for echo_idle_timeout seconds. */
static void
echo_timeout(struct conn *c)
{
	conn_close(c);
}

/*
 * A session is never idle for a graceful stop: it ends when the client
 * ends it, or when the master's shutdown_timeout runs out.
 */
static int
echo_idle(const struct conn *c)
{
	(void)c;
	return 0;
}

const struct proto echo_proto = {
	.name = "echo",
	.start = echo_start,
	.event = echo_event,
	.answer = echo_answer,
	.timeout = echo_timeout,
	.idle = echo_idle,
	.close = echo_close,
};
