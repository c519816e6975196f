/*
 * xprt.h - the transport contract: how a connection's bytes reach the
 * wire. Above it (conn.c, the protocols) nothing calls read, send,
 * sendmsg, sendfile or shutdown on a client socket; below it sit the
 * kernel socket (xprt_plain.c) and, later, TLS.
 *
 * Stand-alone: needs only libc. A transport never logs and never
 * closes the connection by itself; it reports one IO_* result and the
 * caller decides.
 *
 * Results. Every operation returns a count of bytes (> 0) or one of:
 *   IO_DONE    start/shutdown finished (0, never a byte count)
 *   IO_AGAIN   nothing can be done now: wait for the socket (xio->want
 *              says which way: a TLS handshake or renegotiation may
 *              need to read in order to write)
 *   IO_CLOSED  the peer ended its side in order (read: end of file;
 *              sendfile: the file is shorter than asked, so framing is
 *              lost and the caller must close)
 *   IO_ERROR   the connection is broken (reset, EPIPE, a TLS alert);
 *              errno is left as the system set it, for debug logs
 *   IO_NOTSUP  sendfile: this transport cannot send from a file; copy
 *              the bytes and use writev
 *
 * Readiness. Connections are registered edge-triggered, so a transport
 * must say when it has drained the socket: read() sets *drained when
 * the next read would only say IO_AGAIN and epoll will announce new
 * bytes. For the kernel socket, a read shorter than the buffer means
 * exactly that (porter's one-read-per-request trick). A transport that
 * holds decrypted bytes epoll never sees (TLS) keeps *drained at 0 and
 * reports them through pending() instead. The peer's end of file is
 * the exception: when it arrived together with the last bytes, the
 * read that returns those bytes says drained, and epoll announces the
 * FIN (EPOLLRDHUP) only once; a caller that saw EPOLLRDHUP reads on
 * until IO_CLOSED.
 */
#ifndef PORTER_XPRT_H
#define PORTER_XPRT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

enum io_result {
	IO_DONE = 0,
	IO_AGAIN = -1,
	IO_CLOSED = -2,
	IO_ERROR = -3,
	IO_NOTSUP = -4
};

/* writev flags */
#define XPRT_MORE	0x01	/* more bytes follow soon: hold the tail back
				 * so it shares a packet with them (or with
				 * the FIN of a close right after) */

/* xio->want after IO_AGAIN */
#define XPRT_WANT_READ	0x01
#define XPRT_WANT_WRITE	0x02

/* One connection's end of the transport; embedded in struct conn. */
struct xprt_io {
	int		 fd;		/* the client socket, owned */
	uint8_t		 want;		/* XPRT_WANT_* after IO_AGAIN */
	uint8_t		 lead;		/* TLS: how much of the stream's start
					 * spells "HEAD" (4: all; 0xff: not) */
	void		*priv;		/* the transport's state (TLS session);
					 * NULL for the kernel socket */
	const void	*cfg;		/* the listener's settings for the
					 * transport (listener.xprt_cfg), borrowed */
};

struct xprt {
	const char	*name;
	/*
	 * Begin on a just-accepted socket (a TLS handshake). IO_DONE: ready
	 * for read/write; IO_AGAIN: call again when xio->want is ready;
	 * IO_ERROR: close; IO_CLOSED: the client spoke another protocol and
	 * the transport has answered in clear text and shut its side down
	 * (a 400 to plain HTTP on a TLS port): read (plain bytes then) until
	 * IO_CLOSED, then close, so the answer is not lost to a reset.
	 */
	int		(*start)(struct xprt_io *xio);
	/*
	 * Read up to len bytes into buf: > 0 bytes read, IO_AGAIN, IO_CLOSED
	 * (end of file) or IO_ERROR. Sets *drained (see above) on every
	 * result but IO_ERROR; never reads 0 bytes for len > 0.
	 */
	ssize_t		(*read)(struct xprt_io *xio, void *buf, size_t len,
			    int *drained);
	/*
	 * Write the segments in order: > 0 bytes written (may be fewer than
	 * asked: call again with the rest), IO_AGAIN or IO_ERROR. flags:
	 * XPRT_MORE. Never raises SIGPIPE.
	 */
	ssize_t		(*writev)(struct xprt_io *xio, const struct iovec *iov,
			    int iovcnt, int flags);
	/*
	 * Send count bytes of file fd from *off, advancing *off: > 0 bytes
	 * sent, IO_AGAIN, IO_CLOSED (the file ended early), IO_ERROR, or
	 * IO_NOTSUP when the transport cannot (the caller then reads the
	 * file and uses writev).
	 */
	ssize_t		(*sendfile)(struct xprt_io *xio, int fd, off_t *off,
			    size_t count);
	/*
	 * Stop sending: the peer sees end of file (a TLS close_notify, then
	 * the TCP FIN). Reading still works, for a lingering close.
	 * IO_DONE, IO_AGAIN or IO_ERROR.
	 */
	int		(*shutdown)(struct xprt_io *xio);
	/* Bytes the transport holds that a read would return at once. */
	size_t		(*pending)(const struct xprt_io *xio);
	/* Free the transport's state and close the socket. */
	void		(*close)(struct xprt_io *xio);
};

/* xprt_plain.c: the kernel socket */
extern const struct xprt xprt_plain;
/* xprt_tls.c: TLS over the kernel socket (OpenSSL); xio->cfg is a
 * struct tls_listen (tls.h) */
extern const struct xprt xprt_tls;

#endif /* PORTER_XPRT_H */
