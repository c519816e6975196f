/*
 * test_gzcache.c - the per-worker gzip cache: output, keys, LRU bounds
 * and reference counting.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>
#include <criterion/criterion.h>

#include "rep.h"

#define LEVEL	6

/* A made-up file identity; only the key fields matter. */
static struct stat
fake_stat(ino_t ino, off_t size, time_t mtime)
{
	struct stat	 st;

	memset(&st, 0, sizeof(st));
	st.st_dev = 42;
	st.st_ino = ino;
	st.st_size = size;
	st.st_mtim.tv_sec = mtime;
	st.st_mtim.tv_nsec = 500;
	return st;
}

/* Text that compresses well; seed makes different files differ. */
static char *
text(size_t size, unsigned seed)
{
	char	*p = malloc(size);
	size_t	 k;

	cr_assert_not_null(p);
	for (k = 0; k < size; k++)
		p[k] = (char)('a' + (k / 7 + seed) % 26);
	return p;
}

/* Bytes that do not compress: xorshift, deterministic. */
static char *
noise(size_t size)
{
	char		*p = malloc(size);
	uint32_t	 x = 2463534242u;
	size_t		 k;

	cr_assert_not_null(p);
	for (k = 0; k < size; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[k] = (char)(x >> 24);
	}
	return p;
}

/* Inflate e's gzip member and compare with the source. */
static void
check_member(const struct gzcache_entry *e, const char *src, size_t len)
{
	z_stream	 zs;
	char		*out = malloc(len + 1);
	int		 r;

	cr_assert_not_null(out);
	cr_assert_not_null(e->ge_data);
	cr_assert(e->ge_data[0] == 0x1f && e->ge_data[1] == 0x8b,
	    "no gzip magic");
	memset(&zs, 0, sizeof(zs));
	cr_assert_eq(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (unsigned char *)e->ge_data;
	zs.avail_in = (uInt)e->ge_len;
	zs.next_out = (unsigned char *)out;
	zs.avail_out = (uInt)len + 1;
	r = inflate(&zs, Z_FINISH);
	cr_assert_eq(r, Z_STREAM_END, "inflate: %d", r);
	cr_assert_eq(zs.total_out, len);
	cr_assert_eq(zs.avail_in, 0, "trailing bytes");
	cr_assert_eq(memcmp(out, src, len), 0);
	inflateEnd(&zs);
	free(out);
}

/* The same, for text that must have come out smaller. */
static void
check_gunzip(const struct gzcache_entry *e, const char *src, size_t len)
{
	cr_assert_lt(e->ge_len, len, "not smaller");
	check_member(e, src, len);
}

Test(gzcache, round_trip_and_hit)
{
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e, *h;
	struct stat		 st = fake_stat(1, 100000, 1000);
	char			*src = text(100000, 0);

	cr_assert_not_null(c);
	cr_assert_null(gzcache_get(c, &st, LEVEL), "hit in an empty cache");
	e = gzcache_put_buf(c, &st, LEVEL, src);
	cr_assert_not_null(e);
	check_gunzip(e, src, 100000);
	cr_assert_eq(gzcache_count(c), 1);
	cr_assert_eq(gzcache_bytes(c), e->ge_len + sizeof(*e));

	h = gzcache_get(c, &st, LEVEL);
	cr_assert_eq(h, e, "second request misses");
	cr_assert_null(gzcache_get(c, &st, 9), "level is part of the key");
	gzcache_unref(h);
	gzcache_unref(e);
	gzcache_free(c);
	free(src);
}

Test(gzcache, from_fd)
{
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	char			 path[] = "/tmp/porter-gzcache-XXXXXX";
	struct stat		 st;
	size_t			 len = 300000;	/* several read chunks */
	char			*src = text(len, 3);
	int			 fd;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, src, len), (ssize_t)len);
	cr_assert_eq(lseek(fd, 5, SEEK_SET), 5);
	cr_assert_eq(fstat(fd, &st), 0);

	e = gzcache_put(c, &st, LEVEL, fd);
	cr_assert_not_null(e, "%s", strerror(errno));
	check_gunzip(e, src, len);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), 5, "file offset moved");
	gzcache_unref(e);

	/* same size, but not the version described: refuse, cache nothing */
	st.st_mtim.tv_nsec = (st.st_mtim.tv_nsec + 1) % 1000000000;
	errno = 0;
	cr_assert_null(gzcache_put(c, &st, LEVEL, fd));
	cr_assert_eq(errno, ESTALE);
	cr_assert_null(gzcache_get(c, &st, LEVEL));
	cr_assert_eq(gzcache_count(c), 1, "only the true version is kept");

	/* the file shrank since fstat(): refuse, do not cache garbage */
	st.st_size += 10;
	st.st_mtim.tv_nsec++;
	errno = 0;
	cr_assert_null(gzcache_put(c, &st, LEVEL, fd));
	cr_assert_eq(errno, ESTALE);
	cr_assert_null(gzcache_get(c, &st, LEVEL));

	cr_assert_null(gzcache_put(c, &st, LEVEL, -1));
	cr_assert_eq(errno, EBADF);

	close(fd);
	gzcache_free(c);
	free(src);
}

