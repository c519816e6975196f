/*
 * test_h1.c - the transport contract (xprt.h) driving the HTTP/1.1
 * layer (h1.c) through the connection core (conn.c): a fake transport
 * hands out the bytes a test scripts, in any pieces, with IO_AGAIN,
 * IO_CLOSED and IO_ERROR where it says, takes writes whole, short or
 * not at all, and cannot sendfile (so the core's copy fallback runs).
 * Epoll is played by hand: the test calls the protocol's event function
 * the way the loop would, then the end-of-batch steps.
 *
 * Each Criterion test runs in its own process, so the core's and the
 * layers' file-static state starts fresh every time.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

/* ---- the fake transport -------------------------------------------------- */

static struct {
	char	 in[1 << 16];
	size_t	 in_len, in_off;	/* arrived, and read so far */
	size_t	 max_read;		/* 0: as much as asked */
	int	 eof, err;		/* after the bytes: IO_CLOSED, IO_ERROR */
	char	 out[1 << 18];
	size_t	 out_len;
	size_t	 max_write;		/* 0: everything */
	int	 write_again;		/* the next writes say IO_AGAIN */
	int	 last_flags;
	int	 shut, closed, reads, writes;
} fk;

static int
fake_start(struct xprt_io *xio)
{
	(void)xio;
	return IO_DONE;
}

static ssize_t
fake_read(struct xprt_io *xio, void *buf, size_t len, int *drained)
{
	size_t n = fk.in_len - fk.in_off;

	(void)xio;
	fk.reads++;
	if (n == 0) {
		*drained = 1;
		if (fk.err)
			return IO_ERROR;
		return fk.eof ? IO_CLOSED : IO_AGAIN;
	}
	if (n > len)
		n = len;
	if (fk.max_read && n > fk.max_read)
		n = fk.max_read;
	memcpy(buf, fk.in + fk.in_off, n);
	fk.in_off += n;
	/* Honest, as a transport with its own buffer must be. */
	*drained = fk.in_off == fk.in_len && !fk.eof && !fk.err;
	return (ssize_t)n;
}

static ssize_t
fake_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t n = 0, k;
	int i;

	(void)xio;
	fk.writes++;
	fk.last_flags = flags;
	if (fk.write_again > 0) {
		fk.write_again--;
		return IO_AGAIN;
	}
	for (i = 0; i < iovcnt; i++) {
		k = iov[i].iov_len;
		if (fk.max_write && n + k > fk.max_write)
			k = fk.max_write - n;
		cr_assert(fk.out_len + k <= sizeof(fk.out));
		memcpy(fk.out + fk.out_len, iov[i].iov_base, k);
		fk.out_len += k;
		n += k;
		if (fk.max_write && n == fk.max_write)
			break;
	}
	return (ssize_t)n;
}

static ssize_t
fake_sendfile(struct xprt_io *xio, int fd, off_t *off, size_t count)
{
	(void)xio;
	(void)fd;
	(void)off;
	(void)count;
	return IO_NOTSUP;
}

static int
fake_shutdown(struct xprt_io *xio)
{
	(void)xio;
	fk.shut = 1;
	return IO_DONE;
}

static size_t
fake_pending(const struct xprt_io *xio)
{
	(void)xio;
	return 0;
}

static void
fake_close(struct xprt_io *xio)
{
	fk.closed = 1;
	close(xio->fd);
	xio->fd = -1;
}

static const struct xprt fake_xprt = {
	.name = "fake",
	.start = fake_start,
	.read = fake_read,
	.writev = fake_writev,
	.sendfile = fake_sendfile,
	.shutdown = fake_shutdown,
	.pending = fake_pending,
	.close = fake_close,
};

/* ---- a worker around it --------------------------------------------------- */

static struct conf conf;
static struct conf_site site;
static char *names[] = { "*" };
static char *indexv[] = { "index.html" };
static int rootfd = -1;
static struct sb_slot slot;
static struct listener lsn;
static char root[] = "/tmp/porter-test-h1-XXXXXX";
static char big[100000];

