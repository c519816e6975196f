/*
 * master.c - the supervisor. It binds, forks workers and watches them;
 * it never serves a request.
 *
 * States and transitions (one event loop: signalfd, a channel per
 * worker, the control socket, a 1 s tick):
 *
 *   RUNNING    one current generation. A worker that dies unexpectedly
 *              is replaced at once, or after a backoff (100 ms doubling
 *              to 30 s) when workers keep dying young.
 *      | HUP or "reload" on the control socket
 *      v
 *   RELOADING  the new configuration is loaded and checked in full, new
 *              listen addresses bound, and a new generation forked. The
 *              old one keeps serving. When every new worker says 'R'
 *              (ready), the old workers get 'Q' (drain) and the state is
 *              RUNNING again. A bad configuration, a bind failure or new
 *              workers that fail to start leave the old generation
 *              untouched; the error goes to the log and to the waiting
 *              `porter -s reload`.
 *      | TERM/QUIT (graceful) or INT/second TERM (fast), from any state
 *      v
 *   STOPPING   graceful: every worker gets 'Q' and finishes what it has;
 *              fast: every worker gets SIGTERM. After shutdown_timeout
 *              the rest get SIGKILL. The master exits when none is left.
 *
 * Draining workers of older generations are SIGKILLed once they have
 * drained for shutdown_timeout, so generations cannot pile up; a worker
 * whose heartbeat is older than worker_timeout is SIGKILLed and replaced.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

#define MASTER_SLOTS		(2 * PORTER_MAX_WORKERS + 64)
#define MASTER_MAX_LISTENERS	64
#define MASTER_TICK_MS		1000
#define MASTER_YOUNG_MS		5000	/* died younger than this: backoff */
#define MASTER_BACKOFF_MIN_MS	100
#define MASTER_BACKOFF_MAX_MS	30000
#define MASTER_READY_TIMEOUT_MS	15000	/* a new generation must be up by then */
#define MASTER_FAST_STOP_MS	5000

enum { MW_FREE, MW_STARTING, MW_READY, MW_DRAINING };
enum { MS_RUNNING, MS_RELOADING, MS_STOPPING };

struct mworker {
	pid_t		 pid;
	int		 state;		/* MW_* */
	int		 chan;		/* our end of the socketpair */
	struct ev_io	 io;
	uint32_t	 gen;
	uint64_t	 started;
	uint64_t	 drain_start;
	int		 recycled;	/* asked to be replaced ('X') */
};

struct ctl_client {
	struct ctl_client *next;
	struct ev_io	 io;
	int		 fd;
	char		 buf[64];
	size_t		 len;
	int		 waiting;	/* for the reload to finish */
};

struct generation {
	uint32_t	 id;
	struct conf	*conf;
	struct listener	*ls;
	size_t		 nls;
	int		 target;	/* workers wanted */
	uid_t		 uid;
	gid_t		 gid;
	int		 access_fd;
	int		 access_stderr;
};

static struct {
	struct ev_loop	*loop;
	const char	*conf_path;
	int		 state;		/* MS_* */
	int		 fast;
	int		 sig_fd;
	struct ev_io	 sig_io;
	struct generation cur;		/* serving */
	struct generation next;		/* starting, in MS_RELOADING */
	uint64_t	 reload_start;
	int		 reload_again;	/* a HUP came during a reload */
	char		 reload_msg[512];	/* last reload's outcome */
	struct mworker	 w[MASTER_SLOTS];
	struct sb_slot	*sb;
	int		 fail_streak;
	uint64_t	 next_spawn;	/* backoff: no spawn before this */
	long		 spawn_timer;
	long		 stop_timer;
	int		 ready_sent;
	char		*pid_file;
	char		*ctl_path;
	int		 ctl_fd;
	struct ev_io	 ctl_io;
	struct ctl_client *clients;
	int		*sd_fds;	/* sockets systemd passed */
	int		 sd_nfds;
	uint64_t	 watchdog_ms;
} m;

static void	 master_fill(void);
static void	 master_reload_done(int ok, const char *msg);
static void	 master_update_status(void);

