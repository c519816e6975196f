/*
 * master_workers.c - how many workers the master keeps: each generation
 * brought up to its target (a start that proc.c's crash backoff holds
 * back waits on a timer here), TTIN and TTOU (held back during a reload),
 * and systemd's STATUS line, which counts them. It defines the master's
 * state (master_int.h) and calls none of the other master*.c files.
 */
#include <stdint.h>
#include <stdio.h>

#include "porter.h"
#include "master_int.h"

struct master_state m;

/* ---- workers ------------------------------------------------------------- */

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
void
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
void
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

void
master_resize_pending(void)
{
	int d = m.resize;

	m.resize = 0;
	if (d != 0)
		master_resize_apply(d);
}

/*
 * systemd's STATUS line. The request count is the scoreboard's total,
 * which folds in every worker that is gone: it never goes backwards.
 */
void
master_update_status(void)
{
	struct sb_totals t;

	if (sb_read_totals(&t) == -1)
		return;
	systemd_status("%d workers, generation %u, %llu requests%s%s",
	    proc_count(m.cur.id, 0), m.cur.id, (unsigned long long)t.requests,
	    m.reload_msg[0] ? "; last reload: " : "", m.reload_msg);
}