Test(gzcache, new_version_is_a_new_key)
{
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*old, *e;
	struct stat		 st = fake_stat(7, 5000, 1000);
	struct stat		 st2;
	char			*v1 = text(5000, 1), *v2 = text(5000, 2);
	char			*v3 = text(6000, 3);

	old = gzcache_put_buf(c, &st, LEVEL, v1);
	cr_assert_not_null(old);

	/* same size, mtime a nanosecond later */
	st2 = st;
	st2.st_mtim.tv_nsec++;
	cr_assert_null(gzcache_get(c, &st2, LEVEL));
	e = gzcache_put_buf(c, &st2, LEVEL, v2);
	cr_assert_not_null(e);
	cr_assert_eq(gzcache_count(c), 1, "the old version stayed");
	cr_assert_null(gzcache_get(c, &st, LEVEL));
	/* whoever was sending the old version still can */
	check_gunzip(old, v1, 5000);
	check_gunzip(e, v2, 5000);
	gzcache_unref(old);
	gzcache_unref(e);

	/* same mtime, new size */
	st2.st_size = 6000;
	cr_assert_null(gzcache_get(c, &st2, LEVEL));
	e = gzcache_put_buf(c, &st2, LEVEL, v3);
	check_gunzip(e, v3, 6000);
	gzcache_unref(e);
	cr_assert_eq(gzcache_count(c), 1);

	/* another inode, same everything else */
	st2.st_ino = 8;
	cr_assert_null(gzcache_get(c, &st2, LEVEL));
	gzcache_free(c);
	free(v1);
	free(v2);
	free(v3);
}

Test(gzcache, lru_eviction_by_bytes)
{
	struct gzcache		*c;
	struct gzcache_entry	*e;
	struct stat		 st[3];
	char			*src[3];
	size_t			 cost[3], k;

	/* Learn each entry's cost first, in a roomy cache. */
	c = gzcache_create(GZCACHE_MAX_BYTES, GZCACHE_MAX_FILE);
	for (k = 0; k < 3; k++) {
		st[k] = fake_stat(100 + k, 50000, 1000);
		src[k] = text(50000, (unsigned)k);
		e = gzcache_put_buf(c, &st[k], LEVEL, src[k]);
		cr_assert_not_null(e);
		cost[k] = e->ge_len + sizeof(*e);
		gzcache_unref(e);
	}
	gzcache_free(c);

	/* Room for all three but one byte. */
	c = gzcache_create(cost[0] + cost[1] + cost[2] - 1, GZCACHE_MAX_FILE);
	gzcache_unref(gzcache_put_buf(c, &st[0], LEVEL, src[0]));
	gzcache_unref(gzcache_put_buf(c, &st[1], LEVEL, src[1]));
	/* touch 0, so 1 is now the least recently used */
	e = gzcache_get(c, &st[0], LEVEL);
	cr_assert_not_null(e);
	gzcache_unref(e);
	gzcache_unref(gzcache_put_buf(c, &st[2], LEVEL, src[2]));

	cr_assert_eq(gzcache_count(c), 2);
	cr_assert_leq(gzcache_bytes(c), cost[0] + cost[1] + cost[2] - 1);
	cr_assert_eq(gzcache_bytes(c), cost[0] + cost[2]);
	cr_assert_null(gzcache_get(c, &st[1], LEVEL), "LRU entry survived");
	e = gzcache_get(c, &st[0], LEVEL);
	cr_assert_not_null(e, "recently used entry evicted");
	gzcache_unref(e);
	e = gzcache_get(c, &st[2], LEVEL);
	cr_assert_not_null(e, "newest entry evicted");
	gzcache_unref(e);

	gzcache_free(c);
	for (k = 0; k < 3; k++)
		free(src[k]);
}

