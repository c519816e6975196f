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
 *
 * This file starts the master and runs its loop: the signals (USR1's
 * log reopening is here) and the tick that watches the workers. The
 * rest is in master_*.c, listed in master_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "climit.h"
#include "shm.h"
#include "tls.h"
#include "master_int.h"

#define MASTER_TICK_MS		1000
#define MASTER_READY_TIMEOUT_MS	15000	/* a new generation must be up by then */

/* ---- logs and signals ---------------------------------------------------- */

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

/* ---- watching ------------------------------------------------------------ */

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

/* ---- start-up ------------------------------------------------------------ */

int
master_run(struct conf *conf, const char *conf_path)
{
	char err[1024];
	sigset_t set;
	size_t i;
	int sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGQUIT, SIGINT, SIGUSR1,
	    SIGUSR2, SIGTTIN, SIGTTOU };

	memset(&m, 0, sizeof(m));
	m.ctl = &master_ctl;
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
