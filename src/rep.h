/*
 * rep.h - building blocks for choosing and describing a representation:
 * validators and preconditions (cond.c), byte ranges (range.c),
 * content-coding negotiation (encoding.c), directory listings
 * (listing.c) and the per-worker gzip cache (gzcache.c).
 *
 * Stand-alone: needs only libc and zlib (the latter inside gzcache.c).
 * Nothing here logs. cond.c, range.c and encoding.c do no I/O and no
 * allocation; they work on byte strings that are not NUL-terminated
 * (header values inside the request buffer), passed as (p, len). A NULL
 * p means "the header is absent"; a non-NULL p with len 0 is a header
 * that is present but empty.
 */
#ifndef PORTER_REP_H
#define PORTER_REP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <time.h>

/* A byte string in someone else's buffer; p == NULL: absent. */
struct rep_str {
	const char	*p;
	size_t		 len;
};

/* ---- validators and preconditions (cond.c) --------------------------- */

/* Room for any ETag cond_etag() or cond_etag_variant() writes, with NUL. */
#define COND_ETAG_MAX	96
/* "Sun, 06 Nov 1994 08:49:37 GMT" and its NUL */
#define COND_DATE_LEN	29
#define COND_DATE_SIZE	(COND_DATE_LEN + 1)

/*
 * Strong ETag from the file's identity, quotes included:
 * "<ino>-<size>-<mtime sec><mtime nsec, 8 digits>", all lower-case hex.
 * Writes a NUL-terminated string and returns its length, or 0 if sz is
 * too small (COND_ETAG_MAX always suffices).
 */
size_t	 cond_etag(const struct stat *st, char *buf, size_t sz);
/*
 * The same, for a variant of the file such as its gzip-coded form:
 * variant ("gz") is appended inside the quotes after a '-', so every
 * representation of a resource has its own strong ETag (RFC 9110
 * 8.8.3). variant must be a short run of etagc characters; NULL or ""
 * gives the plain cond_etag().
 */
size_t	 cond_etag_variant(const struct stat *st, const char *variant,
	    char *buf, size_t sz);

/*
 * Does the If-Match / If-None-Match field value (p, len) match etag
 * (our own entity-tag, NUL-terminated, quotes and any W/ included)?
 * strong != 0 uses the strong comparison (both tags strong and equal,
 * RFC 9110 8.8.3.2), else the weak one (opaque-tags equal). "*" alone
 * matches any current representation. Returns 1 or 0. A value that is
 * not a valid "*" / #entity-tag list does not match at all, even if
 * one of its elements would: garbage never turns into a 304.
 */
int	 cond_etag_match(const char *p, size_t len, const char *etag,
	    int strong);

/*
 * Parse an HTTP-date (RFC 9110 5.6.7): IMF-fixdate and the obsolete
 * RFC 850 and asctime forms, which recipients must accept. A two-digit
 * RFC 850 year more than 50 years in the future (by the clock) means
 * the century before. Returns seconds since the epoch, or -1 if the
 * value is not exactly one date, names a day that does not exist, or
 * is before 1970.
 */
time_t	 cond_parse_date(const char *p, size_t len);
/* Format t as IMF-fixdate into buf; returns COND_DATE_LEN, or 0 if t
 * is out of range (a year outside 0000-9999). */
size_t	 cond_format_date(time_t t, char buf[COND_DATE_SIZE]);

/* The precondition header fields of a request, NULL p when absent. */
struct cond_hdrs {
	struct rep_str	 if_match;
	struct rep_str	 if_none_match;
	struct rep_str	 if_modified_since;
	struct rep_str	 if_unmodified_since;
};

