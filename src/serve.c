/*
 * serve.c - send a file the way browsers and caches expect (RFC 9110,
 * RFC 9111): pick the representation (identity, a precompressed
 * sibling, or gzip made on the fly), evaluate preconditions, apply
 * ranges, and add validators and cache headers. Also directory
 * listings and per-site error pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "rep.h"

/* The representation chosen for one response. */
struct serve_rep {
	int			 coding;	/* ENCODING_* */
	int			 fd;		/* file data, or -1 */
	const char		*mem;		/* or memory (gzip cache) */
	off_t			 size;
	char			 etag[COND_ETAG_MAX];
	struct gzcache_entry	*gz;
};

static void
serve_gz_release(void *arg)
{
	gzcache_unref(arg);
}

static struct rep_str
serve_hdr(const struct conn *c, int h)
{
	struct rep_str s = { NULL, 0 };
	const struct http_span *sp = &c->req.known[h];

	/* An empty value counts as present for the conditionals. */
	if (sp->off != 0 || sp->len != 0) {
		s.p = c->in + c->in_off + sp->off;
		s.len = sp->len;
	}
	return s;
}

/* Is the precompressed sibling usable: a regular file, not older. */
static int
serve_sibling(int rootfd, const char *path, int coding, const struct stat *st,
    struct stat *sst)
{
	char spath[4200];
	int fd, err;

