/*
 * systemd.c - everything porter says to or takes from systemd: the
 * listening sockets of socket activation and sd_notify(3) messages.
 * This is the only file that includes <systemd/sd-daemon.h>.
 *
 * Only the master may call these. NOTIFY_SOCKET stays in the environment
 * (unset_environment = 0) so that a reload can notify again, which means
 * forked workers inherit it too; with the default NotifyAccess=main
 * systemd would drop their messages and log a warning for each, so the
 * workers simply never call in here.
 *
 * Every function is a no-op when porter does not run under systemd
 * (NOTIFY_SOCKET unset), and none of them logs: the callers decide
 * what is worth a log line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "porter.h"

/* Long enough for any status porter sets; longer ones are cut, not lost. */
#define SYSTEMD_STATUS_MAX	256

static int	systemd_notifying(void);
static void	systemd_clean(char *s);

/* Is there anyone to tell? sd_notify() checks too, but this spares the formatting. */
static int
systemd_notifying(void)
{
	const char	*e = getenv("NOTIFY_SOCKET");

	return e != NULL && *e != '\0';
}

/*
 * A newline inside STATUS= would start a new assignment, so a file name
 * in an error message could otherwise smuggle in "READY=1" or "MAINPID=".
 */
static void
systemd_clean(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/*
 * The sockets systemd passed (LISTEN_FDS), starting at SD_LISTEN_FDS_START.
 * Returns how many (0 when not socket-activated) and stores a malloc'd
 * array of them in *fds, which the caller frees; *fds is NULL when none.
 * Returns -errno on failure, having closed nothing.
 *
 * LISTEN_PID/LISTEN_FDS are removed from the environment so a program
 * the workers might run does not think the sockets are meant for it.
 * systemd passes them without FD_CLOEXEC; we set it so they do not leak
 * into such a program either (the workers inherit them by fork, not exec).
 */
int
systemd_listen_fds(int **fds)
{
	int	 n, i, flags;
	int	*a;

	*fds = NULL;
	n = sd_listen_fds(1);
	if (n <= 0)
		return n;

	if ((a = calloc((size_t)n, sizeof(*a))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		a[i] = SD_LISTEN_FDS_START + i;
		if ((flags = fcntl(a[i], F_GETFD)) == -1 ||
		    fcntl(a[i], F_SETFD, flags | FD_CLOEXEC) == -1) {
			int	saved = errno;

			free(a);
			return -saved;
		}
	}
	*fds = a;
	return n;
}

/*
 * READY=1 after start-up and after each reload, whether the reload took
 * or not: systemd stays in "reloading" until it sees READY=1 again.
 * status, if not NULL, becomes the STATUS= line of "systemctl status".
 * MAINPID tells systemd which process to watch even if it lost track,
 * e.g. when porter was started through a wrapper.
 */
void
systemd_ready(const char *status)
{
	char	buf[SYSTEMD_STATUS_MAX];

	if (!systemd_notifying())
		return;
	/* NULL keeps the last STATUS= (an empty one would clear it). */
	if (status == NULL) {
		sd_notifyf(0, "READY=1\nMAINPID=%lu", (unsigned long)getpid());
		return;
	}
	snprintf(buf, sizeof(buf), "%s", status);
	systemd_clean(buf);
	sd_notifyf(0, "READY=1\nSTATUS=%s\nMAINPID=%lu", buf,
	    (unsigned long)getpid());
}

/*
 * systemd >= 253 (Type=notify-reload) wants MONOTONIC_USEC with
 * RELOADING=1 to tell this reload from an earlier one; older versions
 * ignore it.
 */
void
systemd_reloading(void)
{
	struct timespec	ts;
	uint64_t	usec;

	if (!systemd_notifying())
		return;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return;
	usec = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, usec);
}

void
systemd_stopping(void)
{
	if (!systemd_notifying())
		return;
	sd_notify(0, "STOPPING=1");
}

/*
 * Stopping, and it will take up to usec more: systemd (>= 236) extends
 * its stop timeout by that much instead of killing us at
 * TimeoutStopSec= (health.shutdown_delay + shutdown_timeout).
 */
void
systemd_stopping_extend(uint64_t usec)
{
	if (!systemd_notifying())
		return;
	sd_notifyf(0, "STOPPING=1\nEXTEND_TIMEOUT_USEC=%" PRIu64, usec);
}

/* The one-line status "systemctl status" shows, printf-style. */
void
systemd_status(const char *fmt, ...)
{
	char	buf[SYSTEMD_STATUS_MAX];
	va_list	ap;

	if (!systemd_notifying())
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	systemd_clean(buf);
	sd_notifyf(0, "STATUS=%s", buf);
}

/*
 * The watchdog interval (WatchdogSec=) in microseconds, or 0 when there
 * is no watchdog for this process. Callers ping at about half of it.
 */
uint64_t
systemd_watchdog_usec(void)
{
	uint64_t	usec = 0;

	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return usec;
}

void
systemd_watchdog_ping(void)
{
	if (!systemd_notifying())
		return;
	sd_notify(0, "WATCHDOG=1");
}
