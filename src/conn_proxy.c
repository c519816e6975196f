/*
 * conn_proxy.c - the PROXY protocol stage of the connection core: on a
 * listener with proxy_protocol = true, a connection first has to send
 * a PROXY v1 or v2 header (proxy.h), before its transport starts and
 * before its protocol sees a byte. The header comes before a TLS
 * ClientHello too, so this stage reads the raw socket.
 *
 * While in the stage, c->proto is conn_proxy_proto below and the
 * listener's protocol waits in c->next_proto (the union the protocol
 * fills only once it starts): the core's event, timeout and close calls
 * reach this file with no test on the way, and connections of other
 * listeners never pass through it.
 *
 * Reading. On the kernel socket the header is read into the input
 * buffer with whatever follows it (usually the whole first request, in
 * one read); the rest stays there for the protocol, c->in_off past the
 * header. The parser keeps no state between reads: it rescans the
 * buffer, which the caps keep short (107 bytes for v1, 2,064 for v2,
 * both inside the 4 KiB first buffer). A transport of its own (TLS)
 * must get every byte after the header from the socket, so there the
 * header is peeked at and only its own bytes are consumed.
 *
 * Failures (an untrusted peer, a malformed or oversized header, no
 * header within limits.proxy_timeout, end of file inside a header)
 * close the connection without a word, as the spec asks so that the
 * sender notices at once; they are counted by reason in the scoreboard
 * and logged at most once a minute per peer.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "porter.h"
#include "limit.h"
#include "proxy.h"

#define CPROXY_LOG_SLOTS	64	/* peers remembered for the log limit */
#define CPROXY_LOG_MS		60000	/* a line per peer per minute */
#define CPROXY_SHOW		24	/* first bytes shown in a failure line */

/*
 * The peers logged in the last minute, by hash of the address. A slot
 * held by another peer logged less than a minute ago is not taken
 * over: that peer's line is dropped instead, so no peer is ever logged
 * twice in a minute, whatever a flood of addresses does.
 */
static struct {
	struct limit_cidr	 addr;
	uint64_t		 at;	/* ev_now() ms of the line; 0: free */
} cproxy_logged[CPROXY_LOG_SLOTS];

static const struct proto conn_proxy_proto;

/* The connection's real TCP peer as a limit_cidr (IPv4-mapped: IPv4). */
static int
cproxy_cidr(const struct sockaddr *sa, struct limit_cidr *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };
	const struct sockaddr_in6 *s6;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		memcpy(out->lc_addr,
		    &((const struct sockaddr_in *)sa)->sin_addr, 4);
		out->lc_family = AF_INET;
		out->lc_prefix = 32;
		return 0;
	}
	if (sa->sa_family != AF_INET6)
		return -1;
	s6 = (const struct sockaddr_in6 *)sa;
	if (memcmp(s6->sin6_addr.s6_addr, mapped, 12) == 0) {
		memcpy(out->lc_addr, s6->sin6_addr.s6_addr + 12, 4);
		out->lc_family = AF_INET;
		out->lc_prefix = 32;
		return 0;
	}
	memcpy(out->lc_addr, s6->sin6_addr.s6_addr, 16);
	out->lc_family = AF_INET6;
	out->lc_prefix = 128;
	return 0;
}

int
conn_proxy_trusted(const struct conf_listen *cl, const struct sockaddr *sa)
{
	struct limit_cidr a;
	size_t i;

	if (cproxy_cidr(sa, &a) == -1)
		return 0;
	for (i = 0; i < cl->ntrusted; i++)
		if (limit_cidr_match(&cl->trusted[i], &a))
			return 1;
	return 0;
}

