/*
 * master.c - the supervisor. It binds, forks workers and watches them;
 * it never serves a request.
 *
 * States and transitions (one event loop: a signalfd, a channel per
 * worker, the control socket and a tick of 1 s, or half the watchdog):
 *
 *   RUNNING    one serving generation ("cur"). A worker that dies
 *              unexpectedly is replaced at once; when the replacements
 *              die young (< 5 s) too, each further start waits 100 ms,
 *              doubling up to 30 s, until a replacement lives 5 s. Workers
 *              that exit with EXIT_CONFIG before any has ever been ready
 *              (they could not drop privileges) stop the master with that
 *              status instead: retrying cannot help. TTIN and TTOU add or
 *              retire one worker of cur, until the next reload.
 *      | HUP, or "reload" on the control socket (`porter -s reload`)
 *      v
 *   RELOADING  the file is loaded and checked in full; the user, the logs
 *              and new listen addresses are opened, and a new generation
 *              ("next") is forked with them, while cur keeps serving.
 *              next's workers say 'R' when they could accept, but wait.
 *              When every one of them has, they are told 'G' (accept)
 *              and cur's workers 'Q' (drain), the listeners only cur had
 *              are closed, next becomes cur: RUNNING. The reload is over
 *              (the answer below, READY=1) only once every older worker
 *              has said 'D' or exited: until then one that has not read
 *              its 'Q' yet may still accept, with the old configuration,
 *              a connection made after the answer. A hung one is bounded
 *              by worker_timeout and shutdown_timeout, which kill it.
 *              Anything failing on
 *              the way (the file, a bind, a next worker dying, not all
 *              ready within 15 s) drains what was started of next, which
 *              has served nobody, and changes nothing else. Either way
 *              a waiting `porter -s reload` gets "ok ..." or "error
 *              MESSAGE". A HUP or reload request now
 *              starts another reload once this one ends; TTIN and TTOU
 *              now are applied then, to whichever generation serves.
 *      | TERM/QUIT (graceful) or INT/second TERM (fast), from any state
 *      v
 *   STOPPING   a reload in progress is abandoned and its waiters told so.
 *              The master closes its listening sockets, so new
 *              connections are refused once the workers have closed
 *              theirs. Graceful: every worker gets 'Q' and finishes what
 *              it has; fast: every worker gets SIGTERM. shutdown_timeout
 *              later (fast: 5 s) the rest get SIGKILL. The master exits
 *              when none is left.
 *
 * In every state: a worker whose heartbeat in the scoreboard is older
 * than worker_timeout is SIGKILLed, and replaced as a crash; a draining
 * worker (old generation, TTOU, max_requests) still there shutdown_timeout
 * after it was told to drain is SIGKILLed, so generations cannot pile up;
 * USR1 reopens the logs and passes the new descriptors to the workers,
 * which have given up the privileges to open them.
 *
 * Channel messages are one byte each (SOCK_SEQPACKET). To a worker: 'G'
 * start accepting (a reload's workers wait for it), 'Q' drain and exit,
 * 'L' + fd the access log, 'E' + fd the error log. From a worker: 'R'
 * ready (accepting, or waiting for 'G'), 'X' max_requests reached (its
 * successor starts at once while it drains), 'D' draining: its listeners
 * are closed, it accepts nothing more.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"

#define MASTER_SLOTS		(2 * PORTER_MAX_WORKERS + 64)
#define MASTER_TICK_MS		1000
#define MASTER_YOUNG_MS		5000	/* died younger than this: backoff */
#define MASTER_BACKOFF_MIN_MS	100
#define MASTER_BACKOFF_MAX_MS	30000
#define MASTER_FORK_RETRY_MS	1000
#define MASTER_READY_TIMEOUT_MS	15000	/* a new generation must be up by then */
#define MASTER_FAST_STOP_MS	5000

enum { MW_FREE, MW_STARTING, MW_READY, MW_DRAINING };
enum { MS_RUNNING, MS_RELOADING, MS_STOPPING };

