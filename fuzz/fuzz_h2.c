/*
 * fuzz_h2.c - libFuzzer target for HTTP/2 on one connection: nghttp2
 * and porter's glue (the h2*.c files) down to http.c and
 * serve.c answering from a small document root.
 *
 * The input follows the client preface: byte 0 picks how many bytes a
 * read returns (so frames arrive split anywhere), the rest are the
 * client's frames. A fake transport hands them out, one piece per loop
 * turn, then the client's close; it takes every write whole and cannot
 * sendfile (so file DATA goes through the copy path). Each turn ends
 * with the end-of-batch steps a worker runs (the answer queue). The
 * property is ASan/UBSan's: no crash, no leak, no read out of bounds,
 * whatever the frames say.
 */
#include <sys/socket.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"

#define FUZZ_H2_PREFACE	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static struct {
	const uint8_t	*in;
	size_t		 len, off, chunk;
	int		 turn_done;	/* one read per turn, then IO_AGAIN */
} fz;

static int
fz_start(struct xprt_io *xio)
{
	(void)xio;
	return IO_DONE;
}

static ssize_t
fz_read(struct xprt_io *xio, void *buf, size_t len, int *drained)
{
	size_t n = fz.len - fz.off;

	(void)xio;
	/* One piece per turn, so the answer queue runs between pieces. */
	if (fz.turn_done) {
		*drained = 1;
		return IO_AGAIN;
	}
	fz.turn_done = 1;
	if (n == 0) {
		*drained = 1;
		return IO_CLOSED;
	}
	if (n > len)
		n = len;
	if (n > fz.chunk)
		n = fz.chunk;
	memcpy(buf, fz.in + fz.off, n);
	fz.off += n;
	*drained = 0;
	return (ssize_t)n;
}

static ssize_t
fz_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt, int flags)
{
	size_t n = 0;
	int i;

	(void)xio;
	(void)flags;
	for (i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return (ssize_t)n;
}

static ssize_t
fz_sendfile(struct xprt_io *xio, int fd, off_t *off, size_t count)
{
	(void)xio;
	(void)fd;
	(void)off;
	(void)count;
	return IO_NOTSUP;
}

static int
fz_shutdown(struct xprt_io *xio)
{
	(void)xio;
	return IO_DONE;
}

static size_t
fz_pending(const struct xprt_io *xio)
{
	(void)xio;
	return 0;
}

static void
fz_close(struct xprt_io *xio)
{
	close(xio->fd);
	xio->fd = -1;
}

static const struct xprt fz_xprt = {
	.name = "fuzz",
	.start = fz_start,
	.read = fz_read,
	.writev = fz_writev,
	.sendfile = fz_sendfile,
	.shutdown = fz_shutdown,
	.pending = fz_pending,
	.close = fz_close,
};

static struct conf conf;
static struct conf_site site;
static char *names[] = { "*" };
static char *indexv[] = { "index.html" };
static int rootfd = -1;
static struct sb_slot slot;
static struct listener lsn;
static char root[] = "/tmp/porter-fuzz-h2-XXXXXX";

static void
fz_put(const char *name, size_t len)
{
	char path[256];
	char *data = malloc(len);
	size_t i;
	int fd;

	for (i = 0; i < len; i++)
		data[i] = (char)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/%s", root, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd == -1 || write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
	free(data);
}

static void
fz_init(void)
{
	struct ev_loop *loop;

	if (mkdtemp(root) == NULL)
		abort();
	fz_put("index.html", 100);
	fz_put("big.txt", 200000);
	site.names = names;
	site.nnames = 1;
	site.root = root;
	site.index = indexv;
	site.nindex = 1;
	site.listing = 1;
	conf.sites = &site;
	conf.nsites = 1;
	conf.max_header_size = 4096;
	conf.max_body_size = 1 << 16;
	conf.max_connections = 64;
	conf.header_timeout = conf.body_timeout = conf.send_timeout = 10;
	conf.keepalive_timeout = 10;
	conf.echo_idle_timeout = 10;
	conf.http2.max_concurrent_streams = 16;
	conf.http2.max_header_list_size = 4096;
	conf.http2.idle_timeout = 10;
	if ((loop = ev_create(16)) == NULL)
		abort();
	sb_self = &slot;
	conn_init(loop, &conf, NULL, 0);
	h1_init(&conf);
	h2_init(&conf);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd == -1)
		abort();
	http_init(&conf, &rootfd, loop);
	serve_init(&conf, loop);
	accesslog_init(-1);
	lsn.proto = &h2_proto;
	lsn.xprt = &fz_xprt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int inited;
	struct sockaddr_in sin;
	struct conn *c;
	uint8_t *in;
	int sv[2], turns;

	if (!inited) {
		fz_init();
		inited = 1;
	}
	if (size < 1)
		return 0;
	in = malloc(24 + size - 1);
	memcpy(in, FUZZ_H2_PREFACE, 24);
	memcpy(in + 24, data + 1, size - 1);
	fz.in = in;
	fz.len = 24 + size - 1;
	fz.off = 0;
	fz.chunk = (size_t)data[0] * 64 + 1;
	fz.turn_done = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		abort();
	close(sv[1]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	c = conn_adopt(sv[0], (struct sockaddr *)&sin, sizeof(sin), &lsn);
	conn_run_queue();
	/* Every read is a batch; the input ends in the client's close. */
	for (turns = 0; !c->closed && turns < 100000; turns++) {
		fz.turn_done = 0;
		c->proto->event(c, EPOLLIN | EPOLLOUT);
		conn_run_queue();
	}
	if (!c->closed)
		conn_close(c);
	conn_free_zombies();
	free(in);
	return 0;
}