/*
 * Evaluate the preconditions in the order of RFC 9110 13.2.2 for the
 * selected representation, whose ETag is etag and whose Last-Modified
 * is mtime (whole seconds, as sent). get_or_head is non-zero for GET
 * and HEAD. Returns 0 to go on (200, or 206 after If-Range and Range),
 * 304 or 412.
 *
 *   1. If-Match (strong comparison) false: 412.
 *   2. else If-Unmodified-Since (valid date) and mtime > date: 412.
 *   3. If-None-Match (weak comparison) false: 304 for GET/HEAD, else 412.
 *   4. else, GET/HEAD only, If-Modified-Since (valid date) and
 *      mtime <= date: 304.
 *
 * A date that does not parse is ignored, as RFC 9110 13.1.3 and 13.1.4
 * require. A malformed If-Match list matches nothing, so it fails (412);
 * a malformed If-None-Match list matches nothing, so it passes.
 */
int	 cond_evaluate(int get_or_head, const char *etag, time_t mtime,
	    const struct cond_hdrs *h);

/*
 * If-Range (RFC 9110 13.1.5): returns 1 if the Range header may be
 * applied, 0 if the whole representation must be sent instead. An
 * entity-tag must match etag strongly (a weak tag never does); an
 * HTTP-date must equal mtime to the second. Anything else, including
 * an absent (NULL) or malformed value, returns 0; the caller only asks
 * when the request has both Range and If-Range.
 */
int	 cond_if_range(const char *p, size_t len, const char *etag,
	    time_t mtime);

/* ---- byte ranges (range.c) ------------------------------------------- */

/*
 * At most this many range-specs are considered. A Range header with
 * more is ignored as a whole (the whole representation is sent with
 * 200): a legitimate client has no reason to ask for more pieces than
 * that, and ignoring is always allowed (RFC 9110 14.2).
 */
#define RANGE_MAX		16
/* Room for a boundary from range_boundary(), with NUL. */
#define RANGE_BOUNDARY_SIZE	40

struct range {
	off_t	start;		/* first byte */
	off_t	end;		/* last byte, inclusive */
};

struct range_set {
	size_t		n;
	struct range	r[RANGE_MAX];
};

/*
 * Parse a Range field value against a representation of size bytes.
 * Returns:
 *   0    ignore the header, send 200 with everything: absent (NULL p),
 *        a unit other than "bytes", a syntax error anywhere in the
 *        list (including last-pos < first-pos), more than RANGE_MAX
 *        range-specs, or only suffix ranges of an empty representation
 *        (satisfiable per RFC 9110 14.1.1 but not expressible in a
 *        Content-Range, so the empty 200 is the honest answer);
 *   206  rs holds the satisfiable ranges, ends clamped to size - 1.
 *        Ranges that overlap or touch are coalesced into one (RFC 9110
 *        14.3 allows it), which stops a client from making us send the
 *        same bytes many times; the survivors keep the order in which
 *        they were asked for. rs->n == 1 means a single-part 206;
 *   416  every range-spec was unsatisfiable (or size is 0).
 * The unit name is case-insensitive; OWS around commas and empty list
 * elements are accepted. Huge numbers saturate rather than wrap.
 */
int	 range_parse(const char *p, size_t len, off_t size,
	    struct range_set *rs);

/*
 * Content-Range value: "bytes <start>-<end>/<size>", or for a 416 (r
 * NULL) the unsatisfied-range form: "bytes *" followed by "/<size>".
 * snprintf semantics: returns the length it needed, writes at most sz
 * bytes.
 */
int	 range_content_range(char *buf, size_t sz, const struct range *r,
	    off_t size);

/*
 * A multipart/byteranges boundary: 32 hex digits mixed from a and b,
 * which must differ between responses (a pid and a per-worker counter
 * will do). It does not depend on the file's content, so a file could
 * contain it; with 128 bits that takes intent, and only garbles that
 * file's own multipart responses. Returns the length (32).
 */
size_t	 range_boundary(char buf[RANGE_BOUNDARY_SIZE], uint64_t a,
	    uint64_t b);

/*
 * The bytes in front of each part:
 *   "\r\n--<boundary>\r\nContent-Type: <ctype>\r\nContent-Range: bytes a-b/size\r\n\r\n"
 * (no Content-Type line when ctype is NULL), and the closing delimiter
 * "\r\n--<boundary>--\r\n". snprintf semantics: return the full length,
 * write at most sz bytes; buf may be NULL when sz is 0.
 */
