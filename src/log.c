/*
 * log.c - the error log.
 *
 * One line per event, written with a single write(2) so lines from the
 * master and its workers never interleave. log_warn() adds strerror(errno),
 * log_warnx() does not; fatal()/fatalx() exit and are for start-up only.
 * When stderr is the journal (JOURNAL_STREAM names it), each line starts
 * with the sd-daemon "<N>" priority and no time stamp: journald adds it.
 *
 * A failure that can repeat for every request or every loop turn (a full
 * disk under the access log, accept() out of descriptors) goes through
 * log_limited(): one line a second per call site, and a count of the
 * ones left out, so a flood of failures cannot become a flood of log
 * lines that fills the disk in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

static int	 log_fd = STDERR_FILENO;
static int	 log_journal;	/* prefix "<N>" instead of a time stamp */
static int	 log_min = LOG_LVL_INFO;
static char	*log_path;	/* NULL: stderr */
/* Limiters that left lines out since their last line: to be counted. */
static struct log_limit *log_pending;

static const char *const log_names[] = {
	[LOG_LVL_CRIT] = "crit", [LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warn", [LOG_LVL_NOTICE] = "notice",
	[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
};
/* syslog priorities, as sd-daemon's SD_CRIT .. SD_DEBUG */
static const int log_prio[] = {
	[LOG_LVL_CRIT] = 2, [LOG_LVL_ERR] = 3, [LOG_LVL_WARN] = 4,
	[LOG_LVL_NOTICE] = 5, [LOG_LVL_INFO] = 6, [LOG_LVL_DEBUG] = 7,
};

/* Is fd the stream systemd's journal handed us? */
static int
log_fd_is_journal(int fd)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(fd, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

int
log_stderr_is_journal(void)
{
	return log_fd_is_journal(STDERR_FILENO);
}

void
log_init(int debug)
{
	log_min = debug ? LOG_LVL_DEBUG : LOG_LVL_INFO;
	log_journal = log_fd_is_journal(STDERR_FILENO);
}

int
log_open(const char *path, char *err, size_t errlen)
{
	int fd;

	if (path == NULL || strcmp(path, "stderr") == 0) {
		if (log_fd != STDERR_FILENO)
			close(log_fd);
		log_fd = STDERR_FILENO;
		free(log_path);
		log_path = NULL;
		log_journal = log_fd_is_journal(STDERR_FILENO);
		return 0;
	}
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
	log_journal = 0;
	if (log_path == NULL || strcmp(log_path, path) != 0) {
		free(log_path);
		log_path = strdup(path);
	}
	return 0;
}

int
log_reopen(char *err, size_t errlen)
{
	char *path;
	int rv;

	if (log_path == NULL)
		return 0;
	if ((path = strdup(log_path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	rv = log_open(path, err, errlen);
	free(path);
	return rv;
}

int
log_get_fd(void)
{
	return log_fd;
}

void
log_set_fd(int fd)
{
	if (log_fd != STDERR_FILENO && log_fd != fd)
		close(log_fd);
	log_fd = fd;
}

void
log_vwrite(int level, const char *errstr, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n = 0;
	int rv;

	if (level > log_min)
		return;
	if (log_journal)
		rv = snprintf(line, sizeof(line), "<%d>", log_prio[level]);
	else {
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		rv = (int)strftime(line, sizeof(line), "%Y-%m-%d %H:%M:%S ", &tm);
	}
	n = rv > 0 ? (size_t)rv : 0;
	/* The journal records who and which pid itself. */
	if (log_journal)
		rv = snprintf(line + n, sizeof(line) - n, "%s: ", log_names[level]);
	else
		rv = snprintf(line + n, sizeof(line) - n, "porter[%d]: %s: ",
		    (int)getpid(), log_names[level]);
	if (rv > 0)
		n += (size_t)rv;
	if (n < sizeof(line)) {
		rv = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (rv > 0)
			n += (size_t)rv;
	}
	if (errstr != NULL && n < sizeof(line)) {
		rv = snprintf(line + n, sizeof(line) - n, ": %s", errstr);
		if (rv > 0)
			n += (size_t)rv;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;	/* truncated: keep the newline */
	/*
	 * Messages may quote a request (a decoded path): newlines inside
	 * one would forge log lines, other control bytes (ESC) would drive
	 * the terminal of whoever reads the log. In place: the bound holds.
	 */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch == '\n' || ch == '\r')
			line[i] = ' ';
		else if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';
	(void)!write(log_fd, line, n);
}

#define LOG_FN(name, level, witherr)					\
void									\
name(const char *fmt, ...)						\
{									\
	const char *errstr = (witherr) ? strerror(errno) : NULL;	\
	int saved = errno;						\
	va_list ap;							\
									\
	va_start(ap, fmt);						\
	log_vwrite(level, errstr, fmt, ap);				\
	va_end(ap);							\
	errno = saved;							\
}

LOG_FN(log_crit, LOG_LVL_CRIT, 1)
LOG_FN(log_critx, LOG_LVL_CRIT, 0)
LOG_FN(log_err, LOG_LVL_ERR, 1)
LOG_FN(log_errx, LOG_LVL_ERR, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_notice, LOG_LVL_NOTICE, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)

static void PRINTF(2, 3)
log_write(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, NULL, fmt, ap);
	va_end(ap);
}

/* The end of the second that starts at now_ms; UINT64_MAX stays put. */
static uint64_t
log_limit_until(uint64_t now_ms)
{
	uint64_t until;

	if (__builtin_add_overflow(now_ms, (uint64_t)LOG_LIMIT_MS, &until))
		return UINT64_MAX;
	return until;
}

void
log_limited(struct log_limit *ll, uint64_t now_ms, int errnum,
    const char *fmt, ...)
{
	char msg[1024];
	int saved = errno;
	va_list ap;

	if (ll->ll_level > log_min)
		return;
	if (ll->ll_started && now_ms < ll->ll_until) {
		ll->ll_suppressed++;
		if (!ll->ll_pending) {
			ll->ll_pending = 1;
			ll->ll_next = log_pending;
			log_pending = ll;
		}
		errno = saved;
		return;
	}
	/* Formatted here: the count goes after the error string. */
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	if (ll->ll_suppressed > 0)
		log_write(ll->ll_level, "%s%s%s (%" PRIu64
		    " similar messages suppressed)", msg, errnum ? ": " : "",
		    errnum ? strerror(errnum) : "", ll->ll_suppressed);
	else
		log_write(ll->ll_level, "%s%s%s", msg, errnum ? ": " : "",
		    errnum ? strerror(errnum) : "");
	ll->ll_started = 1;
	ll->ll_until = log_limit_until(now_ms);
	ll->ll_suppressed = 0;
	errno = saved;
}

void
log_limit_flush(uint64_t now_ms)
{
	struct log_limit **pp = &log_pending, *ll;
	int saved = errno;

	while ((ll = *pp) != NULL) {
		if (ll->ll_suppressed > 0 && now_ms < ll->ll_until) {
			pp = &ll->ll_next;	/* its second is not over */
			continue;
		}
		*pp = ll->ll_next;
		ll->ll_next = NULL;
		ll->ll_pending = 0;
		if (ll->ll_suppressed == 0)
			continue;	/* counted in a line since */
		log_write(ll->ll_level, "%s: %" PRIu64
		    " similar messages suppressed", ll->ll_what,
		    ll->ll_suppressed);
		/* That was this second's line. */
		ll->ll_until = log_limit_until(now_ms);
		ll->ll_suppressed = 0;
	}
	errno = saved;
}

void
fatal(int code, const char *fmt, ...)
{
	const char *errstr = strerror(errno);
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_CRIT, errstr, fmt, ap);
	va_end(ap);
	exit(code);
}

void
fatalx(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_CRIT, NULL, fmt, ap);
	va_end(ap);
	exit(code);
}