Test(gzcache, eviction_by_count)
{
	struct gzcache		*c = gzcache_create(SIZE_MAX, GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	struct stat		 st;
	char			*src = text(200, 0);
	size_t			 k;

	for (k = 0; k <= GZCACHE_MAX_ENTRIES; k++) {
		st = fake_stat(1000 + k, 200, 1000);
		e = gzcache_put_buf(c, &st, 1, src);
		cr_assert_not_null(e);
		gzcache_unref(e);
		cr_assert_leq(gzcache_count(c), GZCACHE_MAX_ENTRIES);
	}
	cr_assert_eq(gzcache_count(c), GZCACHE_MAX_ENTRIES);
	st = fake_stat(1000, 200, 1000);
	cr_assert_null(gzcache_get(c, &st, 1), "oldest entry survived");
	st = fake_stat(1000 + GZCACHE_MAX_ENTRIES, 200, 1000);
	e = gzcache_get(c, &st, 1);
	cr_assert_not_null(e);
	gzcache_unref(e);
	gzcache_free(c);
	free(src);
}

/* An evicted entry stays readable while a caller holds it; ASan would
 * report a use after free otherwise. */
Test(gzcache, refcount_outlives_eviction)
{
	struct gzcache		*c;
	struct gzcache_entry	*a, *b, *a2;
	struct stat		 sa = fake_stat(1, 40000, 1000);
	struct stat		 sb = fake_stat(2, 40000, 1000);
	char			*src_a = text(40000, 5), *src_b = text(40000, 6);

	c = gzcache_create(GZCACHE_MAX_BYTES, GZCACHE_MAX_FILE);
	a = gzcache_put_buf(c, &sa, LEVEL, src_a);
	cr_assert_not_null(a);
	gzcache_free(c);

	/* only one of the two fits */
	c = gzcache_create(a->ge_len + sizeof(*a) + 100, GZCACHE_MAX_FILE);
	gzcache_unref(a);
	a = gzcache_put_buf(c, &sa, LEVEL, src_a);
	a2 = gzcache_get(c, &sa, LEVEL);
	cr_assert_eq(a, a2);
	gzcache_ref(a);		/* a third holder */
	b = gzcache_put_buf(c, &sb, LEVEL, src_b);
	cr_assert_not_null(b);
	cr_assert_null(gzcache_get(c, &sa, LEVEL), "a not evicted");
	cr_assert_eq(gzcache_count(c), 1);

	check_gunzip(a, src_a, 40000);
	gzcache_unref(a2);
	check_gunzip(a, src_a, 40000);
	gzcache_unref(a);
	check_gunzip(a, src_a, 40000);
	gzcache_unref(a);

	/* and the cache itself may go first */
	gzcache_free(c);
	check_gunzip(b, src_b, 40000);
	gzcache_unref(b);
	free(src_a);
	free(src_b);
}

/*
 * What does not shrink is still kept, as a whole gzip member: the
 * caller sends it to a client that refuses identity, and otherwise
 * compares sizes, without compressing again on every request.
 */
Test(gzcache, incompressible_is_kept)
{
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e, *h;
	struct stat		 st = fake_stat(9, 100000, 1000);
	struct stat		 st0 = fake_stat(10, 0, 1000);
	char			*src = noise(100000);

	e = gzcache_put_buf(c, &st, LEVEL, src);
	cr_assert_not_null(e);
	cr_assert_geq(e->ge_len, 100000, "random bytes compressed");
	check_member(e, src, 100000);
	h = gzcache_get(c, &st, LEVEL);
	cr_assert_eq(h, e, "not remembered");
	gzcache_unref(h);
	gzcache_unref(e);

	/* an empty file: a member that inflates to nothing */
	e = gzcache_put_buf(c, &st0, LEVEL, "");
	cr_assert_not_null(e);
	cr_assert_eq(e->ge_len, 20);
	check_member(e, "", 0);
	gzcache_unref(e);
	e = gzcache_put_buf(c, &st0, LEVEL, NULL);
	cr_assert_not_null(e, "an empty file needs no buffer");
	gzcache_unref(e);
	cr_assert_eq(gzcache_count(c), 2);
	gzcache_free(c);
	free(src);
}

/* The change time is part of the key: "cp -p" keeps size and mtime. */
Test(gzcache, ctime_is_part_of_the_key)
{
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	struct stat		 st = fake_stat(11, 5000, 1000), st2;
	char			*v1 = text(5000, 1);

	st.st_ctim.tv_sec = 2000;
	e = gzcache_put_buf(c, &st, LEVEL, v1);
	cr_assert_not_null(e);
	gzcache_unref(e);
	st2 = st;
	st2.st_ctim.tv_nsec++;
	cr_assert_null(gzcache_get(c, &st2, LEVEL));
	e = gzcache_get(c, &st, LEVEL);
	cr_assert_not_null(e);
	gzcache_unref(e);
	gzcache_free(c);
	free(v1);
}

Test(gzcache, limits_and_errors)
{
	struct gzcache		*c = gzcache_create(50, 50000);
	struct gzcache_entry	*e;
	struct stat		 st = fake_stat(1, 50001, 1000);
	char			*src = text(50001, 0);

	errno = 0;
	cr_assert_null(gzcache_put_buf(c, &st, LEVEL, src));
	cr_assert_eq(errno, EFBIG);

	/* fits max_file but not the cache: usable, just not kept */
	st.st_size = 50000;
	e = gzcache_put_buf(c, &st, LEVEL, src);
	cr_assert_not_null(e);
	check_gunzip(e, src, 50000);
	cr_assert_eq(gzcache_count(c), 0);
	cr_assert_eq(gzcache_bytes(c), 0);
	cr_assert_null(gzcache_get(c, &st, LEVEL));
	gzcache_unref(e);

	errno = 0;
	cr_assert_null(gzcache_put_buf(c, &st, 10, src));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(gzcache_put_buf(c, &st, LEVEL, NULL));
	cr_assert_eq(errno, EINVAL);

	/* zlib's default level is allowed */
	e = gzcache_put_buf(c, &st, -1, src);
	cr_assert_not_null(e);
	check_gunzip(e, src, 50000);
	gzcache_unref(e);

	gzcache_unref(NULL);
	gzcache_free(c);
	gzcache_free(NULL);
	free(src);
}

/* ---- background jobs: compressing in slices ----------------------------- */

/* An unlinked temporary file holding src; st describes it. */
static int
temp_file(const char *src, size_t len, struct stat *st)
{
	char	 path[] = "/tmp/porter-gzcache-XXXXXX";
	int	 fd;

	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, src, len), (ssize_t)len);
	cr_assert_eq(fstat(fd, st), 0);
	return fd;
}

