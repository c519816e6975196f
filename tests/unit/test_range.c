/*
 * test_range.c - Range parsing and multipart/byteranges framing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "rep.h"

struct range_case {
	const char	*hdr;		/* NULL: absent */
	off_t		 size;
	int		 status;
	size_t		 n;
	struct range	 r[RANGE_MAX];
};

static const struct range_case cases[] = {
	{ NULL,				1000, 0,   0, { { 0, 0 } } },
	/* single ranges */
	{ "bytes=0-499",		1000, 206, 1, { { 0, 499 } } },
	{ "bytes=500-",			1000, 206, 1, { { 500, 999 } } },
	{ "bytes=-200",			1000, 206, 1, { { 800, 999 } } },
	{ "bytes=-2000",		1000, 206, 1, { { 0, 999 } } },
	{ "bytes=0-0",			1000, 206, 1, { { 0, 0 } } },
	{ "bytes=999-5000",		1000, 206, 1, { { 999, 999 } } },
	{ "BYTES=0-1",			1000, 206, 1, { { 0, 1 } } },
	{ " bytes=0-1\t",		1000, 206, 1, { { 0, 1 } } },
	{ "bytes= 0-1",			1000, 206, 1, { { 0, 1 } } },
	{ "bytes=0-1,",			1000, 206, 1, { { 0, 1 } } },
	/* huge numbers saturate instead of wrapping */
	{ "bytes=0-99999999999999999999999",	1000, 206, 1, { { 0, 999 } } },
	{ "bytes=-99999999999999999999999",	1000, 206, 1, { { 0, 999 } } },
	{ "bytes=99999999999999999999999-",	1000, 416, 0, { { 0, 0 } } },
	/* unsatisfiable */
	{ "bytes=1000-",		1000, 416, 0, { { 0, 0 } } },
	{ "bytes=1000-2000",		1000, 416, 0, { { 0, 0 } } },
	{ "bytes=-0",			1000, 416, 0, { { 0, 0 } } },
	{ "bytes=1000-,2000-,-0",	1000, 416, 0, { { 0, 0 } } },
	/* size 0: int-ranges cannot be satisfied; a suffix range can,
	 * but only by the whole (empty) representation */
	{ "bytes=0-",			0,    416, 0, { { 0, 0 } } },
	{ "bytes=0-0",			0,    416, 0, { { 0, 0 } } },
	{ "bytes=-0",			0,    416, 0, { { 0, 0 } } },
	{ "bytes=-5",			0,    0,   0, { { 0, 0 } } },
	{ "bytes=0-0,-5",		0,    0,   0, { { 0, 0 } } },
	/* lists: unsatisfiable members are dropped */
	{ "bytes=0-1,1000-",		1000, 206, 1, { { 0, 1 } } },
	{ "bytes=0-99,200-299",		1000, 206, 2, { { 0, 99 }, { 200, 299 } } },
	{ "bytes=0-99 ,\t200-299",	1000, 206, 2, { { 0, 99 }, { 200, 299 } } },
	{ "bytes=0-1,,5-6",		1000, 206, 2, { { 0, 1 }, { 5, 6 } } },
	{ "bytes=-10,0-9",		1000, 206, 2, { { 990, 999 }, { 0, 9 } } },
	/* the order asked for is kept */
	{ "bytes=500-599,0-99",		1000, 206, 2, { { 500, 599 }, { 0, 99 } } },
	/* overlapping and touching ranges are coalesced */
	{ "bytes=0-499,400-999",	1000, 206, 1, { { 0, 999 } } },
	{ "bytes=0-9,10-19",		1000, 206, 1, { { 0, 19 } } },
	{ "bytes=100-199,0-49,50-99",	1000, 206, 1, { { 0, 199 } } },
	{ "bytes=0-9,500-509,5-14",	1000, 206, 2, { { 0, 14 }, { 500, 509 } } },
	{ "bytes=500-,-600",		1000, 206, 1, { { 400, 999 } } },
	{ "bytes=0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-",
					1000, 206, 1, { { 0, 999 } } },
	/* the cap counts range-specs as sent */
	{ "bytes=0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-,0-",
					1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,"
	  "20-20,22-22,24-24,26-26,28-28,30-30",
					1000, 206, 16, {
		{ 0, 0 }, { 2, 2 }, { 4, 4 }, { 6, 6 }, { 8, 8 },
		{ 10, 10 }, { 12, 12 }, { 14, 14 }, { 16, 16 }, { 18, 18 },
		{ 20, 20 }, { 22, 22 }, { 24, 24 }, { 26, 26 }, { 28, 28 },
		{ 30, 30 } } },
	{ "bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,18-18,"
	  "20-20,22-22,24-24,26-26,28-28,30-30,32-32",
					1000, 0,   0, { { 0, 0 } } },
	/* ignored: other units and syntax errors anywhere */
	{ "items=0-1",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes =0-1",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=,",			1000, 0,   0, { { 0, 0 } } },
	{ "",				1000, 0,   0, { { 0, 0 } } },
	{ "bytes=abc",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=-",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=--1",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=1",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=5-2",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0-1,5-2",		1000, 0,   0, { { 0, 0 } } },
	{ "bytes=1-2-3",		1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0-1;",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0-1 x",		1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0-1,x",		1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0 -1",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=+1-2",			1000, 0,   0, { { 0, 0 } } },
	{ "bytes=0x10-",		1000, 0,   0, { { 0, 0 } } },
	{ "bytes=1000-2000,5-2",	1000, 0,   0, { { 0, 0 } } },
};

Test(range, table)
{
	struct range_set	 rs;
	size_t			 k, j;
	int			 st;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct range_case	*c = &cases[k];
		const char		*h = c->hdr;

		memset(&rs, 0xa5, sizeof(rs));
		st = range_parse(h, h ? strlen(h) : 0, c->size, &rs);
		cr_expect_eq(st, c->status, "\"%s\" size %jd: status %d, "
		    "want %d", h ? h : "(null)", (intmax_t)c->size, st,
		    c->status);
		if (st != 206) {
			cr_expect_eq(rs.n, 0, "\"%s\": n %zu with status %d",
			    h ? h : "(null)", rs.n, st);
			continue;
		}
		cr_expect_eq(rs.n, c->n, "\"%s\": n %zu, want %zu", h,
		    rs.n, c->n);
		for (j = 0; j < c->n && j < rs.n; j++)
			cr_expect(rs.r[j].start == c->r[j].start &&
			    rs.r[j].end == c->r[j].end,
			    "\"%s\" range %zu: %jd-%jd, want %jd-%jd", h, j,
			    (intmax_t)rs.r[j].start, (intmax_t)rs.r[j].end,
			    (intmax_t)c->r[j].start, (intmax_t)c->r[j].end);
	}
}

/* The value lives in a request buffer: nothing past len is read. */
Test(range, not_nul_terminated)
{
	static const char	 buf[] = "bytes=0-1999,x";
	struct range_set	 rs;

	cr_assert_eq(range_parse(buf, strlen("bytes=0-1"), 1000, &rs), 206);
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.r[0].start, 0);
	cr_assert_eq(rs.r[0].end, 1);
}

