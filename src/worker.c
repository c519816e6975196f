/*
 * worker.c - a worker process: drop privileges, open the site roots,
 * then run the event loop over the shared listening sockets until the
 * master says stop.
 *
 * Messages from the master arrive on a SOCK_SEQPACKET channel, one byte
 * each (CHAN_* in porter.h): CHAN_GO start accepting (a reload's new
 * workers wait for it), CHAN_QUIT drain and exit, CHAN_ACCESS_LOG and
 * CHAN_ERROR_LOG a new log fd (SCM_RIGHTS). The worker says CHAN_READY
 * once, CHAN_RECYCLE when max_requests is reached, and CHAN_DRAINED once
 * its listeners are closed (a reload is over once every old worker has
 * said it, or is gone). Its scoreboard slot (scoreboard.h) shows its
 * state, heartbeat and counts. End of file on the channel means the
 * master is gone: drain and exit, by shutdown_timeout at the latest, so
 * no worker outlives it.
 * Signals: TERM and INT exit at once (fast stop), QUIT drains.
 *
 * Draining: stop accepting, take what is already queued, answer every
 * request that has begun to arrive with Connection: close, and close
 * keep-alive connections only once they have been idle for a grace
 * period, so a close never crosses a request the client just sent.
 *
 * Faults for the test suite only (tests/integration), each naming a
 * file whose existence turns it on, so a test can switch it off again:
 * PORTER_TEST_WORKER_CRASH makes new workers abort() at start (any value
 * not starting with '/' makes them always crash), PORTER_TEST_WORKER_STALL
 * makes them wait before they start serving. PORTER_TEST_DRAIN_STALL
 * makes a worker told to drain (CHAN_QUIT) go on accepting as if it had
 * not read the message yet, the window a loaded machine opens between
 * the master's CHAN_QUIT and the worker's next turn. A fourth,
 * PORTER_TEST_GZIP_STALL, holds background gzip jobs (they make no
 * progress while the file exists), so a test can see a request answered
 * while a job is pending without timing anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "porter.h"
#include "climit.h"
#include "rep.h"
#include "tls.h"

#define WORKER_TICK_MS		1000
#define WORKER_DRAIN_GRACE_MS	1000	/* idle keep-alive kept this long when draining */

#define WORKER_STALL_POLL_MS	20

/*
 * Process concerns only: the connections, their pools and lists are
 * conn.c's, the gzip cache serve.c's.
 */
struct worker {
	struct ev_loop	*loop;
	struct conf	*conf;
	struct worker_params p;
	struct ev_io	 chan_io;
	struct ev_io	 sig_io;
	int		 sig_fd;
	int		*rootfds;	/* one per conf->sites[] */
	int		 draining;
	int		 orphaned;	/* the master is gone: exit by the deadline */
	uint64_t	 drain_start;
	uint64_t	 max_requests;
};

static struct worker worker_s, *worker;
static int	 worker_drain_idle_due;	/* drain began in this loop turn */
static const char *worker_gzip_stall;	/* test fault, see above */
static const char *worker_drain_stall;	/* test fault, see above */

static void	 worker_drain(const char *why);
static void	 worker_tls_listeners(struct worker_params *p);
static void	 worker_exit(int code) __attribute__((noreturn));

static void
worker_exit(int code)
{
	accesslog_flush();
	log_limit_flush(UINT64_MAX);	/* the counts not yet reported */
	sb_set_state(SB_FREE);
	_exit(code);
}

static void
worker_drop_privileges(void)
{
	const struct worker_params *p = &worker->p;

	if (p->uid == (uid_t)-1)
		return;
	if (initgroups(p->user, p->gid) == -1 || setgid(p->gid) == -1 ||
	    setuid(p->uid) == -1) {
		log_crit("cannot drop privileges to %s", p->user);
		_exit(EXIT_CONFIG);
	}
	/* Prove it: a worker that could become root again must not serve. */
	if (setuid(0) != -1) {
		log_critx("privileges not dropped");
		_exit(EXIT_CONFIG);
	}
}