int	 range_part_header(char *buf, size_t sz, const char *boundary,
	    const char *ctype, const struct range *r, off_t size);
int	 range_closing(char *buf, size_t sz, const char *boundary);

/*
 * Content-Length of the whole multipart/byteranges body for rs: every
 * part header, every part's bytes and the closing delimiter. Exactly
 * what range_part_header() and range_closing() produce plus the data.
 * Returns -1 when that sum does not fit an off_t (a representation
 * within a few KB of 2^63 bytes): the caller should then ignore the
 * Range and send the whole representation (RFC 9110 14.2 allows it).
 */
off_t	 range_multipart_length(const struct range_set *rs,
	    const char *boundary, const char *ctype, off_t size);

/* ---- content codings (encoding.c) ------------------------------------ */

#define ENCODING_NONE_ACCEPTABLE	0
#define ENCODING_IDENTITY		0x01
#define ENCODING_GZIP			0x02
#define ENCODING_ZSTD			0x04
#define ENCODING_BR			0x08

/*
 * Choose a content coding (RFC 9110 12.5.3) for an Accept-Encoding
 * value (p, len) among available, a mask of ENCODING_* bits. The
 * highest q-value wins; ties go to the server's preference br > zstd >
 * gzip > identity. Codings are case-insensitive; "x-gzip" is gzip; "*"
 * stands for every coding not listed; unknown codings ("deflate") are
 * skipped. identity is acceptable unless "identity;q=0", or "*;q=0"
 * without an identity entry; if only allowed by default it ranks as
 * q=0.001. An element that does not parse (bad token, bad q-value such
 * as "q=1.5" or "q=abc", other parameters) is ignored: we never send a
 * coding the client did not clearly ask for. If a coding is listed
 * twice, the first entry counts.
 *
 * Absent header (NULL p) or empty value: identity (if available; else
 * the preferred available coding, as an absent header allows any).
 *
 * Returns one ENCODING_* bit, or ENCODING_NONE_ACCEPTABLE when nothing
 * available is acceptable. RFC 9110 12.5.3 then allows either a 415-ish
 * refusal or ignoring the header; porter should send identity anyway,
 * as nginx and Apache do, since a refusal helps nobody.
 */
int	 encoding_negotiate(const char *p, size_t len, int available);

/* "br", "zstd", "gzip"; NULL for identity or anything else (identity
 * is never sent in Content-Encoding). */
const char *encoding_token(int coding);
/* ".br", ".zst", ".gz" (the precompressed sibling's suffix); NULL for
 * identity or anything else. */
const char *encoding_suffix(int coding);

/*
 * Is a response of this Content-Type (NUL-terminated; parameters such
 * as "; charset=utf-8" are ignored) worth compressing? Each pattern is
 * "type/subtype", "type/" followed by "*", or "*" "/" "*" (match
 * anything); case-insensitive. Returns 1 or 0.
 */
int	 encoding_type_compressible(const char *content_type,
	    char *const *patterns, size_t npatterns);

/*
 * The decoded URL path (p, len), such as file_clean_path() makes, as
 * the path-absolute of a URI reference for a Location field (RFC 9110
 * 10.2.2, RFC 3986 4.2): it starts with exactly one '/' (leading ones
 * are squeezed, one is added if missing), so no client reads it as
 * "//host"; every byte but '/' and the unreserved characters is
 * percent-encoded, '%', '\\', ':', controls and non-ASCII included.
 * The output is at most 3 * len + 1 bytes. snprintf semantics: returns
 * the length it needs, writes at most outsz bytes, NUL-terminated when
 * outsz > 0.
 */
size_t	 encoding_uri_path(const char *p, size_t len, char *out,
	    size_t outsz);
/*
 * A query as the client sent it (p, len, without the '?'), made safe to
 * copy into a Location: valid "%XX" escapes, unreserved characters,
 * sub-delims, ':', '@', '/' and '?' stay as they are (RFC 3986 3.4);
 * any other byte, '\\' and a '%' that starts no escape included, is
 * percent-encoded. At most 3 * len bytes. snprintf semantics, as above.
 */
