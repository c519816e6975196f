/*
 * cond.c - validators (ETag, Last-Modified) and conditional requests,
 * RFC 9110 sections 8.8 and 13. Pure functions over byte strings.
 */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "rep.h"

static const char *const cond_wday_short[7] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const cond_wday_long[7] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
	"Saturday"
};
static const char *const cond_month[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

static int
cond_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static void
cond_trim(const char **p, size_t *len)
{
	while (*len > 0 && cond_is_ows((*p)[0])) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && cond_is_ows((*p)[*len - 1]))
		(*len)--;
}

/* etagc = %x21 / %x23-7E / obs-text */
static int
cond_is_etagc(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x7e) || c >= 0x80;
}

/* Lower-case hex without leading zeros ("0" for 0), at least min digits. */
static size_t
cond_put_hex(char *b, uintmax_t v, int min)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 tmp[sizeof(uintmax_t) * 2];
	size_t			 n = 0, k;

	do {
		tmp[n++] = hex[v & 0xf];
		v >>= 4;
	} while (v != 0 || n < (size_t)min);
	for (k = 0; k < n; k++)
		b[k] = tmp[n - 1 - k];
	return n;
}

size_t
cond_etag_variant(const struct stat *st, const char *variant, char *buf,
    size_t sz)
{
	char	 tmp[COND_ETAG_MAX];
	size_t	 n = 0, vlen;

	if (variant == NULL)
		variant = "";
	vlen = strlen(variant);
	/* Quotes, three dashes and 4 x 16 digits at most leave this. */
	if (vlen > sizeof(tmp) - 72)
		return 0;
	/*
	 * Inode, size and mtime to the nanosecond: a replaced or rewritten
	 * file gets a new tag even within the same second. By hand, not
	 * snprintf(): this runs for every file response and printf was
	 * most of its cost.
	 */
	tmp[n++] = '"';
	n += cond_put_hex(tmp + n, (uintmax_t)st->st_ino, 1);
	tmp[n++] = '-';
	n += cond_put_hex(tmp + n, (uintmax_t)st->st_size, 1);
	tmp[n++] = '-';
	n += cond_put_hex(tmp + n, (uintmax_t)st->st_mtim.tv_sec, 1);
	n += cond_put_hex(tmp + n, (uintmax_t)st->st_mtim.tv_nsec, 8);
	if (vlen > 0) {
		tmp[n++] = '-';
		memcpy(tmp + n, variant, vlen);
		n += vlen;
	}
	tmp[n++] = '"';
	if (n >= sz)
		return 0;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return n;
}

size_t
cond_etag(const struct stat *st, char *buf, size_t sz)
{
	return cond_etag_variant(st, NULL, buf, sz);
}

/*
 * Parse one entity-tag at p[*i]. On success advance *i past it and
 * return the opaque-tag (quotes included) in *op and *oplen.
 */
static int
cond_parse_etag(const char *p, size_t len, size_t *i, int *weak,
    const char **op, size_t *oplen)
{
	size_t	 j = *i, start;

	*weak = 0;
	if (len - j >= 2 && p[j] == 'W' && p[j + 1] == '/') {
		*weak = 1;
		j += 2;
	}
	if (j >= len || p[j] != '"')
		return -1;
	start = j++;
	while (j < len && p[j] != '"') {
		if (!cond_is_etagc((unsigned char)p[j]))
			return -1;
		j++;
	}
	if (j >= len)
		return -1;
	j++;
	*op = p + start;
	*oplen = j - start;
	*i = j;
	return 0;
}

int
cond_etag_match(const char *p, size_t len, const char *etag, int strong)
{
	const char	*our, *their;
	size_t		 ourlen, theirlen, i = 0;
	int		 ourweak, theirweak, matched = 0, elements = 0;

	if (p == NULL)
		return 0;
	cond_trim(&p, &len);
	if (len == 1 && p[0] == '*')
		return 1;
	if (etag == NULL || cond_parse_etag(etag, strlen(etag), &i, &ourweak,
	    &our, &ourlen) == -1 || etag[i] != '\0')
		return 0;

	i = 0;
	for (;;) {
		/* Empty list elements are allowed (RFC 9110 5.6.1.2). */
		while (i < len && (cond_is_ows(p[i]) || p[i] == ','))
			i++;
		if (i == len)
			break;
		if (cond_parse_etag(p, len, &i, &theirweak, &their,
		    &theirlen) == -1)
			return 0;
		elements++;
		if (theirlen == ourlen && memcmp(their, our, ourlen) == 0 &&
		    (!strong || (!ourweak && !theirweak)))
			matched = 1;
		while (i < len && cond_is_ows(p[i]))
			i++;
		if (i < len && p[i] != ',')
			return 0;
	}
	return elements > 0 && matched;
}

