/*
 * gzcache.c - gzip-coded copies of files, made on demand and kept in a
 * per-worker LRU cache bounded in bytes and entries. Single-threaded:
 * each worker process owns its cache, so there is no locking.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* next_in points at const bytes: the caller's buffer is not ours. */
#define ZLIB_CONST
#include <zlib.h>

#include "rep.h"

#define GZCACHE_NBUCKETS	1024	/* power of two */
#define GZCACHE_CHUNK		(64 * 1024)

struct gzcache {
	size_t			 gc_max_bytes;
	size_t			 gc_max_file;
	size_t			 gc_bytes;
	size_t			 gc_count;
	struct gzcache_entry	*gc_head;	/* most recently used */
	struct gzcache_entry	*gc_tail;
	/* Keyed by (dev, ino) only, so every version and level of a file
	 * shares a chain and a new version can find the old ones. */
	struct gzcache_entry	*gc_buckets[GZCACHE_NBUCKETS];
};

/* What an entry counts against max_bytes. */
static size_t
gzcache_cost(const struct gzcache_entry *e)
{
	return e->ge_len + sizeof(*e);
}

static size_t
gzcache_bucket(dev_t dev, ino_t ino)
{
	uint64_t	 x = (uint64_t)ino * UINT64_C(0x9e3779b97f4a7c15) ^
			    (uint64_t)dev;

	x ^= x >> 29;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 32;
	return (size_t)(x & (GZCACHE_NBUCKETS - 1));
}

static int
gzcache_same_file(const struct gzcache_entry *e, const struct stat *st)
{
	return e->ge_dev == st->st_dev && e->ge_ino == st->st_ino;
}

/*
 * The change time is part of the version: "cp -p" or "touch -d" can
 * give new content the old size and mtime, but not the old ctime.
 */
static int
gzcache_same_version(const struct gzcache_entry *e, const struct stat *st)
{
	return gzcache_same_file(e, st) && e->ge_size == st->st_size &&
	    e->ge_mtime == st->st_mtim.tv_sec &&
	    e->ge_mtime_nsec == st->st_mtim.tv_nsec &&
	    e->ge_ctime == st->st_ctim.tv_sec &&
	    e->ge_ctime_nsec == st->st_ctim.tv_nsec;
}

struct gzcache *
gzcache_create(size_t max_bytes, size_t max_file_size)
{
	struct gzcache	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->gc_max_bytes = max_bytes;
	c->gc_max_file = max_file_size;
	return c;
}

void
gzcache_ref(struct gzcache_entry *e)
{
	e->ge_refs++;
}

void
gzcache_unref(struct gzcache_entry *e)
{
	if (e == NULL || --e->ge_refs > 0)
		return;
	free(e->ge_buf);
	free(e);
}

static void
gzcache_lru_unlink(struct gzcache *c, struct gzcache_entry *e)
{
	if (e->ge_prev != NULL)
		e->ge_prev->ge_next = e->ge_next;
	else
		c->gc_head = e->ge_next;
	if (e->ge_next != NULL)
		e->ge_next->ge_prev = e->ge_prev;
	else
		c->gc_tail = e->ge_prev;
	e->ge_prev = e->ge_next = NULL;
}

static void
gzcache_lru_push(struct gzcache *c, struct gzcache_entry *e)
{
	e->ge_prev = NULL;
	e->ge_next = c->gc_head;
	if (c->gc_head != NULL)
		c->gc_head->ge_prev = e;
	else
		c->gc_tail = e;
	c->gc_head = e;
}

/* Take e out of the cache and drop the cache's reference; whoever
 * still holds one keeps a valid entry. */
static void
gzcache_evict(struct gzcache *c, struct gzcache_entry *e)
{
	struct gzcache_entry	**pp;

	pp = &c->gc_buckets[gzcache_bucket(e->ge_dev, e->ge_ino)];
	while (*pp != e)
		pp = &(*pp)->ge_hnext;
	*pp = e->ge_hnext;
	e->ge_hnext = NULL;
	gzcache_lru_unlink(c, e);
	c->gc_bytes -= gzcache_cost(e);
	c->gc_count--;
	gzcache_unref(e);
}