/* ---- helpers -------------------------------------------------------------- */

static int
master_count(uint32_t gen, int include_draining)
{
	int i, n = 0;

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen == gen &&
		    (include_draining || (m.w[i].state != MW_DRAINING &&
		    !m.w[i].recycled)))
			n++;
	return n;
}

static int
master_alive(void)
{
	int i, n = 0;

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE)
			n++;
	return n;
}

static void
master_send(struct mworker *w, char cmd, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *cm;

	if (w->chan == -1)
		return;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = &cmd;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd != -1) {
		memset(cbuf, 0, sizeof(cbuf));
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(w->chan, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == -1 &&
	    errno != EPIPE && errno != ECONNRESET)
		log_warn("message to worker %d", (int)w->pid);
}

static void
master_drain_worker(struct mworker *w)
{
	if (w->state == MW_DRAINING)
		return;
	w->state = MW_DRAINING;
	w->drain_start = ev_now(m.loop);
	master_send(w, 'Q', -1);
}

/* ---- generations: listeners, users, logs --------------------------------- */

static void
gen_clear(struct generation *g)
{
	memset(g, 0, sizeof(*g));
	g->access_fd = -1;
}

/* Is fd one of gen's listeners? */
static int
gen_has_fd(const struct generation *g, int fd)
{
	size_t i;

	for (i = 0; i < g->nls; i++)
		if (g->ls[i].fd == fd)
			return 1;
	return 0;
}

static int
master_take_sd_fd(const struct net_addr *a)
{
	struct net_addr got;
	int i, fd;

	for (i = 0; i < m.sd_nfds; i++) {
		if ((fd = m.sd_fds[i]) == -1)
			continue;
		if (net_sockname(fd, &got) == 0 && net_addr_equal(&got, a)) {
			m.sd_fds[i] = -1;
			net_set_nonblock(fd, 1);
			return fd;
		}
	}
	return -1;
}

/*
 * Listeners for conf: an address the serving generation already has is
 * shared, never closed and re-bound, so its accept queue survives.
 */
static int
gen_listen(struct generation *g, const struct generation *old, char *err,
    size_t errlen)
{
	struct net_addr addrs[2];
	struct listener *l;
	size_t i, j;
	int n, k, fd;

	g->ls = xcalloc(MASTER_MAX_LISTENERS, sizeof(*g->ls));
	for (i = 0; i < g->conf->nlisten; i++) {
		n = net_parse_listen(g->conf->listen[i], addrs, 2, err, errlen);
		if (n == -1)
			return -1;
		for (k = 0; k < n; k++) {
			if (g->nls == MASTER_MAX_LISTENERS) {
				snprintf(err, errlen, "too many listen addresses");
				return -1;
			}
			l = &g->ls[g->nls];
			l->addr = addrs[k];
			fd = -1;
			for (j = 0; old != NULL && j < old->nls; j++) {
				/* Port 0 asks for a new ephemeral port: never shared. */
				if (net_addr_port((struct sockaddr *)&addrs[k].ss) &&
				    net_addr_equal(&old->ls[j].addr, &addrs[k])) {
					fd = old->ls[j].fd;
					l->keep = 1;
					break;
				}
			}
			if (fd == -1)
				fd = master_take_sd_fd(&addrs[k]);
			if (fd == -1) {
				fd = net_listen(&addrs[k], 4096, err, errlen);
				if (fd == -1)
					return -1;
			}
			l->fd = fd;
			/* Port 0 became a real port: show that one. */
			net_sockname(fd, &l->addr);
			net_addr_format((struct sockaddr *)&l->addr.ss, l->text,
			    sizeof(l->text), 1);
			g->nls++;
		}
	}
	return 0;
}

/* Close the listeners of g that the other generation does not share. */
static void
gen_close_listeners(struct generation *g, const struct generation *other)
{
	size_t i;

	for (i = 0; i < g->nls; i++)
		if (other == NULL || !gen_has_fd(other, g->ls[i].fd))
			close(g->ls[i].fd);
	free(g->ls);
	g->ls = NULL;
	g->nls = 0;
}

