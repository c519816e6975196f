/*
 * test_xprt_tls.c - the write side of the TLS transport (xprt_tls.c)
 * over a real socket pair whose send buffer is small: more than a
 * record is sealed and sent at once, what send() cannot take is held,
 * and the retry with the same segments sends it and answers with the
 * plaintext count, never sealing anything twice. The client sees the
 * bytes whole and in order, also when OpenSSL answers a KeyUpdate while
 * records are held.
 *
 * The server's SSL is made here (self-signed P-256, the modes tls_ctx.c
 * sets) and put in xio->priv as xprt_tls's start() would.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "xprt.h"

struct pair {
	SSL_CTX		*sctx, *cctx;
	SSL		*client;
	struct xprt_io	 xio;		/* the server's end */
	int		 cfd;
	unsigned char	*got;		/* what the client decrypted */
	size_t		 got_len, got_cap;
};

static SSL_CTX *
server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();

	cr_assert(ctx != NULL && key != NULL && x != NULL);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	cr_assert(X509_sign(x, key, EVP_sha256()) > 0);
	cr_assert(SSL_CTX_use_certificate(ctx, x) == 1);
	cr_assert(SSL_CTX_use_PrivateKey(ctx, key) == 1);
	/* As tls_ctx.c sets them. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

static void
nonblock(int fd)
{
	cr_assert(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0);
}

/*
 * Connected and handshaken, TLS version max (0: the library's); the
 * server's send buffer small (a gather of records never fits at once)
 * or the system's.
 */
static void
pair_open(struct pair *p, int max, int small)
{
	int fds[2], sndbuf = 4096, cd = 0, sd = 0, i, r;
	SSL *server;

	memset(p, 0, sizeof(*p));
	cr_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	if (small)
		cr_assert(setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
		    sizeof(sndbuf)) == 0);
	nonblock(fds[0]);
	nonblock(fds[1]);
	p->sctx = server_ctx();
	p->cctx = SSL_CTX_new(TLS_client_method());
	if (max)
		SSL_CTX_set_max_proto_version(p->cctx, max);
	server = SSL_new(p->sctx);
	p->client = SSL_new(p->cctx);
	cr_assert(SSL_set_fd(server, fds[0]) && SSL_set_fd(p->client, fds[1]));
	SSL_set_accept_state(server);
	SSL_set_connect_state(p->client);
	for (i = 0; i < 100 && !(cd && sd); i++) {
		if (!cd && (r = SSL_do_handshake(p->client)) == 1)
			cd = 1;
		if (!sd && (r = SSL_do_handshake(server)) == 1)
			sd = 1;
	}
	cr_assert(cd && sd, "handshake");
	p->xio.fd = fds[0];
	p->xio.priv = server;
	p->cfd = fds[1];
}

static void
pair_close(struct pair *p)
{
	xprt_tls.close(&p->xio);
	SSL_free(p->client);
	close(p->cfd);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	free(p->got);
}

/* The client reads all it can now. */
static void
client_read(struct pair *p)
{
	int n;

	for (;;) {
		if (p->got_cap - p->got_len < 16384) {
			p->got_cap = p->got_cap * 2 + 65536;
			p->got = realloc(p->got, p->got_cap);
			cr_assert_not_null(p->got);
		}
		n = SSL_read(p->client, p->got + p->got_len, 16384);
		if (n <= 0) {
			cr_assert_eq(SSL_get_error(p->client, n), SSL_ERROR_WANT_READ,
			    "client: the records decrypt, in order");
			return;
		}
		p->got_len += (size_t)n;
	}
}

static unsigned char *
pattern(size_t len, unsigned seed)
{
	unsigned char *b = malloc(len);
	size_t i;

	cr_assert_not_null(b);
	for (i = 0; i < len; i++) {
		seed = seed * 1103515245 + 12345;
		b[i] = (unsigned char)(seed >> 16);
	}
	return b;
}

/*
 * Write iov (advancing it as the transport says) until all is out,
 * letting the client read after each IO_AGAIN; the number of IO_AGAIN.
 * *most: the largest count one call wrote. After a send() that took
 * not all, a record at a time is sealed: the first count after a
 * retry's answer is 16384 or less, whether it went out at once or was
 * held and answered by the next retry.
 */