/* zlib in one call over the whole input: the reference member. */
static unsigned char *
deflate_whole(const char *src, size_t len, int level, size_t *outlen)
{
	z_stream	 zs;
	unsigned char	*out;
	size_t		 cap;

	memset(&zs, 0, sizeof(zs));
	cr_assert_eq(deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	cap = deflateBound(&zs, (uLong)len);
	out = malloc(cap);
	cr_assert_not_null(out);
	zs.next_in = (unsigned char *)src;
	zs.avail_in = (uInt)len;
	zs.next_out = out;
	zs.avail_out = (uInt)cap;
	cr_assert_eq(deflate(&zs, Z_FINISH), Z_STREAM_END);
	*outlen = zs.total_out;
	deflateEnd(&zs);
	return out;
}

/*
 * Run a started job to its end with budget bytes per turn; returns the
 * number of turns it took.
 */
static size_t
run_to_end(struct gzcache *c, size_t budget)
{
	size_t	 turns = 0;

	while (gzcache_run(c, budget) > 0) {
		turns++;
		cr_assert_lt(turns, 10000000, "a job that never ends");
	}
	return turns + 1;
}

/*
 * The state machine: any slicing of the input gives the very bytes one
 * deflate() over the whole file gives, in exactly ceil(size / budget)
 * turns, and nothing is cached before the last one.
 */
Test(gzcache, slices_equal_whole)
{
	static const size_t	 budgets[] = { 1, 1000, 4096, 65535,
				    GZCACHE_SLICE, GZCACHE_SLICE + 1,
				    10 * 1024 * 1024 };
	size_t			 len = 3 * GZCACHE_SLICE + 12345;
	char			*src = text(len, 4);
	unsigned char		*ref;
	struct gzcache		*c;
	struct gzcache_entry	*e;
	struct stat		 st;
	size_t			 reflen, k, turns, want;
	int			 fd;

	ref = deflate_whole(src, len, LEVEL, &reflen);
	fd = temp_file(src, len, &st);
	for (k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
		/* 1 byte per turn is slow; a smaller file will do. */
		if (budgets[k] == 1)
			continue;
		c = gzcache_create(GZCACHE_MAX_BYTES, GZCACHE_MAX_FILE);
		errno = 0;
		cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd),
		    "a file bigger than a slice compressed inline");
		cr_assert_eq(errno, EINPROGRESS);
		cr_assert_eq(gzcache_jobs(c), 1);
		/* not yet: asking again neither waits nor starts another */
		cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd));
		cr_assert_eq(errno, EINPROGRESS);
		cr_assert_eq(gzcache_jobs(c), 1);
		cr_assert_eq(gzcache_count(c), 0);
		cr_assert_eq(gzcache_run(c, 0), 1, "budget 0 ran the job");

		turns = run_to_end(c, budgets[k]);
		want = (len + budgets[k] - 1) / budgets[k];
		cr_assert_eq(turns, want, "budget %zu: %zu turns, not %zu",
		    budgets[k], turns, want);
		cr_assert_eq(gzcache_jobs(c), 0);
		e = gzcache_fetch(c, &st, LEVEL, fd);
		cr_assert_not_null(e, "the job's result is not cached");
		cr_assert_eq(e->ge_len, reflen, "budget %zu", budgets[k]);
		cr_assert_eq(memcmp(e->ge_data, ref, reflen), 0,
		    "budget %zu: other bytes than one deflate()", budgets[k]);
		check_gunzip(e, src, len);
		gzcache_unref(e);
		gzcache_free(c);
	}
	close(fd);
	free(ref);
	free(src);
}