static int
gen_user(struct generation *g, char *err, size_t errlen)
{
	struct passwd *pw;
	struct group *gr;

	g->uid = (uid_t)-1;
	g->gid = (gid_t)-1;
	if (g->conf->user == NULL || geteuid() != 0)
		return 0;
	if ((pw = getpwnam(g->conf->user)) == NULL) {
		snprintf(err, errlen, "%s: user '%s' not found", g->conf->path,
		    g->conf->user);
		return -1;
	}
	g->uid = pw->pw_uid;
	g->gid = pw->pw_gid;
	if (g->conf->group != NULL) {
		if ((gr = getgrnam(g->conf->group)) == NULL) {
			snprintf(err, errlen, "%s: group '%s' not found",
			    g->conf->path, g->conf->group);
			return -1;
		}
		g->gid = gr->gr_gid;
	}
	return 0;
}

static int
gen_open_access(struct generation *g, char *err, size_t errlen)
{
	const char *path = g->conf->access_log;

	g->access_fd = -1;
	g->access_stderr = 0;
	if (path == NULL)
		return 0;
	if (strcmp(path, "stderr") == 0) {
		g->access_fd = STDERR_FILENO;
		g->access_stderr = 1;
		return 0;
	}
	g->access_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (g->access_fd == -1) {
		snprintf(err, errlen, "access log %s: %s", path, strerror(errno));
		return -1;
	}
	/* Workers write it after dropping privileges: through this fd. */
	return 0;
}

static void
gen_free(struct generation *g)
{
	if (g->access_fd != -1 && !g->access_stderr)
		close(g->access_fd);
	conf_free(g->conf);
	free(g->ls);
	gen_clear(g);
}

/* ---- workers ----------------------------------------------------------- */

static void	 master_chan_cb(struct ev_loop *, struct ev_io *, uint32_t);

static void
master_spawn(struct generation *g)
{
	struct worker_params p;
	struct mworker *w = NULL;
	int i, sv[2];
	pid_t pid;

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state == MW_FREE) {
			w = &m.w[i];
			break;
		}
	if (w == NULL) {
		log_errx("no free worker slot");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_err("socketpair");
		return;
	}
	memset((void *)&m.sb[i], 0, sizeof(m.sb[i]));
	pid = fork();
	if (pid == -1) {
		log_err("fork");
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (pid == 0) {
		/* The child keeps its generation's listeners, its channel, the logs. */
		size_t j;
		int k;

		close(sv[0]);
		for (k = 0; k < MASTER_SLOTS; k++)
			if (m.w[k].state != MW_FREE && m.w[k].chan != -1)
				close(m.w[k].chan);
		if (g == &m.next)
			for (j = 0; j < m.cur.nls; j++)
				if (!gen_has_fd(g, m.cur.ls[j].fd))
					close(m.cur.ls[j].fd);
		if (g == &m.cur && m.state == MS_RELOADING)
			for (j = 0; j < m.next.nls; j++)
				if (!gen_has_fd(g, m.next.ls[j].fd))
					close(m.next.ls[j].fd);
		if (m.ctl_fd != -1)
			close(m.ctl_fd);
		for (struct ctl_client *c = m.clients; c != NULL; c = c->next)
			close(c->fd);
		close(m.sig_fd);
		ev_free(m.loop);
		memset(&p, 0, sizeof(p));
		p.conf = g->conf;
		p.listeners = g->ls;
		p.nlisteners = g->nls;
		p.chan_fd = sv[1];
		p.access_fd = g->access_fd;
		p.access_stderr = g->access_stderr;
		p.sb = &m.sb[i];
		p.generation = g->id;
		p.uid = g->uid;
		p.gid = g->gid;
		p.user = g->conf->user;
		worker_main(&p);
	}
	close(sv[1]);
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->state = MW_STARTING;
	w->chan = sv[0];
	w->gen = g->id;
	w->started = ev_clock_ms();
	net_set_nonblock(w->chan, 1);
	ev_add(m.loop, &w->io, w->chan, EPOLLIN, master_chan_cb, w);
	log_debug("worker %d started (generation %u)", (int)pid, g->id);
}