static void
put_file(const char *name, const void *data, size_t len)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd != -1);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void
setup(void)
{
	struct ev_loop *loop;
	size_t i;

	cr_assert_not_null(mkdtemp(root));
	put_file("index.html", "hello\n", 6);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 7 + i / 251);
	put_file("big.bin", big, sizeof(big));

	site.names = names;
	site.nnames = 1;
	site.root = root;
	site.index = indexv;
	site.nindex = 1;
	conf.sites = &site;
	conf.nsites = 1;
	conf.max_header_size = 8192;
	conf.max_body_size = 1 << 20;
	conf.max_connections = 64;
	conf.header_timeout = conf.body_timeout = conf.send_timeout = 10;
	conf.keepalive_timeout = 10;
	conf.echo_idle_timeout = 10;

	cr_assert_not_null(loop = ev_create(16));
	sb_self = &slot;	/* the worker's own slot, without shared memory */
	conn_init(loop, &conf, NULL, 0);
	h1_init(&conf);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert(rootfd != -1);
	http_init(&conf, &rootfd, loop);
	serve_init(&conf, loop);
	accesslog_init(-1);
	lsn.proto = &h1_proto;
	lsn.xprt = &fake_xprt;
	memset(&fk, 0, sizeof(fk));
}

static void
teardown(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	(void)!system(cmd);
}

TestSuite(h1, .init = setup, .fini = teardown);

/* What the worker does after each batch of events. */
static void
batch_end(void)
{
	conn_run_queue();
	conn_free_zombies();
}

static void
arrive(const char *p, size_t len)
{
	cr_assert(fk.in_len + len <= sizeof(fk.in));
	memcpy(fk.in + fk.in_len, p, len);
	fk.in_len += len;
}

#define ARRIVE(s)	arrive(s, sizeof(s) - 1)

/* A connection whose client already sent what arrived so far. */
static struct conn *
accept_one(void)
{
	struct sockaddr_in sin;
	struct conn *c;
	int sv[2];

	/* A real descriptor, for epoll to accept; no byte ever goes through it. */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	close(sv[1]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	c = conn_adopt(sv[0], (struct sockaddr *)&sin, sizeof(sin), &lsn);
	batch_end();
	return c;
}

/* epoll says the client sent more (or went away). */
static void
readable(struct conn *c)
{
	c->proto->event(c, EPOLLIN);
	batch_end();
}

static const char *
out(void)
{
	fk.out[fk.out_len] = '\0';
	return fk.out;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay++;
	}
	return n;
}

/* The head of the first response in out(), and where its body starts. */
static const char *
body_of(const char *resp)
{
	const char *e = strstr(resp, "\r\n\r\n");

	cr_assert_not_null(e);
	return e + 4;
}

/* ---- tests -------------------------------------------------------------------- */

