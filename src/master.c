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
 *              next's workers say CHAN_READY when they could accept, but
 *              wait. When every one of them has, they are told CHAN_GO
 *              (accept) and cur's workers CHAN_QUIT (drain), the listeners
 *              only cur had are closed, next becomes cur: RUNNING. The
 *              reload is over (the answer below, READY=1) only once every
 *              older worker has said CHAN_DRAINED or exited: until then one
 *              that has not read its CHAN_QUIT yet may still accept, with
 *              the old configuration, a connection made after the answer.
 *              A hung one is bounded by worker_timeout and
 *              shutdown_timeout, which kill it. Anything failing on
 *              the way (the file, a bind, a next worker dying, not all
 *              ready within 15 s) drains what was started of next, which
 *              has served nobody, and changes nothing else. Either way
 *              a waiting `porter -s reload` gets "ok ..." or "error
 *              MESSAGE". A HUP or reload request now
 *              starts another reload once this one ends; TTIN and TTOU
 *              now are applied then, to whichever generation serves.
 *      | TERM/QUIT (graceful) or INT/second TERM (fast), from any state
 *      | (graceful with health.shutdown_delay D > 0: first D seconds of
 *      | draining with the listeners open: /health fails, responses say
 *      | Connection: close, systemd hears STOPPING with the stop timeout
 *      | extended; reloads are refused; a second TERM or QUIT ends the
 *      | delay at once, INT stops fast)
 *      v
 *   STOPPING   a reload in progress is abandoned and its waiters told so.
 *              The master closes its listening sockets, so new
 *              connections are refused once the workers have closed
 *              theirs. Graceful: every worker gets CHAN_QUIT and finishes
 *              what it has; fast: every worker gets SIGTERM. shutdown_timeout
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
 * The workers themselves (slots, fork, channels, reaping, crash backoff)
 * are proc.c's; the master tells them CHAN_GO and CHAN_QUIT and hears
 * CHAN_READY, CHAN_RECYCLE and CHAN_DRAINED (porter.h); proc.c keeps,
 * per worker, whether it may still accept, which a reload's answer
 * waits on. The counters come from the scoreboard (scoreboard.c), whose
 * totals never go backwards, so neither does the request count in
 * systemd's STATUS line or `porter -s status`.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "metrics.h"
#include "climit.h"
#include "shm.h"
#include "tls.h"

#define MASTER_TICK_MS		1000
#define MASTER_READY_TIMEOUT_MS	15000	/* a new generation must be up by then */
#define MASTER_FAST_STOP_MS	5000

enum { MS_RUNNING, MS_RELOADING, MS_STOPPING };

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
	int		 reload_ok;
	time_t		 reload_time;	/* when it ended (wall clock), 0: none yet */
	time_t		 start_time;
	uint64_t	 start_ms;	/* ev_clock_ms() at start */
	uint64_t	 cur_hash;	/* cur's config file, metrics_hash_file() */
	uint64_t	 next_hash;
	long		 spawn_timer;
	uint64_t	 spawn_at;
	long		 stop_timer;
	long		 delay_timer;	/* health.shutdown_delay running, 0 */
	int		 drain_asked;	/* `porter -s drain` is in force */
	int		 ever_ready;	/* a worker of cur has said CHAN_READY */
	int		 ready_sent;
	char		*pid_file;
	int		*sd_fds;	/* sockets systemd passed */
	int		 sd_nfds;
	uint64_t	 watchdog_ms;
	uint64_t	 tick_ms;
	/*
	 * Session ticket keys: a shared page made before the first fork,
	 * written only here (rotated on our tick), read by every worker of
	 * every generation, so a session resumes on any of them, across
	 * reloads. Never on disk.
	 */
	struct tls_ticket_keys *tickets;
} m;

static void	 master_fill(void);
static void	 master_tickets(const struct conf *conf);
static void	 master_reload(void);
static void	 master_reload_done(int ok, const char *msg);
static void	 master_update_status(void);
static void	 master_write_pid(void);
static uint64_t	 master_conf_hash(void);
static const struct ctl_handlers master_ctl;

/* ---- workers ----------------------------------------------------------- */

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

/*
 * Bring the serving generation, and a starting one, up to their targets.
 * Only cur's starts wait for the crash backoff: a crash in next ends
 * the reload instead.
 */