static void
master_spawn_timer(struct ev_loop *loop, void *arg)
{
	m.spawn_timer = 0;
	master_fill();
}

/* Bring the serving generation up to its target, respecting the backoff. */
static void
master_fill(void)
{
	uint64_t now = ev_clock_ms();

	if (m.state == MS_STOPPING || m.cur.conf == NULL)
		return;
	while (master_count(m.cur.id, 0) < m.cur.target) {
		if (now < m.next_spawn) {
			if (m.spawn_timer == 0)
				m.spawn_timer = ev_timer_add(m.loop,
				    m.next_spawn - now, master_spawn_timer, NULL);
			return;
		}
		master_spawn(&m.cur);
		if (m.fail_streak > 0) {
			/* One at a time while workers keep crashing. */
			uint64_t d = MASTER_BACKOFF_MIN_MS <<
			    (m.fail_streak > 9 ? 9 : m.fail_streak - 1);

			if (d > MASTER_BACKOFF_MAX_MS)
				d = MASTER_BACKOFF_MAX_MS;
			m.next_spawn = now + d;
		}
	}
}

/* Too many workers (TTOU): retire the youngest extra ones. */
static void
master_trim(void)
{
	int i;

	for (i = MASTER_SLOTS - 1; i >= 0 &&
	    master_count(m.cur.id, 0) > m.cur.target; i--)
		if (m.w[i].state != MW_FREE && m.w[i].gen == m.cur.id &&
		    m.w[i].state != MW_DRAINING && !m.w[i].recycled)
			master_drain_worker(&m.w[i]);
}

static void
master_check_switch(void)
{
	int i, ready = 0;

	if (m.state != MS_RELOADING)
		return;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state == MW_READY && m.w[i].gen == m.next.id)
			ready++;
	if (ready < m.next.target)
		return;

	/* The new generation is serving: retire the old one. */
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen != m.next.id)
			master_drain_worker(&m.w[i]);
	gen_close_listeners(&m.cur, &m.next);
	m.cur.ls = NULL;
	gen_free(&m.cur);
	m.cur = m.next;
	gen_clear(&m.next);
	m.state = MS_RUNNING;
	m.fail_streak = 0;
	m.next_spawn = 0;
	log_notice("reloaded: generation %u serving with %d workers (%llu ms)",
	    m.cur.id, m.cur.target,
	    (unsigned long long)(ev_clock_ms() - m.reload_start));
	master_reload_done(1, "configuration reloaded");
}

static void
master_abort_reload(const char *why)
{
	int i;

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen == m.next.id)
			kill(m.w[i].pid, SIGKILL);
	gen_close_listeners(&m.next, &m.cur);
	gen_free(&m.next);
	m.state = MS_RUNNING;
	log_errx("reload failed: %s; still serving the previous configuration",
	    why);
	master_reload_done(0, why);
}

static void
master_worker_exited(struct mworker *w, int status)
{
	uint64_t age = ev_clock_ms() - w->started;
	int expected = w->state == MW_DRAINING || m.state == MS_STOPPING;
	char how[64];

	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (w->chan != -1) {
		ev_del(m.loop, &w->io);
		close(w->chan);
		w->chan = -1;
	}
	w->state = MW_FREE;

	if (m.state == MS_RELOADING && w->gen == m.next.id && !expected) {
		log_errx("new worker %d %s", (int)w->pid, how);
		master_abort_reload("new workers failed to start");
		return;
	}
	if (expected || w->recycled ||
	    (WIFEXITED(status) && WEXITSTATUS(status) == 0 && w->gen != m.cur.id)) {
		log_debug("worker %d %s", (int)w->pid, how);
		master_fill();
		return;
	}
	log_warnx("worker %d %s%s", (int)w->pid, how,
	    w->gen == m.cur.id ? "; replacing it" : "");
	if (w->gen != m.cur.id)
		return;
	if (age < MASTER_YOUNG_MS)
		m.fail_streak++;
	else
		m.fail_streak = 0;
	if (m.fail_streak > 0) {
		uint64_t d = MASTER_BACKOFF_MIN_MS <<
		    (m.fail_streak > 9 ? 9 : m.fail_streak - 1);

		if (d > MASTER_BACKOFF_MAX_MS)
			d = MASTER_BACKOFF_MAX_MS;
		if (m.fail_streak > 1)
			log_warnx("workers keep dying at start-up; next "
			    "start in %llu ms", (unsigned long long)d);
		m.next_spawn = ev_clock_ms() + d;
	}
	master_fill();
}

