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

/* Flushing whenever a worst-case line might not fit must leave room to
 * gather lines between flushes. */
_Static_assert(ALOG_BUF >= 2 * ACCESSLOG_LINE_MAX, "access log buffer too small");

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

/*
 * The fields are written into a buffer the caller sized for the worst
 * case (ACCESSLOG_LINE_MAX), so every copy is bounded by its field's cap.
 */
static char *
alog_put(char *d, const char *p, size_t len)
{
	memcpy(d, p, len);
	return d + len;
}

/* The bytes alog_quoted() escapes: control, DEL, non-ASCII, '"', '\'. */
static const uint8_t alog_esc[256] = {
	[0x00 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1, [0x7f ... 0xff] = 1,
};

/* A quoted field, cut at ACCESSLOG_FIELD_MAX bytes before escaping:
 * '"' and '\' become two bytes, control and non-ASCII bytes the four of
 * "\xNN", as Apache does. At most ACCESSLOG_QUOTED_MAX bytes. Runs of
 * plain bytes (nearly all of them) are copied whole. */
static char *
alog_quoted(char *d, const char *p, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, run;

	if (len > ACCESSLOG_FIELD_MAX)
		len = ACCESSLOG_FIELD_MAX;
	*d++ = '"';
	if (p == NULL || len == 0) {
		*d++ = '-';
		len = 0;
	}
	while (i < len) {
		unsigned char ch;

		for (run = i; run < len && !alog_esc[(unsigned char)p[run]];
		    run++)
			;
		d = alog_put(d, p + i, run - i);
		if ((i = run) == len)
			break;
		ch = (unsigned char)p[i++];
		*d++ = '\\';
		if (ch == '"' || ch == '\\')
			*d++ = (char)ch;
		else {
			*d++ = 'x';
			*d++ = hex[ch >> 4];
			*d++ = hex[ch & 15];
		}
	}
	*d++ = '"';
	return d;
}

static char *
alog_num(char *d, uint64_t v)
{
	char num[ACCESSLOG_NUM_MAX + 1];

	return alog_put(d, num, util_u64toa(v, num));
}

/*
 * The peer's address as text, formatted again only when it differs from
 * the last line's: inet_ntop() and snprintf() were a third of a line's
 * cost, and lines come in runs from one client (a keep-alive
 * connection, an HTTP/2 connection's streams). The port is not part of
 * it (the line's last field).
 */
static const char *
alog_addr(const struct sockaddr *sa, size_t *len)
{
	static sa_family_t fam;
	static uint8_t raw[16];
	static char text[NET_ADDRSTRLEN];
	static size_t n;
	const void *p = NULL;
	size_t plen = 0;

	if (sa->sa_family == AF_INET) {
		p = &((const struct sockaddr_in *)sa)->sin_addr;
		plen = 4;
	} else if (sa->sa_family == AF_INET6) {
		p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		plen = 16;
	}
	if (p == NULL || fam != sa->sa_family || memcmp(raw, p, plen) != 0) {
		net_addr_format(sa, text, sizeof(text), 0);
		n = strnlen(text, sizeof(text) - 1);
		/* Only an address can be told apart from the next one. */
		fam = p != NULL ? sa->sa_family : AF_UNSPEC;
		if (p != NULL)
			memcpy(raw, p, plen);
	}
	*len = n;
	return text;
}

size_t
accesslog_format(char *dst, size_t cap, const struct accesslog_rec *rec)
{
	char *d = dst;
	const char *t, *addr;
	size_t alen;

	if (cap < ACCESSLOG_LINE_MAX)
		return 0;
	addr = alog_addr(rec->peer, &alen);
	d = alog_put(d, addr, alen);
	d = alog_put(d, " - - ", 5);
	t = util_log_time(rec->time);
	d = alog_put(d, t, strnlen(t, UTIL_LOG_TIME_SIZE - 1));
	*d++ = ' ';
	d = alog_quoted(d, rec->line, rec->line_len);
	*d++ = ' ';
	d = alog_num(d, (uint64_t)rec->status);
	*d++ = ' ';
	if (rec->bytes == 0)
		*d++ = '-';
	else
		d = alog_num(d, rec->bytes);
	*d++ = ' ';
	d = alog_quoted(d, rec->referer, rec->referer_len);
	*d++ = ' ';
	d = alog_quoted(d, rec->agent, rec->agent_len);
	*d++ = ' ';
	d = alog_num(d, (uint64_t)net_addr_port(rec->peer));
	*d++ = '\n';
	return (size_t)(d - dst);
}

void
accesslog_append(const struct accesslog_rec *rec)
{
	if (alog_fd == -1)
		return;
	/* Room for the worst case, whatever this line turns out to be. */
	if (alog_len > ALOG_BUF - ACCESSLOG_LINE_MAX)
		accesslog_flush();
	alog_len += accesslog_format(alog_buf + alog_len, ALOG_BUF - alog_len,
	    rec);
}