struct mworker {
	pid_t		 pid;
	int		 state;		/* MW_* */
	int		 chan;		/* our end of the socketpair, -1 */
	struct ev_io	 io;
	uint32_t	 gen;
	uint64_t	 started;
	uint64_t	 drain_start;
	unsigned	 recycled:1;	/* asked to be replaced ('X') */
	unsigned	 killed:1;	/* SIGKILL sent: log it once */
	unsigned	 proven:1;	/* has lived MASTER_YOUNG_MS */
	unsigned	 listening:1;	/* may accept: not held, no 'D' yet */
};

static struct {
	struct ev_loop	*loop;
	const char	*conf_path;
	int		 state;		/* MS_* */
	int		 fast;
	int		 exit_code;
	int		 sig_fd;
	struct ev_io	 sig_io;
	struct generation cur;		/* serving */
	struct generation next;		/* starting, in MS_RELOADING */
	uint32_t	 gen_seq;	/* last generation id handed out */
	uint32_t	 reload_seq;	/* reloads started so far */
	uint64_t	 reload_start;
	int		 reload_again;	/* asked for during a reload */
	int		 reload_wait;	/* switched; older workers may accept */
	int		 resize;	/* TTIN minus TTOU during a reload */
	char		 reload_msg[512];	/* last reload's outcome */
	struct mworker	 w[MASTER_SLOTS];
	struct sb_slot	*sb;
	int		 fail_streak;	/* young deaths in a row */
	uint64_t	 streak_since;
	uint64_t	 next_spawn;	/* backoff: no spawn before this */
	long		 spawn_timer;
	uint64_t	 spawn_at;
	long		 stop_timer;
	int		 ever_ready;	/* a worker of cur has said 'R' */
	int		 ready_sent;
	char		*pid_file;
	int		*sd_fds;	/* sockets systemd passed */
	int		 sd_nfds;
	uint64_t	 watchdog_ms;
	uint64_t	 tick_ms;
} m;

static void	 master_fill(void);
static void	 master_reload(void);
static void	 master_reload_done(int ok, const char *msg);
static void	 master_update_status(void);
static void	 master_write_pid(void);

/* ---- helpers -------------------------------------------------------------- */

/* Workers of generation gen; draining and recycled ones only if asked. */
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
		log_warn("message '%c' to worker %d", cmd, (int)w->pid);
}

static void
master_drain_worker(struct mworker *w)
{
	if (w->state == MW_DRAINING)
		return;
	w->state = MW_DRAINING;
	w->drain_start = ev_clock_ms();
	master_send(w, 'Q', -1);
}

static void
master_kill(struct mworker *w)
{
	kill(w->pid, SIGKILL);
	w->killed = 1;
}

/* ---- workers ----------------------------------------------------------- */

static void	 master_chan_cb(struct ev_loop *, struct ev_io *, uint32_t);

/*
 * The child keeps its generation's listeners and logs, its channel and
 * the error log; every other descriptor of the master is closed, so a
 * worker holds no listener of the other generation open (a removed
 * address must really close) and no other worker's channel (its EOF
 * tells a worker that the master is gone).
 */
static void __attribute__((noreturn))
master_child(struct generation *g, int slot, int chan)
{
	struct generation *other = g == &m.cur ? &m.next : &m.cur;
	struct worker_params p;
	size_t j;
	int k;

	for (k = 0; k < MASTER_SLOTS; k++)
		if (m.w[k].state != MW_FREE && m.w[k].chan != -1)
			close(m.w[k].chan);
	for (j = 0; j < other->nls; j++)
		if (!gen_has_fd(g, other->ls[j].fd))
			close(other->ls[j].fd);
	if (other->access_fd != -1 && !other->access_stderr &&
	    other->access_fd != g->access_fd)
		close(other->access_fd);
	if (other->error_fd > STDERR_FILENO)
		close(other->error_fd);
	for (k = 0; k < m.sd_nfds; k++)
		if (m.sd_fds[k] != -1)
			close(m.sd_fds[k]);
	if (g->error_fd != -1)
		log_set_fd(g->error_fd);
	ctl_close_fds();
	close(m.sig_fd);
	ev_free(m.loop);

	memset(&p, 0, sizeof(p));
	p.conf = g->conf;
	p.listeners = g->ls;
	p.nlisteners = g->nls;
	p.chan_fd = chan;
	p.access_fd = g->access_fd;
	p.sb = &m.sb[slot];
	p.generation = g->id;
	p.uid = g->uid;
	p.gid = g->gid;
	p.user = g->conf->user;
	/* A reload's workers wait for the switch: all of next or none serves. */
	p.hold = g == &m.next;
	worker_main(&p);
}