/* ---- HTTP-date ---------------------------------------------------- */

struct cond_cursor {
	const char	*p;
	size_t		 len;
	size_t		 i;
};

static int
cond_lit(struct cond_cursor *c, const char *s)
{
	size_t	 n = strlen(s);

	if (c->len - c->i < n || strncasecmp(c->p + c->i, s, n) != 0)
		return -1;
	c->i += n;
	return 0;
}

/* Exactly n digits. */
static int
cond_num(struct cond_cursor *c, int n, int *out)
{
	int	 v = 0;

	if (c->len - c->i < (size_t)n)
		return -1;
	while (n-- > 0) {
		char	 ch = c->p[c->i++];

		if (ch < '0' || ch > '9')
			return -1;
		v = v * 10 + (ch - '0');
	}
	*out = v;
	return 0;
}

/* One of names[0..n-1]; the day name is not checked against the date. */
static int
cond_name(struct cond_cursor *c, const char *const *names, int n)
{
	int	 k;

	for (k = 0; k < n; k++)
		if (cond_lit(c, names[k]) == 0)
			return k;
	return -1;
}

static int
cond_time_of_day(struct cond_cursor *c, int *h, int *m, int *s)
{
	if (cond_num(c, 2, h) == -1 || cond_lit(c, ":") == -1 ||
	    cond_num(c, 2, m) == -1 || cond_lit(c, ":") == -1 ||
	    cond_num(c, 2, s) == -1)
		return -1;
	return 0;
}

static int
cond_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap days in years 1..y */
static int64_t
cond_leaps(int64_t y)
{
	return y / 4 - y / 100 + y / 400;
}

static time_t
cond_mktime(int year, int mon, int day, int h, int m, int s)
{
	static const int	 cum[12] = {
		0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334
	};
	static const int	 mdays[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
	};
	int64_t			 days;

	if (year < 1970 || mon < 0 || mon > 11 || day < 1 ||
	    day > mdays[mon] + (mon == 1 && cond_leap(year)) ||
	    h > 23 || m > 59 || s > 60)	/* 60: a leap second */
		return -1;
	days = 365 * (int64_t)(year - 1970) +
	    cond_leaps(year - 1) - cond_leaps(1969) +
	    cum[mon] + (mon > 1 && cond_leap(year)) + day - 1;
	return (time_t)(days * 86400 + h * 3600 + m * 60 + s);
}

time_t
cond_parse_date(const char *p, size_t len)
{
	struct cond_cursor	 c;
	struct tm		 now;
	time_t			 t;
	int			 year, mon, day, h, m, s;

	if (p == NULL)
		return -1;
	cond_trim(&p, &len);
	c.p = p;
	c.len = len;
	c.i = 0;

	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (cond_name(&c, cond_wday_short, 7) != -1 && cond_lit(&c, ", ") == 0) {
		if (cond_num(&c, 2, &day) == -1 || cond_lit(&c, " ") == -1 ||
		    (mon = cond_name(&c, cond_month, 12)) == -1 ||
		    cond_lit(&c, " ") == -1 || cond_num(&c, 4, &year) == -1 ||
		    cond_lit(&c, " ") == -1 ||
		    cond_time_of_day(&c, &h, &m, &s) == -1 ||
		    cond_lit(&c, " GMT") == -1)
			return -1;
		goto done;
	}

	/* rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT" */
	c.i = 0;
	if (cond_name(&c, cond_wday_long, 7) != -1) {
		if (cond_lit(&c, ", ") == -1 || cond_num(&c, 2, &day) == -1 ||
		    cond_lit(&c, "-") == -1 ||
		    (mon = cond_name(&c, cond_month, 12)) == -1 ||
		    cond_lit(&c, "-") == -1 || cond_num(&c, 2, &year) == -1 ||
		    cond_lit(&c, " ") == -1 ||
		    cond_time_of_day(&c, &h, &m, &s) == -1 ||
		    cond_lit(&c, " GMT") == -1)
			return -1;
		/* RFC 9110 5.6.7: a year more than 50 years ahead is the
		 * most recent past year with the same two digits. */
		t = time(NULL);
		if (gmtime_r(&t, &now) == NULL)
			return -1;
		now.tm_year += 1900;
		year += now.tm_year - now.tm_year % 100;
		if (year > now.tm_year + 50)
			year -= 100;
		goto done;
	}

	/* asctime-date: "Sun Nov  6 08:49:37 1994" */
	c.i = 0;
	if (cond_name(&c, cond_wday_short, 7) == -1 ||
	    cond_lit(&c, " ") == -1 ||
	    (mon = cond_name(&c, cond_month, 12)) == -1 ||
	    cond_lit(&c, " ") == -1)
		return -1;
	if (cond_lit(&c, " ") == 0) {
		if (cond_num(&c, 1, &day) == -1)
			return -1;
	} else if (cond_num(&c, 2, &day) == -1)
		return -1;
	if (cond_lit(&c, " ") == -1 || cond_time_of_day(&c, &h, &m, &s) == -1 ||
	    cond_lit(&c, " ") == -1 || cond_num(&c, 4, &year) == -1)
		return -1;

 done:
	if (c.i != c.len)
		return -1;
	return cond_mktime(year, mon, day, h, m, s);
}

