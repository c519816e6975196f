/*
 * test_cond.c - ETags, HTTP-dates and RFC 9110 preconditions.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "rep.h"

/* Sun, 06 Nov 1994 08:49:37 GMT, the RFC's own example */
#define T_RFC	((time_t)784111777)

#define D_BEFORE	"Sat, 05 Nov 1994 08:49:37 GMT"
#define D_EQ		"Sun, 06 Nov 1994 08:49:37 GMT"
#define D_AFTER		"Mon, 07 Nov 1994 08:49:37 GMT"
#define ETAG		"\"abc\""

static time_t
parse(const char *s)
{
	return cond_parse_date(s, strlen(s));
}

/* ---- ETag generation -------------------------------------------------- */

Test(cond, etag_format)
{
	struct stat	 st;
	char		 buf[COND_ETAG_MAX];

	memset(&st, 0, sizeof(st));
	st.st_ino = 0x1234;
	st.st_size = 0x10;
	st.st_mtim.tv_sec = 0x5f;
	st.st_mtim.tv_nsec = 7;
	cr_assert_eq(cond_etag(&st, buf, sizeof(buf)), 20);
	cr_assert_str_eq(buf, "\"1234-10-5f00000007\"");
	cr_assert_eq(cond_etag_variant(&st, "gz", buf, sizeof(buf)), 23);
	cr_assert_str_eq(buf, "\"1234-10-5f00000007-gz\"");
	cr_assert_eq(cond_etag_variant(&st, "", buf, sizeof(buf)), 20);
	cr_assert_eq(cond_etag(&st, buf, 20), 0, "no room for the NUL");

	/* any change in identity changes the tag */
	st.st_mtim.tv_nsec = 8;
	cond_etag(&st, buf, sizeof(buf));
	cr_assert_str_eq(buf, "\"1234-10-5f00000008\"");

	/* the worst case fits */
	st.st_ino = (ino_t)-1;
	st.st_size = INT64_MAX;
	st.st_mtim.tv_sec = INT64_MAX;
	st.st_mtim.tv_nsec = 999999999;
	cr_assert_gt(cond_etag_variant(&st, "gzip", buf, sizeof(buf)), 0);
	/* and a generated tag is a valid entity-tag */
	cr_assert_eq(cond_etag_match(buf, strlen(buf), buf, 1), 1);
}

/* ---- entity-tag lists ------------------------------------------------- */

struct match_case {
	const char	*list;
	const char	*etag;
	int		 strong;
	int		 weak;
};

static const struct match_case match_cases[] = {
	{ "\"abc\"",			ETAG,		1, 1 },
	{ "W/\"abc\"",			ETAG,		0, 1 },
	{ "\"abc\"",			"W/\"abc\"",	0, 1 },
	{ "W/\"abc\"",			"W/\"abc\"",	0, 1 },
	{ "\"xyz\"",			ETAG,		0, 0 },
	{ "\"ABC\"",			ETAG,		0, 0 },
	{ "\"xyz\", \"abc\"",		ETAG,		1, 1 },
	{ "\"xyz\" ,\t\"abc\" ",	ETAG,		1, 1 },
	{ "\"xyz\",W/\"abc\"",		ETAG,		0, 1 },
	{ ",, \"abc\" ,,",		ETAG,		1, 1 },
	{ "\"\"",			"\"\"",		1, 1 },
	{ "\"\"",			ETAG,		0, 0 },
	{ "*",				ETAG,		1, 1 },
	{ " * ",			ETAG,		1, 1 },
	/* malformed lists match nothing, even with a matching member */
	{ "",				ETAG,		0, 0 },
	{ ",",				ETAG,		0, 0 },
	{ "*, \"abc\"",			ETAG,		0, 0 },
	{ "\"abc\", *",			ETAG,		0, 0 },
	{ "\"abc\", garbage",		ETAG,		0, 0 },
	{ "abc",			ETAG,		0, 0 },
	{ "\"abc",			ETAG,		0, 0 },
	{ "\"abc\"\"abc\"",		ETAG,		0, 0 },
	{ "\"abc\" \"abc\"",		ETAG,		0, 0 },
	{ "w/\"abc\"",			ETAG,		0, 0 },
	{ "W/ \"abc\"",			ETAG,		0, 0 },
	{ "\"a c\"",			"\"a c\"",	0, 0 },
	{ "\"abc\";x",			ETAG,		0, 0 },
	{ "**",				ETAG,		0, 0 },
	/* our own tag must be valid too */
	{ "\"abc\"",			"abc",		0, 0 },
};

