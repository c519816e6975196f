/*
 * master_ctl.c - what the control socket's requests do (the handlers
 * master.c gives ctl.c): porter -s reload, drain and undrain, status
 * (the master's account) and the client-table commands (bans, ban, ...).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "climit.h"
#include "master_int.h"

/* ---- control socket requests (ctl.c) ------------------------------------- */

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

const struct ctl_handlers master_ctl = {
	.reload = master_ctl_reload,
	.status = master_ctl_status,
	.drain = master_ctl_drain,
	.command = master_ctl_command,
};
