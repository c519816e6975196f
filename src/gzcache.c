/*
 * gzcache.c - gzip-coded copies of files, made on demand and kept in a
 * per-worker LRU cache bounded in bytes and entries. Single-threaded:
 * each worker process owns its cache, so there is no locking.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
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
	struct gzcache_job	*gc_jobs;	/* background, next to run first */
	size_t			 gc_njobs;
	size_t			 gc_budget;	/* inline bytes left this turn */
	unsigned char		*gc_in;		/* GZCACHE_CHUNK read buffer */
};

/*
 * A gzip member being made, at most a budget of input bytes per step,
 * so a big file can be compressed a slice per loop turn. gzcache_put()
 * runs one to the end at once; background jobs (gzcache_fetch()) get a
 * slice per gzcache_run(). The entry under construction carries the
 * key, so the cache's version checks apply to jobs as they are.
 */
struct gzcache_job {
	struct gzcache_job	*gj_next;
	struct gzcache_entry	*gj_e;		/* key set; ge_buf the output */
	z_stream		 gj_zs;
	int			 gj_zinit;
	int			 gj_fd;		/* input: our own fd, or -1 */
	const unsigned char	*gj_mem;	/* or memory (gzcache_put_buf) */
	int			 gj_own_fd;	/* close gj_fd with the job */
	off_t			 gj_off;	/* input bytes consumed */
};

static void	 gzcache_job_free(struct gzcache_job *);

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
	c->gc_budget = GZCACHE_SLICE;
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
	struct gzcache_job	*j;

	if (c == NULL)
		return;
	while (c->gc_tail != NULL)
		gzcache_evict(c, c->gc_tail);
	while ((j = c->gc_jobs) != NULL) {
		c->gc_jobs = j->gj_next;
		gzcache_job_free(j);
	}
	free(c->gc_in);
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

/* The fields of st that make e's key, for the comparisons above. */
static void
gzcache_key_stat(const struct gzcache_entry *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = e->ge_dev;
	st->st_ino = e->ge_ino;
	st->st_size = e->ge_size;
	st->st_mtim.tv_sec = e->ge_mtime;
	st->st_mtim.tv_nsec = e->ge_mtime_nsec;
	st->st_ctim.tv_sec = e->ge_ctime;
	st->st_ctim.tv_nsec = e->ge_ctime_nsec;
}