/*
 * A dumpable worker can be ptraced, its memory read and its descriptors
 * taken (pidfd_getfd) by any process of the same user: the root-owned
 * logs, later TLS keys. setuid() has cleared the flag already; clear it
 * in every case (no privilege drop, too), and set it only when the
 * admin asked for core dumps (core_dumps = true), which need it.
 */
static void
worker_set_dumpable(void)
{
	if (prctl(PR_SET_DUMPABLE, worker->conf->core_dumps ? 1 : 0) == -1)
		log_warn("prctl PR_SET_DUMPABLE");
}

static void
worker_open_roots(void)
{
	const struct conf *conf = worker->conf;
	size_t i;

	worker->rootfds = xcalloc(conf->nsites, sizeof(int));
	for (i = 0; i < conf->nsites; i++) {
		worker->rootfds[i] = open(conf->sites[i].root,
		    O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (worker->rootfds[i] == -1)
			log_err("site root %s", conf->sites[i].root);
	}
}

static void
worker_check_drained(void)
{
	if (worker->draining && conn_count() == 0)
		worker_exit(0);
}

static void
worker_drain(const char *why)
{
	if (worker->draining)
		return;
	log_debug("draining: %s", why);
	worker->draining = 1;
	worker->drain_start = ev_now(worker->loop);
	sb_set_state(SB_DRAINING);
	/*
	 * New arrivals wake the workers still accepting. A worker of a
	 * failed reload never accepted: what is queued is not its to take.
	 */
	conn_stop(!worker->p.hold);
	worker->p.nlisteners = 0;
	/*
	 * Now nothing new can reach us: a reload waits for this before it
	 * tells anyone the new configuration serves.
	 */
	(void)!send(worker->p.chan_fd, &(char){ CHAN_DRAINED }, 1,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
	/*
	 * Idle connections are closed after this batch of events, not now:
	 * a request may be waiting in it, and closing over unread bytes
	 * would reset the connection.
	 */
	worker_drain_idle_due = 1;
	worker_check_drained();
}

static void
worker_tick(struct ev_loop *loop, void *arg)
{
	uint64_t now = ev_now(loop);

	conn_timeouts(now);
	if (worker->draining)
		conn_drain_idle(now, WORKER_DRAIN_GRACE_MS);
	/*
	 * With the master alive it kills us after shutdown_timeout; without
	 * it, nobody would, and a slow reader would keep us forever.
	 */
	if (worker->orphaned && now >= worker->drain_start +
	    (uint64_t)worker->conf->shutdown_timeout * 1000) {
		log_warnx("master gone and shutdown_timeout (%ds) reached: "
		    "closing %zu connections", worker->conf->shutdown_timeout,
		    conn_count());
		worker_exit(0);
	}
	accesslog_flush();
	climit_tick(now);
	log_limit_flush(now);
	fcache_tick();
	h2_tick();
	ev_timer_add(loop, WORKER_TICK_MS, worker_tick, NULL);
}

/*
 * After each batch: answer the heads read in it, free closed connections,
 * show we are alive.
 */
static void
worker_hook(struct ev_loop *loop, void *arg)
{
	/* First, so what the drain's last accept read is answered below. */
	if (worker->max_requests && conn_requests() >= worker->max_requests &&
	    !worker->draining) {
		/* Tell the master first, so it starts our replacement. */
		(void)!send(worker->p.chan_fd, &(char){ CHAN_RECYCLE }, 1,
		    MSG_NOSIGNAL);
		worker_drain("max_requests reached");
	}
	conn_run_queue();
	/*
	 * Then a slice of background gzip (GZCACHE_BG_SLICE, rep.h: what
	 * other clients wait for each turn), and with jobs left the loop
	 * polls rather than sleeps. Requests that arrive meanwhile are
	 * answered first.
	 */
	{
		int stalled = worker_gzip_stall != NULL &&
		    access(worker_gzip_stall, F_OK) == 0;

		if (serve_background(stalled ? 0 : GZCACHE_BG_SLICE) > 0 &&
		    !stalled)
			ev_busy(loop);
	}
	conn_free_zombies();
	sb_heartbeat(ev_now(loop), conn_count());
	sb_conn_states(conn_count_class(CONN_T_IDLE),
	    conn_count_class(CONN_T_SEND));
	if (worker_drain_idle_due) {
		worker_drain_idle_due = 0;
		conn_drain_idle(ev_now(loop), WORKER_DRAIN_GRACE_MS);
	}
	if (worker->draining)
		worker_check_drained();
}

/* Test fault: the master's CHAN_QUIT counts once the file is gone. */
static void
worker_drain_stall_cb(struct ev_loop *loop, void *arg)
{
	if (access(worker_drain_stall, F_OK) == 0)
		ev_timer_add(loop, WORKER_STALL_POLL_MS, worker_drain_stall_cb,
		    NULL);
	else
		worker_drain("asked by the master");
}

static void
worker_chan_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	char cmd, cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		iov.iov_base = &cmd;
		iov.iov_len = 1;
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		n = recvmsg(io->fd, &msg, MSG_CMSG_CLOEXEC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		if (n <= 0) {
			/*
			 * The master is gone: no orphans, finish and leave
			 * by the deadline it would have enforced (counted
			 * from the drain's start if one was under way).
			 */
			ev_del(loop, io);
			worker->orphaned = 1;
			worker_drain("master went away");
			return;
		}
		fd = -1;
		for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
			if (cm->cmsg_level == SOL_SOCKET &&
			    cm->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		switch (cmd) {
		case CHAN_GO:
			worker->p.hold = 0;
			if (!worker->draining)
				conn_accepting(1);
			break;
		case CHAN_QUIT:
			if (worker_drain_stall != NULL && !worker->draining &&
			    access(worker_drain_stall, F_OK) == 0) {
				log_notice("test: 'Q' held while %s exists",
				    worker_drain_stall);
				worker_drain_stall_cb(loop, NULL);
				break;
			}
			worker_drain("asked by the master");
			break;
		case CHAN_ACCESS_LOG:
			/* Buffered lines go to the old file first: none lost. */
			if (fd != -1)
				accesslog_set_fd(fd);
			fd = -1;
			break;
		case CHAN_ERROR_LOG:
			if (fd != -1)
				log_set_fd(fd);
			fd = -1;
			break;
		default:
			log_warnx("unknown command from master: 0x%02x",
			    (unsigned char)cmd);
		}
		if (fd != -1)
			close(fd);
	}
}

static void
worker_signal_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			worker_exit(0);
			break;
		case SIGQUIT:
			worker_drain("SIGQUIT");
			break;
		}
	}
}