static void
master_fill(void)
{
	uint64_t after, a2;

	if (m.state == MS_STOPPING || m.cur.conf == NULL)
		return;
	/* cur's workers keep nothing of next: it may yet be abandoned. */
	after = proc_fill(&m.cur, &m.next, 0, 1);
	/* A reload's workers wait for the switch: all of next or none serves. */
	if (m.state == MS_RELOADING) {
		a2 = proc_fill(&m.next, &m.cur, 1, 0);
		if (a2 != 0 && (after == 0 || a2 < after))
			after = a2;
	}
	if (after != 0)
		master_spawn_later(after);
}

/* Too many workers (TTOU): retire the youngest extra ones gracefully. */
static void
master_trim(void)
{
	struct proc *w, *young;

	while (proc_count(m.cur.id, 0) > m.cur.target) {
		young = NULL;
		for (w = proc_next(NULL); w != NULL; w = proc_next(w)) {
			if (w->state == PW_DRAINING || w->gen != m.cur.id ||
			    w->recycled)
				continue;
			if (young == NULL || w->started > young->started)
				young = w;
		}
		if (young == NULL)
			return;
		proc_drain(young);
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
		ctl_open(m.loop, m.pid_file, &master_ctl);
}

/*
 * A switch is over when no worker of an older generation can accept:
 * each has closed its listeners (CHAN_DRAINED) or is gone. Only then may
 * `porter -s reload` hear that the new configuration serves; an old
 * worker that has not yet read its CHAN_QUIT would otherwise take, with
 * the old configuration, a connection made after that answer. The
 * CHAN_QUIT wakes it at once, so this takes one turn of its loop.
 */
static void
master_check_switched(void)
{
	if (!m.reload_wait || proc_count_listening_besides(m.cur.id) > 0)
		return;
	m.reload_wait = 0;
	master_reload_done(1, "configuration reloaded");
}

static void
master_check_switch(void)
{
	struct proc *w;
	char err[512];

	if (m.state != MS_RELOADING)
		return;
	if (proc_count_ready(m.next.id) < m.next.target)
		return;

	/*
	 * Every new worker is ready: they start and the old ones stop in
	 * one go. Connections that arrive between the two wait in the
	 * shared listen queues, which the master keeps open.
	 */
	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->state == PW_READY && w->gen == m.next.id)
			proc_go(w);
	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->gen != m.next.id)
			proc_drain(w);
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
	m.cur_hash = m.next_hash;
	gen_clear(&m.next);
	m.state = MS_RUNNING;
	proc_backoff_reset();
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
	struct proc *w;

	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->gen == m.next.id)
			proc_drain(w);
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

/*
 * porter_config_info's hash of the file just loaded. It reads the file a
 * second time (conf.c hands libconfig the path): a file replaced in
 * between shows the newer hash, which the next reload loads anyway.
 */
static uint64_t
master_conf_hash(void)
{
	uint64_t h;

	if (metrics_hash_file(m.conf_path, &h) == -1) {
		log_warn("%s: no config hash for the metrics", m.conf_path);
		return 0;
	}
	return h;
}

static void
master_reload(void)
{
	char err[1024], note[160];
	struct conf *conf;
	size_t i;

	if (m.state == MS_STOPPING || m.delay_timer)
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
	/* Before next's workers fork: they must inherit the tables. */
	if (climit_master_conf(conf, note, sizeof(note), err,
	    sizeof(err)) == -1) {
		conf_free(conf);
		goto fail;
	}
	if (note[0] != '\0')
		log_warnx("reload:%s", note);
	m.next_hash = master_conf_hash();
	gen_clear(&m.next);
	m.next.conf = conf;
	m.next.id = ++m.gen_seq;
	m.next.target = conf->workers;
	master_tickets(conf);
	/* Every certificate and key read again, checked, before any switch. */
	if (gen_tls(&m.next, &m.cur, m.tickets, err, sizeof(err)) == -1 ||
	    gen_user(&m.next, err, sizeof(err)) == -1 ||
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
			log_info("listening on %s (%s%s%s)", m.next.ls[i].text,
			    gen_listener_kind(&m.next.ls[i]),
			    m.next.ls[i].tls ? " over TLS" : "",
			    m.next.ls[i].proxy != NULL ? ", PROXY protocol" : "");
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
	m.reload_ok = ok;
	m.reload_time = time(NULL);
	sb_master_reload(ok, (uint64_t)m.reload_time, m.cur.id, m.cur_hash);
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

/*
 * Why w went, for porter_worker_exits_total: a signal the master did not
 * send is a crash even while draining; a drain cut short by SIGKILL
 * still counts as drained.
 */
static int
master_exit_reason(const struct proc *w, int expected, int status)
{
	if (w->hung)
		return SB_EXIT_HANG;
	if (WIFSIGNALED(status) && !w->killed && WTERMSIG(status) != SIGTERM)
		return SB_EXIT_CRASH;
	if (w->recycled)
		return SB_EXIT_MAX_REQUESTS;
	return expected ? SB_EXIT_DRAINED : SB_EXIT_CRASH;
}

/* proc.c reaped w: was that expected, a failed reload, or a crash? */
static void
master_worker_exited(struct proc *w, int state, int status)
{
	int expected = state == PW_DRAINING || m.state == MS_STOPPING;
	char how[64], why[128];
	uint64_t d;

	/* Its table locks and counted connections, before the next fork. */
	climit_master_reaped(w->pid, w->slot);
	sb_master_exit(master_exit_reason(w, expected, status));
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));

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
	d = proc_crashed(w);
	if (d > 0)
		log_warnx("worker %d %s; workers keep dying young, next start "
		    "in %llu ms", (int)w->pid, how, (unsigned long long)d);
	else
		log_warnx("worker %d %s; replacing it", (int)w->pid, how);
	master_fill();
}

