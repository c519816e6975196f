/*
 * fuzz_range.c - libFuzzer target for Range parsing and the framing of
 * multipart/byteranges bodies (src/range.c).
 *
 * Input: byte 0 picks the representation's size (small sizes, sizes
 * near a power of two and near INT64_MAX, where arithmetic overflows),
 * byte 1 the Content-Type, the rest is the Range field value, handed
 * over as an exactly sized heap copy (no NUL: header values are not
 * terminated).
 *
 * Properties, from what rep.h promises:
 *   - the status is 0, 206 or 416, and rs->n is 0 unless it is 206;
 *   - a 206 holds 1..RANGE_MAX ranges with 0 <= start <= end < size,
 *     none overlapping or touching another;
 *   - the unit is case-insensitive: "BYTES=" gives the same result;
 *   - range_multipart_length() is exactly the bytes that
 *     range_part_header(), the parts and range_closing() produce,
 *     counted here with overflow-checked arithmetic;
 *   - range_content_range() writes what it says it needs;
 *   - for sizes up to 255, status and selected bytes agree with a
 *     second, byte-by-byte reading of the grammar (fuzz_range_model()).
 */

#include <sys/types.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rep.h"

#define FUZZ_RANGE_HDR	2


static void
fuzz_range_check_set(const struct range_set *rs, int status, off_t size)
{
	size_t	 i, j;

	if (status != 0 && status != 206 && status != 416)
		abort();
	if (status != 206) {
		if (rs->n != 0)
			abort();
		return;
	}
	if (rs->n == 0 || rs->n > RANGE_MAX)
		abort();
	for (i = 0; i < rs->n; i++) {
		if (rs->r[i].start < 0 || rs->r[i].start > rs->r[i].end ||
		    rs->r[i].end >= size)
			abort();
		/* overlap or touch; end + 1 cannot overflow, end < size */
		for (j = 0; j < i; j++)
			if (rs->r[i].start <= rs->r[j].end + 1 &&
			    rs->r[j].start <= rs->r[i].end + 1)
				abort();
	}
}

/* Bytes of a snprintf-style function, checked against what it writes. */
static int64_t
fuzz_range_measured(int need, const char *buf, size_t sz)
{
	if (need < 0)
		abort();
	if ((size_t)need < sz && strlen(buf) != (size_t)need)
		abort();
	return need;
}

/*
 * The body's length counted part by part; -1 when it does not fit an
 * off_t (no Content-Length could say it).
 */
static int64_t
fuzz_range_expected(const struct range_set *rs, const char *boundary,
    const char *ctype, off_t size)
{
	char		 buf[512];
	int64_t		 total = 0, n;
	size_t		 k;

	for (k = 0; k < rs->n; k++) {
		n = fuzz_range_measured(range_part_header(buf, sizeof(buf),
		    boundary, ctype, &rs->r[k], size), buf, sizeof(buf));
		if (range_part_header(NULL, 0, boundary, ctype, &rs->r[k],
		    size) != n)
			abort();
		if (__builtin_add_overflow(total, n, &total) ||
		    __builtin_add_overflow(total,
		    rs->r[k].end - rs->r[k].start, &total) ||
		    __builtin_add_overflow(total, 1, &total))
			return -1;
	}
	n = fuzz_range_measured(range_closing(buf, sizeof(buf), boundary),
	    buf, sizeof(buf));
	if (__builtin_add_overflow(total, n, &total))
		return -1;
	return total;
}

/* A digit run as a number, saturating; -1 if there is none. */
static int64_t
fuzz_range_model_num(const char *p, size_t len)
{
	int64_t	 v = 0;
	size_t	 i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		if (v > (INT64_MAX - (p[i] - '0')) / 10)
			v = INT64_MAX;
		else
			v = v * 10 + (p[i] - '0');
	}
	return v;
}

