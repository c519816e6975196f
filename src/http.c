/*
 * http.c - turn a parsed request into a response: pick the site, map
 * the path to a file beneath its root, and build the status line,
 * headers and body segments in c->rq->resp. No I/O on the socket here;
 * conn.c sends what we queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "rep.h"

#define HTTP_PATH_MAX	4096

static const struct {
	int		 code;
	const char	*text;
} http_statuses[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 204, "No Content" },
	{ 206, "Partial Content" },
	{ 301, "Moved Permanently" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 412, "Precondition Failed" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 416, "Range Not Satisfiable" },
	{ 417, "Expectation Failed" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" },
};

const char *
http_status_text(int status)
{
	size_t i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].code == status)
			return http_statuses[i].text;
	return "Unknown";
}

/* ---- building responses ------------------------------------------------ */

void
resp_reset(struct resp *r)
{
	r->status = 0;
	r->close = 0;
	r->buf_len = 0;
	r->nsegs = 0;
	r->cur = 0;
	r->cur_done = 0;
	r->hdr_len = 0;
	r->sent = 0;
}

static void
resp_reserve(struct resp *r, size_t more)
{
	size_t cap;

	if (r->buf_len + more <= r->buf_cap)
		return;
	cap = r->buf_cap ? r->buf_cap : 512;
	while (cap < r->buf_len + more)
		cap *= 2;
	r->buf = xrealloc(r->buf, cap);
	r->buf_cap = cap;
}

void
resp_append(struct resp *r, const char *p, size_t len)
{
	resp_reserve(r, len);
	memcpy(r->buf + r->buf_len, p, len);
	r->buf_len += len;
}

void
resp_printf(struct resp *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	resp_reserve(r, 256);
	va_start(ap, fmt);
	n = vsnprintf(r->buf + r->buf_len, r->buf_cap - r->buf_len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= r->buf_cap - r->buf_len) {
		resp_reserve(r, (size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(r->buf + r->buf_len, r->buf_cap - r->buf_len, fmt, ap);
		va_end(ap);
	}
	r->buf_len += (size_t)n;
}

static struct seg *
resp_seg(struct resp *r, int kind, size_t len)
{
	struct seg *s;

	if (r->nsegs == RESP_MAXSEG)
		abort();	/* a caller bug: segments are counted up front */
	s = &r->segs[r->nsegs++];
	s->kind = kind;
	s->len = len;
	return s;
}

void
resp_seg_buf(struct resp *r, size_t off, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_BUF, len)->u.boff = off;
}

void
resp_seg_mem(struct resp *r, const char *p, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_MEM, len)->u.mem = p;
}

void
resp_seg_file(struct resp *r, off_t off, size_t len)
{
	if (len > 0)
		resp_seg(r, SEG_FILE, len)->u.foff = off;
}

/*
 * The response sends from fd, found by http_lookup(): from now on it
 * holds the cache entry fe, or without one the fd itself. A small cached
 * file goes out from memory, in the same write as the headers: the file
 * segments added so far are switched to it here, later ones by calling
 * resp_file_mem() once they are in place.
 */
void
resp_file_hold(struct resp *r, struct fcache_entry *fe, int fd)
{
	r->fd = fd;
	r->fe = fe;
	r->fd_owned = fe == NULL;
	resp_file_mem(r);
}

/* Sends from a cached file whose bytes are in memory: use those. */
void
resp_file_mem(struct resp *r)
{
	int i;

	if (r->fe == NULL || r->fe->data == NULL || r->fd != r->fe->fd)
		return;
	for (i = 0; i < r->nsegs; i++)
		if (r->segs[i].kind == SEG_FILE) {
			r->segs[i].u.mem = r->fe->data + r->segs[i].u.foff;
			r->segs[i].kind = SEG_MEM;
		}
}

/* Let go of the file the response was to send from, if any. */
void
resp_file_release(struct resp *r)
{
	if (r->fd != -1 && r->fd_owned)
		close(r->fd);
	r->fd = -1;
	r->fd_owned = 0;
	if (r->fe != NULL) {
		fcache_unref(r->fe);
		r->fe = NULL;
	}
}

