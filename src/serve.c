/*
 * serve.c - send a file the way browsers and caches expect (RFC 9110,
 * RFC 9111): pick the representation (identity, a precompressed
 * sibling, or gzip made on the fly), evaluate preconditions, apply
 * ranges, and add validators and cache headers. Also directory
 * listings and per-site error pages.
 *
 * Each handler takes a request, a response and a site, and returns 0
 * when it built the response, or an error status for its caller to
 * render (OpenBSD httpd's server_file() shape). None writes protocol
 * bytes: no status line, no Date, no Connection (h1.c does).
 *
 * serve_file() takes the file fcache_lookup() found, a cache entry or an
 * fd of its own, and hands it to the response on every path: the
 * response holds the file its body comes from (that one, or a
 * precompressed sibling, or an error page) and lets go of it when sent;
 * a file not sent from is let go here.
 *
 * A request with no Accept-Encoding, Range or If-* field makes no
 * system call here, so the plain GET stays as cheap as it can be.
 *
 * Responses are built the same for HEAD as for GET, content included:
 * http_handle() drops the content of a response to HEAD in one place
 * once it is complete, so no path here can forget to.
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

/* The request fields that choose and condition the representation. */
enum {
	SERVE_F_ACCEPT_ENCODING,
	SERVE_F_IF_MATCH,
	SERVE_F_IF_NONE_MATCH,
	SERVE_F_IF_MODIFIED_SINCE,
	SERVE_F_IF_UNMODIFIED_SINCE,
	SERVE_F_RANGE,
	SERVE_F_IF_RANGE,
	SERVE_F__COUNT
};

static const struct {
	int		 hdr;		/* HTTP_H_* */
	const char	*name;
} serve_fieldtab[SERVE_F__COUNT] = {
	[SERVE_F_ACCEPT_ENCODING] = { HTTP_H_ACCEPT_ENCODING, "accept-encoding" },
	[SERVE_F_IF_MATCH] = { HTTP_H_IF_MATCH, "if-match" },
	[SERVE_F_IF_NONE_MATCH] = { HTTP_H_IF_NONE_MATCH, "if-none-match" },
	[SERVE_F_IF_MODIFIED_SINCE] = { HTTP_H_IF_MODIFIED_SINCE,
	    "if-modified-since" },
	[SERVE_F_IF_UNMODIFIED_SINCE] = { HTTP_H_IF_UNMODIFIED_SINCE,
	    "if-unmodified-since" },
	[SERVE_F_RANGE] = { HTTP_H_RANGE, "range" },
	[SERVE_F_IF_RANGE] = { HTTP_H_IF_RANGE, "if-range" },
};

struct serve_fields {
	struct rep_str	 f[SERVE_F__COUNT];	/* p == NULL: absent */
	char		*joined[SERVE_F__COUNT];	/* malloc'd, or NULL */
};

/*
 * The validator lines of recent file versions, formatted once: an ETag
 * and a Last-Modified cost about a thousand instructions per response
 * (gmtime_r() and hex digits), a twentieth of a small file's whole
 * answer over HTTP/2. Slots are keyed by everything the lines are made
 * of (inode, size, mtime to the nanosecond, the coding's tag, the
 * Last-Modified time as sent), so a changed file misses and is
 * formatted anew: nothing here is ever invalidated, and a collision
 * only costs the formatting. Direct-mapped, per worker, about 16 KB.
 */
#define SERVE_MEMO_SLOTS	64
#define SERVE_MEMO_LINE	(sizeof("Last-Modified: \r\nETag: \r\n") - 1 + \
    COND_DATE_LEN + COND_ETAG_MAX)

struct serve_memo {
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtim;
	time_t		 lm;			/* Last-Modified as sent */
	char		 variant[8];		/* "" for none */
	uint16_t	 len;			/* of line; 0: an empty slot */
	uint8_t		 etag_off, etag_len;	/* the ETag's value in line */
	char		 line[SERVE_MEMO_LINE];
};

