/*
 * proc.c - the master's table of worker processes: slots, fork hygiene,
 * the channel to each worker, reaping and the crash backoff. master*.c
 * keep the state machine and decide; this file does the bookkeeping
 * and tells the master what happened through the proc_ops it was given
 * (so calls run one way: master -> proc -> worker).
 *
 * Each table slot is also the worker's scoreboard slot (scoreboard.c):
 * claimed before the fork, folded into the retired totals when its
 * worker has been reaped, so the totals never go backwards.
 *
 * Channel: a SOCK_SEQPACKET socketpair per worker, one byte a message
 * (the CHAN_* values in porter.h), a descriptor riding along with
 * CHAN_ACCESS_LOG and CHAN_ERROR_LOG. Besides its state, the table keeps
 * whether each worker may still accept: from its fork (or CHAN_GO, for a
 * reload's held workers) until it says CHAN_DRAINED (its listeners are
 * closed) or is reaped. A reload is answered only once no older worker
 * may (master_reload.c).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "porter.h"

#define PROC_YOUNG_MS		5000	/* died younger than this: backoff */
#define PROC_BACKOFF_MIN_MS	100
#define PROC_BACKOFF_MAX_MS	30000
#define PROC_FORK_RETRY_MS	1000

static struct {
	struct ev_loop	*loop;
	const struct proc_ops *ops;
	struct proc	 w[PROC_SLOTS];
	int		 fail_streak;	/* young deaths in a row */
	uint64_t	 streak_since;
	uint64_t	 next_spawn;	/* backoff: no spawn before this */
} proc;

static void	 proc_chan_cb(struct ev_loop *, struct ev_io *, uint32_t);

int
proc_init(struct ev_loop *loop, const struct proc_ops *ops)
{
	proc.loop = loop;
	proc.ops = ops;
	return sb_init(PROC_SLOTS);
}

struct proc *
proc_next(struct proc *p)
{
	size_t i = p == NULL ? 0 : (size_t)(p - proc.w) + 1;

	for (; i < PROC_SLOTS; i++)
		if (proc.w[i].state != PW_FREE)
			return &proc.w[i];
	return NULL;
}

int
proc_count(uint32_t gen, int include_draining)
{
	struct proc *p;
	int n = 0;

	for (p = proc_next(NULL); p != NULL; p = proc_next(p))
		if (p->gen == gen && (include_draining ||
		    (p->state != PW_DRAINING && !p->recycled)))
			n++;
	return n;
}

int
proc_count_ready(uint32_t gen)
{
	struct proc *p;
	int n = 0;

	for (p = proc_next(NULL); p != NULL; p = proc_next(p))
		if (p->state == PW_READY && p->gen == gen)
			n++;
	return n;
}

int
proc_count_listening_besides(uint32_t gen)
{
	struct proc *p;
	int n = 0;

	for (p = proc_next(NULL); p != NULL; p = proc_next(p))
		if (p->gen != gen && p->listening)
			n++;
	return n;
}

int
proc_alive(void)
{
	struct proc *p;
	int n = 0;

	for (p = proc_next(NULL); p != NULL; p = proc_next(p))
		n++;
	return n;
}

const char *
proc_state_name(const struct proc *p)
{
	switch (p->state) {
	case PW_STARTING:
		return "starting";
	case PW_READY:
		return "ready";
	case PW_DRAINING:
		return "draining";
	}
	return "free";
}

uint64_t
proc_heartbeat(const struct proc *p)
{
	uint64_t hb = SB_LOAD(sb_slot(p->slot)->heartbeat);

	/* A child that has not run yet has not written its heartbeat. */
	return hb > p->started ? hb : p->started;
}

void
proc_send(struct proc *p, int msg, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))], cmd = (char)msg;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;

	if (p->chan == -1)
		return;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = &cmd;
	iov.iov_len = 1;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(p->chan, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == -1 &&
	    errno != EPIPE && errno != ECONNRESET)
		log_warn("message '%c' to worker %d", cmd, (int)p->pid);
}

void
proc_go(struct proc *p)
{
	/* Set before the send: a worker that gets it may accept at once. */
	p->listening = 1;
	proc_send(p, CHAN_GO, -1);
}

void
proc_drain(struct proc *p)
{
	if (p->state == PW_DRAINING)
		return;
	p->state = PW_DRAINING;
	p->drain_start = ev_clock_ms();
	proc_send(p, CHAN_QUIT, -1);
}

void
proc_kill(struct proc *p)
{
	kill(p->pid, SIGKILL);
	p->killed = 1;
}

static void
proc_close_chan(struct proc *p)
{
	if (p->chan == -1)
		return;
	ev_del(proc.loop, &p->io);
	close(p->chan);
	p->chan = -1;
}

/*
 * The child keeps its generation's listeners and logs, its channel and
 * the error log; every other descriptor of the master is closed, so a
 * worker holds no listener of the other generation open (a removed
 * address must really close) and no other worker's channel (its EOF
 * tells a worker that the master is gone).
 */
static void __attribute__((noreturn))
proc_child(struct generation *g, const struct generation *other, int hold,
    unsigned slot, int chan)
{
	struct worker_params wp;
	struct proc *p;
	size_t j;

	for (p = proc_next(NULL); p != NULL; p = proc_next(p))
		if (p->chan != -1)
			close(p->chan);
	if (other != NULL) {
		for (j = 0; j < other->nls; j++)
			if (!gen_has_fd(g, other->ls[j].fd))
				close(other->ls[j].fd);
		if (other->access_fd != -1 && !other->access_stderr &&
		    other->access_fd != g->access_fd)
			close(other->access_fd);
		if (other->error_fd > STDERR_FILENO)
			close(other->error_fd);
	}
	if (g->error_fd != -1)
		log_set_fd(g->error_fd);
	/* The master's own: signalfd, control socket, systemd's, its loop. */
	proc.ops->child();

	memset(&wp, 0, sizeof(wp));
	wp.conf = g->conf;
	wp.listeners = g->ls;
	wp.nlisteners = g->nls;
	wp.chan_fd = chan;
	wp.access_fd = g->access_fd;
	wp.slot = slot;
	wp.generation = g->id;
	wp.uid = g->uid;
	wp.gid = g->gid;
	wp.user = g->conf->user;
	wp.hold = hold;
	wp.tls = g->tls;
	worker_main(&wp);
}