static int
master_spawn(struct generation *g)
{
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
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_err("socketpair");
		return -1;
	}
	memset((void *)&m.sb[i], 0, sizeof(m.sb[i]));
	if ((pid = fork()) == -1) {
		log_err("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		master_child(g, i, sv[1]);
	}
	close(sv[1]);
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->state = MW_STARTING;
	w->chan = sv[0];
	w->gen = g->id;
	w->started = ev_clock_ms();
	/* A reload's workers hold until 'G'. */
	w->listening = g != &m.next;
	net_set_nonblock(w->chan, 1);
	ev_add(m.loop, &w->io, w->chan, EPOLLIN, master_chan_cb, w);
	log_debug("worker %d started (generation %u)", (int)pid, g->id);
	return 0;
}

static void
master_spawn_timer(struct ev_loop *loop, void *arg)
{
	m.spawn_timer = 0;
	master_fill();
}

/* Call master_fill() at the latest at ev_clock_ms() + after. */
static void
master_spawn_later(uint64_t after)
{
	uint64_t at = ev_clock_ms() + after;

	if (m.spawn_timer != 0) {
		if (m.spawn_at <= at)
			return;
		ev_timer_del(m.loop, m.spawn_timer);
	}
	m.spawn_at = at;
	m.spawn_timer = ev_timer_add(m.loop, after, master_spawn_timer, NULL);
}

/* Delay before the next start: none for a first young death, then doubling. */
static uint64_t
master_backoff(void)
{
	uint64_t d;

	if (m.fail_streak < 2)
		return 0;
	d = (uint64_t)MASTER_BACKOFF_MIN_MS <<
	    (m.fail_streak - 2 > 9 ? 9 : m.fail_streak - 2);
	return d > MASTER_BACKOFF_MAX_MS ? MASTER_BACKOFF_MAX_MS : d;
}

static void
master_fill_gen(struct generation *g, int backoff)
{
	uint64_t now = ev_clock_ms();

	while (master_count(g->id, 0) < g->target) {
		if (backoff && now < m.next_spawn) {
			master_spawn_later(m.next_spawn - now);
			return;
		}
		if (master_spawn(g) == -1) {
			/* Out of processes or memory: retry, don't spin. */
			master_spawn_later(MASTER_FORK_RETRY_MS);
			return;
		}
		/* One at a time while workers keep crashing. */
		if (backoff && m.fail_streak > 1)
			m.next_spawn = now + master_backoff();
	}
}

/*
 * Bring the serving generation, and a starting one, up to their targets.
 * Only cur's starts wait for the crash backoff: a crash in next ends
 * the reload instead.
 */
static void
master_fill(void)
{
	if (m.state == MS_STOPPING || m.cur.conf == NULL)
		return;
	master_fill_gen(&m.cur, 1);
	if (m.state == MS_RELOADING)
		master_fill_gen(&m.next, 0);
}

/* Too many workers (TTOU): retire the youngest extra ones gracefully. */
static void
master_trim(void)
{
	struct mworker *w, *young;
	int i;

	while (master_count(m.cur.id, 0) > m.cur.target) {
		young = NULL;
		for (i = 0; i < MASTER_SLOTS; i++) {
			w = &m.w[i];
			if (w->state == MW_FREE || w->state == MW_DRAINING ||
			    w->gen != m.cur.id || w->recycled)
				continue;
			if (young == NULL || w->started > young->started)
				young = w;
		}
		if (young == NULL)
			return;
		master_drain_worker(young);
	}
}

static void
master_resize_apply(int d)
{
	int t = m.cur.target + d;

	if (t < 1)
		t = 1;
	if (t > PORTER_MAX_WORKERS)
		t = PORTER_MAX_WORKERS;
	if (t == m.cur.target) {
		log_notice("workers: staying at %d", t);
		return;
	}
	m.cur.target = t;
	log_notice("workers: %d", t);
	master_fill();
	master_trim();
}

/* TTIN/TTOU. During a reload they wait for it: which generation will serve? */
static void
master_resize(int d)
{
	if (m.state == MS_STOPPING)
		return;
	if (m.state == MS_RELOADING) {
		m.resize += d;
		log_notice("workers %+d: applied when the reload is over", d);
		return;
	}
	master_resize_apply(d);
}

