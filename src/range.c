/*
 * range.c - Range: bytes=... (RFC 9110 14) and the framing of
 * multipart/byteranges bodies (RFC 9110 14.6). Pure functions.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "rep.h"

_Static_assert(sizeof(off_t) == sizeof(int64_t), "off_t must be 64 bits");
#define RANGE_OFF_MAX	((off_t)INT64_MAX)

static int
range_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* One or more digits; saturates, since a huge position is still valid
 * syntax and simply unsatisfiable (or the whole file for a suffix). */
static int
range_num(const char *p, size_t len, size_t *i, off_t *out)
{
	size_t	 j = *i;
	off_t	 v = 0;

	while (j < len && p[j] >= '0' && p[j] <= '9') {
		int	 d = p[j] - '0';

		if (v > (RANGE_OFF_MAX - d) / 10)
			v = RANGE_OFF_MAX;
		else
			v = v * 10 + d;
		j++;
	}
	if (j == *i)
		return -1;
	*i = j;
	*out = v;
	return 0;
}

static int
range_touch(const struct range *a, const struct range *b)
{
	/* end + 1 cannot overflow: ends are below the size. */
	return a->start <= b->end + 1 && b->start <= a->end + 1;
}

/*
 * Merge ranges that overlap or touch. The merged range takes the place
 * of the earlier one, so the parts still come in the order they were
 * asked for (RFC 9110 15.3.7.2). n is at most RANGE_MAX: the quadratic
 * passes do not matter.
 */
static void
range_coalesce(struct range_set *rs)
{
	size_t	 i, j;

 again:
	for (i = 0; i < rs->n; i++) {
		for (j = i + 1; j < rs->n; j++) {
			if (!range_touch(&rs->r[i], &rs->r[j]))
				continue;
			if (rs->r[j].start < rs->r[i].start)
				rs->r[i].start = rs->r[j].start;
			if (rs->r[j].end > rs->r[i].end)
				rs->r[i].end = rs->r[j].end;
			memmove(&rs->r[j], &rs->r[j + 1],
			    (rs->n - j - 1) * sizeof(rs->r[0]));
			rs->n--;
			goto again;
		}
	}
}

static int
range_parse_set(const char *p, size_t len, off_t size, struct range_set *rs)
{
	size_t	 i, nspecs = 0;
	off_t	 first, last;
	int	 empty_suffix = 0;

	while (len > 0 && range_is_ows(p[0])) {
		p++;
		len--;
	}
	while (len > 0 && range_is_ows(p[len - 1]))
		len--;
	/* Units other than bytes are ignored (RFC 9110 14.2). */
	if (len < 6 || strncasecmp(p, "bytes=", 6) != 0)
		return 0;

	for (i = 6;;) {
		/* Tolerate empty list elements (RFC 9110 5.6.1.2). */
		while (i < len && (range_is_ows(p[i]) || p[i] == ','))
			i++;
		if (i == len)
			break;
		if (++nspecs > RANGE_MAX)
			return 0;

		if (p[i] == '-') {
			/* suffix-range */
			i++;
			if (range_num(p, len, &i, &last) == -1)
				return 0;
			/* "-0" is unsatisfiable. */
			if (last > 0 && size == 0)
				empty_suffix = 1;
			else if (last > 0) {
				rs->r[rs->n].start = last >= size ? 0 :
				    size - last;
				rs->r[rs->n].end = size - 1;
				rs->n++;
			}
		} else {
			/* int-range */
			if (range_num(p, len, &i, &first) == -1 ||
			    i == len || p[i] != '-')
				return 0;
			i++;
			last = RANGE_OFF_MAX;
			if (i < len && p[i] >= '0' && p[i] <= '9') {
				if (range_num(p, len, &i, &last) == -1)
					return 0;
				if (last < first)
					return 0;
			}
			if (first < size) {
				rs->r[rs->n].start = first;
				rs->r[rs->n].end = last >= size ? size - 1 :
				    last;
				rs->n++;
			}
		}

		while (i < len && range_is_ows(p[i]))
			i++;
		if (i < len && p[i] != ',')
			return 0;
	}

	if (nspecs == 0)
		return 0;	/* "bytes=" alone is not a range-set */
	if (rs->n == 0)
		return empty_suffix ? 0 : 416;
	range_coalesce(rs);
	return 206;
}

int
range_parse(const char *p, size_t len, off_t size, struct range_set *rs)
{
	int	 status;

	rs->n = 0;
	if (p == NULL || size < 0)
		return 0;
	/* Ranges seen before a late syntax error must not leak out. */
	if ((status = range_parse_set(p, len, size, rs)) != 206)
		rs->n = 0;
	return status;
}

int
range_content_range(char *buf, size_t sz, const struct range *r,
    off_t size)
{
	if (r == NULL)
		return snprintf(buf, sz, "bytes */%jd", (intmax_t)size);
	return snprintf(buf, sz, "bytes %jd-%jd/%jd", (intmax_t)r->start,
	    (intmax_t)r->end, (intmax_t)size);
}

/* A 64-bit finalizer: every input bit affects every output bit. */
static uint64_t
range_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return x;
}

size_t
range_boundary(char buf[RANGE_BOUNDARY_SIZE], uint64_t a, uint64_t b)
{
	uint64_t	 hi, lo;

	hi = range_mix(a ^ range_mix(b));
	lo = range_mix(b ^ range_mix(hi + a));
	snprintf(buf, RANGE_BOUNDARY_SIZE, "%016" PRIx64 "%016" PRIx64,
	    hi, lo);
	return 32;
}

int
range_part_header(char *buf, size_t sz, const char *boundary,
    const char *ctype, const struct range *r, off_t size)
{
	return snprintf(buf, sz,
	    "\r\n--%s\r\n%s%s%sContent-Range: bytes %jd-%jd/%jd\r\n\r\n",
	    boundary, ctype ? "Content-Type: " : "", ctype ? ctype : "",
	    ctype ? "\r\n" : "", (intmax_t)r->start, (intmax_t)r->end,
	    (intmax_t)size);
}

int
range_closing(char *buf, size_t sz, const char *boundary)
{
	return snprintf(buf, sz, "\r\n--%s--\r\n", boundary);
}

off_t
range_multipart_length(const struct range_set *rs, const char *boundary,
    const char *ctype, off_t size)
{
	off_t	 total = 0, len;
	size_t	 k;
	int	 n;

	/*
	 * Measured with the same formatting that produces the bytes, so
	 * the Content-Length cannot drift from the body. Near 2^63 bytes
	 * the sum of the parts and their headers can pass what an off_t
	 * holds: the client chose the ranges, so every step is checked.
	 */
	for (k = 0; k < rs->n; k++) {
		if ((n = range_part_header(NULL, 0, boundary, ctype,
		    &rs->r[k], size)) < 0 ||
		    __builtin_add_overflow(total, (off_t)n, &total))
			return -1;
		if (__builtin_sub_overflow(rs->r[k].end, rs->r[k].start, &len) ||
		    __builtin_add_overflow(len, (off_t)1, &len) ||
		    __builtin_add_overflow(total, len, &total))
			return -1;
	}
	if ((n = range_closing(NULL, 0, boundary)) < 0 ||
	    __builtin_add_overflow(total, (off_t)n, &total))
		return -1;
	return total;
}