static int
proc_spawn(struct generation *g, const struct generation *other, int hold)
{
	struct proc *p = NULL;
	size_t i;
	int sv[2];
	pid_t pid;

	for (i = 0; i < PROC_SLOTS; i++)
		if (proc.w[i].state == PW_FREE) {
			p = &proc.w[i];
			break;
		}
	if (p == NULL) {
		log_errx("no free worker slot");
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		log_err("socketpair");
		return -1;
	}
	sb_slot_claim((unsigned)i);
	if ((pid = fork()) == -1) {
		log_err("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		proc_child(g, other, hold, (unsigned)i, sv[1]);
	}
	close(sv[1]);
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->state = PW_STARTING;
	p->chan = sv[0];
	p->gen = g->id;
	p->slot = (unsigned)i;
	p->started = ev_clock_ms();
	/* A held worker accepts nothing until CHAN_GO. */
	p->listening = !hold;
	net_set_nonblock(p->chan, 1);
	ev_add(proc.loop, &p->io, p->chan, EPOLLIN, proc_chan_cb);
	log_debug("worker %d started (generation %u)", (int)pid, g->id);
	return 0;
}

/* Delay before the next start: none for a first young death, then doubling. */
uint64_t
proc_backoff(void)
{
	uint64_t d;

	if (proc.fail_streak < 2)
		return 0;
	d = (uint64_t)PROC_BACKOFF_MIN_MS <<
	    (proc.fail_streak - 2 > 9 ? 9 : proc.fail_streak - 2);
	return d > PROC_BACKOFF_MAX_MS ? PROC_BACKOFF_MAX_MS : d;
}

uint64_t
proc_crashed(const struct proc *p)
{
	uint64_t now = ev_clock_ms(), d;

	if (now - p->started < PROC_YOUNG_MS) {
		if (proc.fail_streak++ == 0)
			proc.streak_since = p->started;
	} else
		proc.fail_streak = 0;
	d = proc_backoff();
	proc.next_spawn = now + d;
	return d;
}

void
proc_backoff_reset(void)
{
	proc.fail_streak = 0;
	proc.next_spawn = 0;
}

void
proc_check_proven(struct proc *p, uint32_t cur)
{
	/* A replacement that lives ends a crash streak. */
	if (p->state == PW_READY && p->gen == cur && !p->proven &&
	    ev_clock_ms() - p->started >= PROC_YOUNG_MS) {
		p->proven = 1;
		if (proc.fail_streak > 0 && p->started >= proc.streak_since)
			proc.fail_streak = 0;
	}
}

uint64_t
proc_fill(struct generation *g, const struct generation *other, int hold,
    int backoff)
{
	uint64_t now = ev_clock_ms();

	while (proc_count(g->id, 0) < g->target) {
		if (backoff && now < proc.next_spawn)
			return proc.next_spawn - now;
		if (proc_spawn(g, other, hold) == -1)
			/* Out of processes or memory: retry, don't spin. */
			return PROC_FORK_RETRY_MS;
		/* One at a time while workers keep crashing. */
		if (backoff && proc.fail_streak > 1)
			proc.next_spawn = now + proc_backoff();
	}
	return 0;
}

void
proc_reap(void)
{
	struct proc *p;
	int status, prev;
	size_t i;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < PROC_SLOTS; i++) {
			p = &proc.w[i];
			if (p->state == PW_FREE || p->pid != pid)
				continue;
			/* It writes no more: its counts join the totals. */
			sb_fold(p->slot);
			proc_close_chan(p);
			prev = p->state;
			p->state = PW_FREE;
			proc.ops->exited(p, prev, status);
			break;
		}
	}
}

static void
proc_chan_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct proc *p = ev_io_owner(io, struct proc, io);
	char cmd;
	ssize_t n;

	/* Reaped earlier in this batch: the event is stale. */
	if (p->state == PW_FREE || p->chan == -1)
		return;
	while ((n = recv(p->chan, &cmd, 1, 0)) == 1) {
		switch (cmd) {
		case CHAN_READY:
			if (p->state == PW_STARTING)
				p->state = PW_READY;
			break;
		case CHAN_RECYCLE:
			/* Draining on its own; not told CHAN_QUIT. */
			p->recycled = 1;
			if (p->state != PW_DRAINING) {
				p->state = PW_DRAINING;
				p->drain_start = ev_clock_ms();
			}
			break;
		case CHAN_DRAINED:
			/* Its listeners are closed: it accepts nothing more. */
			p->listening = 0;
			break;
		default:
			log_warnx("unknown message 0x%02x from worker %d",
			    (unsigned char)cmd, (int)p->pid);
			continue;
		}
		proc.ops->message(p, cmd);
		/* The master may have reaped or dropped it meanwhile. */
		if (p->state == PW_FREE || p->chan == -1)
			return;
	}
	if (n == 0 || (n == -1 && errno != EAGAIN && errno != EINTR))
		/* The worker is gone or going; SIGCHLD does the rest. */
		proc_close_chan(p);
}