/* One byte per turn, on a file just over a slice. */
Test(gzcache, one_byte_slices)
{
	size_t			 len = GZCACHE_SLICE + 77;
	char			*src = text(len, 8);
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	unsigned char		*ref;
	struct stat		 st;
	size_t			 reflen;
	int			 fd = temp_file(src, len, &st);

	ref = deflate_whole(src, len, 1, &reflen);
	cr_assert_null(gzcache_fetch(c, &st, 1, fd));
	cr_assert_eq(errno, EINPROGRESS);
	cr_assert_eq(run_to_end(c, 1), len);
	e = gzcache_get(c, &st, 1);
	cr_assert_not_null(e);
	cr_assert_eq(e->ge_len, reflen);
	cr_assert_eq(memcmp(e->ge_data, ref, reflen), 0);
	check_gunzip(e, src, len);
	gzcache_unref(e);
	gzcache_free(c);
	close(fd);
	free(ref);
	free(src);
}

/*
 * The inline allowance: at most GZCACHE_SLICE bytes compressed by
 * gzcache_fetch() itself per turn, whatever the number of requests;
 * the rest waits for jobs. gzcache_run() opens the next turn.
 */
Test(gzcache, inline_budget_per_turn)
{
	size_t			 len = GZCACHE_SLICE / 2 + 1;
	char			*src = text(len, 9);
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	struct stat		 st[3];
	int			 fd[3], k;

	for (k = 0; k < 3; k++)
		fd[k] = temp_file(src, len, &st[k]);
	e = gzcache_fetch(c, &st[0], LEVEL, fd[0]);
	cr_assert_not_null(e, "a small file waits");
	check_gunzip(e, src, len);
	gzcache_unref(e);
	/* the second would make it more than a slice this turn */
	cr_assert_null(gzcache_fetch(c, &st[1], LEVEL, fd[1]));
	cr_assert_eq(errno, EINPROGRESS);
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 0, "one slice is enough");
	e = gzcache_get(c, &st[1], LEVEL);
	cr_assert_not_null(e);
	check_gunzip(e, src, len);
	gzcache_unref(e);
	/* a new turn, a new allowance */
	e = gzcache_fetch(c, &st[2], LEVEL, fd[2]);
	cr_assert_not_null(e);
	gzcache_unref(e);
	gzcache_free(c);
	for (k = 0; k < 3; k++)
		close(fd[k]);
	free(src);
}

/*
 * Jobs take turns, never more than GZCACHE_MAX_JOBS at once, and each
 * holds its own fd: the caller may close its own at once.
 */
