/*
 * xprt_tls.c - the TLS transport (see xprt.h for the contract): OpenSSL
 * over the kernel socket. xio->priv is the connection's SSL (NULL once
 * the client was refused in clear text), xio->cfg the listener's struct
 * tls_listen (tls.h): the generation's contexts and its ALPN list.
 *
 * The SSL reads and writes the socket itself (a socket BIO, which
 * kernel TLS needs), with read_ahead, so one read() takes what the
 * socket has. Edge-triggered epoll is the trap: bytes OpenSSL has read
 * but not yet returned raise no event. So a read says "drained" only
 * when OpenSSL holds nothing more and its last read() of the socket was
 * short or said EAGAIN (a callback on the socket BIO sees the lengths);
 * otherwise the caller reads again before it waits.
 *
 * Writes: OpenSSL has no writev. Segments are copied into one staging
 * buffer of a record's size, so a head and a small body leave as one
 * record and one write(); a single segment is written from where it is.
 * After IO_AGAIN the caller retries with the same segments, which
 * rebuild the same bytes: what OpenSSL requires of a retried SSL_write
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the address change).
 *
 * Files: SSL_sendfile() only when kernel TLS took over sending (never
 * on kernels without the tls module: there OpenSSL's sendfile fails);
 * otherwise pread() a record's worth and SSL_write() it.
 *
 * Closing: one non-blocking SSL_shutdown() sends close_notify (RFC 8446
 * 6.1), unless the session failed; its result is not waited for.
 *
 * Process-wide state: the staging buffer and the last read's length
 * check, both used only within one call (workers are single-threaded).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "xprt.h"
#include "xprt_tls.h"
#include "tls.h"

#define XTLS_RECORD	16384	/* TLS plaintext record limit (RFC 8446 5.1) */

static unsigned char xtls_stage[XTLS_RECORD];
/* The last socket read in this call: -1 none, 0 it filled the buffer, 1 short. */
static int xtls_short;
static char xtls_err[256];

/* What a client speaking plain HTTP to a TLS port gets (nginx does the same). */
static const char xtls_plain_400[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 51\r\n"
    "Connection: close\r\n"
    "\r\n"
    "This port speaks HTTPS: plain HTTP was sent to it.\n";

/* The same answer to HEAD: no content (RFC 9110 9.3.2). */
static const char xtls_plain_400_head[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 51\r\n"
    "Connection: close\r\n"
    "\r\n";

/*
 * BIO_set_callback_ex: after each read of the socket, was it short?
 * And while the first four bytes of the stream come in (however split),
 * do they spell "HEAD": a plain HTTP request refused in clear text gets
 * no content then. Its argument is the connection's xprt_io.
 */
static long
xtls_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi,
    long argl, int ret, size_t *processed)
{
	struct xprt_io *xio;
	uint64_t at;
	size_t i;

	(void)argi; (void)argl;
	if (oper != (BIO_CB_READ | BIO_CB_RETURN))
		return ret;
	xtls_short = ret <= 0 || processed == NULL || *processed < len;
	if (ret <= 0 || processed == NULL ||
	    (at = BIO_number_read(b) - *processed) >= 4)
		return ret;
	xio = (struct xprt_io *)BIO_get_callback_arg(b);
	for (i = 0; i < *processed && at + i < 4 && xio->lead == at + i; i++)
		xio->lead = argp[i] == "HEAD"[at + i] ? xio->lead + 1 : 0xff;
	return ret;
}

/*
 * An SSL_* call returned n <= 0: what now. Fatal errors make the
 * shutdown quiet (no close_notify on a broken session) and clear
 * OpenSSL's error queue, whose first reason is kept for the log.
 */
static int
xtls_result(struct xprt_io *xio, SSL *ssl, int n)
{
	unsigned long e;

	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
		xio->want = XPRT_WANT_READ;
		return IO_AGAIN;
	case SSL_ERROR_WANT_WRITE:
		xio->want = XPRT_WANT_WRITE;
		return IO_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return IO_CLOSED;	/* close_notify, or an end of file */
	case SSL_ERROR_SYSCALL:
		if ((e = ERR_peek_error()) == 0) {
			snprintf(xtls_err, sizeof(xtls_err), "%s",
			    errno ? strerror(errno) : "end of file");
			break;
		}
		/* FALLTHROUGH */
	default:
		e = ERR_peek_error();
		if (e != 0)
			ERR_error_string_n(e, xtls_err, sizeof(xtls_err));
		else
			snprintf(xtls_err, sizeof(xtls_err), "TLS error");
		break;
	}
	ERR_clear_error();
	SSL_set_quiet_shutdown(ssl, 1);
	return IO_ERROR;
}

const char *
xprt_tls_error(void)
{
	return xtls_err;
}

