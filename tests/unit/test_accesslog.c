/*
 * test_accesslog.c - the access-log line: escaping, and its size bound
 * at the worst case (every logged byte the one that expands most), both
 * for one line and for the worker's buffer filling up with them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

#define GUARD	256

/* The longest address text: every group "ffff", and the longest port. */
static void
worst_peer(struct sockaddr_in6 *sin6)
{
	memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	memset(&sin6->sin6_addr, 0xff, sizeof(sin6->sin6_addr));
	sin6->sin6_port = htons(65535);
}

static char *
filled(int byte, size_t len)
{
	char	*p = malloc(len);

	cr_assert_not_null(p);
	memset(p, byte, len);
	return p;
}

/* Every field at its worst: the longest escapes, past the cap. */
static void
worst_rec(struct accesslog_rec *rec, const struct sockaddr_in6 *peer,
    char *ff)
{
	memset(rec, 0, sizeof(*rec));
	rec->peer = (const struct sockaddr *)peer;
	rec->time = 1764547200;
	rec->line = ff;
	rec->line_len = 3 * ACCESSLOG_FIELD_MAX;
	rec->status = -1;		/* 20 digits as a uint64_t */
	rec->bytes = UINT64_MAX;
	rec->referer = ff;
	rec->referer_len = 3 * ACCESSLOG_FIELD_MAX;
	rec->agent = ff;
	rec->agent_len = 3 * ACCESSLOG_FIELD_MAX;
}

Test(accesslog, worst_case_line_fits_the_bound)
{
	struct sockaddr_in6	 peer;
	struct accesslog_rec	 rec;
	char			*ff = filled(0xff, 3 * ACCESSLOG_FIELD_MAX);
	char			*buf = malloc(ACCESSLOG_LINE_MAX + GUARD);
	char			*q;
	size_t			 n, k, fixed;

	cr_assert_not_null(buf);
	worst_peer(&peer);
	worst_rec(&rec, &peer, ff);
	memset(buf, 0xa5, ACCESSLOG_LINE_MAX + GUARD);

	n = accesslog_format(buf, ACCESSLOG_LINE_MAX, &rec);
	cr_assert_gt(n, 0);
	cr_assert_leq(n, ACCESSLOG_LINE_MAX, "%zu > %d", n,
	    ACCESSLOG_LINE_MAX);
	for (k = n; k < ACCESSLOG_LINE_MAX + GUARD; k++)
		cr_assert_eq((unsigned char)buf[k], 0xa5,
		    "byte %zu past the line written", k);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(memchr(buf, '\n', n - 1), NULL, "one line");

	/* Three fields of ACCESSLOG_FIELD_MAX "\xff", cut, not more. */
	fixed = n - 3 * (size_t)ACCESSLOG_QUOTED_MAX;
	cr_assert_lt(fixed, 200, "the rest is %zu bytes", fixed);
	q = strstr(buf, "\"\\xff");
	cr_assert_not_null(q);
	for (k = 0; k < ACCESSLOG_FIELD_MAX; k++)
		cr_assert(memcmp(q + 1 + 4 * k, "\\xff", 4) == 0);
	cr_assert_eq(q[1 + 4 * ACCESSLOG_FIELD_MAX], '"');
	cr_assert(strstr(buf, " 18446744073709551615 ") != NULL);
	cr_assert(memcmp(buf + n - 7, " 65535\n", 7) == 0);
	free(buf);
	free(ff);
}

/* Too small a buffer is refused as a whole, not written past. */
Test(accesslog, refuses_a_short_buffer)
{
	struct sockaddr_in6	 peer;
	struct accesslog_rec	 rec;
	char			*buf = malloc(ACCESSLOG_LINE_MAX);
	char			 ff[8] = "\xff";

	cr_assert_not_null(buf);
	worst_peer(&peer);
	worst_rec(&rec, &peer, ff);
	rec.line_len = rec.referer_len = rec.agent_len = 1;
	memset(buf, 0xa5, ACCESSLOG_LINE_MAX);
	cr_assert_eq(accesslog_format(buf, ACCESSLOG_LINE_MAX - 1, &rec), 0);
	cr_assert_eq((unsigned char)buf[0], 0xa5);
	free(buf);
}

Test(accesslog, escaping)
{
	static const char	 line[] = "GET /a\"b\\c\x01 HTTP/1.1";
	struct sockaddr_in	 peer;
	struct accesslog_rec	 rec;
	char			*buf = malloc(ACCESSLOG_LINE_MAX);
	const char		*want;
	size_t			 n;

	cr_assert_not_null(buf);
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(0x7f000001);
	peer.sin_port = htons(51234);
	memset(&rec, 0, sizeof(rec));
	rec.peer = (const struct sockaddr *)&peer;
	rec.time = 0;
	rec.line = line;
	rec.line_len = sizeof(line) - 1;
	rec.status = 200;
	rec.bytes = 0;
	rec.agent = "curl/\xe9";
	rec.agent_len = 6;
	n = accesslog_format(buf, ACCESSLOG_LINE_MAX, &rec);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	/* The time depends on TZ: look at what follows it. */
	cr_assert(strncmp(buf, "127.0.0.1 - - [", 15) == 0, "%s", buf);
	want = "] \"GET /a\\\"b\\\\c\\x01 HTTP/1.1\" 200 - \"-\" "
	    "\"curl/\\xe9\" 51234\n";
	cr_assert(n > strlen(want) &&
	    strcmp(buf + n - strlen(want), want) == 0, "%s", buf);
	free(buf);
}