Test(gzcache, jobs_share_turns_and_are_bounded)
{
	size_t			 len = 2 * GZCACHE_SLICE;
	char			*src[GZCACHE_MAX_JOBS + 1];
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct gzcache_entry	*e;
	struct stat		 st[GZCACHE_MAX_JOBS + 1];
	int			 fd, k;

	for (k = 0; k <= GZCACHE_MAX_JOBS; k++) {
		src[k] = text(len, (unsigned)k);
		fd = temp_file(src[k], len, &st[k]);
		errno = 0;
		cr_assert_null(gzcache_fetch(c, &st[k], LEVEL, fd));
		cr_assert_eq(errno, k < GZCACHE_MAX_JOBS ? EINPROGRESS :
		    EAGAIN);
		close(fd);
	}
	cr_assert_eq(gzcache_jobs(c), GZCACHE_MAX_JOBS);
	/* A slice each, in turn: after one round, none is done. */
	for (k = 0; k < GZCACHE_MAX_JOBS; k++)
		cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), GZCACHE_MAX_JOBS);
	for (k = 0; k < GZCACHE_MAX_JOBS; k++)
		cr_assert_eq(gzcache_run(c, GZCACHE_SLICE),
		    (size_t)(GZCACHE_MAX_JOBS - k - 1));
	for (k = 0; k < GZCACHE_MAX_JOBS; k++) {
		e = gzcache_get(c, &st[k], LEVEL);
		cr_assert_not_null(e, "job %d", k);
		check_gunzip(e, src[k], len);
		gzcache_unref(e);
	}
	cr_assert_null(gzcache_get(c, &st[GZCACHE_MAX_JOBS], LEVEL));
	gzcache_free(c);
	for (k = 0; k <= GZCACHE_MAX_JOBS; k++)
		free(src[k]);
}

/*
 * A file that changes while its job runs: the result is dropped, not
 * cached under the old key; a request for the new version drops the
 * old version's job at once; and the cache may go with jobs pending.
 */
Test(gzcache, job_dropped_when_the_file_changes)
{
	size_t			 len = 3 * GZCACHE_SLICE;
	char			*src = text(len, 5);
	struct gzcache		*c = gzcache_create(GZCACHE_MAX_BYTES,
				    GZCACHE_MAX_FILE);
	struct stat		 st, st2;
	struct timespec		 ts[2];
	int			 fd = temp_file(src, len, &st);

	cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd));
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 1);
	/* rewritten in place, same size; the clock may not have ticked
	 * since the file was made, so set the mtime a writer would */
	cr_assert_eq(pwrite(fd, "XYZ", 3, 10), 3);
	ts[0].tv_sec = ts[1].tv_sec = st.st_mtim.tv_sec + 1;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	cr_assert_eq(futimens(fd, ts), 0);
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 1);
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 0);
	cr_assert_null(gzcache_get(c, &st, LEVEL), "stale bytes cached");
	cr_assert_eq(gzcache_count(c), 0);

	/* truncated under the job: it ends, nothing cached */
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd));
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 1);
	cr_assert_eq(ftruncate(fd, (off_t)GZCACHE_SLICE), 0);
	cr_assert_eq(gzcache_run(c, GZCACHE_SLICE), 0);
	cr_assert_eq(gzcache_count(c), 0);

	/* a new version's request replaces the old version's job */
	cr_assert_eq(ftruncate(fd, (off_t)len), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd));
	cr_assert_eq(gzcache_jobs(c), 1);
	st2 = st;
	st2.st_mtim.tv_nsec = (st2.st_mtim.tv_nsec + 1) % 1000000000;
	cr_assert_null(gzcache_fetch(c, &st2, LEVEL, fd));
	cr_assert_eq(errno, EINPROGRESS);
	cr_assert_eq(gzcache_jobs(c), 1, "two versions' jobs");
	/* (st2 is not the file's true version: that job ends unsaved) */
	run_to_end(c, GZCACHE_SLICE);
	cr_assert_eq(gzcache_count(c), 0);

	/* too big is too big, in the background too */
	st2 = st;
	st2.st_size = GZCACHE_MAX_FILE + 1;
	cr_assert_null(gzcache_fetch(c, &st2, LEVEL, fd));
	cr_assert_eq(errno, EFBIG);
	cr_assert_null(gzcache_fetch(c, &st, LEVEL, -1));
	cr_assert_eq(errno, EBADF);

	/* pending when the cache goes: ASan would see a leak */
	cr_assert_null(gzcache_fetch(c, &st, LEVEL, fd));
	cr_assert_eq(gzcache_run(c, 100), 1);
	gzcache_free(c);
	close(fd);
	free(src);
}
