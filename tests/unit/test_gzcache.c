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