/* The address field: formatted again whenever the peer changes. */
Test(accesslog, each_line_its_own_address)
{
	struct sockaddr_in	 a, b;
	struct sockaddr_in6	 v6, mapped;
	struct sockaddr_un	 un;
	struct accesslog_rec	 rec;
	const struct {
		const struct sockaddr	*sa;
		const char		*want;
	} seq[] = {
		{ (const struct sockaddr *)&a, "10.0.0.1 " },
		{ (const struct sockaddr *)&a, "10.0.0.1 " },
		{ (const struct sockaddr *)&b, "10.0.0.2 " },
		{ (const struct sockaddr *)&a, "10.0.0.1 " },
		{ (const struct sockaddr *)&v6, "2001:db8::1 " },
		{ (const struct sockaddr *)&mapped, "10.0.0.2 " },
		{ (const struct sockaddr *)&un, "unix " },
		{ (const struct sockaddr *)&un, "unix " },
		{ (const struct sockaddr *)&b, "10.0.0.2 " },
	};
	char buf[ACCESSLOG_LINE_MAX + 1];
	size_t i, n;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(0x0a000001);
	b = a;
	b.sin_addr.s_addr = htonl(0x0a000002);
	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	cr_assert_eq(inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr), 1);
	mapped = v6;
	cr_assert_eq(inet_pton(AF_INET6, "::ffff:10.0.0.2", &mapped.sin6_addr), 1);
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	memset(&rec, 0, sizeof(rec));
	rec.status = 200;
	for (i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
		rec.peer = seq[i].sa;
		n = accesslog_format(buf, ACCESSLOG_LINE_MAX, &rec);
		cr_assert_gt(n, 0);
		buf[n] = '\0';
		cr_assert(strncmp(buf, seq[i].want, strlen(seq[i].want)) == 0,
		    "line %zu: %s", i, buf);
	}
}

/*
 * The worker's buffer: lines of mixed sizes, so that whatever it keeps
 * in reserve, worst-case lines arrive while it is nearly full. Every
 * line must come out whole and in order (and ASan sees any overrun).
 */
Test(accesslog, buffer_never_overruns)
{
	char			 path[] = "/tmp/porter-test-alog-XXXXXX";
	struct sockaddr_in6	 peer;
	struct accesslog_rec	 worst, small;
	char			*ff = filled(0xff, 3 * ACCESSLOG_FIELD_MAX);
	char			*one, *all, *p;
	size_t			 worst_len, small_len, k, j, nlines = 0;
	off_t			 len;
	int			 fd;

	cr_assert((fd = mkstemp(path)) != -1);
	unlink(path);
	worst_peer(&peer);
	worst_rec(&worst, &peer, ff);
	small = worst;
	small.line_len = 16;
	small.agent = NULL;
	small.agent_len = 0;

	one = malloc(ACCESSLOG_LINE_MAX);
	cr_assert_not_null(one);
	worst_len = accesslog_format(one, ACCESSLOG_LINE_MAX, &worst);
	small_len = accesslog_format(one, ACCESSLOG_LINE_MAX, &small);

	accesslog_init(dup(fd));
	for (k = 1; k <= 12; k++) {
		for (j = 0; j < k; j++, nlines++)
			accesslog_append(&small);
		accesslog_append(&worst);
		nlines++;
	}
	accesslog_flush();

	len = lseek(fd, 0, SEEK_END);
	cr_assert_eq((size_t)len, (nlines - 12) * small_len + 12 * worst_len,
	    "%jd bytes logged", (intmax_t)len);
	all = malloc((size_t)len);
	cr_assert_not_null(all);
	cr_assert_eq(pread(fd, all, (size_t)len, 0), len);
	p = all;
	for (k = 1; k <= 12; k++) {
		for (j = 0; j < k; j++) {
			accesslog_format(one, ACCESSLOG_LINE_MAX, &small);
			cr_assert(memcmp(p, one, small_len) == 0);
			p += small_len;
		}
		accesslog_format(one, ACCESSLOG_LINE_MAX, &worst);
		cr_assert(memcmp(p, one, worst_len) == 0);
		p += worst_len;
	}
	free(all);
	free(one);
	free(ff);
	close(fd);
}

/* The time field at its longest: the last second glibc can break down
 * (tm_year == INT_MAX), and one it cannot. */
Test(accesslog, time_field_bounds)
{
	const char	*t;

	setenv("TZ", "UTC", 1);
	tzset();
	t = util_log_time((time_t)67768036191676799LL);
	cr_assert_str_eq(t, "[31/Dec/2147485547:23:59:59 +0000]");
	cr_assert_lt(strlen(t), UTIL_LOG_TIME_SIZE);
	t = util_log_time((time_t)INT64_MAX);
	cr_assert_str_eq(t, "[01/Jan/1970:00:00:00 +0000]");
}