static void
gzcache_insert(struct gzcache *c, struct gzcache_entry *e)
{
	struct gzcache_entry	*o, *next;
	struct stat		 key, *st = &key;
	size_t			 b, cost = gzcache_cost(e);

	if (cost > c->gc_max_bytes)
		return;		/* the caller's reference is the only one */
	gzcache_key_stat(e, &key);

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


static void
gzcache_job_free(struct gzcache_job *j)
{
	if (j == NULL)
		return;
	if (j->gj_zinit)
		deflateEnd(&j->gj_zs);
	if (j->gj_own_fd && j->gj_fd != -1)
		close(j->gj_fd);
	if (j->gj_e != NULL) {
		free(j->gj_e->ge_buf);
		free(j->gj_e);
	}
	free(j);
}

/*
 * A job for the version st describes, reading fd (or buf when fd is
 * -1). The output buffer is deflateBound() big, so deflate() never runs
 * out of room; malloc() leaves pages it has not written untouched, so a
 * job costs about what it has written so far. Whether the result is
 * worth sending is the caller's call (a client that refuses identity
 * takes it anyway).
 */
static struct gzcache_job *
gzcache_job_new(const struct gzcache *c, const struct stat *st, int level,
    int fd, const void *buf)
{
	struct gzcache_job	*j;
	struct gzcache_entry	*e;
	size_t			 cap;
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
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return NULL;
	j->gj_fd = fd;
	j->gj_mem = buf;
	if ((e = j->gj_e = calloc(1, sizeof(*e))) == NULL)
		goto fail;
	e->ge_dev = st->st_dev;
	e->ge_ino = st->st_ino;
	e->ge_size = st->st_size;
	e->ge_mtime = st->st_mtim.tv_sec;
	e->ge_mtime_nsec = st->st_mtim.tv_nsec;
	e->ge_ctime = st->st_ctim.tv_sec;
	e->ge_ctime_nsec = st->st_ctim.tv_nsec;
	e->ge_level = level;
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
	if (deflateInit2(&j->gj_zs, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		errno = ENOMEM;
		goto fail;
	}
	j->gj_zinit = 1;
	/* size <= max_file, far below 4 GiB: uLong holds it. */
	cap = deflateBound(&j->gj_zs, (uLong)st->st_size);
	if ((e->ge_buf = malloc(cap)) == NULL)
		goto fail;
	j->gj_zs.next_out = e->ge_buf;
	j->gj_zs.avail_out = (uInt)cap;
	return j;

 fail:
	saved = errno;
	gzcache_job_free(j);
	errno = saved;
	return NULL;
}

/*
 * Feed the job at most max_in more bytes of input (max_in > 0), read in
 * GZCACHE_CHUNK pieces into the cache's buffer. Returns 1 if there is
 * more to do, 0 once the member is complete, -1 with errno (ESTALE: the
 * file got shorter under us; EINVAL: a zlib bug; a read error).
 */
static int
gzcache_job_step(struct gzcache *c, struct gzcache_job *j, size_t max_in)
{
	z_stream	*zs = &j->gj_zs;
	off_t		 size = j->gj_e->ge_size;
	size_t		 n, done = 0;
	ssize_t		 got;
	int		 r, flush;

	if (j->gj_fd != -1 && c->gc_in == NULL &&
	    (c->gc_in = malloc(GZCACHE_CHUNK)) == NULL)
		return -1;
	do {
		n = (uintmax_t)(size - j->gj_off) < GZCACHE_CHUNK ?
		    (size_t)(size - j->gj_off) : GZCACHE_CHUNK;
		if (n > max_in - done)
			n = max_in - done;
		/* An empty file: no input at all, NULL is fine with zlib. */
		zs->next_in = NULL;
		if (j->gj_fd != -1 && n > 0) {
			got = gzcache_pread(j->gj_fd, c->gc_in, n, j->gj_off);
			if (got == -1)
				return -1;
			if ((size_t)got < n) {
				errno = ESTALE;	/* truncated under us */
				return -1;
			}
			zs->next_in = c->gc_in;
		} else if (n > 0)
			zs->next_in = j->gj_mem + j->gj_off;
		zs->avail_in = (uInt)n;
		j->gj_off += (off_t)n;
		done += n;
		flush = j->gj_off == size ? Z_FINISH : Z_NO_FLUSH;
		do {
			r = deflate(zs, flush);
			/* With deflateBound() room, only a bug gets here. */
			if (r == Z_STREAM_ERROR || (r != Z_STREAM_END &&
			    zs->avail_out == 0)) {
				errno = EINVAL;
				return -1;
			}
		} while (zs->avail_in > 0 || (flush == Z_FINISH &&
		    r != Z_STREAM_END));
		if (r == Z_STREAM_END)
			return 0;
	} while (done < max_in);
	return 1;
}

/*
 * A complete job: check that the file is still the version it was
 * started for, then cache the entry and return it with a reference the
 * caller owns (the job no longer has it). NULL with errno otherwise;
 * the job is the caller's to free either way.
 */
static struct gzcache_entry *
gzcache_job_finish(struct gzcache *c, struct gzcache_job *j)
{
	struct gzcache_entry	*e = j->gj_e;
	unsigned char		*shrunk;
	struct stat		 now;

	/*
	 * A file rewritten while we read it would put new bytes under the
	 * old version's key (or a mix of both): check it is still the
	 * version the caller described.
	 */
	if (j->gj_fd != -1) {
		if (fstat(j->gj_fd, &now) == -1)
			return NULL;
		if (!gzcache_same_version(e, &now)) {
			errno = ESTALE;
			return NULL;
		}
	}
	e->ge_len = j->gj_zs.total_out;
	if ((shrunk = realloc(e->ge_buf, e->ge_len)) != NULL)
		e->ge_buf = shrunk;
	e->ge_data = e->ge_buf;
	e->ge_refs = 1;		/* the caller's */
	j->gj_e = NULL;
	gzcache_insert(c, e);
	return e;
}

static struct gzcache_entry *
gzcache_make(struct gzcache *c, const struct stat *st, int level, int fd,
    const void *buf)
{
	struct gzcache_job	*j;
	struct gzcache_entry	*e = NULL;
	int			 r, saved;

	if ((j = gzcache_job_new(c, st, level, fd, buf)) == NULL)
		return NULL;
	/* All at once: the caller asked for this many bytes' work. */
	while ((r = gzcache_job_step(c, j, GZCACHE_CHUNK)) == 1)
		;
	if (r == 0)
		e = gzcache_job_finish(c, j);
	saved = errno;
	gzcache_job_free(j);
	errno = saved;
	return e;
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

/* Unlink j from the job list and free it. */
static void
gzcache_job_drop(struct gzcache *c, struct gzcache_job *j)
{
	struct gzcache_job	**pp;

	for (pp = &c->gc_jobs; *pp != j; pp = &(*pp)->gj_next)
		;
	*pp = j->gj_next;
	c->gc_njobs--;
	gzcache_job_free(j);
}

/*
 * A background job for this version, unless one runs already. A job
 * for another version of the same file is dropped: its result could
 * never be asked for.
 */
static int
gzcache_job_start(struct gzcache *c, const struct stat *st, int level,
    int fd)
{
	struct gzcache_job	*j, *next, **pp;
	int			 own, saved;

	for (j = c->gc_jobs; j != NULL; j = next) {
		next = j->gj_next;
		if (!gzcache_same_file(j->gj_e, st))
			continue;
		if (!gzcache_same_version(j->gj_e, st))
			gzcache_job_drop(c, j);
		else if (j->gj_e->ge_level == level)
			return 0;
	}
	if (c->gc_njobs >= GZCACHE_MAX_JOBS) {
		errno = EAGAIN;
		return -1;
	}
	/* Our own fd: the caller's goes when its response is sent. */
	if ((own = fcntl(fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return -1;
	if ((j = gzcache_job_new(c, st, level, own, NULL)) == NULL) {
		saved = errno;
		close(own);
		errno = saved;
		return -1;
	}
	j->gj_own_fd = 1;
	for (pp = &c->gc_jobs; *pp != NULL; pp = &(*pp)->gj_next)
		;
	*pp = j;
	c->gc_njobs++;
	return 0;
}

struct gzcache_entry *
gzcache_fetch(struct gzcache *c, const struct stat *st, int level, int fd)
{
	struct gzcache_entry	*e;

	if ((e = gzcache_get(c, st, level)) != NULL)
		return e;
	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if (st->st_size >= 0 && (uintmax_t)st->st_size <= c->gc_budget) {
		c->gc_budget -= (size_t)st->st_size;
		return gzcache_put(c, st, level, fd);
	}
	if (gzcache_job_start(c, st, level, fd) == -1)
		return NULL;
	errno = EINPROGRESS;
	return NULL;
}

size_t
gzcache_run(struct gzcache *c, size_t budget)
{
	struct gzcache_job	*j, **pp;
	struct gzcache_entry	*e;
	off_t			 before;
	size_t			 used;
	int			 r;

	c->gc_budget = GZCACHE_SLICE;
	while (budget > 0 && (j = c->gc_jobs) != NULL) {
		before = j->gj_off;
		r = gzcache_job_step(c, j, budget);
		used = (size_t)(j->gj_off - before);
		budget -= used < budget ? used : budget;
		if (r == 1) {
			/* Its slice is spent: the next job goes first. */
			if (j->gj_next != NULL) {
				c->gc_jobs = j->gj_next;
				j->gj_next = NULL;
				for (pp = &c->gc_jobs; *pp != NULL;
				    pp = &(*pp)->gj_next)
					;
				*pp = j;
			}
			continue;
		}
		/* Done, or failed (changed under us, a read error): either
		 * way the job ends; the next request asks again if need be. */
		if (r == 0 && (e = gzcache_job_finish(c, j)) != NULL)
			gzcache_unref(e);
		gzcache_job_drop(c, j);
	}
	return c->gc_njobs;
}

size_t
gzcache_jobs(const struct gzcache *c)
{
	return c->gc_njobs;
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