size_t	 encoding_uri_query(const char *p, size_t len, char *out,
	    size_t outsz);

/* ---- directory listings (listing.c) ---------------------------------- */

/*
 * How a symlink in the listed directory is followed: fill st with what
 * the entry name leads to and return 0, or return -1 to leave it out
 * (broken, or pointing where the server would not go).
 */
typedef int	(*listing_follow_fn)(void *arg, const char *name,
		    struct stat *st);

/*
 * Render an HTML index of the directory open at dirfd. Takes ownership
 * of dirfd (it is closed in every case, so pass a dup). urlpath is the
 * directory's decoded URL path, ending in '/', used for the heading and
 * to decide on a "../" link (none at "/").
 *
 * Directories come first, then files, each sorted bytewise by name;
 * directories get a trailing '/'. Names starting with '.' are never
 * listed. Symlinks are resolved with follow(arg, ...), or with a plain
 * stat when follow is NULL; those it refuses are skipped, and anything
 * that is neither a regular file nor a directory is skipped. Names are
 * HTML-escaped in text and percent-encoded in links (all but RFC 3986
 * unreserved characters, so a name like "x:y" cannot become a scheme).
 * Times are UTC, "YYYY-MM-DD HH:MM".
 *
 * On success returns 0 and a malloc'd page in *out (NUL-terminated, the
 * caller frees) of *outlen bytes; on failure -1 with errno set.
 */
int	 listing_html(int dirfd, const char *urlpath, listing_follow_fn follow,
	    void *arg, char **out, size_t *outlen);

/* ---- gzip cache (gzcache.c) ------------------------------------------ */

#define GZCACHE_MAX_BYTES	(16 * 1024 * 1024)	/* a sensible default */
#define GZCACHE_MAX_FILE	(4 * 1024 * 1024)	/* a sensible default */
#define GZCACHE_MAX_ENTRIES	1024
/*
 * Bytes of input compressed per event-loop turn, at most: GZCACHE_SLICE
 * by requests (a small file gzipped at once, inline), GZCACHE_BG_SLICE
 * by the background jobs (big files, identity meanwhile). A 4 MiB file
 * compressed in one go held the loop for 180 ms, and every other client
 * with it. The background slice is what a busy loop pays every turn
 * while jobs run: with 32 KiB, two clients cycling through uncached
 * 2 MiB files (asking 100 bytes of each, so only the compressing
 * shows) raised other clients' p99 4.3x and cut their req/s 136 k ->
 * 29 k; with 4 KiB 2.0x and 124 k -> 88 k (bench/run --only gzip,
 * GZ_RANGE=1). An idle loop polls between slices, so a job alone still
 * runs at zlib's speed, a turn's epoll_wait per 4 KiB.
 */
#define GZCACHE_SLICE		(32 * 1024)
#define GZCACHE_BG_SLICE	(4 * 1024)
/* Background jobs per cache; each holds an fd, zlib's state (about
 * 270 KiB at level 6) and up to deflateBound(max_file_size) of output. */
#define GZCACHE_MAX_JOBS	2

struct gzcache;

/*
 * A gzip-coded copy of one version of one file. ge_data/ge_len are
 * the whole gzip member, ready for writev() or for byte ranges. It is
 * kept even when it is no smaller than the file: whether to send it is
 * the caller's decision (compare ge_len with the file's size), and a
 * client that refuses identity should get it all the same. The other
 * fields are private to gzcache.c.
 */
struct gzcache_entry {
	const unsigned char	*ge_data;
	size_t			 ge_len;

	/* private */
	dev_t			 ge_dev;
	ino_t			 ge_ino;
	off_t			 ge_size;
	time_t			 ge_mtime;
	long			 ge_mtime_nsec;
	time_t			 ge_ctime;
	long			 ge_ctime_nsec;
	int			 ge_level;
	unsigned		 ge_refs;
	unsigned char		*ge_buf;
	struct gzcache_entry	*ge_hnext;	/* hash chain */
	struct gzcache_entry	*ge_prev;	/* LRU, most recent first */
	struct gzcache_entry	*ge_next;
};

