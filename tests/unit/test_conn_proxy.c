/*
 * test_conn_proxy.c - the PROXY protocol stage of the connection core
 * (conn_proxy.c) on real sockets (a socketpair): which bytes it takes,
 * which it leaves for the protocol or the transport, what it does to
 * c->peer, and what it counts.
 *
 * Two paths: the kernel socket (the header is read with what follows it,
 * which the protocol finds in c->in: the echo protocol sends it back),
 * and a transport of its own, as TLS will be (the header is peeked at
 * and only its bytes are taken: the rest stays in the socket for the
 * transport, whose start() runs only after the header). Epoll is played
 * by hand, as in test_h1.c.
 *
 * Each Criterion test runs in its own process: file-static state starts
 * fresh.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"
#include "limit.h"

static struct conf conf;
static struct sb_slot slot;
static struct listener lsn;
static struct conf_listen cl;
static struct limit_cidr trusted;
static int fake_started;	/* the order: 1 once start() ran */
static size_t fake_in_socket;	/* bytes still in the socket at start() */

static int
fake_start(struct xprt_io *xio)
{
	char buf[256];
	ssize_t n;

	fake_started = 1;
	n = recv(xio->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	fake_in_socket = n > 0 ? (size_t)n : 0;
	return IO_DONE;
}

/* A transport of its own, standing for TLS (setup() fills it). */
static struct xprt fake;

static void
setup(void)
{
	struct ev_loop *loop;

	conf.max_connections = 64;
	conf.header_timeout = conf.body_timeout = conf.send_timeout = 10;
	conf.keepalive_timeout = conf.echo_idle_timeout = 10;
	conf.max_header_size = 8192;
	conf.proxy_timeout = 3;
	cr_assert_not_null(loop = ev_create(16));
	sb_self = &slot;
	conn_init(loop, &conf, NULL, 0);
	cr_assert_eq(limit_cidr_parse("127.0.0.0/8", &trusted), 0);
	cl.proxy_protocol = 1;
	cl.trusted = &trusted;
	cl.ntrusted = 1;
	lsn.proto = &echo_proto;
	lsn.proxy = &cl;
	lsn.stage = conn_proxy_start;
	fake = xprt_plain;
	fake.name = "fake";
	fake.start = fake_start;
}

TestSuite(conn_proxy, .init = setup);

static int sv[2];

/* The client (sv[1]) sent data; the server side is adopted from peer. */
static struct conn *
accept_from(const char *peer, const void *data, size_t len)
{
	struct sockaddr_in sin;
	struct conn *c;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	if (len > 0)
		cr_assert_eq(write(sv[1], data, len), (ssize_t)len);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	cr_assert_eq(inet_pton(AF_INET, peer, &sin.sin_addr), 1);
	c = conn_adopt(sv[0], (struct sockaddr *)&sin, sizeof(sin), &lsn);
	return c;
}

/* What the server has sent to the client so far (nonblocking). */
static size_t
client_got(char *buf, size_t len)
{
	ssize_t n = recv(sv[1], buf, len, MSG_DONTWAIT);

	return n > 0 ? (size_t)n : 0;
}

static void
readable(struct conn *c)
{
	c->proto->event(c, EPOLLIN);
	conn_run_queue();
}

#define HDR	"PROXY TCP4 198.51.100.7 192.0.2.1 40123 443\r\n"

Test(conn_proxy, kernel_socket_header_and_data_in_one_write)
{
	static const char msg[] = HDR "hello, echo";
	char buf[256];
	struct conn *c;

	c = accept_from("127.0.0.1", msg, sizeof(msg) - 1);
	cr_assert_not(c->closed);
	cr_assert_eq(c->proto, &echo_proto);
	cr_assert(c->proxied);
	cr_assert_eq(c->peer.sin.sin_family, AF_INET);
	cr_assert_eq(ntohs(c->peer.sin.sin_port), 40123);
	cr_assert_eq(ntohl(c->peer.sin.sin_addr.s_addr), 0xc6336407);
	/* Every byte after the header reached the protocol, none other. */
	cr_assert_eq(client_got(buf, sizeof(buf)), 11);
	cr_assert_eq(memcmp(buf, "hello, echo", 11), 0);
	cr_assert_eq(slot.c.proxy_hdr[1], 1);	/* v1 PROXY */
	cr_assert_eq(slot.c.accepted, 1);
}

Test(conn_proxy, kernel_socket_header_in_pieces)
{
	static const char msg[] = HDR "abc";
	char buf[64];
	struct conn *c;
	size_t i;

	c = accept_from("127.0.0.1", msg, 1);
	for (i = 1; i < sizeof(msg) - 1; i++) {
		/* Handed over once the header's last byte is in, not before. */
		cr_assert_str_eq(c->proto->name, i < strlen(HDR) ? "proxy" :
		    "echo", "at %zu", i);
		cr_assert_eq(write(sv[1], msg + i, 1), 1);
		readable(c);
		cr_assert_not(c->closed);
	}
	cr_assert_eq(c->proto, &echo_proto);
	cr_assert_eq(ntohs(c->peer.sin.sin_port), 40123);
	cr_assert_eq(client_got(buf, sizeof(buf)), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
}

Test(conn_proxy, own_transport_gets_the_bytes_after_the_header)
{
	static const char msg[] = HDR "\x16\x03\x01 a ClientHello";
	struct conn *c;

	lsn.xprt = &fake;
	c = accept_from("127.0.0.1", msg, sizeof(msg) - 1);
	cr_assert_not(c->closed);
	cr_assert(fake_started);
	/* The header was taken, the ClientHello left to the transport. */
	cr_assert_eq(fake_in_socket, sizeof(msg) - 1 - strlen(HDR));
	cr_assert_eq(ntohs(c->peer.sin.sin_port), 40123);
}

Test(conn_proxy, own_transport_waits_for_a_split_header)
{
	static const char msg[] = HDR "\x16\x03\x01";
	struct conn *c;

	lsn.xprt = &fake;
	c = accept_from("127.0.0.1", msg, 20);
	cr_assert_not(c->closed);
	cr_assert_not(fake_started);
	cr_assert_eq(write(sv[1], msg + 20, sizeof(msg) - 1 - 20),
	    (ssize_t)(sizeof(msg) - 1 - 20));
	readable(c);
	cr_assert(fake_started);
	cr_assert_eq(fake_in_socket, 3);
}

Test(conn_proxy, local_keeps_the_real_peer)
{
	static const char v2local[] = "\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00" "x";
	struct conn *c;

	c = accept_from("127.0.0.9", v2local, sizeof(v2local) - 1);
	cr_assert_not(c->closed);
	cr_assert_not(c->proxied);
	cr_assert(c->balancer);
	cr_assert_eq(ntohs(c->peer.sin.sin_port), 4242);
	cr_assert_eq(slot.c.proxy_hdr[2], 1);	/* v2 LOCAL */
}

Test(conn_proxy, untrusted_closed_before_reading)
{
	struct conn *c;
	char buf[8];

	c = accept_from("10.0.0.1", HDR, strlen(HDR));
	cr_assert(c->closed);
	cr_assert_eq(slot.c.proxy_err[SB_PROXY_UNTRUSTED], 1);
	cr_assert_eq(slot.c.rejected[SB_REJ_PROXY], 1);
	/* Closed (a reset: the header was never read), no byte of answer. */
	cr_assert_leq(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 0);
}

Test(conn_proxy, malformed_and_too_long)
{
	char longv1[200];
	struct conn *c;

	c = accept_from("127.0.0.1", "GET / HTTP/1.1\r\n", 16);
	cr_assert(c->closed);
	cr_assert_eq(slot.c.proxy_err[SB_PROXY_INVALID], 1);
	memset(longv1, '1', sizeof(longv1));
	memcpy(longv1, "PROXY TCP4 ", 11);
	c = accept_from("127.0.0.1", longv1, sizeof(longv1));
	cr_assert(c->closed);
	cr_assert_eq(slot.c.proxy_err[SB_PROXY_TOO_LONG], 1);
	cr_assert_eq(slot.c.rejected[SB_REJ_PROXY], 2);
}

Test(conn_proxy, timeout_closes_and_counts)
{
	struct conn *c;

	c = accept_from("127.0.0.1", "PROXY ", 6);
	cr_assert_not(c->closed);
	cr_assert_eq(c->tclass, CONN_T_PROXY);
	conn_timeouts(ev_now(conn_loop()) + 2999);
	cr_assert_not(c->closed);
	conn_timeouts(ev_now(conn_loop()) + 3000);
	cr_assert(c->closed);
	cr_assert_eq(slot.c.proxy_err[SB_PROXY_TIMEOUT], 1);
}