void
gzcache_free(struct gzcache *c)
{
	if (c == NULL)
		return;
	while (c->gc_tail != NULL)
		gzcache_evict(c, c->gc_tail);
	free(c);
}

struct gzcache_entry *
gzcache_get(struct gzcache *c, const struct stat *st, int level)
{
	struct gzcache_entry	*e;

	e = c->gc_buckets[gzcache_bucket(st->st_dev, st->st_ino)];
	for (; e != NULL; e = e->ge_hnext) {
		if (e->ge_level == level && gzcache_same_version(e, st))
			break;
	}
	if (e == NULL)
		return NULL;
	gzcache_lru_unlink(c, e);
	gzcache_lru_push(c, e);
	gzcache_ref(e);
	return e;
}

static void
gzcache_insert(struct gzcache *c, struct gzcache_entry *e,
    const struct stat *st)
{
	struct gzcache_entry	*o, *next;
	size_t			 b, cost = gzcache_cost(e);

	if (cost > c->gc_max_bytes)
		return;		/* the caller's reference is the only one */

	/* Older versions of this file can never be asked for again, and
	 * the same key may be there if the caller skipped gzcache_get(). */
	b = gzcache_bucket(e->ge_dev, e->ge_ino);
	for (o = c->gc_buckets[b]; o != NULL; o = next) {
		next = o->ge_hnext;
		if (gzcache_same_file(o, st) && (!gzcache_same_version(o, st) ||
		    o->ge_level == e->ge_level))
			gzcache_evict(c, o);
	}
	while (c->gc_tail != NULL && (c->gc_bytes + cost > c->gc_max_bytes ||
	    c->gc_count >= GZCACHE_MAX_ENTRIES))
		gzcache_evict(c, c->gc_tail);

	e->ge_hnext = c->gc_buckets[b];
	c->gc_buckets[b] = e;
	gzcache_lru_push(c, e);
	c->gc_bytes += cost;
	c->gc_count++;
	gzcache_ref(e);
}

