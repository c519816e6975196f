/*
 * ctl.c - the master's control socket, beside the pid file
 * ("/run/porter/porter.pid" -> "/run/porter/porter.ctl").
 *
 * `porter -s reload` connects, writes "reload\n" and waits. The answer,
 * "ok MESSAGE" or "error MESSAGE", comes only when the reload it asked
 * for has ended, so systemd's ExecReload= fails when the reload does,
 * which a bare SIGHUP cannot tell. "status\n" is answered at once with
 * "ok\n" and the master's "key: value" lines, then end of file.
 * "drain\n" and "undrain\n" turn the master's drain flag on and off
 * (health checks fail, responses say Connection: close) and are
 * answered at once: "ok\ndraining: yes|no\n", or "error stopping".
 * What each command does is the master's business: it hands its
 * handlers to ctl_open(), so this file calls nothing of master*.c.
 * The socket is made under umask 077: only the master's user may ask.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "porter.h"

#define CTL_RETRY_MS	1000	/* out of descriptors: accept again after */

struct ctl_client {
	struct ctl_client *next;
	struct ev_io	 io;
	int		 fd;
	char		 buf[512];
	size_t		 len;
	uint32_t	 want;		/* answer when this reload ends; 0: none */
};

static struct {
	struct ev_loop	*loop;
	int		 fd;		/* listening, -1 */
	char		*path;
	struct ev_io	 io;
	long		 retry;		/* timer that resumes accepting, 0 */
	struct ctl_client *clients;
	const struct ctl_handlers *h;
} ctl = { .fd = -1 };

static void	 ctl_accept_cb(struct ev_loop *, struct ev_io *, uint32_t);

static void
ctl_free(struct ctl_client *c)
{
	struct ctl_client **pp;

	for (pp = &ctl.clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_del(ctl.loop, &c->io);
	close(c->fd);
	free(c);
}

/*
 * Say it and hang up. One write: the status text of even a full worker
 * table (tens of KiB) fits in a Unix socket's send buffer, and a client
 * that reads nothing must not stall the master.
 */
static void
ctl_reply(struct ctl_client *c, const char *line)
{
	size_t len = strlen(line);
	ssize_t n;

	n = write(c->fd, line, len);
	if (n != (ssize_t)len)
		log_warnx("control socket: answer cut short (%zd of %zu bytes)",
		    n, len);
	ctl_free(c);
}

static void
ctl_status(struct ctl_client *c)
{
	char *text, *out;
	size_t len;

	if ((text = ctl.h->status()) == NULL) {
		ctl_reply(c, "error status unavailable\n");
		return;
	}
	len = strlen(text);
	out = xmalloc(len + 4);
	memcpy(out, "ok\n", 3);
	memcpy(out + 3, text, len + 1);
	free(text);
	ctl_reply(c, out);
	free(out);
}

static void
ctl_client_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct ctl_client *c = ev_io_owner(io, struct ctl_client, io);
	ssize_t n;
	char *nl, *text;

	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n <= 0) {
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return;
		ctl_free(c);	/* gone, whether or not it waited */
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if ((nl = strchr(c->buf, '\n')) == NULL) {
		if (c->len == sizeof(c->buf) - 1)
			ctl_reply(c, "error line too long\n");
		return;
	}
	*nl = '\0';
	c->len = 0;
	if (strcmp(c->buf, "reload") == 0) {
		if (ctl.h->reload(&c->want) == -1)
			ctl_reply(c, "error stopping\n");
	} else if (strcmp(c->buf, "status") == 0)
		ctl_status(c);
	else if (strcmp(c->buf, "drain") == 0 ||
	    strcmp(c->buf, "undrain") == 0) {
		if (ctl.h->drain(c->buf[0] == 'd') == -1)
			ctl_reply(c, "error stopping\n");
		else
			ctl_reply(c, c->buf[0] == 'd' ? "ok\ndraining: yes\n" :
			    "ok\ndraining: no\n");
	} else if (ctl.h->command != NULL &&
	    (text = ctl.h->command(c->buf)) != NULL) {
		ctl_reply(c, text);
		free(text);
	} else
		ctl_reply(c, "error unknown command\n");
}

