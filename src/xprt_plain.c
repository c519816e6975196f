/*
 * xprt_plain.c - the kernel-socket transport (see xprt.h): read,
 * sendmsg with MSG_MORE, sendfile, shutdown, close. No state of its
 * own, so xio->priv stays NULL.
 *
 * The tricks that make a keep-alive request cost one read and one
 * write live here: a short read means the socket is drained (no read
 * that only says EAGAIN), and MSG_MORE lets the last bytes of a
 * response and the FIN of a close share a packet.
 */
#include <errno.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "xprt.h"

static int
xprt_plain_start(struct xprt_io *xio)
{
	(void)xio;
	return IO_DONE;		/* nothing to negotiate */
}

static ssize_t
xprt_plain_read(struct xprt_io *xio, void *buf, size_t len, int *drained)
{
	ssize_t n;

	for (;;) {
		n = read(xio->fd, buf, len);
		if (n > 0) {
			*drained = (size_t)n < len;
			return n;
		}
		if (n == 0) {
			*drained = 1;
			return IO_CLOSED;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			*drained = 1;
			xio->want = XPRT_WANT_READ;
			return IO_AGAIN;
		}
		return IO_ERROR;
	}
}

static ssize_t
xprt_plain_writev(struct xprt_io *xio, const struct iovec *iov, int iovcnt,
    int flags)
{
	struct msghdr msg;
	ssize_t n;

	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	for (;;) {
		n = sendmsg(xio->fd, &msg, MSG_NOSIGNAL |
		    ((flags & XPRT_MORE) ? MSG_MORE : 0));
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			xio->want = XPRT_WANT_WRITE;
			return IO_AGAIN;
		}
		return IO_ERROR;
	}
}

static ssize_t
xprt_plain_sendfile(struct xprt_io *xio, int fd, off_t *off, size_t count)
{
	ssize_t n;

	for (;;) {
		n = sendfile(xio->fd, fd, off, count);
		if (n > 0)
			return n;
		if (n == 0)
			return count > 0 ? IO_CLOSED : 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			xio->want = XPRT_WANT_WRITE;
			return IO_AGAIN;
		}
		return IO_ERROR;
	}
}

static int
xprt_plain_shutdown(struct xprt_io *xio)
{
	/* ENOTCONN (the peer reset meanwhile) changes nothing for us. */
	(void)shutdown(xio->fd, SHUT_WR);
	return IO_DONE;
}

static size_t
xprt_plain_pending(const struct xprt_io *xio)
{
	(void)xio;
	return 0;		/* the kernel's bytes are epoll's business */
}

static void
xprt_plain_close(struct xprt_io *xio)
{
	/* close() drops the epoll registration: no epoll_ctl needed. */
	close(xio->fd);
	xio->fd = -1;
}

const struct xprt xprt_plain = {
	.name = "plain",
	.start = xprt_plain_start,
	.read = xprt_plain_read,
	.writev = xprt_plain_writev,
	.sendfile = xprt_plain_sendfile,
	.shutdown = xprt_plain_shutdown,
	.pending = xprt_plain_pending,
	.close = xprt_plain_close,
};