Test(cond, etag_match)
{
	size_t	 k;
	int	 r;

	for (k = 0; k < sizeof(match_cases) / sizeof(match_cases[0]); k++) {
		const struct match_case	*c = &match_cases[k];

		r = cond_etag_match(c->list, strlen(c->list), c->etag, 1);
		cr_expect_eq(r, c->strong, "strong '%s' vs '%s': %d",
		    c->list, c->etag, r);
		r = cond_etag_match(c->list, strlen(c->list), c->etag, 0);
		cr_expect_eq(r, c->weak, "weak '%s' vs '%s': %d",
		    c->list, c->etag, r);
	}
	cr_expect_eq(cond_etag_match(NULL, 0, ETAG, 0), 0);
	/* nothing past len is read */
	cr_expect_eq(cond_etag_match("\"abc\"garbage", 5, ETAG, 1), 1);
	cr_expect_eq(cond_etag_match("\"abc\", \"x", 5, ETAG, 1), 1);
	cr_expect_eq(cond_etag_match("\"abc\"", 4, ETAG, 1), 0);
}

/* ---- HTTP-date -------------------------------------------------------- */

Test(cond, date_formats)
{
	/* RFC 9110 5.6.7: all three forms, same instant */
	cr_expect_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT"), T_RFC);
	cr_expect_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT"), T_RFC);
	cr_expect_eq(parse("Sun Nov  6 08:49:37 1994"), T_RFC);
	cr_expect_eq(parse("Sun Nov 06 08:49:37 1994"), T_RFC);
	/* surrounding OWS is not part of the value */
	cr_expect_eq(parse(" Sun, 06 Nov 1994 08:49:37 GMT\t"), T_RFC);

	cr_expect_eq(parse("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
	cr_expect_eq(parse("Tue, 29 Feb 2000 12:00:00 GMT"), 951825600);
	cr_expect_eq(parse("Thu, 29 Feb 2024 00:00:00 GMT"), 1709164800);
	cr_expect_eq(parse("Sat, 21 Nov 2026 06:00:00 GMT"), 1795240800);
	cr_expect_eq(parse("Fri, 31 Dec 9999 23:59:59 GMT"),
	    (time_t)253402300799);
	/* two-digit years: not more than 50 years ahead of the clock */
	cr_expect_eq(parse("Saturday, 21-Nov-26 06:00:00 GMT"), 1795240800);
	cr_expect_eq(parse("Thu Feb 29 00:00:00 2024"), 1709164800);
	/* the day name is not checked against the date */
	cr_expect_eq(parse("Mon, 06 Nov 1994 08:49:37 GMT"), T_RFC);
}

Test(cond, date_garbage)
{
	static const char *const bad[] = {
		"",
		"yesterday",
		"784111777",
		"Sun, 06 Nov 1994 08:49:37 UTC",
		"Sun, 06 Nov 1994 08:49:37 gmt x",
		"Sun, 06 Nov 1994 08:49:37 GMT junk",
		"Sun, 06 Nov 1994 08:49:37",
		"Sun, 06 Nov 1994 08:49:37 GM",
		"Sun, 6 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 94 08:49:37 GMT",
		"Sun,06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 8:49:37 GMT",
		"Sun, 06 Nov 1994 24:00:00 GMT",
		"Sun, 06 Nov 1994 08:60:00 GMT",
		"Sun, 06 Nov 1994 08:49:61 GMT",
		"Sun, 06 Foo 1994 08:49:37 GMT",
		"Xyz, 06 Nov 1994 08:49:37 GMT",
		"Sun, 00 Nov 1994 08:49:37 GMT",
		"Sun, 31 Nov 1994 08:49:37 GMT",
		"Mon, 29 Feb 2100 00:00:00 GMT",
		"Wed, 31 Dec 1969 23:59:59 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT,",
		"Sunday, 06-Nov-1994 08:49:37 GMT",
		"Sunday, 06 Nov 94 08:49:37 GMT",
		"Sun Nov 6 08:49:37 1994",
		"Sun Nov  6 08:49:37 94",
		"Sun Nov  6 08:49:37 1994 GMT",
		"Sun, 06 Nov 1994 08:49:3a GMT",
		"Sun, 06 Nov 1994 08:49:37 GMT\r\n",
	};
	size_t	 k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		cr_expect_eq(parse(bad[k]), -1, "'%s' parsed", bad[k]);
	cr_expect_eq(cond_parse_date(NULL, 0), -1);
	/* only len bytes count */
	cr_expect_eq(cond_parse_date(D_EQ "xyz", strlen(D_EQ)), T_RFC);
	cr_expect_eq(cond_parse_date(D_EQ, strlen(D_EQ) - 1), -1);
}

Test(cond, date_format)
{
	char	 buf[COND_DATE_SIZE];

	cr_assert_eq(cond_format_date(T_RFC, buf), COND_DATE_LEN);
	cr_assert_str_eq(buf, D_EQ);
	cr_assert_eq(cond_format_date(0, buf), COND_DATE_LEN);
	cr_assert_str_eq(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
	cr_assert_eq(cond_format_date(-1, buf), COND_DATE_LEN);
	cr_assert_str_eq(buf, "Wed, 31 Dec 1969 23:59:59 GMT");
	cr_assert_eq(cond_format_date((time_t)-62167219200, buf), COND_DATE_LEN);
	cr_assert_str_eq(buf, "Sat, 01 Jan 0000 00:00:00 GMT");
	cr_assert_eq(cond_format_date((time_t)-62167219201, buf), 0);
	cr_assert_eq(cond_format_date((time_t)253402300800, buf), 0);
	/* the last second with tm_year == INT_MAX: + 1900 must not wrap */
	cr_assert_eq(cond_format_date((time_t)67768036191676799LL, buf), 0);
	cr_assert_eq(cond_format_date((time_t)INT64_MAX, buf), 0);
}

/* Our calendar arithmetic against the C library's over four centuries,
 * through the formatter and back. */
Test(cond, date_round_trip)
{
	char		 buf[COND_DATE_SIZE];
	struct tm	 tm;
	time_t		 t, end = (time_t)13569465600;	/* 2400-01-01 */

	for (t = 0; t < end; t += 86400 * 5 + 3607) {
		cr_assert_eq(cond_format_date(t, buf), COND_DATE_LEN);
		cr_assert_eq(parse(buf), t, "%s", buf);
		gmtime_r(&t, &tm);
		cr_assert_eq(timegm(&tm), t);
	}
}

/* ---- preconditions ---------------------------------------------------- */

struct eval_case {
	int		 get;
	const char	*im, *inm, *ims, *ius;
	int		 want;
};

static const struct eval_case eval_cases[] = {
	{ 1, NULL, NULL, NULL, NULL,			0 },
	{ 0, NULL, NULL, NULL, NULL,			0 },
	/* If-Match: strong comparison */
	{ 1, ETAG, NULL, NULL, NULL,			0 },
	{ 1, "\"xyz\", " ETAG, NULL, NULL, NULL,	0 },
	{ 1, "\"xyz\"", NULL, NULL, NULL,		412 },
	{ 0, "\"xyz\"", NULL, NULL, NULL,		412 },
	{ 1, "*", NULL, NULL, NULL,			0 },
	{ 1, "W/" ETAG, NULL, NULL, NULL,		412 },
	{ 1, ETAG ", garbage", NULL, NULL, NULL,	412 },
	{ 1, "", NULL, NULL, NULL,			412 },
	/* If-Unmodified-Since */
	{ 1, NULL, NULL, NULL, D_EQ,			0 },
	{ 1, NULL, NULL, NULL, D_AFTER,			0 },
	{ 1, NULL, NULL, NULL, D_BEFORE,		412 },
	{ 0, NULL, NULL, NULL, D_BEFORE,		412 },
	{ 1, NULL, NULL, NULL, "garbage",		0 },
	{ 1, NULL, NULL, NULL, D_BEFORE ", " D_BEFORE,	0 },
	/* ... is not looked at when If-Match is there */
	{ 1, ETAG, NULL, NULL, D_BEFORE,		0 },
	{ 1, "\"xyz\"", NULL, NULL, D_AFTER,		412 },
	/* If-None-Match: weak comparison */
	{ 1, NULL, ETAG, NULL, NULL,			304 },
	{ 0, NULL, ETAG, NULL, NULL,			412 },
	{ 1, NULL, "W/" ETAG, NULL, NULL,		304 },
	{ 1, NULL, "\"xyz\", W/" ETAG, NULL, NULL,	304 },
	{ 1, NULL, "*", NULL, NULL,			304 },
	{ 0, NULL, "*", NULL, NULL,			412 },
	{ 1, NULL, "\"xyz\"", NULL, NULL,		0 },
	{ 0, NULL, "\"xyz\"", NULL, NULL,		0 },
	{ 1, NULL, ETAG " garbage", NULL, NULL,		0 },
	/* If-Modified-Since: GET and HEAD only */
	{ 1, NULL, NULL, D_EQ, NULL,			304 },
	{ 1, NULL, NULL, D_AFTER, NULL,			304 },
	{ 1, NULL, NULL, D_BEFORE, NULL,		0 },
	{ 0, NULL, NULL, D_EQ, NULL,			0 },
	{ 1, NULL, NULL, "Sunday, 06-Nov-94 08:49:37 GMT", NULL, 304 },
	{ 1, NULL, NULL, "Sun Nov  6 08:49:37 1994", NULL, 304 },
	{ 1, NULL, NULL, "garbage", NULL,		0 },
	{ 1, NULL, NULL, "", NULL,			0 },
	/* ... is not looked at when If-None-Match is there */
	{ 1, NULL, "\"xyz\"", D_EQ, NULL,		0 },
	{ 1, NULL, ETAG, D_BEFORE, NULL,		304 },
	/* the order of 13.2.2 */
	{ 1, "\"xyz\"", ETAG, NULL, NULL,		412 },
	{ 1, NULL, ETAG, NULL, D_BEFORE,		412 },
	{ 1, ETAG, ETAG, NULL, NULL,			304 },
	{ 0, ETAG, ETAG, NULL, NULL,			412 },
	{ 1, ETAG, "\"xyz\"", D_EQ, D_EQ,		0 },
	{ 1, "*", "\"xyz\"", NULL, NULL,		0 },
	{ 1, NULL, NULL, D_EQ, D_BEFORE,		412 },
	{ 1, NULL, NULL, D_EQ, D_AFTER,			304 },
};

static struct rep_str
str(const char *s)
{
	struct rep_str	 r = { s, s ? strlen(s) : 0 };

	return r;
}

Test(cond, evaluate)
{
	struct cond_hdrs	 h;
	size_t			 k;
	int			 r;

	for (k = 0; k < sizeof(eval_cases) / sizeof(eval_cases[0]); k++) {
		const struct eval_case	*c = &eval_cases[k];

		h.if_match = str(c->im);
		h.if_none_match = str(c->inm);
		h.if_modified_since = str(c->ims);
		h.if_unmodified_since = str(c->ius);
		r = cond_evaluate(c->get, ETAG, T_RFC, &h);
		cr_expect_eq(r, c->want, "case %zu (%s IM=%s INM=%s IMS=%s "
		    "IUS=%s): %d, want %d", k, c->get ? "GET" : "POST",
		    c->im, c->inm, c->ims, c->ius, r, c->want);
	}
}

Test(cond, if_range)
{
	cr_expect_eq(cond_if_range(ETAG, strlen(ETAG), ETAG, T_RFC), 1);
	cr_expect_eq(cond_if_range(" " ETAG " ", strlen(ETAG) + 2, ETAG,
	    T_RFC), 1);
	cr_expect_eq(cond_if_range("W/" ETAG, strlen(ETAG) + 2, ETAG,
	    T_RFC), 0, "weak tags never match");
	cr_expect_eq(cond_if_range(ETAG, strlen(ETAG), "W/" ETAG, T_RFC), 0,
	    "nor does our own weak tag");
	cr_expect_eq(cond_if_range("\"xyz\"", 5, ETAG, T_RFC), 0);
	cr_expect_eq(cond_if_range(ETAG ", \"xyz\"", strlen(ETAG) + 7, ETAG,
	    T_RFC), 0, "a single entity-tag, not a list");
	cr_expect_eq(cond_if_range("\"abc", 4, ETAG, T_RFC), 0);
	cr_expect_eq(cond_if_range(D_EQ, strlen(D_EQ), ETAG, T_RFC), 1);
	cr_expect_eq(cond_if_range(D_AFTER, strlen(D_AFTER), ETAG, T_RFC), 0,
	    "only an exact date");
	cr_expect_eq(cond_if_range(D_BEFORE, strlen(D_BEFORE), ETAG, T_RFC),
	    0);
	cr_expect_eq(cond_if_range("garbage", 7, ETAG, T_RFC), 0);
	cr_expect_eq(cond_if_range("", 0, ETAG, T_RFC), 0);
	cr_expect_eq(cond_if_range(NULL, 0, ETAG, T_RFC), 0);
}