/* Status line and the headers every response carries. */
void
http_head_begin(struct conn *c, int status)
{
	struct resp *r = &c->rq->resp;
	const char *text = http_status_text(status);
	size_t tlen = strlen(text);
	char line[64];

	static time_t last;
	static char common[64];
	static size_t common_len;
	time_t now = ev_time(worker->loop);

	r->status = status;
	/* "HTTP/1.1 200 OK", status always 3 digits: no printf here. */
	if (tlen > sizeof(line) - 15)
		tlen = sizeof(line) - 15;
	memcpy(line, "HTTP/1.1 ", 9);
	line[9] = (char)('0' + status / 100);
	line[10] = (char)('0' + status / 10 % 10);
	line[11] = (char)('0' + status % 10);
	line[12] = ' ';
	memcpy(line + 13, text, tlen);
	memcpy(line + 13 + tlen, "\r\n", 2);
	resp_append(r, line, 15 + tlen);
	/* Server and Date change once a second at most: built once for it. */
	if (now != last) {
		char date[COND_DATE_SIZE];
		size_t n = cond_format_date(now, date);

		/* A clock that cannot be an HTTP-date sends no Date (RFC 9110 6.6.1). */
		memcpy(common, "Server: porter\r\n", 16);
		common_len = 16;
		if (n != 0) {
			memcpy(common + 16, "Date: ", 6);
			memcpy(common + 22, date, n);
			memcpy(common + 22 + n, "\r\n", 2);
			common_len = 22 + n + 2;
		}
		last = now;
	}
	resp_append(r, common, common_len);
}

/* Connection header and the empty line; the head becomes segment 0. */
void
http_head_end(struct conn *c)
{
	struct resp *r = &c->rq->resp;

	if (r->close)
		c->keepalive = 0;
	if (!c->keepalive) {
		r->close = 1;
		resp_append(r, "Connection: close\r\n", 19);
	} else if (c->rq->req.version == 10)
		resp_append(r, "Connection: keep-alive\r\n", 24);
	resp_append(r, "\r\n", 2);
	r->hdr_len = r->buf_len;
	resp_seg_buf(r, 0, r->buf_len);
}

/*
 * The response is complete: a response to HEAD keeps its head and
 * drops whatever content was queued after it (RFC 9110 9.3.2), so the
 * headers, Content-Length included, are the ones GET would get. The one
 * place that knows HEAD has no body: every path that builds a response
 * (errors, the site's error pages, files, listings, redirects) ends
 * here, through http_handle() or http_error(). The method is only HEAD
 * once the parser read a whole "HEAD" token: a request that failed
 * before that is answered in full. The head is always segment 0
 * (http_head_end() makes it, and nothing is queued before it).
 */
static void
http_finish(struct conn *c)
{
	struct resp *r = &c->rq->resp;

	if (c->rq->req.method != HTTP_M_HEAD || r->nsegs <= 1)
		return;
	if (r->segs[0].kind != SEG_BUF || r->segs[0].u.boff != 0 ||
	    r->segs[0].len != r->hdr_len)
		abort();	/* a caller bug: content queued before the head */
	r->nsegs = 1;
}

/* An error answered with the site's own page when it has one. */
void
http_error_site(struct conn *c, size_t site, int status, int do_close)
{
	struct resp *r = &c->rq->resp;

	resp_file_release(r);
	resp_reset(r);
	r->close = do_close;
	if (serve_error_page(c, site, status))
		return;
	http_error(c, status, do_close);
}

