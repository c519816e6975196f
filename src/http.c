/*
 * http.c - turn a request into a response: pick the site, check the
 * method, map the path to a file beneath its root and hand it to a
 * handler (serve.c), rendering the status a handler returns. Knows
 * nothing of the wire: the request comes in as a struct request, the
 * response goes out as a struct resp (resp.c), and h1.c turns both
 * into HTTP/1.1 bytes.
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
#include "climit.h"
#include "rep.h"

#define HTTP_PATH_MAX	4096

/* The worker's configuration, site roots and loop (http_init). */
static struct {
	const struct conf *conf;
	const int	*rootfds;
	struct ev_loop	*loop;		/* its clock, for rate-limited logs */
} http;

void
http_init(const struct conf *conf, const int *rootfds, struct ev_loop *loop)
{
	http.conf = conf;
	http.rootfds = rootfds;
	http.loop = loop;
}

static void
http_site_get(size_t idx, struct site *site)
{
	site->idx = idx;
	site->conf = &http.conf->sites[idx];
	site->rootfd = http.rootfds[idx];
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
 * (resp_head_done() makes it, and nothing is queued before it); the
 * protocol renders its bounds later, so it is still empty here.
 */
static void
http_finish(const struct request *q, struct resp *r)
{
	if (q->h->method != HTTP_M_HEAD || r->nsegs <= 1)
		return;
	if (r->segs[0].kind != SEG_BUF || r->segs[0].len != 0)
		abort();	/* a caller bug: content queued before the head */
	r->nsegs = 1;
}

static size_t http_site(const struct request *q);

/*
 * The fields every response to q carries whatever built it: the site's
 * HSTS line, only over TLS (RFC 6797 7.2: never over plain HTTP), on
 * errors too (unlike nginx's add_header without "always").
 */
static void
http_fields(const struct request *q, struct resp *r,
    const struct conf_site *cs)
{
	r->extra = q->tls ? cs->hsts : NULL;
	r->extra_len = r->extra != NULL ? cs->hsts_len : 0;
}

/*
 * An error answered with the site's own page when it has one. r->close
 * (the connection ends after this one) is kept: it is the caller's.
 */
void
http_error_site(const struct request *q, struct resp *r,
    const struct site *site, int status)
{
	int do_close = r->close;

	resp_file_release(r);
	resp_reset(r);
	r->close = do_close;
	if (serve_error_page(q, r, site, status))
		return;
	http_error(q, r, status);
}

void
http_error(const struct request *q, struct resp *r, int status)
{
	char body[512];
	size_t off;
	int n, do_close = r->close;

	resp_reset(r);
	r->close = do_close;
	/* Also for requests that failed to parse: no Host, the default site. */
	if (q->tls)
		http_fields(q, r, http.conf->sites + http_site(q));
	else
		r->extra = NULL;
	n = snprintf(body, sizeof(body),
	    "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
	    "<body><h1>%d %s</h1><hr><address>porter</address></body></html>\n",
	    status, resp_status_text(status), status, resp_status_text(status));
	resp_begin(r, status);
	resp_printf(r, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\n", n);
	if (status == 405)
		resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n", 27);
	resp_head_done(r);
	off = r->buf_len;
	resp_append(r, body, (size_t)n);
	resp_seg_buf(r, off, (size_t)n);
	/* A parse error answered on its own, outside http_handle(). */
	http_finish(q, r);
}

/* ---- sites and files ------------------------------------------------------ */

/*
 * The site a host name names: exact names win, then the longest
 * "*.suffix" wildcard, as nginx does; case and trailing dots ignored.
 * Shared with tls_hs.c, whose SNI callback must pick the certificate by
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
http_site(const struct request *q)
{
	const struct conf *conf = http.conf;
	const struct http_span *h = &q->h->known[HTTP_H_HOST];
	const char *p = q->buf + h->off;
	size_t len, i;

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
 * The request's host name (no port, no trailing dot) into *namep, and
 * its length, if it is one of the names of site idx or matched by one
 * of its wildcards; else 0. An IPv6 literal is never returned.
 */
static size_t
http_host_of(const struct request *q, size_t idx, const char **namep)
{
	const struct http_span *h = &q->h->known[HTTP_H_HOST];
	const char *p = q->buf + h->off, *e;
	size_t len = h->len;

	if (len == 0 || p[0] == '[')
		return 0;
	if ((e = memchr(p, ':', len)) != NULL)
		len = (size_t)(e - p);
	while (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || http_site_match(http.conf, p, len) != idx)
		return 0;
	*namep = p;
	return len;
}

/*
 * 301 to the directory's URL with a '/': built from the cleaned path the
 * directory was found by, percent-encoded again, never from the path as
 * sent. "//example.org/%2e%2e/dir" finds "/dir"; echoing it would send
 * the client to another host, and a '\\' that browsers read as '/' could
 * do the same. The query goes along, escaped where it needs to be.
 */
static void
http_redirect_slash(const struct request *rq, struct resp *r,
    const char *clean)
{
	const char *buf = rq->buf;
	const struct http_req *q = rq->h;
	static const char body[] = "<!DOCTYPE html>\n<html><head><title>301 "
	    "Moved Permanently</title></head>\n<body><h1>301 Moved "
	    "Permanently</h1><hr><address>porter</address></body></html>\n";
	size_t clen = strlen(clean);

	resp_begin(r, 301);
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
	resp_head_done(r);
	resp_seg_mem(r, body, sizeof(body) - 1);
}

static void
http_respond(const struct request *q, struct resp *r)
{
	const struct http_req *h = q->h;
	const char *buf = q->buf;
	static struct log_limit ll = LOG_LIMIT_INIT(LOG_LVL_WARN, "open");
	char path[HTTP_PATH_MAX];
	struct stat st;
	struct fcache_entry *fe = NULL;
	struct site site;
	size_t i, plen;
	int fd = -1, err = 0, status;

	resp_reset(r);
	r->fd = -1;
	http_site_get(http_site(q), &site);
	http_fields(q, r, site.conf);
	if (site.conf->redirect_https && !q->tls) {
		/* The cleaned path decides whether it is an ACME challenge. */
		int clean = h->path.len > 0 && file_clean_path(buf +
		    h->path.off, h->path.len, path, sizeof(path)) == 0;

		const char *name;
		size_t namelen = http_host_of(q, site.idx, &name);

		if ((status = https_redirect(http.conf, q, r, site.conf,
		    namelen > 0 ? name : NULL, namelen, clean ? path : NULL))
		    != 0) {
			if (status != 1)
				http_error_site(q, r, &site, status);
			return;
		}
	}
	/*
	 * RFC 9110 9.1: a method we do not know (methods are case-sensitive,
	 * so "get" is one) is 501; 405 and Allow are for the methods we know
	 * and do not allow here (15.5.6, 15.6.2).
	 */
	if (h->method == HTTP_M_UNKNOWN) {
		http_error_site(q, r, &site, 501);
		return;
	}
	if (h->method != HTTP_M_GET && h->method != HTTP_M_HEAD) {
		if (h->method == HTTP_M_OPTIONS) {
			resp_begin(r, 200);
			resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n"
			    "Content-Length: 0\r\n", 46);
			resp_head_done(r);
			return;
		}
		http_error_site(q, r, &site, 405);
		return;
	}

	if (h->target.len == 1 && buf[h->target.off] == '*') {
		status = 400;	/* "*" is for OPTIONS only */
		goto fail;
	}
	/* "GET http://host?x" has an empty path: it means "/". */
	if ((status = h->path.len == 0 ? file_clean_path("/", 1, path,
	    sizeof(path) - 256) : file_clean_path(buf + h->path.off, h->path.len,
	    path, sizeof(path) - 256)) != 0)
		goto fail;
	if (file_is_hidden(path)) {
		status = 404;
		goto fail;
	}
	if (site.conf->acme_challenge_root != NULL && acme_path(path)) {
		if ((status = acme_serve(r, site.conf->acme_challenge_root,
		    path)) != 0)
			http_error_site(q, r, &site, status);
		return;
	}
	if (site.rootfd == -1) {
		status = 500;
		goto fail;
	}
	if (fcache_lookup(site.idx, site.rootfd, path, &fe, &fd, &st,
	    &err) == -1)
		goto fail_errno;
	if (S_ISDIR(st.st_mode)) {
		fcache_lookup_done(fe, fd);
		fe = NULL;
		fd = -1;
		plen = strlen(path);
		if (path[plen - 1] != '/') {
			http_redirect_slash(q, r, path);
			return;
		}
		for (i = 0; i < site.conf->nindex; i++) {
			int n = snprintf(path + plen, sizeof(path) - plen, "%s",
			    site.conf->index[i]);

			/* Cut short, it would be another file's name. */
			if (n < 0 || (size_t)n >= sizeof(path) - plen)
				continue;
			if (fcache_lookup(site.idx, site.rootfd, path, &fe, &fd,
			    &st, &err) == -1) {
				if (err == ENOENT)
					continue;
				goto fail_errno;
			}
			if (S_ISREG(st.st_mode))
				break;
			fcache_lookup_done(fe, fd);
			fe = NULL;
			fd = -1;
		}
		if (fd == -1) {
			path[plen] = '\0';
			if (site.conf->listing) {
				if ((status = serve_listing(q, r, &site,
				    path)) != 0)
					http_error_site(q, r, &site, status);
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
	/* Takes fe and fd; an error status lets go of them when rendered. */
	if ((status = serve_file(q, r, &site, fe, fd, &st, path)) != 0)
		http_error_site(q, r, &site, status);
	return;

fail_errno:
	status = file_errno_status(err);
	if (status >= 500)
		/* Out of descriptors, this comes with every request. */
		log_limited(&ll, ev_now(http.loop), err, "open %s", path);
fail:
	fcache_lookup_done(fe, fd);
	if (status == 400)
		r->close = 1;
	http_error_site(q, r, &site, status);
}

/*
 * 429 Too Many Requests (RFC 6585 4) for a client over its limit: the
 * site's own e429 page or a short one saying the limit is for this
 * network, how long to wait and whom to ask; Retry-After in whole
 * seconds (RFC 9110 10.2.3), never stored by a cache (no-store).
 */
static void
http_limit_respond(const struct request *q, struct resp *r,
    const struct climit_answer *a)
{
	char body[1024], fields[96];
	struct site site;
	size_t off;
	int n, f;

	resp_file_release(r);
	resp_reset(r);
	r->close = a->close;
	f = snprintf(fields, sizeof(fields), "Retry-After: %u\r\n"
	    "Cache-Control: no-store\r\n", a->retry_after);
	http_site_get(http_site(q), &site);
	if (serve_error_page(q, r, &site, 429)) {
		resp_add_fields(r, fields, (size_t)f);
		return;
	}
	n = snprintf(body, sizeof(body),
	    "<!DOCTYPE html>\n<html><head><title>429 Too Many Requests"
	    "</title></head>\n<body><h1>429 Too Many Requests</h1>\n"
	    "<p>%s</p>\n<p>Please wait %u second%s before trying again.</p>"
	    "\n%s%s%s<hr><address>porter</address></body></html>\n",
	    a->banned ? "Requests from your network are blocked for a while: "
	    "too many of them looked like an attack on this site." :
	    "This site is getting more requests from your network than it "
	    "can answer. The limit is for your network (address), not for "
	    "you alone.", a->retry_after, a->retry_after == 1 ? "" : "s",
	    a->contact ? "<p>If this blocks you wrongly, contact " : "",
	    a->contact ? a->contact : "", a->contact ? ".</p>\n" : "");
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	resp_begin(r, 429);
	resp_printf(r, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %d\r\n", n);
	resp_append(r, fields, (size_t)f);
	resp_head_done(r);
	off = r->buf_len;
	resp_append(r, body, (size_t)n);
	resp_seg_buf(r, off, (size_t)n);
}

void
http_handle(const struct request *q, struct resp *r)
{
	struct climit_answer a;

	http_respond(q, r);
	/* Client limits: one test when off. The cost is known by now. */
	if (climit_request(q, r, &a))
		http_limit_respond(q, r, &a);
	http_finish(q, r);
}