/*
 * One cache per worker process; no locking. It keeps at most max_bytes
 * (compressed bytes plus a fixed overhead per entry) and
 * GZCACHE_MAX_ENTRIES entries, evicting the least recently used, and
 * never compresses a file larger than max_file_size (gzcache_put()
 * fails with EFBIG: send identity). Returns NULL with errno on failure.
 */
struct gzcache *gzcache_create(size_t max_bytes, size_t max_file_size);
/*
 * Drop the cache's references. Entries a caller still holds stay valid
 * until their last gzcache_unref().
 */
void	 gzcache_free(struct gzcache *c);

/*
 * Look up the version of the file described by st (device, inode, size,
 * mtime and ctime to the nanosecond) compressed at level. A hit returns the
 * entry with a reference the caller owns; a miss returns NULL.
 */
struct gzcache_entry *gzcache_get(struct gzcache *c, const struct stat *st,
	    int level);
/*
 * Compress the first st->st_size bytes of fd (read with pread, so the
 * offset is untouched) at level (0-9, or -1 for zlib's default) with a
 * gzip wrapper, store the result (replacing older versions of the same
 * file) and return it with a reference the caller owns. Returns NULL
 * with errno: EFBIG if the file is over max_file_size, ESTALE if it got
 * shorter while being read or fstat(fd) afterwards no longer matches st
 * (it was rewritten meanwhile: nothing is cached under a key that does
 * not describe the bytes), ENOMEM, EINVAL or a read(2) error.
 */
struct gzcache_entry *gzcache_put(struct gzcache *c, const struct stat *st,
	    int level, int fd);
/* The same from memory: buf holds the file's st->st_size bytes. */
struct gzcache_entry *gzcache_put_buf(struct gzcache *c,
	    const struct stat *st, int level, const void *buf);

/*
 * What a request should call: never compresses more than GZCACHE_SLICE
 * bytes per loop turn (gzcache_run() marks the turns). A hit returns
 * the entry, with a reference the caller owns. A miss whose file fits
 * in what is left of this turn's GZCACHE_SLICE is compressed now, as
 * gzcache_put() does. A bigger one becomes a background job that reads
 * its own dup of fd (F_DUPFD_CLOEXEC; the caller's fd is untouched and
 * may be closed) and is compressed a slice per gzcache_run(); this call
 * then returns NULL with errno EINPROGRESS (started, or already running
 * for this version and level; a job for an older version of the file
 * is dropped), and the caller sends identity. Other NULL returns:
 * EAGAIN (GZCACHE_MAX_JOBS jobs already run), EBADF, EMFILE, and
 * gzcache_put()'s errors. A job's result enters the cache like
 * gzcache_put()'s, after the same fstat() check; a job that fails
 * (ESTALE, a read error) just ends, and the next request starts over.
 */
struct gzcache_entry *gzcache_fetch(struct gzcache *c, const struct stat *st,
	    int level, int fd);
/*
 * Once per event-loop turn: renew the inline allowance of
 * gzcache_fetch() and give background jobs at most budget bytes of
 * input (in turn: a job whose slice is spent goes to the back). budget
 * 0 runs no job. Returns the number of jobs still pending: non-zero
 * means call again soon, without waiting for an event.
 */
size_t	 gzcache_run(struct gzcache *c, size_t budget);
/* Background jobs pending, for tests and statistics. */
size_t	 gzcache_jobs(const struct gzcache *c);

/*
 * References: every entry returned by gzcache_get()/gzcache_put() must
 * be released with gzcache_unref() once its bytes are sent. An entry
 * evicted while referenced is freed by its last unref, so it is safe to
 * keep sending it across several writes while other requests churn the
 * cache. gzcache_ref() takes one more reference, for a second holder.
 */
void	 gzcache_ref(struct gzcache_entry *e);
void	 gzcache_unref(struct gzcache_entry *e);

/* What the cache currently holds, for tests and statistics. */
size_t	 gzcache_bytes(const struct gzcache *c);
size_t	 gzcache_count(const struct gzcache *c);

#endif /* PORTER_REP_H */