static struct serve_memo serve_memo[SERVE_MEMO_SLOTS];

/* The representation chosen for one response. */
struct serve_rep {
	int			 coding;	/* ENCODING_* */
	int			 fd;		/* file data, unless mem */
	struct fcache_entry	*fe;		/* fd's cache entry, or NULL */
	const char		*mem;		/* or memory (gzip cache) */
	off_t			 size;
	time_t			 mtime;		/* Last-Modified as sent */
	char			 etag[COND_ETAG_MAX];
	const struct serve_memo	*memo;		/* its validator lines, or NULL */
	struct gzcache_entry	*gz;
};

/*
 * serve.c's own state: the configuration (compression settings), the
 * on-the-fly gzip cache it alone uses, and a count mixed into multipart
 * boundaries so that no two responses get the same one.
 */
static struct {
	const struct conf *conf;
	struct ev_loop	*loop;		/* its clock, for rate-limited logs */
	struct gzcache	*gz;		/* made on first use */
	uint64_t	 nmultipart;
} serve;

void
serve_init(const struct conf *conf, struct ev_loop *loop)
{
	serve.conf = conf;
	serve.loop = loop;
}

/* A slice of the background gzip jobs; how many are left. */
size_t
serve_background(size_t budget)
{
	if (serve.gz == NULL)
		return 0;
	return gzcache_run(serve.gz, budget);
}

/*
 * "Name: value" and its CRLF, without printf: these run for every file
 * response, where vsnprintf() was the biggest cost after parsing.
 */
static void
serve_header(struct resp *r, const char *name, const char *value)
{
	resp_append(r, name, strlen(name));
	resp_append(r, ": ", 2);
	resp_append(r, value, strlen(value));
	resp_append(r, "\r\n", 2);
}

static void
serve_header_num(struct resp *r, const char *name, uint64_t v)
{
	char num[24];

	util_u64toa(v, num);
	serve_header(r, name, num);
}

static void
serve_gz_release(void *arg)
{
	gzcache_unref(arg);
}

/*
 * The request's value of each field. The parser keeps the first line of
 * a field; one sent on several lines is a list split up (RFC 9110 5.3),
 * so the lines are joined with ", " and read as the one list they are.
 * A singleton field sent twice (Range, a date) then no longer parses,
 * and is ignored as invalid, which is what the RFC asks for.
 */
static void
serve_fields(const struct request *rq, struct serve_fields *sf)
{
	const struct http_req *q = rq->h;
	const char *buf = rq->buf;
	size_t i, nlen, total, n, k;
	unsigned h;
	char *p;

	for (i = 0; i < SERVE_F__COUNT; i++) {
		const struct http_span *sp = &q->known[serve_fieldtab[i].hdr];

		sf->joined[i] = NULL;
		sf->f[i].p = NULL;
		sf->f[i].len = 0;
		/* A present field, even empty, has a non-zero offset. */
		if (sp->off == 0 && sp->len == 0)
			continue;
		sf->f[i].p = buf + sp->off;
		sf->f[i].len = sp->len;

		nlen = strlen(serve_fieldtab[i].name);
		for (h = 0, n = 0, total = 0; h < q->nheaders; h++) {
			const struct http_header *f = &q->headers[h];

			if (f->name.len == nlen && strncasecmp(buf + f->name.off,
			    serve_fieldtab[i].name, nlen) == 0) {
				n++;
				total += f->value.len + 2;
			}
		}
		if (n < 2)
			continue;
		p = xmalloc(total);
		for (h = 0, k = 0; h < q->nheaders; h++) {
			const struct http_header *f = &q->headers[h];

			if (f->name.len != nlen || strncasecmp(buf + f->name.off,
			    serve_fieldtab[i].name, nlen) != 0)
				continue;
			if (k > 0) {
				p[k++] = ',';
				p[k++] = ' ';
			}
			memcpy(p + k, buf + f->value.off, f->value.len);
			k += f->value.len;
		}
		sf->joined[i] = p;
		sf->f[i].p = p;
		sf->f[i].len = k;
	}
}

