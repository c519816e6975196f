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
 * Writes: OpenSSL has no writev. Up to a record's worth (a head and a
 * small body) is copied into one staging buffer and leaves as one
 * record and one write(); a single segment is written from where it
 * is. More than a record (a large body, HTTP/2's gathered frames) is
 * sealed record by record into one output buffer and leaves in one
 * send() of up to XTLS_GATHER plaintext bytes: OpenSSL writes each
 * record to its BIO at once, and the socket BIO would make each one a
 * system call of its own. For that the connection's write BIO becomes
 * porter's (struct xtls_wb, put in place at its first such write;
 * never under kernel TLS, which must write the socket itself).
 *
 * Retries: after IO_AGAIN the caller retries with the same segments
 * (or more), which rebuild the same records: what OpenSSL requires of
 * a retried SSL_write (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the
 * address change). When the records were sealed but send() took only
 * part of them, the rest is held by the write BIO (the connection's
 * only buffer, bounded by one gather) and the call says IO_AGAIN; the
 * retry sends what is held first and answers with the plaintext count
 * those records carried, without sealing anything again. From then on
 * a record at a time is sealed until a send() takes all, so a client
 * that reads slowly makes porter hold one record, not a gather.
 *
 * Files: SSL_sendfile() only when kernel TLS took over sending (never
 * on kernels without the tls module: there OpenSSL's sendfile fails);
 * otherwise pread() up to a gather's worth and seal it as above.
 *
 * Closing: one non-blocking SSL_shutdown() sends close_notify (RFC 8446
 * 6.1), unless the session failed; its result is not waited for.
 *
 * Process-wide state: the staging, file and output buffers and the
 * last read's length check, all used only within one call (workers are
 * single-threaded); what must outlive a call is the write BIO's.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "xprt.h"
#include "xprt_tls.h"
#include "tls.h"

#define XTLS_RECORD	16384	/* TLS plaintext record limit (RFC 8446 5.1) */
#define XTLS_GATHER	(4 * XTLS_RECORD)	/* plaintext per send() */
/* The sealed records of one gather, with room left for two more (one
 * OpenSSL may still hold from an earlier call, and the next). */
#define XTLS_OUT	(6 * SSL3_RT_MAX_PACKET_SIZE)

static unsigned char xtls_stage[XTLS_RECORD];
static unsigned char xtls_file[XTLS_GATHER];	/* file bytes to seal */
static unsigned char xtls_out[XTLS_OUT];	/* sealed, not yet sent */
static size_t xtls_out_len;
/* The last socket read in this call: -1 none, 0 it filled the buffer, 1 short. */
static int xtls_short;
static char xtls_err[256];

/* What a client speaking plain HTTP to a TLS port gets (nginx does the same). */
#define XTLS_PLAIN_BODY	"This port speaks HTTPS: plain HTTP was sent to it.\n"
_Static_assert(sizeof(XTLS_PLAIN_BODY) - 1 == 51, "Content-Length below");
static const char xtls_plain_400[] =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 51\r\n"
    "Connection: close\r\n"
    "\r\n"
    XTLS_PLAIN_BODY;

/* For HEAD, the same answer without its content (RFC 9110 9.3.2). */
#define XTLS_PLAIN_400_HEAD	(sizeof(xtls_plain_400) - sizeof(XTLS_PLAIN_BODY))

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
		(void)send(xio->fd, xtls_plain_400, xio->lead == 4 ?
		    XTLS_PLAIN_400_HEAD : sizeof(xtls_plain_400) - 1,
		    MSG_NOSIGNAL);
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

/* ---- the write BIO -------------------------------------------------------- */

/*
 * A connection's write BIO once it has sent more than a record at once.
 * While xtls_seal() runs (gather set), records are appended to
 * xtls_out; at other times (alerts, what SSL_read answers such as a
 * TLS 1.3 KeyUpdate, close_notify) it writes through to the socket,
 * behind whatever is held so the records stay in order. Freed with the
 * SSL.
 */
