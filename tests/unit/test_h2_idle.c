/*
 * test_h2_idle.c - what an idle HTTP/2 session holds (h2_mem.c): an
 * nghttp2 client talks to h2.c through a fake transport
 * (prior knowledge, as on a plain listener), the way test_h1.c drives
 * h1.c, and h2_session_bytes() counts what the session keeps once its
 * streams are done and h2_release_idle() has run (a later "now" stands
 * for the H2_RELEASE_MS that would pass on a real worker).
 *
 * The bound, H2_IDLE_MAX, with its reason: nghttp2 1.52's session
 * (2.9 KB) and its two HPACK index rings (1 KB each), the entries of
 * both HPACK tables for these few fields (about 1 KB once a second
 * response is indexed) and porter's own struct come to about 6.5 KB. What must not come back would each pass
 * 8 KiB: the 16 KB frame buffer, the 4 KB stream map, a closed stream
 * kept per request (232 bytes each, 100 requests here), a response
 * table of 4 KB full of dates.
 *
 * Each Criterion test runs in its own process: the core's and the h2 files'
 * file-static state starts fresh every time.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <nghttp2/nghttp2.h>

#include "porter.h"

#define H2_IDLE_MAX	8192

/* ---- the fake transport: bytes in from the client, bytes out to it ------- */

static struct {
	uint8_t	 in[1 << 16];
	size_t	 in_len, in_off;
	uint8_t	 out[1 << 18];
	size_t	 out_len;
	int	 write_again;	/* writes say IO_AGAIN */
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
	if (n == 0) {
		*drained = 1;
		return IO_AGAIN;
	}
	if (n > len)
		n = len;
	memcpy(buf, fk.in + fk.in_off, n);
	fk.in_off += n;
	*drained = fk.in_off == fk.in_len;
	if (fk.in_off == fk.in_len)
		fk.in_off = fk.in_len = 0;
	return (ssize_t)n;
}

static ssize_t
fake_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt,
    int flags)
{
	size_t n = 0;
	int i;

	(void)xio;
	(void)flags;
	if (fk.write_again)
		return IO_AGAIN;
	for (i = 0; i < iovcnt; i++) {
		cr_assert(fk.out_len + iov[i].iov_len <= sizeof(fk.out));
		memcpy(fk.out + fk.out_len, iov[i].iov_base, iov[i].iov_len);
		fk.out_len += iov[i].iov_len;
		n += iov[i].iov_len;
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

/* ---- a worker around it ------------------------------------------------------ */

static struct conf conf;
static struct conf_site site;
static char *names[] = { "*" };
static char *indexv[] = { "index.html" };
static int rootfd = -1;
static struct sb_slot slot;
static struct listener lsn;
static char root[] = "/tmp/porter-test-h2-idle-XXXXXX";
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
	conf.http2.max_concurrent_streams = 128;
	conf.http2.max_header_list_size = 8192;
	conf.http2.idle_timeout = 10;
	cr_assert_not_null(loop = ev_create(16));
	sb_self = &slot;
	conn_init(loop, &conf, NULL, 0);
	h1_init(&conf);
	h2_init(&conf);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	cr_assert(rootfd != -1);
	http_init(&conf, &rootfd, loop);
	serve_init(&conf, loop);
	accesslog_init(-1);
	lsn.proto = &h2_proto;
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

TestSuite(h2_idle, .init = setup, .fini = teardown);

/* ---- the client: nghttp2 on the other end ------------------------------------- */

static struct {
	nghttp2_session	*ng;
	int		 closed;	/* streams closed */
	int		 status200;	/* ... with :status 200 */
	size_t		 body;		/* DATA bytes, all streams */
	int		 pings;		/* PING acknowledgements */
	/* By stream id / 2: the file asked for (big.bin or not), bytes so far. */
	int		 isbig[256];
	size_t		 off[256];
} cl;

static int
cl_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
    size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *arg)
{
	(void)ng; (void)f; (void)flags; (void)arg;
	if (nlen == 7 && memcmp(name, ":status", 7) == 0 && vlen == 3 &&
	    memcmp(value, "200", 3) == 0)
		cl.status200++;
	return 0;
}

static int
cl_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
    size_t len, void *arg)
{
	const char *want;
	size_t i = (size_t)id / 2;

	(void)ng; (void)flags; (void)arg;
	cr_assert_lt(i, 256);
	want = cl.isbig[i] ? big : "hello\n";
	cr_assert_leq(cl.off[i] + len, cl.isbig[i] ? sizeof(big) : 6);
	cr_assert(memcmp(data, want + cl.off[i], len) == 0,
	    "stream %d: bytes %zu-%zu differ", (int)id, cl.off[i], cl.off[i] + len);
	cl.off[i] += len;
	cl.body += len;
	return 0;
}