Test(range, content_range)
{
	struct range	 r = { 0, 499 };
	char		 buf[64];

	cr_assert_eq(range_content_range(buf, sizeof(buf), &r, 1000), 16);
	cr_assert_str_eq(buf, "bytes 0-499/1000");
	cr_assert_eq(range_content_range(buf, sizeof(buf), NULL, 1000), 12);
	cr_assert_str_eq(buf, "bytes */1000");
}

Test(range, boundary)
{
	char	 a[RANGE_BOUNDARY_SIZE], b[RANGE_BOUNDARY_SIZE];
	char	 c[RANGE_BOUNDARY_SIZE];
	size_t	 k;

	cr_assert_eq(range_boundary(a, 4242, 1), 32);
	cr_assert_eq(strlen(a), 32);
	for (k = 0; k < 32; k++)
		cr_assert(strchr("0123456789abcdef", a[k]) != NULL);
	range_boundary(b, 4242, 1);
	cr_assert_str_eq(a, b, "same inputs, same boundary");
	range_boundary(b, 4242, 2);
	range_boundary(c, 4243, 1);
	cr_assert_str_neq(a, b, "next response, new boundary");
	cr_assert_str_neq(a, c, "other worker, new boundary");
	cr_assert_str_neq(b, c);
}

Test(range, part_header)
{
	struct range	 r = { 10, 19 };
	char		 buf[256];
	int		 n;

	n = range_part_header(buf, sizeof(buf), "XYZ", "text/plain", &r, 100);
	cr_assert_str_eq(buf, "\r\n--XYZ\r\nContent-Type: text/plain\r\n"
	    "Content-Range: bytes 10-19/100\r\n\r\n");
	cr_assert_eq(n, (int)strlen(buf));
	n = range_part_header(buf, sizeof(buf), "XYZ", NULL, &r, 100);
	cr_assert_str_eq(buf, "\r\n--XYZ\r\n"
	    "Content-Range: bytes 10-19/100\r\n\r\n");
	cr_assert_eq(n, (int)strlen(buf));
	n = range_closing(buf, sizeof(buf), "XYZ");
	cr_assert_str_eq(buf, "\r\n--XYZ--\r\n");
	cr_assert_eq(n, (int)strlen(buf));
	/* measuring without a buffer */
	cr_assert_eq(range_closing(NULL, 0, "XYZ"), n);
}