static void
master_resize_pending(void)
{
	int d = m.resize;

	m.resize = 0;
	if (d != 0)
		master_resize_apply(d);
}

/* ---- reload ------------------------------------------------------------ */

/* Move the pid file and the control socket when a reload changed pid_file. */
static void
master_set_pid_file(const char *path)
{
	if (path == NULL ? m.pid_file == NULL :
	    m.pid_file != NULL && strcmp(path, m.pid_file) == 0)
		return;
	ctl_close();
	if (m.pid_file != NULL)
		unlink(m.pid_file);
	free(m.pid_file);
	m.pid_file = path != NULL ? xstrdup(path) : NULL;
	master_write_pid();
	if (m.pid_file != NULL)
		ctl_open(m.loop, m.pid_file);
}

/*
 * A switch is over when no worker of an older generation can accept:
 * each has closed its listeners ('D') or is gone. Only then may
 * `porter -s reload` hear that the new configuration serves; an old
 * worker that has not yet read its 'Q' would otherwise take, with the
 * old configuration, a connection made after that answer. The 'Q' wakes
 * it at once, so this takes one turn of its loop.
 */
static void
master_check_switched(void)
{
	int i;

	if (!m.reload_wait)
		return;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen != m.cur.id &&
		    m.w[i].listening)
			return;
	m.reload_wait = 0;
	master_reload_done(1, "configuration reloaded");
}

static void
master_check_switch(void)
{
	char err[512];
	int i, ready = 0;

	if (m.state != MS_RELOADING)
		return;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state == MW_READY && m.w[i].gen == m.next.id)
			ready++;
	if (ready < m.next.target)
		return;

	/*
	 * Every new worker is ready: they start and the old ones stop in
	 * one go. Connections that arrive between the two wait in the
	 * shared listen queues, which the master keeps open.
	 */
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state == MW_READY && m.w[i].gen == m.next.id) {
			m.w[i].listening = 1;
			master_send(&m.w[i], 'G', -1);
		}
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen != m.next.id)
			master_drain_worker(&m.w[i]);
	/*
	 * Our copies of removed addresses go; each old worker closes its
	 * own after a last accept, and the last close ends the socket.
	 */
	gen_close_listeners(&m.cur, &m.next);
	if (m.next.error_fd != -1) {
		if (log_open(m.next.conf->error_log, err, sizeof(err)) == -1)
			log_errx("error log: %s", err);
		if (m.next.error_fd > STDERR_FILENO)
			close(m.next.error_fd);
		m.next.error_fd = -1;
	}
	master_set_pid_file(m.next.conf->pid_file);
	/* Nothing in the master points into the old conf any more. */
	gen_free(&m.cur);
	m.cur = m.next;
	gen_clear(&m.next);
	m.state = MS_RUNNING;
	m.fail_streak = 0;
	m.next_spawn = 0;
	m.ever_ready = 1;
	log_notice("reloaded: generation %u serving with %d workers (%llu ms)",
	    m.cur.id, m.cur.target,
	    (unsigned long long)(ev_clock_ms() - m.reload_start));
	master_resize_pending();
	m.reload_wait = 1;
	master_check_switched();
}

/*
 * Undo a reload in progress. New workers may already have taken
 * connections, so they drain like any old worker: no reset for anyone.
 */
static void
master_reload_cancel(void)
{
	int i;

	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && m.w[i].gen == m.next.id)
			master_drain_worker(&m.w[i]);
	gen_close_listeners(&m.next, &m.cur);
	gen_free(&m.next);
	m.state = MS_RUNNING;
}

static void
master_reload_fail(const char *why)
{
	master_reload_cancel();
	log_errx("reload failed: %s; still serving the previous configuration",
	    why);
	master_resize_pending();
	master_reload_done(0, why);
}