static void
master_reap(void)
{
	proc_reap();
	/* A reaped old worker accepts nothing more either. */
	master_check_switched();
	if (m.state == MS_STOPPING && proc_alive() == 0)
		ev_stop(m.loop);
	master_update_status();
}

static void
master_message(struct proc *w, int msg)
{
	int ready;

	switch (msg) {
	case CHAN_READY:
		if (w->gen == m.cur.id)
			m.ever_ready = 1;
		break;
	case CHAN_RECYCLE:
		/* max_requests: the successor starts now, not after. */
		log_info("worker %d reached max_requests; replacing it",
		    (int)w->pid);
		master_fill();
		break;
	case CHAN_DRAINED:
		/* proc.c noted it; master_check_switched() below may end a reload. */
		break;
	}
	if (!m.ready_sent && m.state == MS_RUNNING) {
		ready = proc_count_ready(m.cur.id);
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
	struct proc *w;

	m.stop_timer = 0;
	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (!w->killed) {
			log_warnx("worker %d still running; killing it",
			    (int)w->pid);
			proc_kill(w);
		}
}

static void
master_stop(int fast)
{
	struct proc *w;

	if (m.state == MS_STOPPING && (m.fast || !fast))
		return;
	if (m.delay_timer) {
		ev_timer_del(m.loop, m.delay_timer);
		m.delay_timer = 0;
	}
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
		sb_master_draining(1);
		/* Refuse new connections rather than queue them for nobody. */
		gen_close_listeners(&m.cur, NULL);
	}
	log_notice("%s stop", fast ? "fast" : "graceful");
	m.fast = fast;
	for (w = proc_next(NULL); w != NULL; w = proc_next(w)) {
		if (fast) {
			if (!w->killed)
				kill(w->pid, SIGTERM);
		} else
			proc_drain(w);
	}
	if (m.stop_timer)
		ev_timer_del(m.loop, m.stop_timer);
	m.stop_timer = ev_timer_add(m.loop, fast ? MASTER_FAST_STOP_MS :
	    (uint64_t)m.cur.conf->shutdown_timeout * 1000, master_kill_all, NULL);
	if (proc_alive() == 0)
		ev_stop(m.loop);
}

static void
master_delay_over(struct ev_loop *loop, void *arg)
{
	m.delay_timer = 0;
	log_notice("shutdown delay over");
	master_stop(0);
}

/*
 * A graceful stop: with health.shutdown_delay, first drain with the
 * listeners open, so load balancers see /health fail and move clients
 * away before anything is refused. A TERM during the delay ends it.
 */