static int
write_all(struct pair *p, struct iovec *iov, int iovcnt, size_t *most)
{
	int agains = 0, retry = 0, watch = 0;
	ssize_t n;

	while (iovcnt > 0) {
		n = xprt_tls.writev(&p->xio, iov, iovcnt, 0);
		if (n == IO_AGAIN) {
			cr_assert_eq(p->xio.want, XPRT_WANT_WRITE);
			agains++;
			retry = 1;
			client_read(p);
			continue;
		}
		cr_assert_gt(n, 0, "writev: %zd", n);
		if (watch)
			cr_assert_leq(n, 16384, "a slow reader holds a record at "
			    "most: %zd", n);
		watch = retry;
		retry = 0;
		if (most != NULL && (size_t)n > *most)
			*most = (size_t)n;
		while (n > 0) {
			if ((size_t)n >= iov->iov_len) {
				n -= (ssize_t)iov->iov_len;
				iov++;
				iovcnt--;
			} else {
				iov->iov_base = (char *)iov->iov_base + n;
				iov->iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
	client_read(p);
	return agains;
}

Test(xprt_tls, one_call_seals_several_records)
{
	size_t len = 100000;
	unsigned char *body = pattern(len, 5);
	struct pair p;
	struct iovec iov = { body, len };
	ssize_t n;

	pair_open(&p, 0, 0);
	n = xprt_tls.writev(&p.xio, &iov, 1, 0);
	cr_assert_gt(n, 16384, "more than a record: %zd", n);
	cr_assert_leq(n, (ssize_t)len);
	client_read(&p);
	cr_assert_eq(p.got_len, (size_t)n);
	cr_assert(memcmp(p.got, body, (size_t)n) == 0);
	pair_close(&p);
	free(body);
}

Test(xprt_tls, bulk_is_held_and_retried_whole_and_in_order)
{
	static const int versions[] = { TLS1_3_VERSION, TLS1_2_VERSION };
	size_t len = 1000000;
	unsigned char *head = pattern(200, 1), *body = pattern(len, 2);
	struct pair p;
	struct iovec iov[3];
	size_t most;
	unsigned v;

	for (v = 0; v < 2; v++) {
		pair_open(&p, versions[v], 1);
		/* a head, a body, a tail: one record gathers the head's bytes */
		iov[0].iov_base = head;
		iov[0].iov_len = 200;
		iov[1].iov_base = body;
		iov[1].iov_len = len;
		iov[2].iov_base = head;
		iov[2].iov_len = 7;
		most = 0;
		cr_assert_gt(write_all(&p, iov, 3, &most), 0,
		    "the held path was taken");
		cr_assert_gt(most, 16384, "more than a record per call");
		cr_assert_eq(p.got_len, 200 + len + 7);
		cr_assert(memcmp(p.got, head, 200) == 0);
		cr_assert(memcmp(p.got + 200, body, len) == 0);
		cr_assert(memcmp(p.got + 200 + len, head, 7) == 0);
		/* small writes after bulk still go straight out */
		iov[0].iov_base = head;
		iov[0].iov_len = 100;
		p.got_len = 0;
		cr_assert_eq(write_all(&p, iov, 1, NULL), 0);
		cr_assert_eq(p.got_len, 100);
		pair_close(&p);
	}
	free(head);
	free(body);
}

Test(xprt_tls, sendfile_seals_a_gather_and_resumes_at_the_offset)
{
	size_t len = 300000 + 17;
	unsigned char *data = pattern(len, 3);
	char path[] = "/tmp/porter-xprt-tls-XXXXXX";
	struct pair p;
	off_t off = 0;
	ssize_t n, most = 0;
	int fd, agains = 0;

	cr_assert((fd = mkstemp(path)) >= 0);
	unlink(path);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	pair_open(&p, 0, 1);
	while ((size_t)off < len) {
		n = xprt_tls.sendfile(&p.xio, fd, &off, len - (size_t)off);
		if (n == IO_AGAIN) {
			agains++;
			client_read(&p);
			continue;
		}
		cr_assert_gt(n, 0, "sendfile: %zd", n);
		if (n > most)
			most = n;
	}
	client_read(&p);
	cr_assert_gt(agains, 0);
	cr_assert_gt(most, 16384, "more than a record per call");
	cr_assert_eq(p.got_len, len);
	cr_assert(memcmp(p.got, data, len) == 0);
	/* past the end of the file: it shrank */
	cr_assert_eq(xprt_tls.sendfile(&p.xio, fd, &off, 10), IO_CLOSED);
	pair_close(&p);
	close(fd);
	free(data);
}

Test(xprt_tls, key_update_answered_behind_held_records)
{
	size_t len = 200000;
	unsigned char *body = pattern(len, 4), buf[64];
	struct pair p;
	struct iovec iov;
	ssize_t n;
	int drained;

	pair_open(&p, TLS1_3_VERSION, 1);
	iov.iov_base = body;
	iov.iov_len = len;
	cr_assert_eq(xprt_tls.writev(&p.xio, &iov, 1, 0), IO_AGAIN,
	    "records are held");
	/* The client asks for a KeyUpdate; reading it, OpenSSL answers. */
	cr_assert_eq(SSL_key_update(p.client, SSL_KEY_UPDATE_REQUESTED), 1);
	cr_assert_eq(SSL_write(p.client, "x", 1), 1);
	drained = 0;
	n = xprt_tls.read(&p.xio, buf, sizeof(buf), &drained);
	cr_assert_eq(n, 1);
	cr_assert_eq(buf[0], 'x');
	p.got_len = 0;
	client_read(&p);
	/* The retry, the rest, and the client decrypts all in order. */
	(void)write_all(&p, &iov, 1, NULL);
	cr_assert_eq(p.got_len, len);
	cr_assert(memcmp(p.got, body, len) == 0);
	pair_close(&p);
	free(body);
}