static void
serve_fields_free(struct serve_fields *sf)
{
	size_t i;

	for (i = 0; i < SERVE_F__COUNT; i++)
		free(sf->joined[i]);
}

/*
 * RFC 9110 8.8.2.1: a Last-Modified later than the response's Date
 * (a clock set wrong, a file from the future) is sent as the Date.
 */
static time_t
serve_last_modified(time_t mtime, time_t now)
{
	return mtime > now ? now : mtime;
}

/*
 * rep->etag for the file version st and the coding's tag variant (NULL:
 * none), and rep->memo the validator lines for it and rep->mtime.
 */
static void
serve_etag(const struct stat *st, const char *variant, struct serve_rep *rep)
{
	struct serve_memo *m;
	char lm[COND_DATE_SIZE];
	size_t vlen, elen, dlen, n = 0;

	if (variant == NULL)
		variant = "";
	vlen = strlen(variant);
	m = &serve_memo[((uint64_t)st->st_ino * 0x9e3779b1u +
	    (uint64_t)st->st_mtim.tv_nsec + (unsigned char)variant[0]) %
	    SERVE_MEMO_SLOTS];
	if (m->len != 0 && m->ino == st->st_ino && m->size == st->st_size &&
	    m->mtim.tv_sec == st->st_mtim.tv_sec &&
	    m->mtim.tv_nsec == st->st_mtim.tv_nsec && m->lm == rep->mtime &&
	    strcmp(m->variant, variant) == 0) {
		memcpy(rep->etag, m->line + m->etag_off, m->etag_len);
		rep->etag[m->etag_len] = '\0';
		rep->memo = m;
		return;
	}
	elen = cond_etag_variant(st, variant, rep->etag, sizeof(rep->etag));
	rep->memo = NULL;
	if (elen == 0 || vlen >= sizeof(m->variant))
		return;		/* not kept: formatted for each response */
	/* A year past 9999 has no HTTP-date: the ETag must do. */
	if ((dlen = cond_format_date(rep->mtime, lm)) != 0) {
		memcpy(m->line, "Last-Modified: ", 15);
		memcpy(m->line + 15, lm, dlen);
		memcpy(m->line + 15 + dlen, "\r\n", 2);
		n = 15 + dlen + 2;
	}
	memcpy(m->line + n, "ETag: ", 6);
	m->etag_off = (uint8_t)(n + 6);
	m->etag_len = (uint8_t)elen;
	memcpy(m->line + n + 6, rep->etag, elen);
	memcpy(m->line + n + 6 + elen, "\r\n", 2);
	m->len = (uint16_t)(n + 6 + elen + 2);
	m->ino = st->st_ino;
	m->size = st->st_size;
	m->mtim = st->st_mtim;
	m->lm = rep->mtime;
	memcpy(m->variant, variant, vlen + 1);
	rep->memo = m;
}

/*
 * The precompressed sibling path+suffix if it is usable: a regular file
 * not older than the original. Found like any file (fcache_lookup(): from
 * the open-file cache when it can vouch for the path, misses included).
 * Returns its fd, with *fep its cache entry or NULL (then the fd is ours).
 */
static int
serve_sibling(const struct site *site, const char *path, int coding, const struct stat *st,
    struct stat *sst, struct fcache_entry **fep)
{
	char spath[4200];
	int fd, err, n;

	n = snprintf(spath, sizeof(spath), "%s%s", path,
	    encoding_suffix(coding));
	if (n < 0 || (size_t)n >= sizeof(spath) ||
	    fcache_lookup(site->idx, site->rootfd, spath, fep, &fd, sst,
	    &err) == -1)
		return -1;
	/* Older means stale: the original was edited after compressing. */
	if (fd == -1 || !S_ISREG(sst->st_mode) ||
	    sst->st_mtim.tv_sec < st->st_mtim.tv_sec ||
	    (sst->st_mtim.tv_sec == st->st_mtim.tv_sec &&
	    sst->st_mtim.tv_nsec < st->st_mtim.tv_nsec)) {
		fcache_lookup_done(*fep, fd);
		*fep = NULL;
		return -1;
	}
	return fd;
}