/* Build the body the way a sender would and compare with the length
 * announced up front. */
static void
check_multipart(const char *hdr, off_t size, const char *ctype)
{
	struct range_set	 rs;
	char			 boundary[RANGE_BOUNDARY_SIZE];
	char			*data, *body, *p;
	size_t			 cap, k;
	off_t			 want;
	int			 n;

	cr_assert_eq(range_parse(hdr, strlen(hdr), size, &rs), 206, "%s", hdr);
	cr_assert_gt(rs.n, 1, "%s", hdr);
	range_boundary(boundary, 1, 2);

	data = malloc((size_t)size);
	cr_assert_not_null(data);
	for (k = 0; k < (size_t)size; k++)
		data[k] = (char)('a' + k % 26);

	cap = 64 * 1024;
	body = p = malloc(cap);
	cr_assert_not_null(body);
	for (k = 0; k < rs.n; k++) {
		n = range_part_header(p, cap - (size_t)(p - body), boundary,
		    ctype, &rs.r[k], size);
		cr_assert(n > 0 && (size_t)n < cap - (size_t)(p - body));
		p += n;
		memcpy(p, data + rs.r[k].start,
		    (size_t)(rs.r[k].end - rs.r[k].start + 1));
		p += rs.r[k].end - rs.r[k].start + 1;
	}
	n = range_closing(p, cap - (size_t)(p - body), boundary);
	p += n;

	want = range_multipart_length(&rs, boundary, ctype, size);
	cr_expect_eq(want, (off_t)(p - body), "%s: announced %jd, built %td",
	    hdr, (intmax_t)want, p - body);
	/* and it is framed as expected */
	cr_expect(strncmp(body, "\r\n--", 4) == 0);
	cr_expect(strncmp(p - n, "\r\n--", 4) == 0);
	cr_expect(strcmp(p - 4, "--\r\n") == 0);
	free(body);
	free(data);
}

Test(range, multipart_length)
{
	check_multipart("bytes=0-9,20-29", 100, "text/html; charset=utf-8");
	check_multipart("bytes=0-9,20-29", 100, NULL);
	check_multipart("bytes=-1,0-0,50-", 12345, "application/octet-stream");
	check_multipart("bytes=0-0,2-2,4-4,6-6,8-8,10-10,12-12,14-14,16-16,"
	    "18-18,20-20,22-22,24-24,26-26,28-28,30-30", 1000000, "image/png");
}

/* ---- sizes at the edge of off_t (sparse files can be that big) -------- */

#define OFF_MAX	((off_t)INT64_MAX)

