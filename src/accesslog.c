/*
 * accesslog.c - the access log, Combined Log Format plus the client's
 * port as a last field (tools that read "combined" ignore what follows
 * the user agent):
 *
 *   127.0.0.1 - - [21/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 1024 "-" "curl/7.88.1" 51234
 *
 * Each worker buffers lines and writes whole lines with O_APPEND, so
 * workers never split each other's lines. The buffer is flushed when
 * nearly full, once a second, and on exit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

#define ALOG_BUF	65536
#define ALOG_FIELD	2048	/* longest request line/referer/agent logged */

static int	 alog_fd = -1;
static char	 alog_buf[ALOG_BUF];
static size_t	 alog_len;

void
accesslog_init(int fd)
{
	alog_fd = fd;
	alog_len = 0;
}

void
accesslog_set_fd(int fd)
{
	accesslog_flush();
	if (alog_fd != -1 && alog_fd != STDERR_FILENO && alog_fd != fd)
		close(alog_fd);
	alog_fd = fd;
}

void
accesslog_flush(void)
{
	static struct log_limit ll = LOG_LIMIT_INIT(LOG_LVL_WARN,
	    "access log write");
	size_t off = 0;
	ssize_t n;

	while (off < alog_len && alog_fd != -1) {
		n = write(alog_fd, alog_buf + off, alog_len - off);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			/* Disk full or gone: drop the lines, keep serving,
			 * and say so once a second, not once a flush. */
			log_limited(&ll, ev_clock_ms(), n == 0 ? EIO : errno,
			    "access log write");
			break;
		}
		off += (size_t)n;
	}
	alog_len = 0;
}

static void
alog_put(const char *p, size_t len)
{
	memcpy(alog_buf + alog_len, p, len);
	alog_len += len;
}

/* A quoted field; '"', '\' and control bytes escaped as Apache does. */
static void
alog_quoted(const char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	if (len > ALOG_FIELD)
		len = ALOG_FIELD;
	alog_put("\"", 1);
	if (p == NULL || len == 0)
		alog_put("-", 1);
	for (i = 0; p != NULL && i < len; i++) {
		unsigned char ch = (unsigned char)p[i];

		if (ch == '"' || ch == '\\') {
			alog_buf[alog_len++] = '\\';
			alog_buf[alog_len++] = (char)ch;
		} else if (ch < 0x20 || ch >= 0x7f) {
			alog_buf[alog_len++] = '\\';
			alog_buf[alog_len++] = 'x';
			alog_buf[alog_len++] = hex[ch >> 4];
			alog_buf[alog_len++] = hex[ch & 15];
		} else
			alog_buf[alog_len++] = (char)ch;
	}
	alog_put("\"", 1);
}

void
accesslog_write(struct conn *c)
{
	const struct http_req *q = &c->rq->req;
	const char *buf = c->in != NULL ? c->in + c->in_off : NULL;
	char addr[NET_ADDRSTRLEN], num[24];
	const char *t;
	uint64_t body;
	size_t n;

	if (alog_fd == -1)
		return;
	/* Room for the worst case: four escaped fields and the rest. */
	if (alog_len > ALOG_BUF - (4 * ALOG_FIELD + 512))
		accesslog_flush();

	net_addr_format((const struct sockaddr *)&c->peer, addr, sizeof(addr), 0);
	alog_put(addr, strlen(addr));
	alog_put(" - - ", 5);
	t = util_log_time(ev_time(worker->loop));
	alog_put(t, strlen(t));
	alog_put(" ", 1);
	alog_quoted(buf != NULL && q->line_len ? buf : NULL, q->line_len);
	alog_put(" ", 1);
	n = util_u64toa((uint64_t)c->rq->resp.status, num);
	alog_put(num, n);
	alog_put(" ", 1);
	body = c->rq->resp.sent > c->rq->resp.hdr_len ? c->rq->resp.sent - c->rq->resp.hdr_len : 0;
	if (body == 0)
		alog_put("-", 1);
	else {
		n = util_u64toa(body, num);
		alog_put(num, n);
	}
	alog_put(" ", 1);
	if (buf != NULL && q->head_len)
		alog_quoted(buf + q->known[HTTP_H_REFERER].off,
		    q->known[HTTP_H_REFERER].len);
	else
		alog_quoted(NULL, 0);
	alog_put(" ", 1);
	if (buf != NULL && q->head_len)
		alog_quoted(buf + q->known[HTTP_H_USER_AGENT].off,
		    q->known[HTTP_H_USER_AGENT].len);
	else
		alog_quoted(NULL, 0);
	alog_put(" ", 1);
	n = util_u64toa((uint64_t)net_addr_port((const struct sockaddr *)&c->peer),
	    num);
	alog_put(num, n);
	alog_put("\n", 1);
}