Test(h1, one_get_keepalive)
{
	struct conn *c;

	ARRIVE("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	c = accept_one();
	cr_assert(strncmp(out(), "HTTP/1.1 200 OK\r\nServer: porter\r\nDate: ",
	    39) == 0, "%s", out());
	cr_assert_not_null(strstr(out(), "\r\nContent-Length: 6\r\n"));
	cr_assert_null(strstr(out(), "Connection:"));
	cr_assert_str_eq(body_of(out()), "hello\n");
	/* Kept alive, idle, watching the socket; no shutdown. */
	cr_assert(!c->closed);
	cr_assert_eq(c->tclass, CONN_T_IDLE);
	cr_assert(c->registered);
	cr_assert_null(c->in);
	cr_assert_eq(fk.shut, 0);
	cr_assert_eq(sb_slot_requests(&slot), 1);
	cr_assert_eq(slot.c.status[1], 1, "one 2xx");
	cr_assert_eq(slot.c.accepted, 1);
	/* The file went through the copy fallback: no sendfile here. */
	cr_assert_eq(fk.writes, 2);
}

Test(h1, one_byte_reads)
{
	ARRIVE("GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n");
	fk.max_read = 1;
	(void)accept_one();
	cr_assert(strncmp(out(), "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out());
	cr_assert_str_eq(body_of(out()), "hello\n");
	cr_assert_geq(fk.reads, 50);
}

Test(h1, head_in_pieces_with_again)
{
	struct conn *c;

	ARRIVE("GET / HT");
	c = accept_one();
	cr_assert_eq(fk.out_len, 0);
	cr_assert(c->registered, "waits for epoll after IO_AGAIN");
	cr_assert_eq(c->tclass, CONN_T_HEADER);
	ARRIVE("TP/1.1\r\nHo");
	readable(c);
	cr_assert_eq(fk.out_len, 0);
	ARRIVE("st: x\r\n\r\n");
	readable(c);
	cr_assert(strncmp(out(), "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out());
}

Test(h1, pipelined_then_close)
{
	struct conn *c;
	const char *second;

	ARRIVE("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
	    "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	c = accept_one();
	cr_assert(strncmp(out(), "HTTP/1.1 404 Not Found\r\n", 24) == 0, "%s",
	    out());
	second = strstr(out() + 1, "HTTP/1.1 200 OK\r\n");
	cr_assert_not_null(second, "%s", out());
	cr_assert_not_null(strstr(second, "\r\nConnection: close\r\n\r\nhello\n"));
	cr_assert_eq(count(out(), "HTTP/1.1 "), 2);
	/* Nothing unread: closed at once, the FIN riding the data ("more"). */
	cr_assert(c->closed);
	cr_assert(fk.closed);
	cr_assert(fk.last_flags & XPRT_MORE);
}

Test(h1, http10_keepalive)
{
	ARRIVE("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	(void)accept_one();
	cr_assert_not_null(strstr(out(), "\r\nConnection: keep-alive\r\n\r\nhello\n"),
	    "%s", out());
}

Test(h1, read_error_closes)
{
	struct conn *c;

	ARRIVE("GET / HTTP/1.1\r\nHost: x\r\n");
	c = accept_one();
	cr_assert(!c->closed);
	fk.err = 1;
	readable(c);
	cr_assert(c->closed);
	cr_assert(fk.closed);
	cr_assert_eq(fk.out_len, 0);
}

Test(h1, eof_when_idle_closes)
{
	struct conn *c;

	ARRIVE("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	c = accept_one();
	cr_assert(!c->closed);
	fk.eof = 1;
	readable(c);
	cr_assert(c->closed);
	cr_assert_eq(count(out(), "HTTP/1.1 "), 1);
}

Test(h1, write_again_waits_for_epollout)
{
	struct conn *c;
	size_t len;

	fk.write_again = 1;
	ARRIVE("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
	c = accept_one();
	cr_assert_eq(fk.out_len, 0);
	cr_assert(c->io.events & EPOLLOUT);
	cr_assert_eq(c->tclass, CONN_T_SEND);
	/* Readable alone (a pipelined request) waits for the response. */
	c->proto->event(c, EPOLLIN);
	batch_end();
	cr_assert_eq(fk.out_len, 0);
	c->proto->event(c, EPOLLOUT);
	batch_end();
	len = fk.out_len;
	cr_assert(strncmp(out(), "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", out());
	cr_assert_str_eq(body_of(out()), "hello\n");
	cr_assert(!(c->io.events & EPOLLOUT), "EPOLLOUT off once sent");
	cr_assert_eq(len, fk.out_len);
}

Test(h1, short_writes_big_file)
{
	const char *b;

	fk.max_write = 1000;
	ARRIVE("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
	(void)accept_one();
	cr_assert_not_null(strstr(out(), "\r\nContent-Length: 100000\r\n"));
	b = body_of(out());
	cr_assert_eq(fk.out_len - (size_t)(b - fk.out), sizeof(big));
	cr_assert(memcmp(b, big, sizeof(big)) == 0);
}

Test(h1, expect_continue)
{
	struct conn *c;

	ARRIVE("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	    "Expect: 100-continue\r\n\r\n");
	c = accept_one();
	cr_assert_str_eq(out(), "HTTP/1.1 100 Continue\r\n\r\n");
	cr_assert_eq(c->tclass, CONN_T_BODY);
	ARRIVE("hello");
	readable(c);
	cr_assert_not_null(strstr(out(), "HTTP/1.1 405 Method Not Allowed\r\n"),
	    "%s", out());
	cr_assert(!c->closed);
}

Test(h1, garbage_is_400_and_close)
{
	struct conn *c;

	ARRIVE("GARBAGE\r\n\r\n");
	c = accept_one();
	cr_assert(strncmp(out(), "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s",
	    out());
	cr_assert_not_null(strstr(out(), "\r\nConnection: close\r\n\r\n"));
	/* An error status: half-close and linger instead of a bare close. */
	cr_assert(fk.shut);
	cr_assert(!c->closed);
}