static void
master_reap(void)
{
	int i, status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < MASTER_SLOTS; i++)
			if (m.w[i].state != MW_FREE && m.w[i].pid == pid) {
				m.sb[i].state = SB_FREE;
				master_worker_exited(&m.w[i], status);
				break;
			}
	}
	if (m.state == MS_STOPPING && master_alive() == 0)
		ev_stop(m.loop);
	master_update_status();
}

static void
master_chan_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct mworker *w = io->arg;
	char cmd;
	ssize_t n;

	while ((n = recv(w->chan, &cmd, 1, 0)) == 1) {
		switch (cmd) {
		case 'R':
			if (w->state == MW_STARTING)
				w->state = MW_READY;
			break;
		case 'X':
			/* Recycling after max_requests: start its successor now. */
			w->recycled = 1;
			w->state = MW_DRAINING;
			w->drain_start = ev_now(loop);
			master_fill();
			break;
		}
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		/* The worker is gone or going; SIGCHLD does the rest. */
		ev_del(loop, io);
		close(w->chan);
		w->chan = -1;
	}
	if (!m.ready_sent && m.state == MS_RUNNING &&
	    master_count(m.cur.id, 0) >= m.cur.target) {
		int i, ready = 0;

		for (i = 0; i < MASTER_SLOTS; i++)
			if (m.w[i].state == MW_READY && m.w[i].gen == m.cur.id)
				ready++;
		if (ready >= m.cur.target) {
			m.ready_sent = 1;
			log_info("%d workers ready", ready);
			master_update_status();
			systemd_ready(NULL);
		}
	}
	master_check_switch();
}

/* ---- reload ------------------------------------------------------------ */

static void
master_reload(void)
{
	char err[1024];
	struct conf *conf;

	if (m.state == MS_STOPPING)
		return;
	if (m.state == MS_RELOADING) {
		m.reload_again = 1;
		return;
	}
	m.reload_start = ev_clock_ms();
	systemd_reloading();
	log_notice("reloading %s", m.conf_path);
	if ((conf = conf_load(m.conf_path, err, sizeof(err))) == NULL) {
		log_errx("reload failed: %s; still serving the previous "
		    "configuration", err);
		master_reload_done(0, err);
		return;
	}
	gen_clear(&m.next);
	m.next.conf = conf;
	m.next.id = m.cur.id + 1;
	m.next.target = conf->workers;
	if (gen_user(&m.next, err, sizeof(err)) == -1 ||
	    gen_open_access(&m.next, err, sizeof(err)) == -1 ||
	    gen_listen(&m.next, &m.cur, err, sizeof(err)) == -1) {
		gen_close_listeners(&m.next, &m.cur);
		gen_free(&m.next);
		log_errx("reload failed: %s; still serving the previous "
		    "configuration", err);
		master_reload_done(0, err);
		return;
	}
	/* The error log may have moved. */
	if (strcmp(conf->error_log, m.cur.conf->error_log) != 0 &&
	    log_open(conf->error_log, err, sizeof(err)) == -1)
		log_errx("error log: %s", err);
	if (mime_load("/etc/mime.types", err, sizeof(err)) == -1)
		log_debug("%s", err);
	for (size_t i = 0; i < m.next.nls; i++)
		if (!m.next.ls[i].keep)
			log_info("listening on %s", m.next.ls[i].text);
	m.state = MS_RELOADING;
	for (int i = 0; i < m.next.target; i++)
		master_spawn(&m.next);
}

