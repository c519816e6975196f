/*
 * https.c - a site's HTTPS policy as the HTTP layer applies it: the
 * redirect of plain-HTTP requests to https:// (redirect_https) and the
 * Strict-Transport-Security field on responses sent over TLS (hsts,
 * RFC 6797). Pure: builds responses, does no I/O.
 */
#include <stdio.h>
#include <string.h>

#include "porter.h"
#include "rep.h"

#define HTTPS_HOST_MAX	255	/* RFC 1035 2.3.4 */

/* ASCII lower-case letters, digits, '-' and '.': a DNS name's bytes. */
static int
https_ldh(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '.'))
			return 0;
	return 1;
}

/*
 * The host for the Location, into out (lower case): name (namelen
 * bytes), the request's host when it names this site, if it is a plain
 * DNS name (a wildcard lets any label through, and no byte a URL parser
 * reads otherwise may come with it); else the site's first exact name.
 * 0 when there is nothing to name (a site with only wildcards or "*"
 * and no usable host).
 */
static size_t
https_host(const struct conf_site *cs, const char *name, size_t namelen,
    char *out, size_t outsz)
{
	size_t len, i;

	if (name != NULL && namelen > 0 && namelen < outsz) {
		for (i = 0; i < namelen; i++)
			out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ?
			    name[i] + 32 : name[i]);
		if (https_ldh(out, namelen)) {
			out[namelen] = '\0';
			return namelen;
		}
	}
	/* "[::1]", a name matched by "*" only, or no Host (HTTP/1.0). */
	for (i = 0; i < cs->nnames; i++) {
		const char *n = cs->names[i];

		len = strlen(n);
		if (n[0] != '*' && len < outsz) {
			memcpy(out, n, len + 1);
			return len;
		}
	}
	return 0;
}

int
https_redirect(const struct conf *conf, const struct request *q,
    struct resp *r, const struct conf_site *cs, const char *name,
    size_t namelen, const char *clean)
{
	static const char body[] = "<!DOCTYPE html>\n<html><head><title>"
	    "Moved to HTTPS</title></head>\n<body><h1>Moved to HTTPS</h1>"
	    "<hr><address>porter</address></body></html>\n";
	const struct http_req *h = q->h;
	char host[HTTPS_HOST_MAX + 1];
	size_t hlen;
	int status;

	/* The CA fetches challenges over plain HTTP (RFC 8555 8.3). */
	if (clean != NULL && acme_path(clean))
		return 0;
	/* "OPTIONS *" asks about the server, not a resource to move. */
	if (h->target.len == 1 && q->buf[h->target.off] == '*')
		return 0;
	if ((hlen = https_host(cs, name, namelen, host, sizeof(host))) == 0)
		return 421;	/* RFC 9110 15.5.20: no name we may send it to */
	/* RFC 9110 15.4.2 and RFC 9110 15.4.9 (308 keeps the method and body). */
	status = h->method == HTTP_M_GET || h->method == HTTP_M_HEAD ? 301 : 308;
	resp_begin(r, status);
	resp_reserve(r, 18 + hlen + 6 + 3 * (size_t)h->path.len + 2 +
	    3 * (size_t)h->query.len + 1);
	resp_append(r, "Location: https://", 18);
	resp_append(r, host, hlen);
	if (conf->https_port != 443)
		r->buf_len += (size_t)snprintf(r->buf + r->buf_len,
		    r->buf_cap - r->buf_len, ":%d", conf->https_port);
	/* The path and query as sent, escaped where they need to be;
	 * "GET http://host" has an empty path: it means "/". */
	if (h->path.len == 0)
		resp_append(r, "/", 1);
	else
		r->buf_len += encoding_uri_query(q->buf + h->path.off,
		    h->path.len, r->buf + r->buf_len, r->buf_cap - r->buf_len);
	if (h->query.len > 0 || memchr(q->buf + h->target.off, '?',
	    h->target.len) != NULL) {
		resp_append(r, "?", 1);
		r->buf_len += encoding_uri_query(q->buf + h->query.off,
		    h->query.len, r->buf + r->buf_len, r->buf_cap - r->buf_len);
	}
	resp_printf(r, "\r\nContent-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\n", sizeof(body) - 1);
	resp_head_done(r);
	resp_seg_mem(r, body, sizeof(body) - 1);
	return 1;
}