/*
 * Kernel TLS in this worker: known once a handshake asked for it;
 * absent when the kernel has none.
 * With SSL_OP_ENABLE_KTLS, OpenSSL tries two setsockopt() calls at the
 * end of every handshake (TCP_ULP "tls", then TLS_TX); on a kernel
 * without the tls module both fail, every time. After the first
 * handshake that asked and did not get it, and only when the kernel
 * lists no "tls" upper-layer protocol (a module loaded on demand would
 * be listed), later handshakes stop asking.
 */
static int xtls_ktls_known, xtls_ktls_absent;

static void
xtls_ktls_learn(SSL *ssl)
{
#if defined(SSL_OP_ENABLE_KTLS) && !defined(OPENSSL_NO_KTLS)
	char ulp[256];
	FILE *f;
	int listed = 0;

	if (xtls_ktls_known || !(SSL_get_options(ssl) & SSL_OP_ENABLE_KTLS))
		return;
	xtls_ktls_known = 1;
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)))
		return;
	if ((f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re")) == NULL)
		return;
	if (fgets(ulp, sizeof(ulp), f) != NULL)
		for (char *t = strtok(ulp, " \n"); t != NULL; t = strtok(NULL, " \n"))
			listed |= strcmp(t, "tls") == 0;
	fclose(f);
	xtls_ktls_absent = !listed;
#else
	(void)ssl;
#endif
}

static int
xtls_start(struct xprt_io *xio)
{
	const struct tls_listen *tl = xio->cfg;
	SSL *ssl = xio->priv;
	int n, reason;

	if (ssl == NULL) {
		if ((ssl = SSL_new(tls_default_ctx(tl->tls))) == NULL ||
		    !SSL_set_fd(ssl, xio->fd)) {
			ERR_error_string_n(ERR_get_error(), xtls_err, sizeof(xtls_err));
			ERR_clear_error();
			SSL_free(ssl);
			return IO_ERROR;
		}
		SSL_set_app_data(ssl, (void *)tl);
#ifdef SSL_OP_ENABLE_KTLS
		if (xtls_ktls_absent)
			SSL_clear_options(ssl, SSL_OP_ENABLE_KTLS);
#endif
		SSL_set_accept_state(ssl);
		BIO_set_callback_ex(SSL_get_rbio(ssl), xtls_bio_cb);
		BIO_set_callback_arg(SSL_get_rbio(ssl), (char *)xio);
		xio->lead = 0;
		xio->priv = ssl;
	}
	ERR_clear_error();
	if ((n = SSL_do_handshake(ssl)) == 1) {
		xtls_ktls_learn(ssl);
		return IO_DONE;
	}
	/*
	 * OpenSSL recognizes "GET ", "POST", "HEAD", "PUT " and "CONNECT"
	 * where a record header should be, and sends no alert then: the
	 * wire is still clean for a readable answer.
	 */
	reason = ERR_GET_REASON(ERR_peek_error());
	if (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST) {
		ERR_clear_error();
		snprintf(xtls_err, sizeof(xtls_err), "plain HTTP request");
		SSL_free(ssl);
		xio->priv = NULL;
		if (xio->lead == 4)
			(void)send(xio->fd, xtls_plain_400_head,
			    sizeof(xtls_plain_400_head) - 1, MSG_NOSIGNAL);
		else
			(void)send(xio->fd, xtls_plain_400,
			    sizeof(xtls_plain_400) - 1, MSG_NOSIGNAL);
		(void)shutdown(xio->fd, SHUT_WR);
		return IO_CLOSED;
	}
	return xtls_result(xio, ssl, n);
}

static ssize_t
xtls_read(struct xprt_io *xio, void *buf, size_t len, int *drained)
{
	SSL *ssl = xio->priv;
	int n, r;

	if (ssl == NULL)	/* refused in clear text: drain plain bytes */
		return xprt_plain.read(xio, buf, len, drained);
	if (len > INT_MAX)
		len = INT_MAX;
	xtls_short = -1;
	ERR_clear_error();
	n = SSL_read(ssl, buf, (int)len);
	if (n > 0) {
		*drained = xtls_short == 1 && !SSL_has_pending(ssl);
		return n;
	}
	r = xtls_result(xio, ssl, n);
	if (r == IO_AGAIN)
		*drained = xio->want == XPRT_WANT_READ && !SSL_has_pending(ssl);
	else if (r == IO_CLOSED)
		*drained = 1;
	return r;
}

static ssize_t
xtls_write(struct xprt_io *xio, const void *p, size_t len)
{
	SSL *ssl = xio->priv;
	int n;

	if (ssl == NULL)
		return IO_ERROR;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	if ((n = SSL_write(ssl, p, (int)len)) > 0)
		return n;
	n = xtls_result(xio, ssl, n);
	if (n == IO_CLOSED) {
		errno = EPIPE;
		n = IO_ERROR;
	}
	return n;
}

static ssize_t
xtls_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt, int flags)
{
	size_t len = 0, take;
	int i;

	(void)flags;		/* OpenSSL writes each record at once */
	/* One segment, or a first one of a record or more: as it is. */
	if (iovcnt == 1 || iov[0].iov_len >= sizeof(xtls_stage))
		return xtls_write(xio, iov[0].iov_base, iov[0].iov_len);
	for (i = 0; i < iovcnt && len < sizeof(xtls_stage); i++) {
		take = iov[i].iov_len;
		if (take > sizeof(xtls_stage) - len)
			take = sizeof(xtls_stage) - len;
		memcpy(xtls_stage + len, iov[i].iov_base, take);
		len += take;
	}
	return xtls_write(xio, xtls_stage, len);
}