	snprintf(spath, sizeof(spath), "%s%s", path, encoding_suffix(coding));
	if ((fd = file_open_beneath(rootfd, spath, O_RDONLY | O_NONBLOCK,
	    &err)) == -1)
		return -1;
	if (fstat(fd, sst) == -1 || !S_ISREG(sst->st_mode) ||
	    sst->st_mtim.tv_sec < st->st_mtim.tv_sec ||
	    (sst->st_mtim.tv_sec == st->st_mtim.tv_sec &&
	    sst->st_mtim.tv_nsec < st->st_mtim.tv_nsec)) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Choose among identity, precompressed siblings and on-the-fly gzip.
 * Returns 1 if the answer depends on Accept-Encoding (Vary).
 */
static int
serve_negotiate(struct conn *c, int rootfd, const char *path, int fd,
    const struct stat *st, const char *ctype, struct serve_rep *rep)
{
	static const int order[] = { ENCODING_BR, ENCODING_ZSTD, ENCODING_GZIP };
	const struct conf *conf = worker->conf;
	struct rep_str ae = serve_hdr(c, HTTP_H_ACCEPT_ENCODING);
	int sfd[3] = { -1, -1, -1 };
	struct stat sst[3];
	int avail = ENCODING_IDENTITY, compressible, vary, i, chosen;

	rep->coding = ENCODING_IDENTITY;
	rep->fd = fd;
	rep->mem = NULL;
	rep->gz = NULL;
	rep->size = st->st_size;
	cond_etag(st, rep->etag, sizeof(rep->etag));

	compressible = conf->compression.enabled &&
	    encoding_type_compressible(ctype, conf->compression.types,
	    conf->compression.ntypes);
	vary = compressible;
	if (ae.p == NULL || !compressible)
		return vary;

	/* Look for siblings only in codings this client would take. */
	for (i = 0; i < 3; i++) {
		if (encoding_negotiate(ae.p, ae.len, order[i] |
		    ENCODING_IDENTITY) != order[i])
			continue;
		if ((sfd[i] = serve_sibling(rootfd, path, order[i], st,
		    &sst[i])) != -1)
			avail |= order[i];
	}
	/* No gzip sibling: make one, once, and keep it in the cache. */
	if (!(avail & ENCODING_GZIP) && st->st_size >= conf->compression.min_size &&
	    encoding_negotiate(ae.p, ae.len, ENCODING_GZIP | ENCODING_IDENTITY) ==
	    ENCODING_GZIP) {
		if (worker->gz == NULL)
			worker->gz = gzcache_create(GZCACHE_MAX_BYTES,
			    GZCACHE_MAX_FILE);
		if (worker->gz != NULL) {
			struct gzcache_entry *e = gzcache_get(worker->gz, st,
			    conf->compression.level);

			if (e == NULL)
				e = gzcache_put(worker->gz, st,
				    conf->compression.level, fd);
			if (e != NULL && e->ge_data != NULL) {
				rep->gz = e;
				avail |= ENCODING_GZIP;
			} else if (e != NULL)
				gzcache_unref(e);	/* not worth it */
		}
	}

	chosen = encoding_negotiate(ae.p, ae.len, avail);
	if (chosen == ENCODING_NONE_ACCEPTABLE)
		chosen = ENCODING_IDENTITY;	/* as nginx and Apache do */
	for (i = 0; i < 3; i++) {
		if (sfd[i] == -1)
			continue;
		if (order[i] == chosen) {
			rep->coding = chosen;
			rep->fd = sfd[i];
			rep->size = sst[i].st_size;
			cond_etag_variant(&sst[i], encoding_token(chosen),
			    rep->etag, sizeof(rep->etag));
			/* fd stays the caller's (it may be the file cache's). */
		} else
			close(sfd[i]);
	}
	if (chosen == ENCODING_GZIP && rep->coding != ENCODING_GZIP &&
	    rep->gz != NULL) {
		rep->coding = ENCODING_GZIP;
		rep->mem = (const char *)rep->gz->ge_data;
		rep->size = (off_t)rep->gz->ge_len;
		cond_etag_variant(st, "gz", rep->etag, sizeof(rep->etag));
	} else if (rep->gz != NULL) {
		gzcache_unref(rep->gz);
		rep->gz = NULL;
	}
	return vary;
}

/* Cache-Control and Expires from the site's first matching rule. */
static void
serve_cache_headers(struct resp *r, const struct conf_site *site,
    const char *path)
{
	const struct conf_cache_rule *rule = NULL;
	const char *ext = strrchr(path, '.');
	char date[40];
	size_t i;

	if (ext != NULL && strchr(ext, '/') != NULL)
		ext = NULL;
	for (i = 0; i < site->ncache && rule == NULL; i++) {
		const struct conf_cache_rule *cr = &site->cache[i];

		if (cr->is_ext ? (ext != NULL && strcasecmp(ext, cr->match) == 0) :
		    strncmp(path, cr->match, strlen(cr->match)) == 0)
			rule = cr;
	}
	if (rule == NULL)
		return;
	if (rule->no_cache) {
		resp_append(r, "Cache-Control: no-cache\r\n", 25);
		return;
	}
	if (rule->max_age < 0)
		return;
	util_format_http_date(time(NULL) + rule->max_age, date, sizeof(date));
	resp_printf(r, "Cache-Control: max-age=%ld%s\r\nExpires: %s\r\n",
	    rule->max_age, rule->immutable ? ", immutable" : "", date);
}

/* Headers shared by 200, 206 and 304. */
static void
serve_validators(struct resp *r, const struct serve_rep *rep,
    const struct stat *st, int vary, const struct conf_site *site,
    const char *path)
{
	char lm[40];

	util_format_http_date(st->st_mtime, lm, sizeof(lm));
	resp_printf(r, "Last-Modified: %s\r\nETag: %s\r\n", lm, rep->etag);
	if (vary)
		resp_append(r, "Vary: Accept-Encoding\r\n", 23);
	serve_cache_headers(r, site, path);
}

static void
serve_body(struct resp *r, const struct serve_rep *rep, off_t off, off_t len)
{
	if (rep->mem != NULL)
		resp_seg_mem(r, rep->mem + off, (size_t)len);
	else
		resp_seg_file(r, off, (size_t)len);
}

/* multipart/byteranges: part headers in resp.buf, data from the file. */
static void
serve_multipart(struct conn *c, const struct serve_rep *rep,
    const struct range_set *rs, const char *ctype)
{
	struct resp *r = &c->resp;
	char boundary[RANGE_BOUNDARY_SIZE], part[512];
	size_t i, off;
	int n;

	range_boundary(boundary, (uint64_t)getpid(), worker->requests);
	resp_printf(r, "Content-Type: multipart/byteranges; boundary=%s\r\n"
	    "Content-Length: %lld\r\n", boundary,
	    (long long)range_multipart_length(rs, boundary, ctype, rep->size));
	http_head_end(c);
	if (c->req.method == HTTP_M_HEAD)
		return;
	for (i = 0; i < rs->n; i++) {
		n = range_part_header(part, sizeof(part), boundary, ctype,
		    &rs->r[i], rep->size);
		off = r->buf_len;
		resp_append(r, part, (size_t)n);
		resp_seg_buf(r, off, (size_t)n);
		serve_body(r, rep, rs->r[i].start,
		    rs->r[i].end - rs->r[i].start + 1);
	}
	n = range_closing(part, sizeof(part), boundary);
	off = r->buf_len;
	resp_append(r, part, (size_t)n);
	resp_seg_buf(r, off, (size_t)n);
}

void
serve_file(struct conn *c, size_t site_idx, int fd, const struct stat *st,
    const char *path)
{
	const struct conf_site *site = &worker->conf->sites[site_idx];
	struct resp *r = &c->resp;
	struct serve_rep rep;
	struct cond_hdrs ch;
	struct range_set rs;
	struct rep_str range, ifr;
	const char *name = strrchr(path, '/'), *ctype;
	char cr[128];
	int status, vary, is_head = c->req.method == HTTP_M_HEAD;

	name = name ? name + 1 : path;
	ctype = mime_type(name, strlen(name));
	vary = serve_negotiate(c, worker->rootfds[site_idx], path, fd, st, ctype,
	    &rep);
	r->fd = rep.fd;
	if (rep.gz != NULL) {
		r->release = serve_gz_release;
		r->release_arg = rep.gz;
	}

	ch.if_match = serve_hdr(c, HTTP_H_IF_MATCH);
	ch.if_none_match = serve_hdr(c, HTTP_H_IF_NONE_MATCH);
	ch.if_modified_since = serve_hdr(c, HTTP_H_IF_MODIFIED_SINCE);
	ch.if_unmodified_since = serve_hdr(c, HTTP_H_IF_UNMODIFIED_SINCE);
	status = cond_evaluate(1, rep.etag, st->st_mtime, &ch);
	if (status == 412) {
		http_error_site(c, site_idx, 412, 0);
		return;
	}
	if (status == 304) {
		http_head_begin(c, 304);
		serve_validators(r, &rep, st, vary, site, path);
		http_head_end(c);
		return;
	}

	/* Ranges apply to the representation being sent. */
	range = serve_hdr(c, HTTP_H_RANGE);
	status = 0;
	if (range.p != NULL && c->req.method == HTTP_M_GET) {
		ifr = serve_hdr(c, HTTP_H_IF_RANGE);
		if (ifr.p == NULL || cond_if_range(ifr.p, ifr.len, rep.etag,
		    st->st_mtime))
			status = range_parse(range.p, range.len, rep.size, &rs);
	}
	if (status == 416) {
		http_head_begin(c, 416);
		resp_printf(r, "Content-Range: bytes */%lld\r\n"
		    "Content-Length: 0\r\n", (long long)rep.size);
		http_head_end(c);
		return;
	}

	http_head_begin(c, status == 206 ? 206 : 200);
	resp_append(r, "Accept-Ranges: bytes\r\n", 22);
	if (rep.coding != ENCODING_IDENTITY)
		resp_printf(r, "Content-Encoding: %s\r\n",
		    encoding_token(rep.coding));
	serve_validators(r, &rep, st, vary, site, path);
	if (status == 206 && rs.n > 1) {
		serve_multipart(c, &rep, &rs, ctype);
		return;
	}
	resp_printf(r, "Content-Type: %s\r\n", ctype);
	if (status == 206) {
		range_content_range(cr, sizeof(cr), &rs.r[0], rep.size);
		resp_printf(r, "Content-Range: %s\r\nContent-Length: %lld\r\n",
		    cr, (long long)(rs.r[0].end - rs.r[0].start + 1));
		http_head_end(c);
		if (!is_head)
			serve_body(r, &rep, rs.r[0].start,
			    rs.r[0].end - rs.r[0].start + 1);
		return;
	}
	resp_printf(r, "Content-Length: %lld\r\n", (long long)rep.size);
	http_head_end(c);
	if (!is_head)
		serve_body(r, &rep, 0, rep.size);
}

/* A directory without an index, where the site allows listings. */
void
serve_listing(struct conn *c, size_t site_idx, const char *path)
{
	struct resp *r = &c->resp;
	char *html = NULL;
	size_t len = 0;
	int fd, err = 0;

	fd = file_open_beneath(worker->rootfds[site_idx], path,
	    O_RDONLY | O_DIRECTORY, &err);
	if (fd == -1 || listing_html(fd, path, &html, &len) == -1) {
		if (fd != -1)
			err = errno;
		http_error_site(c, site_idx, file_errno_status(err), 0);
		return;
	}
	r->heap = html;
	http_head_begin(c, 200);
	resp_printf(r, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-cache\r\n", len);
	http_head_end(c);
	if (c->req.method != HTTP_M_HEAD)
		resp_seg_mem(r, html, len);
}

/*
 * The site's own page for this status, if it has one and it can be
 * opened; 0 when the built-in page should be used.
 */
int
serve_error_page(struct conn *c, size_t site_idx, int status)
{
	const struct conf_site *site = &worker->conf->sites[site_idx];
	struct resp *r = &c->resp;
	char path[4200];
	struct stat st;
	const char *name;
	size_t i;
	int fd, err;

	for (i = 0; i < site->nerror_pages; i++)
		if (site->error_pages[i].status == status)
			break;
	if (i == site->nerror_pages || worker->rootfds[site_idx] == -1)
		return 0;
	if (file_clean_path(site->error_pages[i].path,
	    strlen(site->error_pages[i].path), path, sizeof(path)) != 0)
		return 0;
	fd = file_open_beneath(worker->rootfds[site_idx], path,
	    O_RDONLY | O_NONBLOCK, &err);
	if (fd == -1)
		return 0;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	name = strrchr(path, '/');
	name = name ? name + 1 : path;
	r->fd = fd;
	http_head_begin(c, status);
	resp_printf(r, "Content-Type: %s\r\nContent-Length: %lld\r\n",
	    mime_type(name, strlen(name)), (long long)st.st_size);
	if (status == 405)
		resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n", 27);
	http_head_end(c);
	if (c->req.method != HTTP_M_HEAD)
		resp_seg_file(r, 0, (size_t)st.st_size);
	return 1;
}