static void
master_reload(void)
{
	char err[1024];
	struct conf *conf;
	size_t i;

	if (m.state == MS_STOPPING)
		return;
	if (m.state == MS_RELOADING || m.reload_wait) {
		/* The file may have changed again since this reload read it. */
		m.reload_again = 1;
		log_info("reload asked for during a reload: it follows");
		return;
	}
	m.reload_seq++;
	m.reload_start = ev_clock_ms();
	systemd_reloading();
	log_notice("reloading %s", m.conf_path);
	if ((conf = conf_load(m.conf_path, err, sizeof(err))) == NULL)
		goto fail;
	gen_clear(&m.next);
	m.next.conf = conf;
	m.next.id = ++m.gen_seq;
	m.next.target = conf->workers;
	if (gen_user(&m.next, err, sizeof(err)) == -1 ||
	    gen_open_access(&m.next, err, sizeof(err)) == -1 ||
	    gen_open_error(&m.next, m.cur.conf, err, sizeof(err)) == -1 ||
	    gen_listen(&m.next, &m.cur, m.sd_fds, m.sd_nfds, err, sizeof(err)) == -1) {
		gen_close_listeners(&m.next, &m.cur);
		gen_free(&m.next);
		goto fail;
	}
	if (mime_load("/etc/mime.types", err, sizeof(err)) == -1)
		log_debug("%s", err);
	for (i = 0; i < m.next.nls; i++)
		if (!m.next.ls[i].keep)
			log_info("listening on %s", m.next.ls[i].text);
	m.state = MS_RELOADING;
	master_fill();
	return;
fail:
	log_errx("reload failed: %s; still serving the previous configuration",
	    err);
	master_reload_done(0, err);
}

static void
master_reload_done(int ok, const char *msg)
{
	snprintf(m.reload_msg, sizeof(m.reload_msg), "%s", msg);
	/*
	 * systemd waits for READY=1 after RELOADING=1, success or not. It
	 * goes first: once `porter -s reload` (ExecReload=) returns, systemd
	 * must already know the reload is over.
	 */
	m.ready_sent = 1;
	systemd_ready(NULL);
	master_update_status();
	ctl_answer(ok, msg, m.reload_seq);
	if (m.reload_again && m.state == MS_RUNNING) {
		m.reload_again = 0;
		master_reload();
	}
}

/* ---- workers coming and going ------------------------------------------- */

static void
master_stop(int fast);

static void
master_worker_exited(struct mworker *w, int status)
{
	uint64_t now = ev_clock_ms(), d;
	int expected = w->state == MW_DRAINING || m.state == MS_STOPPING;
	char how[64], why[128];

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

	if (expected) {
		log_debug("worker %d %s", (int)w->pid, how);
		master_fill();
		return;
	}
	if (m.state == MS_RELOADING && w->gen == m.next.id) {
		snprintf(why, sizeof(why), "new worker %d %s", (int)w->pid, how);
		master_reload_fail(why);
		return;
	}
	if (w->gen != m.cur.id) {
		log_warnx("worker %d %s", (int)w->pid, how);
		return;
	}
	if (!m.ever_ready && WIFEXITED(status) &&
	    WEXITSTATUS(status) == EXIT_CONFIG) {
		/* It said why; retrying cannot help, nor can systemd's. */
		log_critx("worker %d %s before serving: configuration error, "
		    "stopping", (int)w->pid, how);
		m.exit_code = EXIT_CONFIG;
		master_stop(1);
		return;
	}
	if (now - w->started < MASTER_YOUNG_MS) {
		if (m.fail_streak++ == 0)
			m.streak_since = w->started;
	} else
		m.fail_streak = 0;
	d = master_backoff();
	if (d > 0)
		log_warnx("worker %d %s; workers keep dying young, next start "
		    "in %llu ms", (int)w->pid, how, (unsigned long long)d);
	else
		log_warnx("worker %d %s; replacing it", (int)w->pid, how);
	m.next_spawn = now + d;
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
	master_check_switched();
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
	int i, ready;

	/* Reaped earlier in this batch: the event is stale. */
	if (w->state == MW_FREE || w->chan == -1)
		return;
	while ((n = recv(w->chan, &cmd, 1, 0)) == 1) {
		switch (cmd) {
		case 'R':
			if (w->state == MW_STARTING)
				w->state = MW_READY;
			if (w->gen == m.cur.id)
				m.ever_ready = 1;
			break;
		case 'D':
			w->listening = 0;
			break;
		case 'X':
			/* max_requests: the successor starts now, not after. */
			log_info("worker %d reached max_requests; replacing it",
			    (int)w->pid);
			w->recycled = 1;
			if (w->state != MW_DRAINING) {
				w->state = MW_DRAINING;
				w->drain_start = ev_clock_ms();
			}
			master_fill();
			break;
		}
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR)) {
		/* The worker is gone or going; SIGCHLD does the rest. */
		ev_del(loop, &w->io);
		close(w->chan);
		w->chan = -1;
	}
	if (!m.ready_sent && m.state == MS_RUNNING) {
		for (i = 0, ready = 0; i < MASTER_SLOTS; i++)
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
	master_check_switched();
}