/*
 * The gzip form of this version of the file, from the worker's cache;
 * NULL sends identity. A file too big to compress within this loop
 * turn's slice is compressed in the background (gzcache_fetch()):
 * identity until that is done, rather than a stalled loop.
 */
static struct gzcache_entry *
serve_gzip(const struct stat *st, int fd, const char *path)
{
	static struct log_limit ll = LOG_LIMIT_INIT(LOG_LVL_WARN, "gzip");
	int level = serve.conf->compression.level;
	struct gzcache_entry *e;

	if (serve.gz == NULL && (serve.gz = gzcache_create(GZCACHE_MAX_BYTES,
	    GZCACHE_MAX_FILE)) == NULL)
		return NULL;
	e = gzcache_fetch(serve.gz, st, level, fd);
	/*
	 * ESTALE: changed while being read; the next request sees it.
	 * EINPROGRESS, EAGAIN: a job runs, or too many do. EMFILE, ENFILE:
	 * no fd for a job; accepting says so already, once, not per request.
	 */
	if (e == NULL && errno != ESTALE && errno != EFBIG &&
	    errno != ENOMEM && errno != EINPROGRESS && errno != EAGAIN &&
	    errno != EMFILE && errno != ENFILE)
		log_limited(&ll, ev_now(serve.loop), errno, "gzip %s", path);
	return e;
}

/*
 * Choose among identity, precompressed siblings and on-the-fly gzip for
 * a compressible file whose request has Accept-Encoding. rep comes in
 * describing identity.
 */
static void
serve_negotiate(const struct site *site, const char *path, const struct stat *st,
    struct rep_str ae, time_t now, struct serve_rep *rep)
{
	static const int order[] = { ENCODING_BR, ENCODING_ZSTD, ENCODING_GZIP };
	const struct conf *conf = serve.conf;
	struct gzcache_entry *gz = NULL;
	struct stat sst[3];
	struct fcache_entry *sfe[3] = { NULL, NULL, NULL };
	int sfd[3] = { -1, -1, -1 };
	int avail = ENCODING_IDENTITY, identity_ok, on_the_fly = 0, chosen, i;
	char variant[16];

	identity_ok = encoding_negotiate(ae.p, ae.len, ENCODING_IDENTITY) ==
	    ENCODING_IDENTITY;
	/* Look for siblings only in codings this client prefers to identity. */
	for (i = 0; i < 3; i++) {
		if (encoding_negotiate(ae.p, ae.len, order[i] |
		    ENCODING_IDENTITY) != order[i])
			continue;
		if ((sfd[i] = serve_sibling(site, path, order[i], st, &sst[i],
		    &sfe[i])) != -1)
			avail |= order[i];
	}
	/*
	 * No gzip sibling: gzip it here, if it is big enough to gain, or
	 * whatever its size when the client refuses identity.
	 */
	if (!(avail & ENCODING_GZIP) && st->st_size <= GZCACHE_MAX_FILE &&
	    (st->st_size >= conf->compression.min_size || !identity_ok)) {
		avail |= ENCODING_GZIP;
		on_the_fly = 1;
	}
	chosen = encoding_negotiate(ae.p, ae.len, avail);
	if (chosen == ENCODING_GZIP && on_the_fly) {
		gz = serve_gzip(st, rep->fd, path);
		/* Not smaller: identity is the better answer, if allowed. */
		if (gz == NULL || ((off_t)gz->ge_len >= st->st_size &&
		    identity_ok)) {
			gzcache_unref(gz);
			gz = NULL;
			chosen = encoding_negotiate(ae.p, ae.len,
			    avail & ~ENCODING_GZIP);
		}
	}
	/* Nothing acceptable: identity anyway, as nginx and Apache do. */
	if (chosen == ENCODING_NONE_ACCEPTABLE)
		chosen = ENCODING_IDENTITY;