static ssize_t
xtls_sendfile(struct xprt_io *xio, int fd, off_t *off, size_t count)
{
	SSL *ssl = xio->priv;
	ssize_t n, w;

	if (ssl == NULL)
		return IO_ERROR;
#ifndef OPENSSL_NO_KTLS
	if (BIO_get_ktls_send(SSL_get_wbio(ssl))) {
		ERR_clear_error();
		if ((n = SSL_sendfile(ssl, fd, *off, count, 0)) > 0) {
			*off += n;
			return n;
		}
		if (n == 0)
			return IO_CLOSED;
		return xtls_result(xio, ssl, (int)n);
	}
#endif
	if (count > sizeof(xtls_stage))
		count = sizeof(xtls_stage);
	for (;;) {
		n = pread(fd, xtls_stage, count, *off);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n == 0)
		return count > 0 ? IO_CLOSED : 0;	/* the file shrank */
	if (n < 0)
		return IO_ERROR;
	if ((w = xtls_write(xio, xtls_stage, (size_t)n)) > 0)
		*off += w;
	return w;
}

static int
xtls_shutdown(struct xprt_io *xio)
{
	SSL *ssl = xio->priv;

	if (ssl != NULL && SSL_is_init_finished(ssl) &&
	    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
		ERR_clear_error();
		(void)SSL_shutdown(ssl);	/* close_notify; no waiting */
		ERR_clear_error();
	}
	(void)shutdown(xio->fd, SHUT_WR);
	return IO_DONE;
}

static size_t
xtls_pending(const struct xprt_io *xio)
{
	SSL *ssl = xio->priv;
	int n;

	if (ssl == NULL)
		return 0;
	if ((n = SSL_pending(ssl)) > 0)
		return (size_t)n;
	return SSL_has_pending(ssl) ? 1 : 0;
}

static void
xtls_close(struct xprt_io *xio)
{
	SSL *ssl = xio->priv;

	if (ssl != NULL) {
		if (SSL_is_init_finished(ssl) &&
		    !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
			ERR_clear_error();
			(void)SSL_shutdown(ssl);
		}
		ERR_clear_error();
		SSL_free(ssl);
		xio->priv = NULL;
	}
	close(xio->fd);
	xio->fd = -1;
}

int
xprt_tls_ktls_send(const struct xprt_io *xio)
{
	SSL *ssl = xio->priv;

#ifndef OPENSSL_NO_KTLS
	return ssl != NULL && BIO_get_ktls_send(SSL_get_wbio(ssl)) ? 1 : 0;
#else
	(void)ssl;
	return 0;
#endif
}

int
xprt_tls_alpn(const struct xprt_io *xio, const unsigned char **name,
    unsigned *len)
{
	SSL *ssl = xio->priv;

	*name = NULL;
	*len = 0;
	if (ssl != NULL)
		SSL_get0_alpn_selected(ssl, name, len);
	return *len > 0;
}

int
xprt_tls_covers(const struct xprt_io *xio, const char *name)
{
	const struct tls_listen *tl = xio->cfg;
	SSL *ssl = xio->priv;

	if (ssl == NULL || tl == NULL || tl->tls == NULL)
		return 1;
	/* The certificate SNI would pick for name is the one in use. */
	return tls_ctx_for_name(tl->tls, name) == SSL_get_SSL_CTX(ssl);
}

const char *
xprt_tls_version(const struct xprt_io *xio)
{
	SSL *ssl = xio->priv;

	return ssl != NULL ? SSL_get_version(ssl) : "";
}

const struct xprt xprt_tls = {
	.name = "tls",
	.start = xtls_start,
	.read = xtls_read,
	.writev = xtls_writev,
	.sendfile = xtls_sendfile,
	.shutdown = xtls_shutdown,
	.pending = xtls_pending,
	.close = xtls_close,
};