/* Is a line about this peer due? Marks it logged now if so. */
static int
cproxy_log_due(const struct sockaddr *sa, uint64_t now)
{
	struct limit_cidr a;
	uint32_t h = 2166136261u;
	size_t i;

	if (cproxy_cidr(sa, &a) == -1)
		return 1;
	for (i = 0; i < sizeof(a.lc_addr); i++)
		h = (h ^ a.lc_addr[i]) * 16777619u;
	i = h % CPROXY_LOG_SLOTS;
	if (cproxy_logged[i].at != 0 && now < cproxy_logged[i].at + CPROXY_LOG_MS)
		return 0;	/* this peer, or another one, logged lately */
	cproxy_logged[i].addr = a;
	cproxy_logged[i].at = now != 0 ? now : 1;
	return 1;
}

/* The reasons of porter_proxy_protocol_errors_total. */
static int
cproxy_reason(int error)
{
	return error == PROXY_E_TOO_LONG ? SB_PROXY_TOO_LONG : SB_PROXY_INVALID;
}

/*
 * Close c unanswered: count it under reason (SB_PROXY_*), and say why
 * (what: the parser's word, or NULL) with the first bytes, escaped.
 */
static void
cproxy_fail(struct conn *c, int reason, const char *what)
{
	static const char *const names[SB_NPROXY_ERR] = {
		"untrusted peer", "malformed header", "no header in time",
		"header too long"
	};
	char addr[NET_ADDRSTRLEN], show[CPROXY_SHOW * 4 + 1];
	size_t i, o = 0;

	sb_proxy_error(reason);
	sb_conn_rejected(SB_REJ_PROXY);
	if (cproxy_log_due(&c->peer.sa, ev_now(conn_loop()))) {
		for (i = 0; c->in != NULL && i < c->in_len && i < CPROXY_SHOW;
		    i++) {
			unsigned char ch = (unsigned char)c->in[i];

			if (ch >= 0x20 && ch < 0x7f && ch != '\\')
				show[o++] = (char)ch;
			else
				o += (size_t)snprintf(show + o,
				    sizeof(show) - o, "\\x%02x", ch);
		}
		show[o] = '\0';
		net_addr_format(&c->peer.sa, addr, sizeof(addr), 1);
		log_warnx("PROXY protocol from %s: %s%s%s, closed%s%s%s "
		    "(at most a line a minute per peer)",
		    addr, names[reason], what != NULL ? ": " : "",
		    what != NULL ? what : "", o > 0 ? "; first bytes \"" : "",
		    show, o > 0 ? "\"" : "");
	}
	conn_close(c);
}

/* The header is in: its client becomes the peer; the protocol starts. */
static void
cproxy_done(struct conn *c, const struct proxy_hdr *h, int peeked)
{
	sb_proxy_header(h->version, h->command);
	if (!h->local) {
		memcpy(&c->peer, &h->src, sizeof(c->peer));
		c->proxied = 1;
	} else
		c->balancer = 1;	/* LOCAL, UNKNOWN: its own connection */
	if (peeked || c->in_len == h->len)
		conn_buf_release(c);
	else
		c->in_off = h->len;
	c->proto = c->next_proto;
	c->next_proto = NULL;	/* the union is the protocol's from now */
	conn_begin(c);
}

/*
 * A transport of its own: look at the bytes without taking them, and
 * take exactly the header once it is complete. 1: consumed (h filled),
 * 0: must wait, -1: c was closed.
 */
static int
cproxy_peek(struct conn *c, struct proxy_parser *p, struct proxy_hdr *h)
{
	ssize_t n;
	int rv;

	n = recv(c->xio.fd, c->in, c->in_cap, MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		conn_close(c);
		return -1;
	}
	c->readable = 0;
	if (n < 0)
		return 0;
	c->in_len = (uint32_t)n;
	rv = proxy_parse(p, c->in, c->in_len, h);
	if (rv == PROXY_PARSE_AGAIN)
		return 0;
	if (rv == PROXY_PARSE_ERROR) {
		cproxy_fail(c, cproxy_reason(p->error),
		    proxy_error_name(p->error));
		return -1;
	}
	/* The bytes are there: this takes them all at once. */
	if (recv(c->xio.fd, c->in, h->len, 0) != (ssize_t)h->len) {
		conn_close(c);
		return -1;
	}
	return 1;
}