/* ---- stopping and logs --------------------------------------------------- */

static void
master_kill_all(struct ev_loop *loop, void *arg)
{
	int i;

	m.stop_timer = 0;
	for (i = 0; i < MASTER_SLOTS; i++)
		if (m.w[i].state != MW_FREE && !m.w[i].killed) {
			log_warnx("worker %d still running; killing it",
			    (int)m.w[i].pid);
			master_kill(&m.w[i]);
		}
}

static void
master_stop(int fast)
{
	int i;

	if (m.state == MS_STOPPING && (m.fast || !fast))
		return;
	if (m.state != MS_STOPPING) {
		m.reload_again = 0;
		/* Its waiters hear "stopping" below, with the rest. */
		m.reload_wait = 0;
		if (m.state == MS_RELOADING) {
			master_reload_cancel();
			log_warnx("reload abandoned: stopping");
		}
		ctl_answer(0, "stopping", UINT32_MAX);
		systemd_stopping();
		m.state = MS_STOPPING;
		/* Refuse new connections rather than queue them for nobody. */
		gen_close_listeners(&m.cur, NULL);
	}
	log_notice("%s stop", fast ? "fast" : "graceful");
	m.fast = fast;
	for (i = 0; i < MASTER_SLOTS; i++) {
		if (m.w[i].state == MW_FREE)
			continue;
		if (fast) {
			if (!m.w[i].killed)
				kill(m.w[i].pid, SIGTERM);
		} else
			master_drain_worker(&m.w[i]);
	}
	if (m.stop_timer)
		ev_timer_del(m.loop, m.stop_timer);
	m.stop_timer = ev_timer_add(m.loop, fast ? MASTER_FAST_STOP_MS :
	    (uint64_t)m.cur.conf->shutdown_timeout * 1000, master_kill_all, NULL);
	if (master_alive() == 0)
		ev_stop(m.loop);
}

/* Open path again in place of *fdp; the old fd is closed. */
static int
master_reopen_fd(int *fdp, const char *path)
{
	int fd;

	if ((fd = gen_open_log(path)) == -1) {
		log_err("reopening %s", path);
		return -1;
	}
	if (*fdp > STDERR_FILENO)
		close(*fdp);
	*fdp = fd;
	return 0;
}

/*
 * USR1, after logrotate renamed the files. The workers gave up the
 * privileges to open them, so they get the new descriptors from us;
 * each flushes what it buffered into the old file before it switches,
 * so no line is lost.
 */