/* Test-only faults; see the top of this file. */
static void
worker_test_faults(int chan)
{
	const char *crash = getenv("PORTER_TEST_WORKER_CRASH");
	const char *stall = getenv("PORTER_TEST_WORKER_STALL");
	struct rlimit rl = { 0, 0 };
	struct pollfd pfd;

	worker_gzip_stall = getenv("PORTER_TEST_GZIP_STALL");
	worker_drain_stall = getenv("PORTER_TEST_DRAIN_STALL");

	if (crash != NULL && (crash[0] != '/' || access(crash, F_OK) == 0)) {
		/* A crash loop should not fill the disk with cores. */
		setrlimit(RLIMIT_CORE, &rl);
		abort();
	}
	while (stall != NULL && access(stall, F_OK) == 0) {
		pfd.fd = chan;
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* Not past the master's death, though. */
		if (poll(&pfd, 1, WORKER_STALL_POLL_MS) == 1 &&
		    (pfd.revents & (POLLHUP | POLLERR)))
			_exit(EXIT_TEMP);
	}
}

void
worker_main(struct worker_params *p)
{
	struct conf *conf = p->conf;
	sigset_t set;
	size_t i;

	worker = &worker_s;
	memset(worker, 0, sizeof(*worker));
	worker->p = *p;
	worker->conf = conf;
	sb_attach(p->slot, p->generation);
	sb_heartbeat(ev_clock_ms(), 0);

	worker_test_faults(p->chan_fd);

	/* The master blocked every signal it handles; we take ours by fd. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGQUIT);
	if ((worker->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) == -1) {
		log_crit("signalfd");
		_exit(EXIT_TEMP);
	}

	worker_drop_privileges();
	worker_set_dumpable();
	worker_open_roots();
	accesslog_init(p->access_fd);
	if (conf->max_requests > 0) {
		/* Jitter, so workers started together don't all recycle together. */
		uint64_t j = (uint64_t)conf->max_requests / 10 + 1;

		worker->max_requests = (uint64_t)conf->max_requests +
		    (uint64_t)getpid() % j;
	}

	if ((worker->loop = ev_create(512)) == NULL) {
		log_crit("epoll");
		_exit(EXIT_TEMP);
	}
	if (fcache_init(worker->loop, conf, worker->rootfds) == -1)
		log_warn("inotify: open-file cache off");
	/* Each listener gets its protocol's code; the rest is the core's. */
	for (i = 0; i < p->nlisteners; i++) {
		p->listeners[i].proto = p->listeners[i].protocol == PROTO_ECHO ?
		    &echo_proto : p->listeners[i].http2 ? &h2_proto : &h1_proto;
		p->listeners[i].stage = p->listeners[i].proxy != NULL ?
		    conn_proxy_start : NULL;
	}
	worker_tls_listeners(p);
	conn_init(worker->loop, conf, p->listeners, p->nlisteners);
	climit_worker_init(conf, p->slot, worker->loop);
	h1_init(conf);
	h2_init(conf);
	http_init(conf, worker->rootfds, worker->loop);
	status_init(conf);
	serve_init(conf, worker->loop);

	ev_add(worker->loop, &worker->sig_io, worker->sig_fd, EPOLLIN,
	    worker_signal_cb);
	net_set_nonblock(p->chan_fd, 1);
	ev_add(worker->loop, &worker->chan_io, p->chan_fd, EPOLLIN,
	    worker_chan_cb);
	if (!p->hold)
		conn_accepting(1);
	ev_set_hook(worker->loop, worker_hook, NULL);
	ev_timer_add(worker->loop, WORKER_TICK_MS, worker_tick, NULL);

	sb_set_state(SB_READY);
	/* Ready: the master waits for this before it switches generations. */
	(void)!send(p->chan_fd, &(char){ CHAN_READY }, 1, MSG_NOSIGNAL);

	if (ev_run(worker->loop) == -1)
		log_crit("epoll_wait");
	worker_exit(EXIT_TEMP);
}

/*
 * TLS listeners get the TLS transport and what it needs of them: the
 * generation's contexts (inherited from the master) and the ALPN list
 * of the protocol they speak.
 */
static void
worker_tls_listeners(struct worker_params *p)
{
	static const char *const h1[] = { "http/1.1" };
	static const char *const h2h1[] = { "h2", "http/1.1" };
	struct tls_listen *tl;
	size_t i;

	for (i = 0; i < p->nlisteners; i++) {
		struct listener *l = &p->listeners[i];

		if (!l->tls || p->tls == NULL)
			continue;
		tl = xcalloc(1, sizeof(*tl));
		/* HTTP/2 first when on (RFC 9113 3.2), HTTP/1.1 for the rest. */
		if (l->http2 && l->protocol == PROTO_HTTP)
			(void)tls_listen_init(tl, p->tls, h2h1, 2);
		else
			(void)tls_listen_init(tl, p->tls, h1, 1);
		/* echo has no registered ALPN name: it selects none. */
		if (l->protocol == PROTO_ECHO)
			tl->alpn_len = 0;
		l->xprt = &xprt_tls;
		l->xprt_cfg = tl;
	}
}