static void
master_stop_graceful(void)
{
	int delay = m.cur.conf->health.shutdown_delay;

	if (m.state == MS_STOPPING || m.delay_timer || delay == 0) {
		master_stop(m.state == MS_STOPPING);
		return;
	}
	sb_master_draining(1);
	systemd_stopping_extend(((uint64_t)delay +
	    (uint64_t)m.cur.conf->shutdown_timeout + 5) * 1000000);
	m.delay_timer = ev_timer_add(m.loop, (uint64_t)delay * 1000,
	    master_delay_over, NULL);
	if (m.delay_timer == -1) {
		m.delay_timer = 0;
		master_stop(0);
		return;
	}
	log_notice("draining for %d s before stopping (health.shutdown_delay)",
	    delay);
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
	struct proc *w;
	char err[512];
	int efd;

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
	for (w = proc_next(NULL); w != NULL; w = proc_next(w)) {
		g = m.state == MS_RELOADING && w->gen == m.next.id ?
		    &m.next : &m.cur;
		efd = g->error_fd != -1 ? g->error_fd : log_get_fd();
		if (efd > STDERR_FILENO)
			proc_send(w, CHAN_ERROR_LOG, efd);
		if (g->access_fd != -1 && !g->access_stderr)
			proc_send(w, CHAN_ACCESS_LOG, g->access_fd);
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
			master_stop_graceful();
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
	struct proc *w;
	int fresh = 1;

	for (w = proc_next(NULL); w != NULL; w = proc_next(w)) {
		if (w->killed)
			continue;
		hb = proc_heartbeat(w);
		if (hang && now > hb + hang) {
			log_errx("worker %d unresponsive for %llu s; killing it",
			    (int)w->pid, (unsigned long long)(now - hb) / 1000);
			proc_kill(w);
			w->hung = 1;
			fresh = 0;
			continue;
		}
		if (w->state == PW_DRAINING && m.state != MS_STOPPING &&
		    now > w->drain_start + drain) {
			log_warnx("worker %d still draining after %d s; killing it",
			    (int)w->pid, m.cur.conf->shutdown_timeout);
			proc_kill(w);
			continue;
		}
		proc_check_proven(w, m.cur.id);
	}
	if (m.tickets != NULL && tls_ticket_rotate(m.tickets, tls_clock()) == -1)
		log_warnx("session tickets: no fresh key (random generator); "
		    "the current one stays");
	if (m.state == MS_RELOADING &&
	    now > m.reload_start + MASTER_READY_TIMEOUT_MS)
		master_reload_fail("new workers did not become ready within "
		    "15 s");
	if (m.watchdog_ms && fresh && m.ready_sent)
		systemd_watchdog_ping();
	/*
	 * The client tables lock: a worker that died holding a lock must
	 * be reaped (and its locks released) first, or this would spin.
	 */
	master_reap();
	climit_master_tick();
	master_update_status();
	ev_timer_add(loop, m.tick_ms, master_tick, NULL);
}

/*
 * systemd's STATUS line. The request count is the scoreboard's total,
 * which folds in every worker that is gone: it never goes backwards.
 */
static void
master_update_status(void)
{
	struct sb_totals t;

	if (sb_read_totals(&t) == -1)
		return;
	systemd_status("%d workers, generation %u, %llu requests%s%s",
	    proc_count(m.cur.id, 0), m.cur.id, (unsigned long long)t.requests,
	    m.reload_msg[0] ? "; last reload: " : "", m.reload_msg);
}

/*
 * The ticket key ring, for a configuration that has TLS listeners: made
 * once (the page must exist before the first fork, so the first
 * configuration makes it even without TLS), filled on first use, and
 * started afresh only when ticket_lifetime changes, since the ring's
 * schedule depends on it.
 */
static void
master_tickets(const struct conf *conf)
{
	int64_t life = conf->tls.ticket_lifetime;

	if (m.tickets == NULL)
		return;
	if (m.tickets->lifetime == life)
		return;
	if (tls_ticket_init(m.tickets, life, tls_clock()) == -1)
		log_warnx("session tickets: no key (random generator)");
}

/* ---- control socket requests (ctl.c) ----------------------------------- */

/*
 * `porter -s reload`: *want gets the number of the reload whose end
 * answers the client, before that reload starts, since one that fails
 * at once answers right away. -1 when stopping.
 */
static int
master_ctl_reload(uint32_t *want)
{
	if (m.state == MS_STOPPING || m.delay_timer)
		return -1;
	/* The next reload to start reads the file as it is now. */
	*want = m.reload_seq + 1;
	master_reload();
	return 0;
}

/*
 * `porter -s drain` / `undrain`: the flag in the scoreboard every worker
 * reads. Refused while stopping (or in its delay): that drain is final.
 */
static int
master_ctl_drain(int on)
{
	if (m.state == MS_STOPPING || m.delay_timer)
		return -1;
	if (on != m.drain_asked)
		log_notice("%s by request", on ? "draining" : "drain ended");
	m.drain_asked = on;
	sb_master_draining(on);
	return 0;
}

static int
master_count_state(int state)
{
	struct proc *w;
	int n = 0;

	for (w = proc_next(NULL); w != NULL; w = proc_next(w))
		if (w->state == state)
			n++;
	return n;
}

static const char *
master_state_name(void)
{
	/* Until its answer: old workers may still accept (reload_wait). */
	if (m.reload_wait)
		return "reloading";
	switch (m.state) {
	case MS_RELOADING:
		return "reloading";
	case MS_STOPPING:
		return "stopping";
	}
	if (m.delay_timer)
		return "stopping";
	return m.drain_asked ? "draining" : "running";
}

/*
 * `porter -s status`: one "key: value" a line, for people and grep. The
 * totals are the scoreboard's (monotonic); a worker's own counts start
 * at zero with it.
 */
static char *
master_ctl_status(void)
{
	static const char *cls[SB_NCLASS] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	static const char *exits[SB_NEXIT] = {
		"crash", "hang", "max_requests", "drained"
	};
	const struct sb_slot *s;
	struct sb_totals t;
	struct proc *w;
	uint64_t now = ev_clock_ms();
	char when[64], *buf = NULL;
	size_t len = 0;
	struct tm tm;
	FILE *f;
	int k;

	if (sb_read_totals(&t) == -1 ||
	    (f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(f, "pid: %d\n", (int)getpid());
	fprintf(f, "version: %s\n", PACKAGE_VERSION);
	fprintf(f, "state: %s\n", master_state_name());
	fprintf(f, "draining: %s\n", t.m.draining ? "yes" : "no");
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime_r(&m.start_time, &tm));
	fprintf(f, "started: %s\n", when);
	fprintf(f, "uptime_s: %llu\n",
	    (unsigned long long)(now - m.start_ms) / 1000);
	fprintf(f, "generation: %u\n", m.cur.id);
	fprintf(f, "reloads: %u\n", m.reload_seq);
	fprintf(f, "reloads_ok: %llu\n",
	    (unsigned long long)t.m.reloads[SB_RELOAD_SUCCESS]);
	fprintf(f, "reloads_failed: %llu\n",
	    (unsigned long long)t.m.reloads[SB_RELOAD_FAILURE]);
	fprintf(f, "config_hash: %016llx\n",
	    (unsigned long long)t.m.config_hash);
	if (m.reload_time != 0) {
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
		    gmtime_r(&m.reload_time, &tm));
		fprintf(f, "last_reload: %s\n", m.reload_ok ? "ok" : "failed");
		fprintf(f, "last_reload_time: %s\n", when);
		fprintf(f, "last_reload_message: %s\n", m.reload_msg);
	} else
		fprintf(f, "last_reload: none\n");
	fprintf(f, "workers_target: %d\n", m.cur.target);
	fprintf(f, "workers_starting: %d\n", master_count_state(PW_STARTING));
	fprintf(f, "workers_ready: %d\n", master_count_state(PW_READY));
	fprintf(f, "workers_draining: %d\n", master_count_state(PW_DRAINING));
	for (k = 0; k < SB_NEXIT; k++)
		fprintf(f, "worker_exits_%s: %llu\n", exits[k],
		    (unsigned long long)t.m.exits[k]);
	for (w = proc_next(NULL); w != NULL; w = proc_next(w)) {
		s = sb_slot(w->slot);
		fprintf(f, "worker: pid=%d generation=%u state=%s "
		    "heartbeat_ms=%llu connections=%u requests=%llu "
		    "accepted=%llu bytes=%llu\n", (int)w->pid, w->gen,
		    proc_state_name(w),
		    (unsigned long long)(now - proc_heartbeat(w)),
		    __atomic_load_n(&s->open, __ATOMIC_RELAXED),
		    (unsigned long long)sb_slot_requests(s),
		    (unsigned long long)SB_LOAD(s->c.accepted),
		    (unsigned long long)SB_LOAD(s->c.bytes));
	}
	fprintf(f, "connections_open: %llu\n", (unsigned long long)t.open);
	fprintf(f, "connections_accepted: %llu\n",
	    (unsigned long long)t.c.accepted);
	fprintf(f, "requests: %llu\n", (unsigned long long)t.requests);
	for (k = 0; k < SB_NCLASS; k++)
		fprintf(f, "requests_%s: %llu\n", cls[k],
		    (unsigned long long)t.c.status[k]);
	fprintf(f, "bytes_sent: %llu\n", (unsigned long long)t.c.bytes);
	climit_status(f);
	fprintf(f, "requests_http2: %llu\n",
	    (unsigned long long)t.c.h2_requests);
	fprintf(f, "http2_connections_open: %llu\n",
	    (unsigned long long)t.h2_open);
	fprintf(f, "http2_streams_open: %llu\n",
	    (unsigned long long)t.h2_streams);
	fprintf(f, "http2_connections: %llu\n",
	    (unsigned long long)t.c.h2_conns);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* porter -s bans, ban, ...: reaped first, for the same reason as the tick. */
static char *
master_ctl_command(const char *line)
{
	master_reap();
	return climit_ctl(line);
}

static const struct ctl_handlers master_ctl = {
	.reload = master_ctl_reload,
	.status = master_ctl_status,
	.drain = master_ctl_drain,
	.command = master_ctl_command,
};

/* ---- proc.c's news --------------------------------------------------------- */

/* In a new worker: the master's own descriptors go. */
static void
master_child(void)
{
	int k;

	for (k = 0; k < m.sd_nfds; k++)
		if (m.sd_fds[k] != -1)
			close(m.sd_fds[k]);
	ctl_close_fds();
	close(m.sig_fd);
	ev_free(m.loop);
}

static const struct proc_ops master_proc_ops = {
	.message = master_message,
	.exited = master_worker_exited,
	.child = master_child,
};

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
	m.start_time = time(NULL);
	m.start_ms = ev_clock_ms();
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
	ev_add(m.loop, &m.sig_io, m.sig_fd, EPOLLIN, master_signal_cb);

	/* Shared memory is made before the first fork, or no worker sees it. */
	if (proc_init(m.loop, &master_proc_ops) == -1)
		fatal(EXIT_TEMP, "scoreboard");

	if (mime_load("/etc/mime.types", err, sizeof(err)) == -1)
		log_notice("%s; using built-in MIME types", err);

	m.sd_nfds = systemd_listen_fds(&m.sd_fds);
	if (m.sd_nfds < 0)
		m.sd_nfds = 0;
	m.cur.conf = conf;
	m.cur.id = ++m.gen_seq;
	m.cur.target = conf->workers;
	if ((m.tickets = shm_get("tls-tickets", sizeof(*m.tickets))) == NULL)
		fatal(EXIT_TEMP, "shared memory for session tickets");
	master_tickets(conf);
	if (gen_tls(&m.cur, NULL, m.tickets, err, sizeof(err)) == -1)
		fatalx(EXIT_CONFIG, "%s", err);
	m.cur_hash = master_conf_hash();
	sb_master_start((uint64_t)m.start_time, m.cur.id, m.cur_hash);
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
		log_info("listening on %s (%s%s%s)", m.cur.ls[i].text,
		    gen_listener_kind(&m.cur.ls[i]),
		    m.cur.ls[i].tls ? " over TLS" : "",
		    m.cur.ls[i].proxy != NULL ? ", PROXY protocol" : "");
	if (gen_open_access(&m.cur, err, sizeof(err)) == -1)
		fatalx(EXIT_CONFIG, "%s", err);
	/* The client tables: before the first fork, like the scoreboard. */
	if (climit_master_conf(conf, NULL, 0, err, sizeof(err)) == -1)
		fatalx(EXIT_TEMP, "%s", err);

	if (conf->pid_file != NULL)
		m.pid_file = xstrdup(conf->pid_file);
	master_write_pid();
	if (m.pid_file != NULL)
		ctl_open(m.loop, m.pid_file, &master_ctl);
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

	climit_master_stop();	/* bans into state_file */
	if (m.pid_file != NULL)
		unlink(m.pid_file);
	ctl_close();
	log_notice("stopped");
	/*
	 * The generations' TLS contexts, configurations and sockets go
	 * too, a reload's half-built one included, so that a leak checker
	 * sees only what is really lost.
	 */
	if (m.state == MS_RELOADING) {
		gen_close_listeners(&m.next, &m.cur);
		gen_free(&m.next);
	}
	gen_close_listeners(&m.cur, NULL);
	gen_free(&m.cur);
	return m.exit_code;
}