/* pread() all of n bytes unless the file ends first. */
static ssize_t
gzcache_pread(int fd, unsigned char *p, size_t n, off_t off)
{
	size_t	 done = 0;
	ssize_t	 r;

	while (done < n) {
		r = pread(fd, p + done, n - done, off + (off_t)done);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			return -1;
		if (r == 0)
			break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/*
 * Compress size bytes from fd (or from buf when fd is -1) into one gzip
 * member. The output buffer is deflateBound() big, so deflate() never
 * runs out of room; whether the result is worth sending is the
 * caller's call (a client that refuses identity takes it anyway).
 */
static int
gzcache_deflate(int fd, const unsigned char *buf, off_t size, int level,
    unsigned char **out, size_t *outlen)
{
	z_stream	 zs;
	unsigned char	*in = NULL, *dst = NULL, *shrunk;
	off_t		 off = 0;
	size_t		 n, cap;
	int		 zinit = 0, r = Z_OK, flush, saved;

	*out = NULL;
	*outlen = 0;
	memset(&zs, 0, sizeof(zs));
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		errno = ENOMEM;
		goto fail;
	}
	zinit = 1;
	/* size <= max_file, far below 4 GiB: uLong holds it. */
	cap = deflateBound(&zs, (uLong)size);
	if ((dst = malloc(cap)) == NULL)
		goto fail;
	if (fd != -1 && size > 0 && (in = malloc(GZCACHE_CHUNK)) == NULL)
		goto fail;
	zs.next_out = dst;
	zs.avail_out = (uInt)cap;

	while (r != Z_STREAM_END) {
		n = size - off < GZCACHE_CHUNK ? (size_t)(size - off) :
		    GZCACHE_CHUNK;
		/* An empty file: no input at all, NULL is fine with zlib. */
		zs.next_in = NULL;
		if (fd != -1 && n > 0) {
			ssize_t	 got = gzcache_pread(fd, in, n, off);

			if (got == -1)
				goto fail;
			if ((size_t)got < n) {
				errno = ESTALE;	/* truncated under us */
				goto fail;
			}
			zs.next_in = in;
		} else if (buf != NULL)
			zs.next_in = buf + off;
		zs.avail_in = (uInt)n;
		off += (off_t)n;
		flush = off == size ? Z_FINISH : Z_NO_FLUSH;

		do {
			r = deflate(&zs, flush);
			/* With deflateBound() room, only a bug gets here. */
			if (r == Z_STREAM_ERROR || (r != Z_STREAM_END &&
			    zs.avail_out == 0)) {
				errno = EINVAL;
				goto fail;
			}
		} while (zs.avail_in > 0 || (flush == Z_FINISH &&
		    r != Z_STREAM_END));
	}

	*outlen = zs.total_out;
	if ((shrunk = realloc(dst, *outlen)) != NULL)
		dst = shrunk;
	*out = dst;
	deflateEnd(&zs);
	free(in);
	return 0;

 fail:
	saved = errno;
	if (zinit)
		deflateEnd(&zs);
	free(dst);
	free(in);
	errno = saved;
	return -1;
}

static struct gzcache_entry *
gzcache_make(struct gzcache *c, const struct stat *st, int level, int fd,
    const void *buf)
{
	struct gzcache_entry	*e;
	struct stat		 now;
	int			 saved;

	if (level < -1 || level > 9 || st->st_size < 0 ||
	    (fd == -1 && buf == NULL && st->st_size > 0)) {
		errno = EINVAL;
		return NULL;
	}
	if ((uintmax_t)st->st_size > c->gc_max_file ||
	    (uintmax_t)st->st_size > UINT32_MAX) {
		errno = EFBIG;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	if (gzcache_deflate(fd, buf, st->st_size, level, &e->ge_buf,
	    &e->ge_len) == -1)
		goto fail;
	/*
	 * A file rewritten while we read it would put new bytes under the
	 * old version's key (or a mix of both): check it is still the
	 * version the caller described.
	 */
	if (fd != -1) {
		if (fstat(fd, &now) == -1)
			goto fail;
		if (now.st_size != st->st_size ||
		    now.st_mtim.tv_sec != st->st_mtim.tv_sec ||
		    now.st_mtim.tv_nsec != st->st_mtim.tv_nsec ||
		    now.st_ctim.tv_sec != st->st_ctim.tv_sec ||
		    now.st_ctim.tv_nsec != st->st_ctim.tv_nsec) {
			errno = ESTALE;
			goto fail;
		}
	}
	e->ge_data = e->ge_buf;
	e->ge_dev = st->st_dev;
	e->ge_ino = st->st_ino;
	e->ge_size = st->st_size;
	e->ge_mtime = st->st_mtim.tv_sec;
	e->ge_mtime_nsec = st->st_mtim.tv_nsec;
	e->ge_ctime = st->st_ctim.tv_sec;
	e->ge_ctime_nsec = st->st_ctim.tv_nsec;
	e->ge_level = level;
	e->ge_refs = 1;		/* the caller's */
	gzcache_insert(c, e, st);
	return e;

 fail:
	saved = errno;
	free(e->ge_buf);
	free(e);
	errno = saved;
	return NULL;
}

struct gzcache_entry *
gzcache_put(struct gzcache *c, const struct stat *st, int level, int fd)
{
	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	return gzcache_make(c, st, level, fd, NULL);
}

struct gzcache_entry *
gzcache_put_buf(struct gzcache *c, const struct stat *st, int level,
    const void *buf)
{
	return gzcache_make(c, st, level, -1, buf);
}

size_t
gzcache_bytes(const struct gzcache *c)
{
	return c->gc_bytes;
}

size_t
gzcache_count(const struct gzcache *c)
{
	return c->gc_count;
}