struct xtls_wb {
	int		 fd;
	int		 gather;	/* append to xtls_out, do not send */
	unsigned char	*held;		/* sealed bytes send() left; malloc'd */
	size_t		 held_len, held_off;
	size_t		 held_plain;	/* plaintext they carry: the retry's answer */
	int		 tight;		/* send() took not all: seal a record at
					 * a time until one takes all, so a slow
					 * reader holds one record, not a gather */
};

static BIO_METHOD *xtls_wb_meth;
static int xtls_wb_type;

static ssize_t
xtls_send(int fd, const void *p, size_t len)
{
	ssize_t n;

	do
		n = send(fd, p, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Send what is held: 0 when nothing is left, IO_AGAIN or IO_ERROR. */
static int
xtls_wb_drain(struct xtls_wb *wb)
{
	ssize_t n;

	while (wb->held != NULL) {
		n = xtls_send(wb->fd, wb->held + wb->held_off,
		    wb->held_len - wb->held_off);
		if (n < 0)
			return errno == EAGAIN ? IO_AGAIN : IO_ERROR;
		wb->held_off += (size_t)n;
		if (wb->held_off == wb->held_len) {
			free(wb->held);
			wb->held = NULL;
			wb->held_len = wb->held_off = 0;
		}
	}
	return 0;
}

/* Keep len bytes from p behind what is held; -1 out of memory. */
static int
xtls_wb_hold(struct xtls_wb *wb, const void *p, size_t len)
{
	unsigned char *h;
	size_t keep = wb->held_len - wb->held_off;

	if ((h = malloc(keep + len)) == NULL)
		return -1;
	if (keep > 0)
		memcpy(h, wb->held + wb->held_off, keep);
	memcpy(h + keep, p, len);
	free(wb->held);
	wb->held = h;
	wb->held_off = 0;
	wb->held_len = keep + len;
	return 0;
}

static int
xtls_wb_write(BIO *b, const char *p, size_t len, size_t *written)
{
	struct xtls_wb *wb = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	if (wb->gather) {
		if (len > sizeof(xtls_out) - xtls_out_len) {
			/* Full: OpenSSL keeps the record for the next call. */
			BIO_set_retry_write(b);
			return 0;
		}
		memcpy(xtls_out + xtls_out_len, p, len);
		xtls_out_len += len;
		*written = len;
		return 1;
	}
	if (xtls_wb_drain(wb) == IO_ERROR)
		return 0;
	if (wb->held != NULL) {
		/* Behind held records; the caller's retry sends them all. */
		if (xtls_wb_hold(wb, p, len) == -1)
			return 0;
		*written = len;
		return 1;
	}
	if ((n = xtls_send(wb->fd, p, len)) < 0) {
		if (errno == EAGAIN)
			BIO_set_retry_write(b);
		return 0;
	}
	*written = (size_t)n;
	return 1;
}

static long
xtls_wb_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b; (void)num; (void)ptr;
	/* Nothing is buffered between calls but what only a retry may send. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
xtls_wb_destroy(BIO *b)
{
	struct xtls_wb *wb = BIO_get_data(b);

	if (wb != NULL) {
		free(wb->held);
		free(wb);
		BIO_set_data(b, NULL);
	}
	return 1;
}

static struct xtls_wb *
xtls_wb_of(SSL *ssl)
{
	BIO *b = SSL_get_wbio(ssl);

	if (xtls_wb_meth == NULL || b == NULL ||
	    BIO_method_type(b) != xtls_wb_type)
		return NULL;
	return BIO_get_data(b);
}

/*
 * Put a write BIO of ours in place of the socket BIO (which stays the
 * read BIO). NULL when kernel TLS sends (it writes the socket itself)
 * or out of memory: then each record is a write() of its own.
 */
static struct xtls_wb *
xtls_wb_attach(struct xprt_io *xio, SSL *ssl)
{
	struct xtls_wb *wb;
	BIO *b;

#ifndef OPENSSL_NO_KTLS
	if (BIO_get_ktls_send(SSL_get_wbio(ssl)))
		return NULL;
#endif
	if (xtls_wb_meth == NULL) {
		int type = BIO_get_new_index();
		BIO_METHOD *m;

		if (type == -1 || (m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK,
		    "porter TLS send")) == NULL)
			return NULL;
		if (!BIO_meth_set_write_ex(m, xtls_wb_write) ||
		    !BIO_meth_set_ctrl(m, xtls_wb_ctrl) ||
		    !BIO_meth_set_destroy(m, xtls_wb_destroy)) {
			BIO_meth_free(m);
			return NULL;
		}
		xtls_wb_type = type | BIO_TYPE_SOURCE_SINK;
		xtls_wb_meth = m;
	}
	if ((wb = calloc(1, sizeof(*wb))) == NULL)
		return NULL;
	if ((b = BIO_new(xtls_wb_meth)) == NULL) {
		free(wb);
		return NULL;
	}
	wb->fd = xio->fd;
	BIO_set_data(b, wb);
	BIO_set_init(b, 1);
	SSL_set0_wbio(ssl, b);
	return wb;
}

/* ---- writing ---------------------------------------------------------------- */

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

/*
 * The plaintext of the next record from segment i, offset off: from the
 * segment itself when it has a record's worth or is the last one, else
 * gathered across segments in xtls_stage. Its length; 0 at the end.
 */
static size_t
xtls_record(const struct iovec *iov, int iovcnt, int i, size_t off,
    const void **p)
{
	size_t len = 0, take;

	if (i >= iovcnt)
		return 0;
	take = iov[i].iov_len - off;
	if (take >= XTLS_RECORD || i + 1 == iovcnt) {
		*p = (const char *)iov[i].iov_base + off;
		return take < XTLS_RECORD ? take : XTLS_RECORD;
	}
	for (; i < iovcnt && len < XTLS_RECORD; i++, off = 0) {
		take = iov[i].iov_len - off;
		if (take > XTLS_RECORD - len)
			take = XTLS_RECORD - len;
		memcpy(xtls_stage + len, (const char *)iov[i].iov_base + off,
		    take);
		len += take;
	}
	*p = xtls_stage;
	return len;
}

/*
 * Seal up to XTLS_GATHER plaintext bytes of the segments (a record's
 * worth while wb->tight) into records in xtls_out and send them at
 * once. The plaintext count, or IO_AGAIN (what send() did not take is
 * held: see "Retries" above), IO_ERROR.
 */
static ssize_t
xtls_seal(struct xprt_io *xio, SSL *ssl, struct xtls_wb *wb,
    const struct iovec *iov, int iovcnt)
{
	const void *p;
	size_t done = 0, off = 0, len, most;
	ssize_t sent;
	int i = 0, n, r = 0;

	most = wb->tight ? XTLS_RECORD : XTLS_GATHER;
	xtls_out_len = 0;
	wb->gather = 1;
	ERR_clear_error();
	while (done < most &&
	    sizeof(xtls_out) - xtls_out_len >= 2 * SSL3_RT_MAX_PACKET_SIZE &&
	    (len = xtls_record(iov, iovcnt, i, off, &p)) > 0) {
		if ((n = SSL_write(ssl, p, (int)len)) <= 0) {
			r = xtls_result(xio, ssl, n);
			break;
		}
		done += (size_t)n;
		/* Past what went in, skipping empty segments. */
		for (len = (size_t)n; i < iovcnt; i++, off = 0) {
			if (len < iov[i].iov_len - off) {
				off += len;
				break;
			}
			len -= iov[i].iov_len - off;
		}
	}
	wb->gather = 0;
	if (r == IO_ERROR || r == IO_CLOSED) {
		if (r == IO_CLOSED)
			errno = EPIPE;
		return IO_ERROR;
	}
	sent = xtls_out_len > 0 ? xtls_send(wb->fd, xtls_out, xtls_out_len) : 0;
	if (sent < 0) {
		if (errno != EAGAIN)
			return IO_ERROR;
		sent = 0;
	}
	wb->tight = (size_t)sent < xtls_out_len;
	if (wb->tight) {
		if (xtls_wb_hold(wb, xtls_out + sent, xtls_out_len - (size_t)sent)
		    == -1)
			return IO_ERROR;
		wb->held_plain = done;
		xio->want = XPRT_WANT_WRITE;
		return IO_AGAIN;
	}
	return done > 0 ? (ssize_t)done : r;
}

/*
 * Held records first: IO_AGAIN or IO_ERROR while they cannot all go, then
 * the plaintext count they carried (> 0), or 0: go on and write.
 */
static ssize_t
xtls_held(struct xprt_io *xio, struct xtls_wb *wb)
{
	ssize_t n;

	if (wb == NULL || wb->held == NULL)
		return 0;
	if ((n = xtls_wb_drain(wb)) != 0) {
		if (n == IO_AGAIN)
			xio->want = XPRT_WANT_WRITE;
		return n;
	}
	n = (ssize_t)wb->held_plain;
	wb->held_plain = 0;
	return n;
}

static ssize_t
xtls_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt, int flags)
{
	SSL *ssl = xio->priv;
	struct xtls_wb *wb;
	const void *p;
	size_t len = 0;
	ssize_t n;
	int i;

	(void)flags;		/* OpenSSL writes each record at once */
	if (ssl == NULL)
		return IO_ERROR;
	wb = xtls_wb_of(ssl);
	if ((n = xtls_held(xio, wb)) != 0)
		return n;
	for (i = 0; i < iovcnt && len <= XTLS_RECORD; i++)
		len += iov[i].iov_len;
	if (len > XTLS_RECORD &&
	    (wb != NULL || (wb = xtls_wb_attach(xio, ssl)) != NULL))
		return xtls_seal(xio, ssl, wb, iov, iovcnt);
	/* One record: a head and a small body share it. */
	if ((len = xtls_record(iov, iovcnt, 0, 0, &p)) == 0)
		return 0;	/* nothing to write (SSL_write would say error) */
	return xtls_write(xio, p, len);
}

