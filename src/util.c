/*
 * util.c - allocation that never returns NULL, cached date strings,
 * small string helpers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "porter.h"

static void __attribute__((noreturn))
util_oom(size_t n)
{
	log_critx("out of memory allocating %zu bytes", n);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		util_oom(n);
	return p;
}

void *
xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb, size);

	if (p == NULL)
		util_oom(nmemb * size);
	return p;
}

void *
xrealloc(void *ptr, size_t n)
{
	void *p = realloc(ptr, n);

	if (p == NULL)
		util_oom(n);
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		util_oom(strlen(s) + 1);
	return p;
}

static const char util_days[7][4] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char util_months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static char *
util_put2(char *p, int v)
{
	*p++ = (char)('0' + v / 10);
	*p++ = (char)('0' + v % 10);
	return p;
}

/* IMF-fixdate by hand: it is on every response, printf is not free. */
size_t
util_format_http_date(time_t t, char *buf, size_t len)
{
	struct tm tm;
	char *p = buf;
	int y;

	if (len < 30 || gmtime_r(&t, &tm) == NULL) {
		if (len > 0)
			buf[0] = '\0';
		return 0;
	}
	y = tm.tm_year + 1900;
	if (y < 0 || y > 9999) {
		buf[0] = '\0';
		return 0;
	}
	memcpy(p, util_days[tm.tm_wday], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	p = util_put2(p, tm.tm_mday);
	*p++ = ' ';
	memcpy(p, util_months[tm.tm_mon], 3);
	p += 3;
	*p++ = ' ';
	p = util_put2(p, y / 100);
	p = util_put2(p, y % 100);
	*p++ = ' ';
	p = util_put2(p, tm.tm_hour);
	*p++ = ':';
	p = util_put2(p, tm.tm_min);
	*p++ = ':';
	p = util_put2(p, tm.tm_sec);
	memcpy(p, " GMT", 5);
	return (size_t)(p + 4 - buf);
}

/* Every response carries Date: format it once a second, not per request. */
const char *
util_http_date(time_t t)
{
	static char buf[40];
	static time_t last = -1;

	if (t != last) {
		util_format_http_date(t, buf, sizeof(buf));
		last = t;
	}
	return buf;
}

const char *
util_log_time(time_t t)
{
	static char buf[40];
	static time_t last = -1;
	struct tm tm;
	long off;
	int n;

	if (t != last) {
		localtime_r(&t, &tm);
		off = tm.tm_gmtoff / 60;
		n = snprintf(buf, sizeof(buf), "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]",
		    tm.tm_mday, util_months[tm.tm_mon], tm.tm_year + 1900,
		    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
		    labs(off) / 60, labs(off) % 60);
		if (n < 0)
			buf[0] = '\0';
		last = t;
	}
	return buf;
}

size_t
util_u64toa(uint64_t v, char *buf)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}