static void
master_reload_done(int ok, const char *msg)
{
	struct ctl_client *c;
	char line[600];
	int n;

	snprintf(m.reload_msg, sizeof(m.reload_msg), "%s", msg);
	n = snprintf(line, sizeof(line), "%s %s\n", ok ? "ok" : "error", msg);
	for (c = m.clients; c != NULL; c = c->next) {
		if (!c->waiting)
			continue;
		(void)!write(c->fd, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1);
		c->waiting = 0;
		shutdown(c->fd, SHUT_WR);
	}
	systemd_ready(NULL);
	master_update_status();
	if (m.reload_again) {
		m.reload_again = 0;
		master_reload();
	}
}

/* ---- stopping and logs --------------------------------------------------- */

static void
master_kill_all(struct ev_loop *loop, void *arg)
{
	int i;

	m.stop_timer = 0;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE) {
			log_warnx("worker %d still running; killing it",
			    (int)m.w[i].pid);
			kill(m.w[i].pid, SIGKILL);
		}
}

static void
master_stop(int fast)
{
	int i;

	if (m.state == MS_STOPPING && (m.fast || !fast))
		return;
	if (m.state == MS_RELOADING)
		master_abort_reload("stopping");
	if (m.state != MS_STOPPING) {
		systemd_stopping();
		log_notice("%s stop", fast ? "fast" : "graceful");
	}
	m.state = MS_STOPPING;
	m.fast = fast;
	for (i = 0; i < MASTER_SLOTS; i++) {
		if (m.w[i].state == MW_FREE)
			continue;
		if (fast)
			kill(m.w[i].pid, SIGTERM);
		else
			master_drain_worker(&m.w[i]);
	}
	if (m.stop_timer)
		ev_timer_del(m.loop, m.stop_timer);
	m.stop_timer = ev_timer_add(m.loop, fast ? MASTER_FAST_STOP_MS :
	    (uint64_t)m.cur.conf->shutdown_timeout * 1000, master_kill_all, NULL);
	if (master_alive() == 0)
		ev_stop(m.loop);
}

static void
master_reopen_logs(void)
{
	char err[512];
	int fd, i;

	if (log_reopen(err, sizeof(err)) == -1)
		log_errx("reopening the error log: %s", err);
	if (m.cur.access_fd == -1 || m.cur.access_stderr)
		return;
	fd = open(m.cur.conf->access_log, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0640);
	if (fd == -1) {
		log_err("reopening %s", m.cur.conf->access_log);
		return;
	}
	close(m.cur.access_fd);
	m.cur.access_fd = fd;
	/* Workers dropped privileges: they get the new file from us. */
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE)
			master_send(&m.w[i], 'L', fd);
	log_info("log files reopened");
}

static void
master_signal_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			master_reap();
			break;
		case SIGHUP:
			master_reload();
			break;
		case SIGTERM:
		case SIGQUIT:
			master_stop(m.state == MS_STOPPING);
			break;
		case SIGINT:
			master_stop(1);
			break;
		case SIGUSR1:
			master_reopen_logs();
			break;
		case SIGTTIN:
			if (m.state == MS_RUNNING && m.cur.target < PORTER_MAX_WORKERS) {
				m.cur.target++;
				log_notice("workers: %d", m.cur.target);
				master_fill();
			}
			break;
		case SIGTTOU:
			if (m.state == MS_RUNNING && m.cur.target > 1) {
				m.cur.target--;
				log_notice("workers: %d", m.cur.target);
				master_trim();
			}
			break;
		}
	}
	master_update_status();
}

/* ---- watching ---------------------------------------------------------- */