	for (i = 0; i < 3; i++) {
		if (sfd[i] == -1)
			continue;
		if (order[i] != chosen) {
			fcache_lookup_done(sfe[i], sfd[i]);
			continue;
		}
		rep->fd = sfd[i];
		rep->fe = sfe[i];
		rep->size = sst[i].st_size;
		rep->mtime = serve_last_modified(sst[i].st_mtime, now);
		serve_etag(&sst[i], encoding_token(chosen), rep);
	}
	if (gz != NULL) {
		rep->gz = gz;
		rep->mem = (const char *)gz->ge_data;
		rep->size = (off_t)gz->ge_len;
		/* The level (1-9) changes the bytes, so it is in the tag. */
		variant[0] = 'g';
		variant[1] = 'z';
		variant[2] = (char)('0' + conf->compression.level % 10);
		variant[3] = '\0';
		serve_etag(st, variant, rep);
	}
	rep->coding = chosen;
}

/* Cache-Control and Expires from the site's first matching rule. */
static void
serve_cache_headers(struct resp *r, const struct conf_site *site,
    const char *path, time_t now)
{
	const struct conf_cache_rule *rule = NULL;
	size_t i, plen = strlen(path), mlen;
	char date[COND_DATE_SIZE];
	const char *sep = "";

	for (i = 0; i < site->ncache && rule == NULL; i++) {
		const struct conf_cache_rule *cr = &site->cache[i];

		mlen = strlen(cr->match);
		/* An extension ends the name; it is not the whole name. */
		if (cr->is_ext ? plen > mlen && path[plen - mlen - 1] != '/' &&
		    strcasecmp(path + plen - mlen, cr->match) == 0 :
		    strncmp(path, cr->match, mlen) == 0)
			rule = cr;
	}
	if (rule == NULL ||
	    (rule->max_age < 0 && !rule->immutable && !rule->no_cache))
		return;
	resp_append(r, "Cache-Control: ", 15);
	if (rule->max_age >= 0) {
		resp_printf(r, "max-age=%ld", rule->max_age);
		sep = ", ";
	}
	if (rule->immutable) {
		resp_printf(r, "%simmutable", sep);
		sep = ", ";
	}
	if (rule->no_cache)
		resp_printf(r, "%sno-cache", sep);
	resp_append(r, "\r\n", 2);
	/* For HTTP/1.0 caches; the same clock as the Date header. */
	if (rule->max_age >= 0) {
		if (cond_format_date(now + rule->max_age, date) != 0)
			resp_printf(r, "Expires: %s\r\n", date);
	}
}

/*
 * Validators and caching headers: the same for 200, 206 and 304. date
 * is the Date header's time.
 */
static void
serve_validators(struct resp *r, const struct serve_rep *rep, int vary,
    const struct conf_site *site, const char *path, time_t date)
{
	char lm[COND_DATE_SIZE];

	if (rep->memo != NULL)
		resp_append(r, rep->memo->line, rep->memo->len);
	else {
		/* A year past 9999 has no HTTP-date: the ETag must do. */
		if (cond_format_date(rep->mtime, lm) != 0)
			serve_header(r, "Last-Modified", lm);
		serve_header(r, "ETag", rep->etag);
	}
	if (vary)
		resp_append(r, "Vary: Accept-Encoding\r\n", 23);
	serve_cache_headers(r, site, path, date);
}

static void
serve_body(struct resp *r, const struct serve_rep *rep, off_t off, off_t len)
{
	if (rep->mem != NULL)
		resp_seg_mem(r, rep->mem + off, (size_t)len);
	else
		resp_seg_file(r, off, (size_t)len);
}

/* Part headers go into resp.buf as their own segments. */
static void
serve_buf_seg(struct resp *r, const char *p, size_t len)
{
	size_t off = r->buf_len;

	resp_append(r, p, len);
	resp_seg_buf(r, off, len);
}