static int
cl_close(nghttp2_session *ng, int32_t id, uint32_t code, void *arg)
{
	(void)ng; (void)id; (void)arg;
	cr_assert_eq(code, NGHTTP2_NO_ERROR);
	cl.closed++;
	return 0;
}

static int
cl_frame(nghttp2_session *ng, const nghttp2_frame *f, void *arg)
{
	(void)ng; (void)arg;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		cl.pings++;
	return 0;
}

static void
cl_init(void)
{
	nghttp2_session_callbacks *cb;

	cr_assert_eq(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, cl_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, cl_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, cl_close);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, cl_frame);
	cr_assert_eq(nghttp2_session_client_new(&cl.ng, cb, NULL), 0);
	nghttp2_session_callbacks_del(cb);
	cr_assert_eq(nghttp2_submit_settings(cl.ng, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

static void
cl_get(const char *path)
{
	const nghttp2_nv nv[] = {
#define NV(n, v) { (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), \
	NGHTTP2_NV_FLAG_NONE }
		NV(":method", "GET"), NV(":scheme", "http"),
		NV(":authority", "x"), NV(":path", path),
		NV("user-agent", "test_h2_idle"),
#undef NV
	};

	int32_t id;

	id = nghttp2_submit_request(cl.ng, NULL, nv, sizeof(nv) / sizeof(nv[0]),
	    NULL, NULL);
	cr_assert_gt(id, 0);
	cr_assert_lt(id / 2, 256);
	cl.isbig[id / 2] = strcmp(path, "/big.bin") == 0;
}

/* What the worker does after each batch of events. */
static void
batch_end(void)
{
	conn_run_queue();
	conn_free_zombies();
}

/* Client bytes to the server and server bytes to the client until quiet. */
static void
pump(struct conn *c)
{
	const uint8_t *data;
	ssize_t n;
	int turns;

	for (turns = 0; turns < 1000; turns++) {
		while ((n = nghttp2_session_mem_send(cl.ng, &data)) > 0) {
			cr_assert(fk.in_len + (size_t)n <= sizeof(fk.in));
			memcpy(fk.in + fk.in_len, data, (size_t)n);
			fk.in_len += (size_t)n;
		}
		cr_assert_geq(n, 0);
		if (fk.in_len == 0 && fk.out_len == 0 &&
		    (fk.write_again || !(c->io.events & EPOLLOUT)))
			return;
		if (fk.in_len > 0 || (c->io.events & EPOLLOUT)) {
			c->proto->event(c, EPOLLIN | EPOLLOUT);
			batch_end();
		}
		if (fk.out_len > 0) {
			cr_assert_eq(nghttp2_session_mem_recv(cl.ng, fk.out,
			    fk.out_len), (ssize_t)fk.out_len);
			fk.out_len = 0;
		}
	}
	cr_assert_fail("no quiet after 1000 turns");
}

/* A connection whose client sent its preface and SETTINGS (nghttp2's own). */
static struct conn *
connect_h2(void)
{
	struct sockaddr_in sin;
	struct conn *c;
	int sv[2];

	cl_init();
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	close(sv[1]);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(4242);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	c = conn_adopt(sv[0], (struct sockaddr *)&sin, sizeof(sin), &lsn);
	batch_end();
	cr_assert_not_null(c);
	pump(c);
	cr_assert(!c->closed);
	cr_assert_gt(h2_session_bytes(c), 0, "an HTTP/2 session");
	return c;
}

/* Long after the session went idle (the release timer's now). */
static void
release(void)
{
	h2_release_idle(ev_now(conn_loop()) + 60000);
}

/* ---- tests --------------------------------------------------------------------- */

Test(h2_idle, one_request_then_small)
{
	struct conn *c = connect_h2();
	size_t held;

	cl_get("/index.html");
	pump(c);
	cr_assert_eq(cl.status200, 1);
	cr_assert_eq(cl.body, 6);
	held = h2_session_bytes(c);
	release();
	cr_assert_lt(h2_session_bytes(c), held, "idle pages went back");
	cr_assert_leq(h2_session_bytes(c), H2_IDLE_MAX, "%zu bytes held idle",
	    h2_session_bytes(c));
}

/*
 * A connection that asks once keeps no entry in the table of what we
 * send (about 170 bytes each for as long as it lives): the first
 * response's fields are literals, the client's decoder table stays
 * empty. The second response indexes them, so a busy connection still
 * sends a repeated field as one byte.
 */
Test(h2_idle, first_response_indexes_nothing)
{
	struct conn *c = connect_h2();
	size_t one;

	cl_get("/index.html");
	pump(c);
	cr_assert_eq(cl.status200, 1);
	cr_assert_eq(nghttp2_session_get_hd_inflate_dynamic_table_size(cl.ng), 0,
	    "first response indexed %zu bytes of fields",
	    nghttp2_session_get_hd_inflate_dynamic_table_size(cl.ng));
	release();
	one = h2_session_bytes(c);
	cl_get("/index.html");
	pump(c);
	cr_assert_eq(cl.status200, 2);
	cr_assert_gt(nghttp2_session_get_hd_inflate_dynamic_table_size(cl.ng), 0,
	    "the second response is indexed");
	release();
	cr_assert_gt(h2_session_bytes(c), one + 400,
	    "%zu then %zu bytes: the entries are what the first one saved",
	    one, h2_session_bytes(c));
}

/* A burst as a browser makes: no closed stream is kept for later. */
Test(h2_idle, burst_of_100_then_small)
{
	struct conn *c = connect_h2();
	int i;

	for (i = 0; i < 100; i++)
		cl_get("/index.html");
	pump(c);
	cr_assert_eq(cl.closed, 100);
	cr_assert_eq(cl.status200, 100);
	release();
	cr_assert_leq(h2_session_bytes(c), H2_IDLE_MAX, "%zu bytes held idle",
	    h2_session_bytes(c));
}

/* Pages given back come back zeroed: every later frame is whole. */
Test(h2_idle, works_after_release)
{
	struct conn *c = connect_h2();
	int i;

	for (i = 0; i < 20; i++) {
		cl_get(i % 2 ? "/big.bin" : "/index.html");
		pump(c);
		release();
		cr_assert_eq(nghttp2_submit_ping(cl.ng, NGHTTP2_FLAG_NONE, NULL), 0);
		pump(c);
		release();
		cr_assert_leq(h2_session_bytes(c), H2_IDLE_MAX);
	}
	cr_assert_eq(cl.closed, 20);
	cr_assert_eq(cl.status200, 20);
	cr_assert_eq(cl.body, 10 * 6 + 10 * sizeof(big));
	cr_assert_eq(cl.pings, 20);
	cr_assert(!c->closed);
}

/*
 * Nothing goes back while a response waits for the socket: the frame
 * nghttp2 is sending lives in those pages.
 */
Test(h2_idle, kept_while_sending)
{
	struct conn *c = connect_h2();
	size_t held;

	fk.write_again = 1;
	cl_get("/big.bin");
	pump(c);
	held = h2_session_bytes(c);
	release();
	cr_assert_eq(h2_session_bytes(c), held);
	fk.write_again = 0;
	pump(c);
	cr_assert_eq(cl.closed, 1);
	cr_assert_eq(cl.body, sizeof(big));
	release();
	cr_assert_leq(h2_session_bytes(c), H2_IDLE_MAX);
}

/*
 * Forty files, forty Last-Modified values: the HPACK table of the
 * fields we send keeps 1 KB of them in HPACK's count (a dozen of
 * these), 1.5 KB of memory. nghttp2's default 4 KB table kept 6 KB.
 */
Test(h2_idle, response_table_bounded)
{
	struct timespec ts[2] = { { 0, 0 }, { 0, 0 } };
	struct conn *c;
	char name[32], path[300];
	int i;

	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "f%d.html", i);
		put_file(name, "hello\n", 6);
		snprintf(path, sizeof(path), "%s/%s", root, name);
		ts[0].tv_sec = ts[1].tv_sec = 1000000000 + i * 86400;
		cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
	c = connect_h2();
	for (i = 0; i < 40; i++) {
		snprintf(path, sizeof(path), "/f%d.html", i);
		cl_get(path);
		pump(c);
	}
	cr_assert_eq(cl.status200, 40);
	release();
	cr_assert_leq(h2_session_bytes(c), H2_IDLE_MAX + 2048,
	    "%zu bytes held idle", h2_session_bytes(c));
}