static void
master_tick(struct ev_loop *loop, void *arg)
{
	uint64_t now = ev_clock_ms();
	uint64_t hang = (uint64_t)m.cur.conf->worker_timeout * 1000;
	uint64_t drain = (uint64_t)m.cur.conf->shutdown_timeout * 1000;
	int i, fresh = 1;

	for (i = 0; i < MASTER_SLOTS; i++) {
		struct mworker *w = &m.w[i];

		if (w->state == MW_FREE)
			continue;
		if (hang && (w->state == MW_READY || w->state == MW_DRAINING) &&
		    now > m.sb[i].heartbeat + hang) {
			log_errx("worker %d unresponsive for %llu s; killing it",
			    (int)w->pid, (unsigned long long)(now -
			    m.sb[i].heartbeat) / 1000);
			kill(w->pid, SIGKILL);
			fresh = 0;
		}
		if (w->state == MW_DRAINING && m.state != MS_STOPPING &&
		    now > w->drain_start + drain) {
			log_warnx("worker %d still draining after %d s; killing it",
			    (int)w->pid, m.cur.conf->shutdown_timeout);
			kill(w->pid, SIGKILL);
		}
	}
	if (m.state == MS_RELOADING && now > m.reload_start + MASTER_READY_TIMEOUT_MS)
		master_abort_reload("new workers did not become ready in time");
	if (m.watchdog_ms && fresh && m.ready_sent)
		systemd_watchdog_ping();
	master_update_status();
	ev_timer_add(loop, MASTER_TICK_MS, master_tick, NULL);
}

static void
master_update_status(void)
{
	uint64_t reqs = 0;
	int i;

	for (i = 0; i < MASTER_SLOTS; i++)
		reqs += m.sb[i].requests;
	systemd_status("%d workers, generation %u, %llu requests%s%s",
	    master_count(m.cur.id, 0), m.cur.id, (unsigned long long)reqs,
	    m.reload_msg[0] ? "; last reload: " : "", m.reload_msg);
}

/* ---- control socket: `porter -s reload` waits here for the outcome ----- */

