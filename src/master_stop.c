/*
 * master_stop.c - stopping, from TERM, QUIT, INT or a configuration error
 * (the states are in master.c's comment): graceful, every worker drains;
 * fast, every worker gets SIGTERM; shutdown_timeout later (fast: 5 s) the
 * rest get SIGKILL. With health.shutdown_delay a graceful stop first
 * drains with the listeners open. A reload in progress is abandoned.
 */
#include <signal.h>
#include <stdint.h>

#include "porter.h"
#include "master_int.h"

#define MASTER_FAST_STOP_MS	5000

/* ---- stopping ------------------------------------------------------------ */

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

void
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
void
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