static void
cproxy_run(struct conn *c)
{
	struct proxy_parser p;
	struct proxy_hdr h;
	ssize_t n;
	int rv, drained = 0, peek = c->xp != &xprt_plain;

	if (c->in == NULL)
		conn_buf_attach(c);
	while (!c->closed) {
		proxy_init(&p, 0);
		if (c->in_len > 0 && !peek) {
			rv = proxy_parse(&p, c->in, c->in_len, &h);
			if (rv == PROXY_PARSE_DONE) {
				cproxy_done(c, &h, 0);
				return;
			}
			if (rv == PROXY_PARSE_ERROR) {
				cproxy_fail(c, cproxy_reason(p.error),
				    proxy_error_name(p.error));
				return;
			}
		}
		if (!c->readable) {
			(void)conn_watch(c, 0);
			return;
		}
		if (peek) {
			if ((rv = cproxy_peek(c, &p, &h)) == 1) {
				cproxy_done(c, &h, 1);
				return;
			}
			continue;	/* 0: not readable now; -1: closed */
		}
		n = xprt_plain.read(&c->xio, c->in + c->in_len,
		    c->in_cap - c->in_len, &drained);
		if (drained || n == IO_AGAIN)
			c->readable = 0;
		if (n > 0)
			c->in_len += (uint32_t)n;
		else if (n != IO_AGAIN) {
			/* End of file or a reset inside a header. */
			if (n == IO_CLOSED && c->in_len > 0)
				cproxy_fail(c, SB_PROXY_INVALID,
				    "connection closed inside the header");
			else
				conn_close(c);
			return;
		}
	}
}

void
conn_proxy_start(struct conn *c, const struct listener *l)
{
	c->next_proto = c->proto;
	c->proto = &conn_proxy_proto;
	/* Before any read: an untrusted peer could name any client. */
	if (!conn_proxy_trusted(l->proxy, &c->peer.sa)) {
		cproxy_fail(c, SB_PROXY_UNTRUSTED, NULL);
		return;
	}
	conn_timer(c, CONN_T_PROXY);
	cproxy_run(c);
}

int
conn_tcp_peer(const struct conn *c, struct sockaddr_storage *ss,
    socklen_t *len)
{
	if (!c->proxied) {
		*len = sizeof(c->peer);
		memcpy(ss, &c->peer, sizeof(c->peer));
		return 0;
	}
	*len = sizeof(*ss);
	return getpeername(c->xio.fd, (struct sockaddr *)ss, len);
}

/* ---- the stage's face to the core ---------------------------------------- */

static void
cproxy_start(struct conn *c)
{
	cproxy_run(c);
}

static void
cproxy_event(struct conn *c, uint32_t events)
{
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		c->readable = 1;
	if (events & EPOLLERR) {
		conn_close(c);
		return;
	}
	cproxy_run(c);
}

/* Never queued: nothing to answer. */
static void
cproxy_answer(struct conn *c)
{
	(void)c;
}

static void
cproxy_timeout(struct conn *c)
{
	cproxy_fail(c, SB_PROXY_TIMEOUT, NULL);
}

/* A graceful stop may close it before its first byte. */
static int
cproxy_idle(const struct conn *c)
{
	return c->in == NULL || c->in_len == 0;
}

/* The protocol never started: nothing of its own to free. */
static void
cproxy_close(struct conn *c)
{
	c->next_proto = NULL;
}

static const struct proto conn_proxy_proto = {
	.name = "proxy",
	.start = cproxy_start,
	.event = cproxy_event,
	.answer = cproxy_answer,
	.timeout = cproxy_timeout,
	.idle = cproxy_idle,
	.close = cproxy_close,
};