static void
master_ctl_free(struct ctl_client *c)
{
	struct ctl_client **pp;

	for (pp = &m.clients; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	ev_del(m.loop, &c->io);
	close(c->fd);
	free(c);
}

static void
master_ctl_client_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct ctl_client *c = io->arg;
	ssize_t n;
	char *nl;

	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
	if (n <= 0) {
		if (n == -1 && errno == EAGAIN)
			return;
		master_ctl_free(c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if ((nl = strchr(c->buf, '\n')) == NULL) {
		if (c->len == sizeof(c->buf) - 1)
			master_ctl_free(c);
		return;
	}
	*nl = '\0';
	if (strcmp(c->buf, "reload") == 0) {
		c->waiting = 1;
		c->len = 0;
		master_reload();
	} else if (strcmp(c->buf, "status") == 0) {
		char line[128];
		int len = snprintf(line, sizeof(line), "ok pid %d generation %u "
		    "workers %d\n", (int)getpid(), m.cur.id,
		    master_count(m.cur.id, 0));

		(void)!write(c->fd, line, (size_t)len);
		master_ctl_free(c);
	} else {
		(void)!write(c->fd, "error unknown command\n", 22);
		master_ctl_free(c);
	}
}

static void
master_ctl_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct ctl_client *c;
	int fd;

	while ((fd = accept4(m.ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) != -1) {
		c = xcalloc(1, sizeof(*c));
		c->fd = fd;
		c->next = m.clients;
		m.clients = c;
		ev_add(loop, &c->io, fd, EPOLLIN, master_ctl_client_cb, c);
	}
}

/* "/run/porter/porter.pid" -> "/run/porter/porter.ctl" */
char *
master_ctl_path(const char *pid_file)
{
	size_t len = strlen(pid_file);
	char *p = xmalloc(len + 5);

	memcpy(p, pid_file, len + 1);
	if (len > 4 && strcmp(p + len - 4, ".pid") == 0)
		p[len - 4] = '\0';
	strcat(p, ".ctl");
	return p;
}

static void
master_ctl_open(void)
{
	struct sockaddr_un sun;
	mode_t old;

	m.ctl_fd = -1;
	if (m.pid_file == NULL)
		return;
	m.ctl_path = master_ctl_path(m.pid_file);
	if (strlen(m.ctl_path) >= sizeof(sun.sun_path)) {
		log_warnx("control socket path too long: %s", m.ctl_path);
		return;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, m.ctl_path);
	m.ctl_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(m.ctl_path);
	old = umask(0077);
	if (m.ctl_fd == -1 || bind(m.ctl_fd, (struct sockaddr *)&sun,
	    sizeof(sun)) == -1 || listen(m.ctl_fd, 16) == -1) {
		log_warn("control socket %s", m.ctl_path);
		if (m.ctl_fd != -1)
			close(m.ctl_fd);
		m.ctl_fd = -1;
	} else
		ev_add(m.loop, &m.ctl_io, m.ctl_fd, EPOLLIN, master_ctl_cb, NULL);
	umask(old);
}

/* ---- start-up ------------------------------------------------------------ */

static void
master_write_pid(void)
{
	char buf[32];
	int fd, n;

	if (m.pid_file == NULL)
		return;
	fd = open(m.pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd == -1) {
		log_warn("pid file %s", m.pid_file);
		free(m.pid_file);
		m.pid_file = NULL;
		return;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	(void)!write(fd, buf, (size_t)n);
	close(fd);
}

int
master_run(struct conf *conf, const char *conf_path)
{
	char err[1024];
	sigset_t set;
	size_t i;
	int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGQUIT, SIGINT, SIGUSR1,
	    SIGUSR2, SIGTTIN, SIGTTOU };

	memset(&m, 0, sizeof(m));
	m.conf_path = conf_path;
	gen_clear(&m.cur);
	gen_clear(&m.next);

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	/* Blocked in workers too until they take theirs: no early deaths. */
	sigprocmask(SIG_BLOCK, &set, NULL);
	if ((m.sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1)
		fatal(EXIT_TEMP, "signalfd");
	if ((m.loop = ev_create(64)) == NULL)
		fatal(EXIT_TEMP, "epoll");
	ev_add(m.loop, &m.sig_io, m.sig_fd, EPOLLIN, master_signal_cb, NULL);

	m.sb = mmap(NULL, sizeof(struct sb_slot) * MASTER_SLOTS,
	    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m.sb == MAP_FAILED)
		fatal(EXIT_TEMP, "mmap scoreboard");

	if (mime_load("/etc/mime.types", err, sizeof(err)) == -1)
		log_notice("%s; using built-in MIME types", err);

	m.sd_nfds = systemd_listen_fds(&m.sd_fds);
	m.cur.conf = conf;
	m.cur.id = 1;
	m.cur.target = conf->workers;
	if (gen_user(&m.cur, err, sizeof(err)) == -1)
		fatalx(EXIT_CONFIG, "%s", err);
	if (gen_listen(&m.cur, NULL, err, sizeof(err)) == -1)
		fatalx(errno == EADDRINUSE || errno == EADDRNOTAVAIL ? EXIT_TEMP :
		    EXIT_CONFIG, "cannot listen: %s", err);
	for (i = 0; i < (size_t)m.sd_nfds; i++) {
		struct net_addr a;
		char text[NET_ADDRSTRLEN] = "?";

		if (m.sd_fds[i] == -1)
			continue;
		if (net_sockname(m.sd_fds[i], &a) == 0)
			net_addr_format((struct sockaddr *)&a.ss, text,
			    sizeof(text), 1);
		fatalx(EXIT_CONFIG, "systemd passed a socket for %s, which "
		    "is not in the listen list of %s", text, conf_path);
	}
	for (i = 0; i < m.cur.nls; i++)
		log_info("listening on %s", m.cur.ls[i].text);
	if (gen_open_access(&m.cur, err, sizeof(err)) == -1)
		fatalx(EXIT_CONFIG, "%s", err);

	if (conf->pid_file != NULL)
		m.pid_file = xstrdup(conf->pid_file);
	master_write_pid();
	master_ctl_open();
	m.watchdog_ms = systemd_watchdog_usec() / 1000;

	master_fill();
	ev_timer_add(m.loop, MASTER_TICK_MS, master_tick, NULL);
	log_notice("porter %s started, %d workers", PACKAGE_VERSION,
	    m.cur.target);

	if (ev_run(m.loop) == -1)
		log_crit("epoll_wait");

	if (m.pid_file != NULL)
		unlink(m.pid_file);
	if (m.ctl_path != NULL)
		unlink(m.ctl_path);
	log_notice("stopped");
	return 0;
}