static ssize_t
xtls_sendfile(struct xprt_io *xio, int fd, off_t *off, size_t count)
{
	SSL *ssl = xio->priv;
	struct xtls_wb *wb;
	struct iovec iov;
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
	wb = xtls_wb_of(ssl);
	if ((n = xtls_held(xio, wb)) != 0) {
		if (n > 0)
			*off += n;
		return n;
	}
	if (count > XTLS_RECORD && wb == NULL)
		wb = xtls_wb_attach(xio, ssl);
	if (count > (wb != NULL && !wb->tight ? XTLS_GATHER : XTLS_RECORD))
		count = wb != NULL && !wb->tight ? XTLS_GATHER : XTLS_RECORD;
	for (;;) {
		n = pread(fd, xtls_file, count, *off);
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n == 0)
		return count > 0 ? IO_CLOSED : 0;	/* the file shrank */
	if (n < 0)
		return IO_ERROR;
	if (wb != NULL) {
		iov.iov_base = xtls_file;
		iov.iov_len = (size_t)n;
		w = xtls_seal(xio, ssl, wb, &iov, 1);
	} else
		w = xtls_write(xio, xtls_file, (size_t)n);
	if (w > 0)
		*off += w;
	return w;
}

static int
xtls_shutdown(struct xprt_io *xio)
{
	SSL *ssl = xio->priv;
	struct xtls_wb *wb;

	if (ssl != NULL && (wb = xtls_wb_of(ssl)) != NULL)
		(void)xtls_wb_drain(wb);	/* callers wrote all: a formality */
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
	return tls_cert_for_name(tl->tls, name) == SSL_get_certificate(ssl);
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
