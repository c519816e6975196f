/*
 * test_log.c - the error log's rate limiter (log_limited(),
 * log_limit_flush()), with a clock the test sets: no sleeps.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "porter.h"

static int	 out_fd = -1;

/* Each test runs in its own process: the log goes to a fresh file. */
static void
setup(void)
{
	char	 path[] = "/tmp/porter-test-log-XXXXXX";

	log_init(0);
	out_fd = mkstemp(path);
	cr_assert(out_fd != -1);
	unlink(path);
	log_set_fd(dup(out_fd));
}

/* Everything logged so far, NUL-terminated; the caller frees it. */
static char *
logged(void)
{
	off_t	 len = lseek(out_fd, 0, SEEK_END);
	char	*buf;

	cr_assert(len >= 0);
	buf = malloc((size_t)len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(pread(out_fd, buf, (size_t)len, 0), len);
	buf[len] = '\0';
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* The line'th line (from 0), in a static buffer. */
static const char *
line_at(const char *s, size_t line)
{
	static char	 buf[4096];
	const char	*e;

	while (line-- > 0) {
		s = strchr(s, '\n');
		cr_assert_not_null(s);
		s++;
	}
	e = strchr(s, '\n');
	cr_assert_not_null(e);
	cr_assert_lt((size_t)(e - s), sizeof(buf));
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	return buf;
}

TestSuite(log, .init = setup);

/* A failure every millisecond for a second: one line, then the count. */
Test(log, one_line_a_second_with_count)
{
	static struct log_limit	 ll = LOG_LIMIT_INIT(LOG_LVL_WARN,
	    "disk write");
	char			*s;
	uint64_t		 t;

	for (t = 5000; t < 6000; t++)
		log_limited(&ll, t, ENOSPC, "disk write %s", "x.log");
	s = logged();
	cr_assert_eq(count_lines(s), 1, "%s", s);
	cr_assert(strstr(line_at(s, 0),
	    "warn: disk write x.log: No space left on device") != NULL,
	    "%s", s);
	cr_assert(strstr(s, "suppressed") == NULL, "%s", s);
	free(s);

	/* The second is not over: nothing to report yet. */
	log_limit_flush(5999);
	s = logged();
	cr_assert_eq(count_lines(s), 1, "%s", s);
	free(s);

	/* The next failure after the second carries the count. */
	log_limited(&ll, 6000, ENOSPC, "disk write %s", "x.log");
	s = logged();
	cr_assert_eq(count_lines(s), 2, "%s", s);
	cr_assert(strstr(line_at(s, 1), "warn: disk write x.log: No space "
	    "left on device (999 similar messages suppressed)") != NULL,
	    "%s", s);
	free(s);
	/* Reported: the flush has nothing more to say. */
	log_limit_flush(100000);
	s = logged();
	cr_assert_eq(count_lines(s), 2, "%s", s);
	free(s);
}

/* No failure comes after the burst: the tick reports the count. */
Test(log, flush_reports_pending_count)
{
	static struct log_limit	 ll = LOG_LIMIT_INIT(LOG_LVL_ERR, "accept");
	char			*s;
	int			 i;

	for (i = 0; i < 50; i++)
		log_limited(&ll, 1000 + (uint64_t)i, EMFILE, "accept on %s",
		    "127.0.0.1:80");
	log_limit_flush(2000);
	s = logged();
	cr_assert_eq(count_lines(s), 2, "%s", s);
	cr_assert(strstr(line_at(s, 0), "error: accept on 127.0.0.1:80: Too "
	    "many open files") != NULL, "%s", s);
	cr_assert(strstr(line_at(s, 1), "error: accept: 49 similar messages "
	    "suppressed") != NULL, "%s", s);
	free(s);

	/* The count line was this second's line: the next failure within
	 * it is counted, and the one after it is written. */
	log_limited(&ll, 2500, EMFILE, "accept on %s", "127.0.0.1:80");
	log_limited(&ll, 3000, EMFILE, "accept on %s", "127.0.0.1:80");
	s = logged();
	cr_assert_eq(count_lines(s), 3, "%s", s);
	cr_assert(strstr(line_at(s, 2), "(1 similar messages suppressed)") !=
	    NULL, "%s", s);
	free(s);
}

/* Every call site has its own second; exit reports everything. */
Test(log, limiters_are_independent)
{
	static struct log_limit	 a = LOG_LIMIT_INIT(LOG_LVL_WARN, "a");
	static struct log_limit	 b = LOG_LIMIT_INIT(LOG_LVL_WARN, "b");
	char			*s;
	int			 i;

	for (i = 0; i < 10; i++) {
		log_limited(&a, 100, 0, "fail a");
		log_limited(&b, 100, 0, "fail b");
	}
	log_limit_flush(UINT64_MAX);
	s = logged();
	cr_assert_eq(count_lines(s), 4, "%s", s);
	cr_assert(strstr(line_at(s, 0), "warn: fail a") != NULL, "%s", s);
	cr_assert(strstr(line_at(s, 1), "warn: fail b") != NULL, "%s", s);
	/* Most recent first in the pending list: order is not promised. */
	cr_assert(strstr(s, "warn: a: 9 similar messages suppressed\n") != NULL,
	    "%s", s);
	cr_assert(strstr(s, "warn: b: 9 similar messages suppressed\n") != NULL,
	    "%s", s);
	free(s);
}

/* errno survives, and a level below the threshold costs nothing. */
Test(log, keeps_errno_and_level)
{
	static struct log_limit	 dbg = LOG_LIMIT_INIT(LOG_LVL_DEBUG, "dbg");
	static struct log_limit	 w = LOG_LIMIT_INIT(LOG_LVL_WARN, "w");
	char			*s;

	errno = EAGAIN;
	log_limited(&dbg, 0, EIO, "debug only");
	cr_assert_eq(errno, EAGAIN);
	log_limited(&w, 0, EIO, "written");
	cr_assert_eq(errno, EAGAIN);
	log_limited(&w, 1, EIO, "counted");
	cr_assert_eq(errno, EAGAIN);
	log_limit_flush(UINT64_MAX);
	cr_assert_eq(errno, EAGAIN);
	s = logged();
	cr_assert_eq(count_lines(s), 2, "%s", s);
	cr_assert(strstr(s, "debug only") == NULL, "%s", s);
	cr_assert(strstr(line_at(s, 0), "warn: written: Input/output error") !=
	    NULL, "%s", s);
	free(s);
}

/* A message as long as the line allows still ends with its count. */
Test(log, count_survives_long_message)
{
	static struct log_limit	 ll = LOG_LIMIT_INIT(LOG_LVL_WARN, "open");
	char			 path[4096], *s;
	const char		*l;

	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	log_limited(&ll, 0, ENFILE, "open %s", path);
	log_limited(&ll, 1, ENFILE, "open %s", path);
	log_limited(&ll, 1000, ENFILE, "open %s", path);
	s = logged();
	cr_assert_eq(count_lines(s), 2, "%s", s);
	l = line_at(s, 1);
	cr_assert(strlen(l) < 2048);
	cr_assert(strstr(l, ": Too many open files in system (1 similar "
	    "messages suppressed)") != NULL, "%s", l);
	free(s);
}

/* A message quoting a request cannot forge lines or drive a terminal. */
Test(log, control_bytes_neutralised)
{
	char	*s;

	log_warnx("open %s", "/a\x1b[2Jb\nc\rd\x7f" "e\tf");
	s = logged();
	cr_assert_eq(count_lines(s), 1, "%s", s);
	cr_assert(strstr(s, "warn: open /a?[2Jb c d?e\tf\n") != NULL, "%s", s);
	free(s);
}