static void
ctl_resume(struct ev_loop *loop, void *arg)
{
	ctl.retry = 0;
	if (ctl.fd == -1)
		return;
	if (ev_add(loop, &ctl.io, ctl.fd, EPOLLIN, ctl_accept_cb) == -1) {
		log_warn("control socket %s", ctl.path);
		ctl.retry = ev_timer_add(loop, CTL_RETRY_MS, ctl_resume, NULL);
	}
}

static void
ctl_accept_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct ctl_client *c;
	int fd;

	for (;;) {
		fd = accept4(ctl.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				return;
			/*
			 * Out of descriptors or memory: the socket stays
			 * readable, so stop watching it for a while rather
			 * than spin on it.
			 */
			log_warn("control socket %s", ctl.path);
			ev_del(loop, &ctl.io);
			ctl.retry = ev_timer_add(loop, CTL_RETRY_MS, ctl_resume,
			    NULL);
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->next = ctl.clients;
		ctl.clients = c;
		if (ev_add(loop, &c->io, fd, EPOLLIN, ctl_client_cb) == -1) {
			log_warn("control socket client");
			ctl.clients = c->next;
			close(fd);
			free(c);
		}
	}
}

/* "/run/porter/porter.pid" -> "/run/porter/porter.ctl" */
char *
ctl_path(const char *pid_file)
{
	size_t len = strlen(pid_file);
	char *p = xmalloc(len + 5);

	memcpy(p, pid_file, len + 1);
	if (len > 4 && strcmp(p + len - 4, ".pid") == 0)
		p[len - 4] = '\0';
	strcat(p, ".ctl");
	return p;
}

/*
 * Listen beside pid_file. A failure is logged and leaves the master
 * without a control socket: signals still work, `porter -s reload`
 * falls back to one.
 */
void
ctl_open(struct ev_loop *loop, const char *pid_file,
    const struct ctl_handlers *h)
{
	struct sockaddr_un sun;
	mode_t old;

	ctl.loop = loop;
	ctl.h = h;
	ctl.path = ctl_path(pid_file);
	if (strlen(ctl.path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s", ctl.path);
		goto fail;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, ctl.path);
	if ((ctl.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1) {
		log_warn("control socket %s", ctl.path);
		goto fail;
	}
	unlink(ctl.path);	/* left by a master that was killed */
	old = umask(0077);
	if (bind(ctl.fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(ctl.fd, 16) == -1 ||
	    ev_add(loop, &ctl.io, ctl.fd, EPOLLIN, ctl_accept_cb) == -1) {
		umask(old);
		log_warn("control socket %s", ctl.path);
		goto fail;
	}
	umask(old);
	return;
fail:
	if (ctl.fd != -1)
		close(ctl.fd);
	ctl.fd = -1;
	free(ctl.path);
	ctl.path = NULL;
}

/* Stop listening. Connected clients stay: they wait for an answer or our exit. */
void
ctl_close(void)
{
	if (ctl.retry != 0) {
		ev_timer_del(ctl.loop, ctl.retry);
		ctl.retry = 0;
	}
	if (ctl.fd != -1) {
		ev_del(ctl.loop, &ctl.io);
		close(ctl.fd);
		ctl.fd = -1;
	}
	if (ctl.path != NULL) {
		unlink(ctl.path);
		free(ctl.path);
		ctl.path = NULL;
	}
}

/* In a forked worker: drop the descriptors, leave the socket file be. */
void
ctl_close_fds(void)
{
	struct ctl_client *c;

	if (ctl.fd != -1)
		close(ctl.fd);
	for (c = ctl.clients; c != NULL; c = c->next)
		close(c->fd);
}

/*
 * Answer the clients waiting for reloads up to number upto. They are
 * freed when they hang up: this may run inside ctl_client_cb().
 */
void
ctl_answer(int ok, const char *msg, uint32_t upto)
{
	struct ctl_client *c;
	char line[600];
	int n;

	n = snprintf(line, sizeof(line), "%s %s\n", ok ? "ok" : "error", msg);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	for (c = ctl.clients; c != NULL; c = c->next) {
		if (c->want == 0 || c->want > upto)
			continue;
		(void)!write(c->fd, line, (size_t)n);
		c->want = 0;
		shutdown(c->fd, SHUT_WR);
	}
}