static char *
cond_put_num(char *b, int v, int digits)
{
	int	 k;

	for (k = digits - 1; k >= 0; k--) {
		b[k] = '0' + v % 10;
		v /= 10;
	}
	return b + digits;
}

size_t
cond_format_date(time_t t, char buf[COND_DATE_SIZE])
{
	struct tm	 tm;
	char		*b = buf;

	/* Dates before 1970 are HTTP-dates too (wget sets a file's time
	 * from Last-Modified); only four-digit years fit the format. */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900)
		return 0;
	/* By hand rather than strftime(): names must not follow a locale. */
	memcpy(b, cond_wday_short[tm.tm_wday], 3);
	b += 3;
	*b++ = ',';
	*b++ = ' ';
	b = cond_put_num(b, tm.tm_mday, 2);
	*b++ = ' ';
	memcpy(b, cond_month[tm.tm_mon], 3);
	b += 3;
	*b++ = ' ';
	b = cond_put_num(b, tm.tm_year + 1900, 4);
	*b++ = ' ';
	b = cond_put_num(b, tm.tm_hour, 2);
	*b++ = ':';
	b = cond_put_num(b, tm.tm_min, 2);
	*b++ = ':';
	b = cond_put_num(b, tm.tm_sec, 2);
	memcpy(b, " GMT", 5);
	return COND_DATE_LEN;
}

/* ---- preconditions ------------------------------------------------ */

int
cond_evaluate(int get_or_head, const char *etag, time_t mtime,
    const struct cond_hdrs *h)
{
	time_t	 t;

	if (h->if_match.p != NULL) {
		if (!cond_etag_match(h->if_match.p, h->if_match.len, etag, 1))
			return 412;
	} else if (h->if_unmodified_since.p != NULL) {
		t = cond_parse_date(h->if_unmodified_since.p,
		    h->if_unmodified_since.len);
		if (t != -1 && mtime > t)
			return 412;
	}

	if (h->if_none_match.p != NULL) {
		if (cond_etag_match(h->if_none_match.p, h->if_none_match.len,
		    etag, 0))
			return get_or_head ? 304 : 412;
	} else if (get_or_head && h->if_modified_since.p != NULL) {
		t = cond_parse_date(h->if_modified_since.p,
		    h->if_modified_since.len);
		if (t != -1 && mtime <= t)
			return 304;
	}
	return 0;
}

int
cond_if_range(const char *p, size_t len, const char *etag, time_t mtime)
{
	const char	*their, *our;
	size_t		 theirlen, ourlen, i = 0;
	int		 weak, ourweak;
	time_t		 t;

	if (p == NULL)
		return 0;
	cond_trim(&p, &len);
	/* RFC 9110 13.1.5: a DQUOTE in the first three characters tells
	 * an entity-tag from a date. */
	if ((len > 0 && p[0] == '"') || (len > 2 && p[2] == '"')) {
		if (etag == NULL ||
		    cond_parse_etag(p, len, &i, &weak, &their, &theirlen) == -1 ||
		    i != len || weak)
			return 0;
		i = 0;
		if (cond_parse_etag(etag, strlen(etag), &i, &ourweak, &our,
		    &ourlen) == -1 || etag[i] != '\0' || ourweak)
			return 0;
		return theirlen == ourlen && memcmp(their, our, ourlen) == 0;
	}
	t = cond_parse_date(p, len);
	return t != -1 && t == mtime;
}