static int
fuzz_range_ows(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * A second reading of RFC 9110 14.1.2 for a small representation,
 * written for clarity, not speed: the status range_parse() must give,
 * and in sel[] the bytes its ranges must cover.
 */
static int
fuzz_range_model(const char *p, size_t len, off_t size, unsigned char *sel)
{
	size_t	 s, e, a, b, z, dash, nspecs = 0;
	int64_t	 first, last;
	int	 any = 0, empty_suffix = 0;
	off_t	 k;

	memset(sel, 0, (size_t)size);
	for (s = 0; s < len && fuzz_range_ows(p[s]); s++)
		;
	for (e = len; e > s && fuzz_range_ows(p[e - 1]); e--)
		;
	if (e - s < 6 || strncasecmp(p + s, "bytes=", 6) != 0)
		return 0;
	for (a = s + 6; a <= e; a = b + 1) {
		for (b = a; b < e && p[b] != ','; b++)
			;
		/* one list element, p[a..b), without its OWS */
		while (a < b && fuzz_range_ows(p[a]))
			a++;
		for (z = b; z > a && fuzz_range_ows(p[z - 1]); z--)
			;
		if (z == a)
			continue;
		if (++nspecs > RANGE_MAX)
			return 0;
		for (dash = a; dash < z && p[dash] != '-'; dash++)
			;
		if (dash == z)
			return 0;
		if (dash == a) {
			/* suffix: the last n bytes; "-0" selects nothing */
			last = fuzz_range_model_num(p + a + 1, z - a - 1);
			if (last == -1)
				return 0;
			if (last > 0 && size == 0)
				empty_suffix = 1;
			for (k = size - (last < size ? last : size); k < size;
			    k++)
				sel[k] = any = 1;
			continue;
		}
		first = fuzz_range_model_num(p + a, dash - a);
		last = dash + 1 == z ? INT64_MAX :
		    fuzz_range_model_num(p + dash + 1, z - dash - 1);
		if (first == -1 || last == -1 || last < first)
			return 0;
		for (k = first; k < size && k <= last; k++)
			sel[k] = any = 1;
	}
	if (nspecs == 0)
		return 0;
	if (!any)
		return empty_suffix ? 0 : 416;
	return 206;
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const off_t sizes[] = {
		0, 1, 2, 10, 100, 1000, 4096, 65535, 65536, 1000000,
		(off_t)1 << 31, (off_t)1 << 32, ((off_t)1 << 32) + 1,
		(off_t)1 << 53, INT64_MAX / 10, INT64_MAX / 2,
		INT64_MAX - 1000, INT64_MAX - 1, INT64_MAX,
	};
	static const char *const ctypes[] = {
		NULL, "text/plain", "application/octet-stream",
		"text/html; charset=utf-8",
	};
	struct range_set rs, rs2;
	char		 boundary[RANGE_BOUNDARY_SIZE], cr[128];
	char		*p;
	const char	*ctype;
	off_t		 fsize;
	int64_t		 want, got;
	size_t		 len, i;
	int		 status, status2, need;

	if (size < FUZZ_RANGE_HDR)
		return 0;
	fsize = sizes[data[0] % (sizeof(sizes) / sizeof(sizes[0]))];
	/* Above the table: any small size, where most files are. */
	if (data[0] >= 2 * sizeof(sizes) / sizeof(sizes[0]))
		fsize = data[0];
	ctype = ctypes[data[1] % (sizeof(ctypes) / sizeof(ctypes[0]))];
	data += FUZZ_RANGE_HDR;
	len = size - FUZZ_RANGE_HDR;

	if ((p = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(p, data, len);

	status = range_parse(p, len, fsize, &rs);
	fuzz_range_check_set(&rs, status, fsize);

	/* Small sizes: the bytes asked for, one by one, must agree. */
	if (fsize <= 255) {
		unsigned char	 sel[256], cover[256];
		off_t		 k;

		if (fuzz_range_model(p, len, fsize, sel) != status)
			abort();
		memset(cover, 0, sizeof(cover));
		for (i = 0; i < rs.n; i++)
			for (k = rs.r[i].start; k <= rs.r[i].end; k++)
				cover[k] = 1;
		if (status == 206 && memcmp(sel, cover, (size_t)fsize) != 0)
			abort();
	}

	/* The unit name is case-insensitive, nothing else has letters. */
	for (i = 0; i < len; i++)
		p[i] = (char)toupper((unsigned char)p[i]);
	status2 = range_parse(p, len, fsize, &rs2);
	if (status2 != status || rs2.n != rs.n ||
	    memcmp(rs.r, rs2.r, rs.n * sizeof(rs.r[0])) != 0)
		abort();
	free(p);

	if (status == 206) {
		range_boundary(boundary, fsize, len);
		if (strlen(boundary) != 32)
			abort();
		want = fuzz_range_expected(&rs, boundary, ctype, fsize);
		/* -1 exactly when the body's length does not fit an off_t. */
		got = range_multipart_length(&rs, boundary, ctype, fsize);
		if (got != want)
			abort();
		need = range_content_range(cr, sizeof(cr), &rs.r[0], fsize);
		fuzz_range_measured(need, cr, sizeof(cr));
	}
	need = range_content_range(cr, sizeof(cr), NULL, fsize);
	fuzz_range_measured(need, cr, sizeof(cr));
	return 0;
}