void
http_error(struct conn *c, int status, int do_close)
{
	struct resp *r = &c->rq->resp;
	char body[512];
	size_t off;
	int n;

	resp_reset(r);
	r->close = do_close;
	n = snprintf(body, sizeof(body),
	    "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
	    "<body><h1>%d %s</h1><hr><address>porter</address></body></html>\n",
	    status, http_status_text(status), status, http_status_text(status));
	http_head_begin(c, status);
	resp_printf(r, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\n", n);
	if (status == 405)
		resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n", 27);
	http_head_end(c);
	off = r->buf_len;
	resp_append(r, body, (size_t)n);
	resp_seg_buf(r, off, (size_t)n);
	/* A parse error answered on its own, outside http_handle(). */
	http_finish(c);
}

/* ---- sites and files ------------------------------------------------------ */

/*
 * The site a host name names: exact names win, then the longest
 * "*.suffix" wildcard, as nginx does; case and trailing dots ignored.
 * Shared with tls.c, whose SNI callback must pick the certificate by
 * the same rules that pick the content by Host.
 */
size_t
http_site_match(const struct conf *conf, const char *p, size_t len)
{
	char host[256];
	size_t i, j, nlen, best = 0, best_len = 0;

	while (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len >= sizeof(host))
		return conf->nsites;
	for (i = 0; i < len; i++)
		host[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
	host[len] = '\0';

	for (i = 0; i < conf->nsites; i++)
		for (j = 0; j < conf->sites[i].nnames; j++)
			if (strcmp(conf->sites[i].names[j], host) == 0)
				return i;
	for (i = 0; i < conf->nsites; i++) {
		for (j = 0; j < conf->sites[i].nnames; j++) {
			const char *n = conf->sites[i].names[j];

			nlen = strlen(n);
			if (nlen > 2 && n[0] == '*' && n[1] == '.' &&
			    len > nlen - 1 && nlen > best_len &&
			    strcmp(host + len - (nlen - 1), n + 1) == 0) {
				best = i;
				best_len = nlen;
			}
		}
	}
	return best_len > 0 ? best : conf->nsites;
}

/* The site whose names match the Host (port and case ignored). */
static size_t
http_site(const struct conn *c, const char *buf)
{
	const struct conf *conf = worker->conf;
	const struct http_span *h = &c->rq->req.known[HTTP_H_HOST];
	size_t len, i;
	const char *p = buf + h->off;

	if (h->len == 0 || conf->nsites == 1)
		return conf->default_site;
	if (p[0] == '[') {
		const char *e = memchr(p, ']', h->len);

		len = e ? (size_t)(e - p) + 1 : h->len;
	} else {
		const char *e = memchr(p, ':', h->len);

		len = e ? (size_t)(e - p) : h->len;
	}
	i = http_site_match(conf, p, len);
	return i < conf->nsites ? i : conf->default_site;
}

/*
 * 301 to the directory's URL with a '/': built from the cleaned path the
 * directory was found by, percent-encoded again, never from the path as
 * sent. "//example.org/%2e%2e/dir" finds "/dir"; echoing it would send
 * the client to another host, and a '\\' that browsers read as '/' could
 * do the same. The query goes along, escaped where it needs to be.
 */
static void
http_redirect_slash(struct conn *c, const char *buf, const char *clean)
{
	struct resp *r = &c->rq->resp;
	const struct http_req *q = &c->rq->req;
	static const char body[] = "<!DOCTYPE html>\n<html><head><title>301 "
	    "Moved Permanently</title></head>\n<body><h1>301 Moved "
	    "Permanently</h1><hr><address>porter</address></body></html>\n";
	size_t clen = strlen(clean);

	http_head_begin(c, 301);
	/* "Location: ", the path at 3 bytes a byte plus the '/' it may
	 * gain in front, our '/', and the NUL encoding_uri_path() writes. */
	resp_reserve(r, 10 + 3 * clen + 1 + 1 + 1);
	resp_append(r, "Location: ", 10);
	r->buf_len += encoding_uri_path(clean, clen, r->buf + r->buf_len,
	    r->buf_cap - r->buf_len);
	resp_append(r, "/", 1);
	/* "?" alone is kept too: it was part of the URL. */
	if (q->query.len > 0 || memchr(buf + q->target.off, '?',
	    q->target.len) != NULL) {
		resp_append(r, "?", 1);
		resp_reserve(r, 3 * (size_t)q->query.len + 1);
		r->buf_len += encoding_uri_query(buf + q->query.off,
		    q->query.len, r->buf + r->buf_len, r->buf_cap - r->buf_len);
	}
	resp_printf(r, "\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n", sizeof(body) - 1);
	http_head_end(c);
	resp_seg_mem(r, body, sizeof(body) - 1);
}

/*
 * Find path beneath the site root: from the open-file cache when it can
 * vouch for it, else open and fstat. On success *fdp is the file (-1
 * for a cached directory) and *fep the cache entry or NULL.
 */
int
http_lookup(size_t site, int rootfd, const char *path,
    struct fcache_entry **fep, int *fdp, struct stat *st, int *errp)
{
	struct fcache_entry *fe;
	int fd;

	*fep = NULL;
	*fdp = -1;
	if ((fe = fcache_open(site, rootfd, path)) != NULL) {
		if (fe->err != 0) {
			*errp = fe->err;
			fcache_unref(fe);
			return -1;
		}
		*fep = fe;
		*fdp = fe->fd;
		*st = fe->st;
		return 0;
	}
	if ((fd = file_open_beneath(rootfd, path, O_RDONLY | O_NONBLOCK,
	    errp)) == -1)
		return -1;
	if (fstat(fd, st) == -1) {
		*errp = errno;
		close(fd);
		return -1;
	}
	*fdp = fd;
	return 0;
}

void
http_lookup_done(struct fcache_entry *fe, int fd)
{
	if (fe != NULL)
		fcache_unref(fe);
	else if (fd != -1)
		close(fd);
}

static void
http_respond(struct conn *c)
{
	const struct conf *conf = worker->conf;
	const struct http_req *q = &c->rq->req;
	const char *buf = c->in + c->in_off;
	struct resp *r = &c->rq->resp;
	static struct log_limit ll = LOG_LIMIT_INIT(LOG_LVL_WARN, "open");
	char path[HTTP_PATH_MAX];
	struct stat st;
	struct fcache_entry *fe = NULL;
	size_t site = worker->conf->default_site, i, plen;
	int fd = -1, err = 0, status, rootfd;

	resp_reset(r);
	if (q->version == 11)
		c->keepalive = !(q->flags & HTTP_F_CONN_CLOSE);
	else
		c->keepalive = (q->flags & HTTP_F_CONN_KEEPALIVE) &&
		    !(q->flags & HTTP_F_CONN_CLOSE);
	if (worker->draining || (conf->keepalive_requests > 0 &&
	    c->nreq >= (uint32_t)conf->keepalive_requests))
		c->keepalive = 0;

	r->fd = -1;
	site = http_site(c, buf);
	/*
	 * RFC 9110 9.1: a method we do not know (methods are case-sensitive,
	 * so "get" is one) is 501; 405 and Allow are for the methods we know
	 * and do not allow here (15.5.6, 15.6.2).
	 */
	if (q->method == HTTP_M_UNKNOWN) {
		http_error_site(c, site, 501, 0);
		return;
	}
	if (q->method != HTTP_M_GET && q->method != HTTP_M_HEAD) {
		if (q->method == HTTP_M_OPTIONS) {
			http_head_begin(c, 200);
			resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n"
			    "Content-Length: 0\r\n", 46);
			http_head_end(c);
			return;
		}
		http_error_site(c, site, 405, 0);
		return;
	}

	if (c->rq->req.target.len == 1 && buf[c->rq->req.target.off] == '*') {
		status = 400;	/* "*" is for OPTIONS only */
		goto fail;
	}
	/* "GET http://host?x" has an empty path: it means "/". */
	if ((status = q->path.len == 0 ? file_clean_path("/", 1, path,
	    sizeof(path) - 256) : file_clean_path(buf + q->path.off, q->path.len,
	    path, sizeof(path) - 256)) != 0)
		goto fail;
	if (file_is_hidden(path)) {
		status = 404;
		goto fail;
	}
	if ((rootfd = worker->rootfds[site]) == -1) {
		status = 500;
		goto fail;
	}
	if (http_lookup(site, rootfd, path, &fe, &fd, &st, &err) == -1)
		goto fail_errno;
	if (S_ISDIR(st.st_mode)) {
		const struct conf_site *s = &conf->sites[site];

		http_lookup_done(fe, fd);
		fe = NULL;
		fd = -1;
		plen = strlen(path);
		if (path[plen - 1] != '/') {
			http_redirect_slash(c, buf, path);
			return;
		}
		for (i = 0; i < s->nindex; i++) {
			int n = snprintf(path + plen, sizeof(path) - plen, "%s",
			    s->index[i]);

			/* Cut short, it would be another file's name. */
			if (n < 0 || (size_t)n >= sizeof(path) - plen)
				continue;
			if (http_lookup(site, rootfd, path, &fe, &fd, &st,
			    &err) == -1) {
				if (err == ENOENT)
					continue;
				goto fail_errno;
			}
			if (S_ISREG(st.st_mode))
				break;
			http_lookup_done(fe, fd);
			fe = NULL;
			fd = -1;
		}
		if (fd == -1) {
			path[plen] = '\0';
			if (s->listing) {
				serve_listing(c, site, path);
				return;
			}
			status = 403;	/* no index, no listing */
			goto fail;
		}
	}
	if (!S_ISREG(st.st_mode)) {
		status = 404;	/* fifos, sockets, devices: not ours to serve */
		goto fail;
	}
	serve_file(c, site, fe, fd, &st, path);	/* takes fe and fd */
	return;

fail_errno:
	status = file_errno_status(err);
	if (status >= 500)
		/* Out of descriptors, this comes with every request. */
		log_limited(&ll, ev_now(worker->loop), err, "open %s", path);
fail:
	http_lookup_done(fe, fd);
	http_error_site(c, site, status, status == 400);
}

void
http_handle(struct conn *c)
{
	http_respond(c);
	http_finish(c);
}