/*
 * multipart/byteranges: part headers in resp.buf, data from the file.
 * boundary and its body's length clen come from the caller, which
 * checked that the length can be represented.
 */
static void
serve_multipart(struct resp *r, const struct serve_rep *rep,
    const struct range_set *rs, const char *ctype, const char *boundary,
    off_t clen)
{
	char part[512], *big;
	size_t i;
	int n;

	resp_printf(r, "Content-Type: multipart/byteranges; boundary=%s\r\n"
	    "Content-Length: %lld\r\n", boundary, (long long)clen);
	resp_head_done(r);
	for (i = 0; i < rs->n; i++) {
		n = range_part_header(part, sizeof(part), boundary, ctype,
		    &rs->r[i], rep->size);
		if (n < 0)
			abort();	/* cannot happen: only %s and %jd */
		if ((size_t)n < sizeof(part))
			serve_buf_seg(r, part, (size_t)n);
		else {
			/* A long Content-Type from mime.types. */
			big = xmalloc((size_t)n + 1);
			range_part_header(big, (size_t)n + 1, boundary, ctype,
			    &rs->r[i], rep->size);
			serve_buf_seg(r, big, (size_t)n);
			free(big);
		}
		serve_body(r, rep, rs->r[i].start,
		    rs->r[i].end - rs->r[i].start + 1);
	}
	n = range_closing(part, sizeof(part), boundary);
	serve_buf_seg(r, part, (size_t)n);
}

int
serve_file(const struct request *q, struct resp *r, const struct site *site,
    struct fcache_entry *fe, int fd, const struct stat *st, const char *path)
{
	const struct conf *conf = serve.conf;
	struct serve_fields sf;
	struct serve_rep rep;
	struct cond_hdrs ch;
	struct range_set rs;
	const char *name, *ctype;
	time_t now = q->now;	/* the Date header's time */
	char cr[128], boundary[RANGE_BOUNDARY_SIZE];
	off_t clen = 0;
	int status = 0, vary, coded;
	size_t nlen;

	/*
	 * A cached file keeps its type: the two table searches cost about
	 * 3 % of a cached keep-alive request's instructions. The tables
	 * cannot change under a worker (a reload brings new workers).
	 */
	if (fe != NULL && fe->ctype != NULL) {
		ctype = fe->ctype;
		coded = fe->coding;
	} else {
		name = strrchr(path, '/');
		name = name ? name + 1 : path;
		nlen = strlen(name);
		ctype = mime_type(name, nlen);
		coded = mime_coding(name, nlen);
		if (fe != NULL) {
			fe->ctype = ctype;
			fe->coding = coded;
		}
	}
	serve_fields(q, &sf);

	/*
	 * A .svgz is the gzip coding of an SVG: it goes out as it is, with
	 * Content-Encoding: gzip, to every client, as nginx and Apache send
	 * it; there is no other representation to offer one that does not
	 * take gzip.
	 */
	rep.coding = coded == MIME_CODING_GZIP ? ENCODING_GZIP :
	    ENCODING_IDENTITY;
	rep.fd = fd;
	rep.fe = fe;
	rep.mem = NULL;
	rep.size = st->st_size;
	rep.mtime = serve_last_modified(st->st_mtime, now);
	rep.gz = NULL;
	serve_etag(st, NULL, &rep);

