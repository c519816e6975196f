/*
 * master_proc.c - proc.c's news (the proc_ops master.c gives it): a
 * worker's messages (CHAN_READY, CHAN_RECYCLE, CHAN_DRAINED), which may
 * complete the start-up or a reload's switch; a reaped worker: expected,
 * the end of a failed reload, a crash to replace, or a configuration
 * error that stops the master; and a new child, which closes the
 * master's own descriptors.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "porter.h"
#include "climit.h"
#include "master_int.h"

/* ---- workers coming and going -------------------------------------------- */

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

void
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

/* ---- proc.c's news ------------------------------------------------------- */

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

const struct proc_ops master_proc_ops = {
	.message = master_message,
	.exited = master_worker_exited,
	.child = master_child,
};