Test(range, parse_at_off_max)
{
	struct range_set	 rs;

	/* int-range to the end: the last byte is size - 1, no overflow. */
	cr_assert_eq(range_parse("bytes=0-", 8, OFF_MAX, &rs), 206);
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.r[0].start, 0);
	cr_assert_eq(rs.r[0].end, OFF_MAX - 1);
	/* suffix ranges of one byte and of more than there is */
	cr_assert_eq(range_parse("bytes=-1", 8, OFF_MAX, &rs), 206);
	cr_assert_eq(rs.r[0].start, OFF_MAX - 1);
	cr_assert_eq(rs.r[0].end, OFF_MAX - 1);
	cr_assert_eq(range_parse("bytes=-99999999999999999999", 27, OFF_MAX,
	    &rs), 206);
	cr_assert_eq(rs.r[0].start, 0);
	cr_assert_eq(rs.r[0].end, OFF_MAX - 1);
	/* first-pos at and past the last byte */
	cr_assert_eq(range_parse("bytes=9223372036854775806-", 26, OFF_MAX,
	    &rs), 206);
	cr_assert_eq(rs.r[0].start, OFF_MAX - 1);
	cr_assert_eq(range_parse("bytes=9223372036854775807-", 26, OFF_MAX,
	    &rs), 416);
	cr_assert_eq(range_parse("bytes=99999999999999999999-", 27, OFF_MAX,
	    &rs), 416);
	/* touching at the very end: coalesced without end + 1 wrapping */
	cr_assert_eq(range_parse("bytes=9223372036854775805-9223372036854775805,"
	    "-1", 48, OFF_MAX, &rs), 206);
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.r[0].start, OFF_MAX - 2);
	cr_assert_eq(rs.r[0].end, OFF_MAX - 1);
}

/* The part headers and closing for "bytes=0-0,2-" of size bytes, which
 * is what the total adds to the size - 1 data bytes. */
static off_t
framing(const char *boundary, const char *ctype, off_t size)
{
	struct range	 a = { 0, 0 }, b = { 2, size - 1 };

	return range_part_header(NULL, 0, boundary, ctype, &a, size) +
	    range_part_header(NULL, 0, boundary, ctype, &b, size) +
	    range_closing(NULL, 0, boundary);
}

Test(range, multipart_length_overflow)
{
	static const char	*ctypes[] = { NULL, "application/octet-stream" };
	struct range_set	 rs;
	char			 boundary[RANGE_BOUNDARY_SIZE];
	off_t			 size, f;
	size_t			 k;

	range_boundary(boundary, 1, 2);
	for (k = 0; k < sizeof(ctypes) / sizeof(ctypes[0]); k++) {
		const char	*ct = ctypes[k];

		/* Fewer bytes short of 2^63 than the framing takes. */
		size = OFF_MAX - 100;
		cr_assert_eq(range_parse("bytes=0-0,2-", 12, size, &rs), 206);
		cr_assert_eq(rs.n, 2);
		cr_expect_eq(range_multipart_length(&rs, boundary, ct, size),
		    -1, "size %jd", (intmax_t)size);

		/*
		 * The largest size whose body still fits: total is exactly
		 * OFF_MAX; one byte more cannot be represented. The framing
		 * has the same length for both sizes (same digit count).
		 */
		f = framing(boundary, ct, OFF_MAX - 1000);
		size = OFF_MAX - f + 1;
		cr_assert_eq(framing(boundary, ct, size), f);
		cr_assert_eq(range_parse("bytes=0-0,2-", 12, size, &rs), 206);
		cr_expect_eq(range_multipart_length(&rs, boundary, ct, size),
		    OFF_MAX);
		cr_assert_eq(range_parse("bytes=0-0,2-", 12, size + 1, &rs), 206);
		cr_expect_eq(range_multipart_length(&rs, boundary, ct,
		    size + 1), -1);

		/* Small parts of a huge file are fine. */
		size = OFF_MAX;
		cr_assert_eq(range_parse("bytes=0-0,-1", 12, size, &rs), 206);
		cr_expect_eq(range_multipart_length(&rs, boundary, ct, size),
		    range_part_header(NULL, 0, boundary, ct, &rs.r[0], size) +
		    range_part_header(NULL, 0, boundary, ct, &rs.r[1], size) +
		    range_closing(NULL, 0, boundary) + 2);
	}
}

/* Every one of RANGE_MAX parts as big as it can be: never wraps. */
Test(range, multipart_length_many_huge_parts)
{
	struct range_set	 rs;
	char			 boundary[RANGE_BOUNDARY_SIZE];
	size_t			 k;

	range_boundary(boundary, 3, 4);
	rs.n = RANGE_MAX;
	for (k = 0; k < RANGE_MAX; k++) {
		rs.r[k].start = 0;
		rs.r[k].end = OFF_MAX - 1;
	}
	cr_expect_eq(range_multipart_length(&rs, boundary, "text/plain",
	    OFF_MAX), -1);
}