	/*
	 * A type worth compressing may be sent coded, so caches must key
	 * it on Accept-Encoding whether or not this response is coded.
	 * Other types ignore Accept-Encoding: no Vary, no sibling lookups.
	 * Nor do files whose name says they are coded or compressed
	 * already, whatever compression.types says (an SVG type for .svgz,
	 * or a wide pattern): compressing them again would be a second
	 * coding no browser undoes, and their response is the same for
	 * every Accept-Encoding, so it has no Vary to send.
	 */
	vary = coded == MIME_CODING_NONE && conf->compression.enabled &&
	    encoding_type_compressible(ctype, conf->compression.types,
	    conf->compression.ntypes);
	if (vary && sf.f[SERVE_F_ACCEPT_ENCODING].p != NULL)
		serve_negotiate(site, path, st,
		    sf.f[SERVE_F_ACCEPT_ENCODING], now, &rep);
	if (rep.fd != fd)
		fcache_lookup_done(fe, fd);	/* a sibling goes instead */
	resp_file_hold(r, rep.fe, rep.fd);
	if (rep.gz != NULL) {
		r->release = serve_gz_release;
		r->release_arg = rep.gz;
	}

	/* RFC 9110 13.2.2, steps 1 to 4, for the selected representation. */
	ch.if_match = sf.f[SERVE_F_IF_MATCH];
	ch.if_none_match = sf.f[SERVE_F_IF_NONE_MATCH];
	ch.if_modified_since = sf.f[SERVE_F_IF_MODIFIED_SINCE];
	ch.if_unmodified_since = sf.f[SERVE_F_IF_UNMODIFIED_SINCE];
	if (ch.if_match.p != NULL || ch.if_none_match.p != NULL ||
	    ch.if_modified_since.p != NULL || ch.if_unmodified_since.p != NULL)
		status = cond_evaluate(1, rep.etag, rep.mtime, &ch);
	if (status == 412)
		goto done;	/* rendering it lets go of our file */
	if (status == 304) {
		resp_begin(r, 304);
		serve_validators(r, &rep, vary, site->conf, path, now);
		resp_head_done(r);
		status = 0;
		goto done;
	}

	/*
	 * Step 5: Range, for GET only (RFC 9110 14.2), on the bytes of the
	 * representation being sent. A date in If-Range only counts while
	 * it is a strong validator (8.8.2.2): a file modified this very
	 * second may change again within it, so it does not match.
	 */
	if (q->h->method == HTTP_M_GET && sf.f[SERVE_F_RANGE].p != NULL &&
	    (sf.f[SERVE_F_IF_RANGE].p == NULL ||
	    cond_if_range(sf.f[SERVE_F_IF_RANGE].p, sf.f[SERVE_F_IF_RANGE].len,
	    rep.etag, rep.mtime < now ? rep.mtime : -1)))
		status = range_parse(sf.f[SERVE_F_RANGE].p,
		    sf.f[SERVE_F_RANGE].len, rep.size, &rs);
	if (status == 206 && rs.n > 1) {
		range_boundary(boundary, (uint64_t)getpid(), ++serve.nmultipart);
		/* Past what an off_t holds: ignore the Range, send it all. */
		if ((clen = range_multipart_length(&rs, boundary, ctype,
		    rep.size)) < 0)
			status = 0;
	}
	if (status == 416) {
		range_content_range(cr, sizeof(cr), NULL, rep.size);
		resp_begin(r, 416);
		resp_printf(r, "Content-Range: %s\r\nContent-Length: 0\r\n", cr);
		resp_head_done(r);
		status = 0;
		goto done;
	}

	resp_begin(r, status == 206 ? 206 : 200);
	resp_append(r, "Accept-Ranges: bytes\r\n", 22);
	if (rep.coding != ENCODING_IDENTITY)
		serve_header(r, "Content-Encoding", encoding_token(rep.coding));
	serve_validators(r, &rep, vary, site->conf, path, now);
	if (status == 206 && rs.n > 1) {
		serve_multipart(r, &rep, &rs, ctype, boundary, clen);
		status = 0;
		goto done;
	}
	serve_header(r, "Content-Type", ctype);
	if (status == 206) {
		range_content_range(cr, sizeof(cr), &rs.r[0], rep.size);
		resp_printf(r, "Content-Range: %s\r\nContent-Length: %lld\r\n",
		    cr, (long long)(rs.r[0].end - rs.r[0].start + 1));
		resp_head_done(r);
		serve_body(r, &rep, rs.r[0].start,
		    rs.r[0].end - rs.r[0].start + 1);
		status = 0;
		goto done;
	}
	serve_header_num(r, "Content-Length", (uint64_t)rep.size);
	resp_head_done(r);
	serve_body(r, &rep, 0, rep.size);
	status = 0;
done:
	resp_file_mem(r);	/* now that the segments are in place */
	serve_fields_free(&sf);
	return status;
}

