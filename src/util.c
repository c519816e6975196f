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

/* Month names for the access log: by hand, never the locale's. */
static const char util_months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

const char *
util_log_time(time_t t)
{
	static char buf[UTIL_LOG_TIME_SIZE];
	static time_t last = -1;
	struct tm tm;
	long off;
	int n;

	if (t != last) {
		/* A time localtime_r() cannot break down gets a fixed,
		 * obviously wrong stamp rather than stack garbage. */
		if (localtime_r(&t, &tm) == NULL) {
			memset(&tm, 0, sizeof(tm));
			tm.tm_mday = 1;
			tm.tm_year = 70;
		}
		off = tm.tm_gmtoff / 60;
		/* long: tm_year + 1900 overflows an int near INT_MAX. */
		n = snprintf(buf, sizeof(buf), "[%02d/%s/%04ld:%02d:%02d:%02d %c%02ld%02ld]",
		    tm.tm_mday, util_months[tm.tm_mon], (long)tm.tm_year + 1900,
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