static void
master_reopen_logs(void)
{
	struct generation *g;
	struct mworker *w;
	char err[512];
	int i, efd;

	if (log_reopen(err, sizeof(err)) == -1)
		log_errx("reopening the error log: %s", err);
	if (m.cur.access_fd != -1 && !m.cur.access_stderr)
		master_reopen_fd(&m.cur.access_fd, m.cur.conf->access_log);
	if (m.state == MS_RELOADING) {
		if (m.next.access_fd != -1 && !m.next.access_stderr)
			master_reopen_fd(&m.next.access_fd,
			    m.next.conf->access_log);
		if (m.next.error_fd > STDERR_FILENO)
			master_reopen_fd(&m.next.error_fd,
			    m.next.conf->error_log);
	}
	for (i = 0; i < MASTER_SLOTS; i++) {
		w = &m.w[i];
		if (w->state == MW_FREE)
			continue;
		g = m.state == MS_RELOADING && w->gen == m.next.id ?
		    &m.next : &m.cur;
		efd = g->error_fd != -1 ? g->error_fd : log_get_fd();
		if (efd > STDERR_FILENO)
			master_send(w, 'E', efd);
		if (g->access_fd != -1 && !g->access_stderr)
			master_send(w, 'L', g->access_fd);
	}
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
			master_resize(1);
			break;
		case SIGTTOU:
			master_resize(-1);
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
	uint64_t hb;
	struct mworker *w;
	int i, fresh = 1;

	for (i = 0; i < MASTER_SLOTS; i++) {
		w = &m.w[i];
		if (w->state == MW_FREE || w->killed)
			continue;
		/* A child that has not run yet has not written its heartbeat. */
		hb = m.sb[i].heartbeat > w->started ? m.sb[i].heartbeat :
		    w->started;
		if (hang && now > hb + hang) {
			log_errx("worker %d unresponsive for %llu s; killing it",
			    (int)w->pid, (unsigned long long)(now - hb) / 1000);
			master_kill(w);
			fresh = 0;
			continue;
		}
		if (w->state == MW_DRAINING && m.state != MS_STOPPING &&
		    now > w->drain_start + drain) {
			log_warnx("worker %d still draining after %d s; killing it",
			    (int)w->pid, m.cur.conf->shutdown_timeout);
			master_kill(w);
			continue;
		}
		/* A replacement that lives ends a crash streak. */
		if (w->state == MW_READY && w->gen == m.cur.id && !w->proven &&
		    now - w->started >= MASTER_YOUNG_MS) {
			w->proven = 1;
			if (m.fail_streak > 0 && w->started >= m.streak_since)
				m.fail_streak = 0;
		}
	}
	if (m.state == MS_RELOADING &&
	    now > m.reload_start + MASTER_READY_TIMEOUT_MS)
		master_reload_fail("new workers did not become ready within "
		    "15 s");
	if (m.watchdog_ms && fresh && m.ready_sent)
		systemd_watchdog_ping();
	master_update_status();
	ev_timer_add(loop, m.tick_ms, master_tick, NULL);
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

/* ---- control socket requests (ctl.c) ----------------------------------- */

/*
 * `porter -s reload`: *want gets the number of the reload whose end
 * answers the client, before that reload starts, since one that fails
 * at once answers right away. -1 when stopping.
 */
int
master_ctl_reload(uint32_t *want)
{
	if (m.state == MS_STOPPING)
		return -1;
	/* The next reload to start reads the file as it is now. */
	*want = m.reload_seq + 1;
	master_reload();
	return 0;
}

void
master_ctl_status(char *buf, size_t len)
{
	snprintf(buf, len, "ok pid %d generation %u workers %d\n",
	    (int)getpid(), m.cur.id, master_count(m.cur.id, 0));
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
	m.sig_fd = -1;
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
	if (m.sd_nfds < 0)
		m.sd_nfds = 0;
	m.cur.conf = conf;
	m.cur.id = ++m.gen_seq;
	m.cur.target = conf->workers;
	if (gen_user(&m.cur, err, sizeof(err)) == -1)
		fatalx(EXIT_CONFIG, "%s", err);
	if (gen_listen(&m.cur, NULL, m.sd_fds, m.sd_nfds, err, sizeof(err)) == -1)
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
	if (m.pid_file != NULL)
		ctl_open(m.loop, m.pid_file);
	m.watchdog_ms = systemd_watchdog_usec() / 1000;
	/* Ping at half the watchdog interval at least. */
	m.tick_ms = MASTER_TICK_MS;
	if (m.watchdog_ms > 0 && m.watchdog_ms / 2 < m.tick_ms)
		m.tick_ms = m.watchdog_ms / 2 > 10 ? m.watchdog_ms / 2 : 10;
	if (m.watchdog_ms > 0)
		log_info("systemd watchdog: %llu ms, pinging every %llu ms "
		    "while every worker is alive",
		    (unsigned long long)m.watchdog_ms,
		    (unsigned long long)m.tick_ms);

	master_fill();
	ev_timer_add(m.loop, m.tick_ms, master_tick, NULL);
	log_notice("porter %s started, %d workers", PACKAGE_VERSION,
	    m.cur.target);

	if (ev_run(m.loop) == -1) {
		log_crit("epoll_wait");
		m.exit_code = EXIT_TEMP;
	}

	if (m.pid_file != NULL)
		unlink(m.pid_file);
	ctl_close();
	log_notice("stopped");
	return m.exit_code;
}