/* ---- directory listings ---------------------------------------------- */

struct serve_follow {
	int		 rootfd;
	const char	*dir;		/* URL path of the directory, ends in '/' */
};

/* A symlink is listed only if serving it would work: beneath the root. */
static int
serve_listing_follow(void *arg, const char *name, struct stat *st)
{
	const struct serve_follow *sf = arg;
	char path[4200];
	int fd, err, n, rv;

	n = snprintf(path, sizeof(path), "%s%s", sf->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -1;
	/* O_PATH: find the inode without opening a fifo or a device. */
	if ((fd = file_open_beneath(sf->rootfd, path, O_PATH, &err)) == -1)
		return -1;
	rv = fstat(fd, st);
	close(fd);
	return rv;
}

/* A directory without an index, where the site allows listings. */
int
serve_listing(const struct request *q, struct resp *r, const struct site *site,
    const char *path)
{
	struct serve_follow sf;
	char *html = NULL;
	size_t len = 0;
	int fd, err = 0;

	sf.rootfd = site->rootfd;
	sf.dir = path;
	fd = file_open_beneath(sf.rootfd, path, O_RDONLY | O_DIRECTORY, &err);
	if (fd == -1 || listing_html(fd, path, serve_listing_follow, &sf,
	    &html, &len) == -1) {
		if (fd != -1)
			err = errno;
		return file_errno_status(err);
	}
	r->heap = html;
	resp_begin(r, 200);
	/* Made afresh each time and changes with the directory: revalidate. */
	resp_printf(r, "Content-Type: text/html; charset=utf-8\r\n"
	    "Content-Length: %zu\r\nCache-Control: no-cache\r\n", len);
	resp_head_done(r);
	resp_seg_mem(r, html, len);
	return 0;
}

/* ---- error pages ----------------------------------------------------- */

/*
 * The site's own page for this status, if it has one and it can be
 * opened; 0 when the built-in page should be used. Found like any file
 * (fcache_lookup()), and held by the response.
 */
int
serve_error_page(const struct request *q, struct resp *r,
    const struct site *s, int status)
{
	const struct conf_site *site = s->conf;
	char path[4200];
	struct fcache_entry *fe;
	struct stat st;
	const char *name;
	size_t i;
	int fd, err;

	for (i = 0; i < site->nerror_pages; i++)
		if (site->error_pages[i].status == status)
			break;
	if (i == site->nerror_pages || s->rootfd == -1)
		return 0;
	if (file_clean_path(site->error_pages[i].path,
	    strlen(site->error_pages[i].path), path, sizeof(path)) != 0)
		return 0;
	if (fcache_lookup(s->idx, s->rootfd, path, &fe, &fd, &st, &err) == -1)
		return 0;
	if (!S_ISREG(st.st_mode)) {
		fcache_lookup_done(fe, fd);
		return 0;
	}
	name = strrchr(path, '/');
	name = name ? name + 1 : path;
	resp_begin(r, status);
	resp_printf(r, "Content-Type: %s\r\nContent-Length: %lld\r\n",
	    mime_type(name, strlen(name)), (long long)st.st_size);
	/* A page kept as .svgz is coded as a file of it would be. */
	if (mime_coding(name, strlen(name)) == MIME_CODING_GZIP)
		resp_append(r, "Content-Encoding: gzip\r\n", 24);
	if (status == 405)
		resp_append(r, "Allow: GET, HEAD, OPTIONS\r\n", 27);
	resp_head_done(r);
	resp_seg_file(r, 0, (size_t)st.st_size);
	resp_file_hold(r, fe, fd);
	return 1;
}
