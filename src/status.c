/*
 * status.c - what a status listener answers (status.listen): the
 * Prometheus metrics, a status page for people and the health check a
 * load balancer polls. Everything comes from shared memory (the
 * scoreboard and the master's facts in it), so any worker answers the
 * same, and nothing here touches a file or the public site.
 *
 *   GET /metrics   Prometheus text format 0.0.4 (metrics.c)
 *   GET /status    plain text: uptime, generation, last reload, the
 *                  worker table, totals (status_text())
 *   GET /health    200 "ok"; while the master drains (`porter -s drain`,
 *                  health.shutdown_delay, a stop) health.drain_status
 *                  (503, or 404 for HAProxy's disable-on-404) "draining"
 *
 * Only peers in status.allow are answered; others get 403. The peer is
 * the TCP peer of the connection: a status listener never takes a PROXY
 * header, so no client can claim another address here.
 *
 * Answers carry Cache-Control: no-store (a cached health or metrics
 * answer is a wrong one). h1.c neither counts them in the HTTP metrics
 * nor logs them unless status.access_log says so.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "porter.h"
#include "limit.h"
#include "metrics.h"
#include "climit.h"

static struct {
	const struct conf *conf;
	struct limit_cidr *allow;
	size_t		 nallow;
	char		 scrape[METRICS_BUF_SIZE];	/* one worker, one thread */
} st;

static struct log_limit status_ll_deny = LOG_LIMIT_INIT(LOG_LVL_WARN,
    "status listener: peer not allowed");
static struct log_limit status_ll_fail = LOG_LIMIT_INIT(LOG_LVL_ERR,
    "status listener: scoreboard");

void
status_init(const struct conf *conf)
{
	size_t i;

	st.conf = conf;
	free(st.allow);
	st.allow = xcalloc(conf->status.nallow + 1, sizeof(*st.allow));
	st.nallow = 0;
	/* conf_status.c checked every entry. */
	for (i = 0; i < conf->status.nallow; i++)
		if (limit_cidr_parse(conf->status.allow[i],
		    &st.allow[st.nallow]) == 0)
			st.nallow++;
}

int
status_logged(void)
{
	return st.conf != NULL && st.conf->status.access_log;
}

/* Is the TCP peer in status.allow? IPv4-mapped IPv6 counts as IPv4. */
static int
status_allowed(const struct sockaddr *peer)
{
	struct limit_params p;
	struct limit_key k;
	socklen_t len;
	size_t i;

	len = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	limit_params_default(&p);
	if (limit_key_from_sockaddr(&p, peer, len, 0, &k) == -1)
		return 0;
	for (i = 0; i < st.nallow; i++)
		if (limit_cidr_match(&st.allow[i], &k.lk_host))
			return 1;
	return 0;
}

/* A whole answer: status, Content-Type, body (none for HEAD). */
static void
status_reply(const struct request *q, struct resp *r, int status,
    const char *type, const char *body, size_t len)
{
	int do_close = r->close;
	size_t off;

	resp_reset(r);
	r->close = do_close;
	resp_begin(r, status);
	resp_printf(r, "Content-Type: %s\r\nContent-Length: %zu\r\n"
	    "Cache-Control: no-store\r\n", type, len);
	if (status == 405)
		resp_append(r, "Allow: GET, HEAD\r\n", 18);
	resp_head_done(r);
	if (q->h->method == HTTP_M_HEAD || len == 0)
		return;
	off = r->buf_len;
	resp_append(r, body, len);
	resp_seg_buf(r, off, len);
}

static void
status_plain(const struct request *q, struct resp *r, int status,
    const char *body)
{
	status_reply(q, r, status, "text/plain; charset=utf-8", body,
	    strlen(body));
}

/* Does the request's path (query ignored) equal name? */
static int
status_path_is(const struct request *q, const char *name)
{
	size_t n = strlen(name);

	return q->h->path.len == n &&
	    memcmp(q->buf + q->h->path.off, name, n) == 0;
}

void
status_handle(const struct request *q, struct resp *r)
{
	char peer[NET_ADDRSTRLEN];
	struct sb_totals t;
	ssize_t n;
	char *text;

	if (!status_allowed(q->peer)) {
		net_addr_format(q->peer, peer, sizeof(peer), 0);
		log_limited(&status_ll_deny, ev_clock_ms(), 0,
		    "status listener: %s is not in status.allow; 403", peer);
		status_plain(q, r, 403, "forbidden\n");
		return;
	}
	if (q->h->method != HTTP_M_GET && q->h->method != HTTP_M_HEAD) {
		status_plain(q, r, 405, "only GET and HEAD\n");
		return;
	}
	if (status_path_is(q, "/health")) {
		if (sb_draining())
			status_plain(q, r, st.conf->health.drain_status,
			    "draining\n");
		else
			status_plain(q, r, 200, "ok\n");
		return;
	}
	if (status_path_is(q, "/metrics")) {
		if ((n = metrics_scrape(st.scrape, sizeof(st.scrape))) == -1 ||
		    (n = climit_metrics_append(st.scrape, sizeof(st.scrape),
		    (size_t)n)) == -1) {
			log_limited(&status_ll_fail, ev_clock_ms(), errno,
			    "/metrics");
			status_plain(q, r, 503, "metrics unavailable\n");
			return;
		}
		status_reply(q, r, 200, METRICS_CONTENT_TYPE, st.scrape,
		    (size_t)n);
		return;
	}
	if (status_path_is(q, "/status")) {
		if (sb_read_totals(&t) == -1 ||
		    (text = status_text(&t, ev_clock_ms())) == NULL) {
			log_limited(&status_ll_fail, ev_clock_ms(), errno,
			    "/status");
			status_plain(q, r, 503, "status unavailable\n");
			return;
		}
		status_plain(q, r, 200, text);
		free(text);
		return;
	}
	status_plain(q, r, 404, "not found: try /metrics, /status or "
	    "/health\n");
}

/* ---- the page for people ------------------------------------------------- */

static void
status_when(FILE *f, const char *label, uint64_t epoch_s)
{
	char when[64];
	time_t tt = (time_t)epoch_s;
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime_r(&tt, &tm));
	fprintf(f, "%s%s\n", label, when);
}

char *
status_text(const struct sb_totals *t, uint64_t now_ms)
{
	static const char *states[SB_NSTATE] = {
		"free", "starting", "ready", "draining"
	};
	static const char *cls[SB_NCLASS] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	const struct sb_master *m = &t->m;
	const struct sb_slot *s;
	uint64_t now_s = (uint64_t)time(NULL), hb;
	uint32_t state;
	unsigned i;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	int k;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return NULL;
	fprintf(f, "porter %s\n", PACKAGE_VERSION);
	fprintf(f, "uptime: %" PRIu64 " s\n", now_s > m->start_time ?
	    now_s - m->start_time : 0);
	status_when(f, "started: ", m->start_time);
	fprintf(f, "generation: %u\n", m->generation);
	fprintf(f, "config hash: %016" PRIx64 "\n", m->config_hash);
	if (m->reloads[SB_RELOAD_SUCCESS] + m->reloads[SB_RELOAD_FAILURE] == 0)
		fprintf(f, "last reload: none\n");
	else
		fprintf(f, "last reload: %s\n", m->reload_ok ? "ok" :
		    "failed (still serving the previous configuration)");
	status_when(f, "configuration loaded: ", m->reload_time);
	fprintf(f, "reloads: %" PRIu64 " ok, %" PRIu64 " failed\n",
	    m->reloads[SB_RELOAD_SUCCESS], m->reloads[SB_RELOAD_FAILURE]);
	fprintf(f, "draining: %s\n", m->draining ? "yes" : "no");
	fprintf(f, "workers: %u ready, %u starting, %u draining\n",
	    t->workers[SB_READY], t->workers[SB_STARTING],
	    t->workers[SB_DRAINING]);
	fprintf(f, "worker exits: %" PRIu64 " crash, %" PRIu64 " hang, %"
	    PRIu64 " max_requests, %" PRIu64 " drained\n",
	    m->exits[SB_EXIT_CRASH], m->exits[SB_EXIT_HANG],
	    m->exits[SB_EXIT_MAX_REQUESTS], m->exits[SB_EXIT_DRAINED]);

	fprintf(f, "\n%-8s %-10s %-9s %-12s %-11s %-10s %-10s %s\n", "pid",
	    "generation", "state", "heartbeat_ms", "connections", "requests",
	    "accepted", "bytes");
	for (i = 0; i < sb_nslots(); i++) {
		s = sb_slot(i);
		state = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
		if (state == SB_FREE || state >= SB_NSTATE)
			continue;
		hb = SB_LOAD(s->heartbeat);
		fprintf(f, "%-8d %-10u %-9s %-12" PRIu64 " %-11u %-10" PRIu64
		    " %-10" PRIu64 " %" PRIu64 "\n",
		    (int)__atomic_load_n(&s->pid, __ATOMIC_RELAXED),
		    __atomic_load_n(&s->generation, __ATOMIC_RELAXED),
		    states[state], hb != 0 && now_ms > hb ? now_ms - hb : 0,
		    __atomic_load_n(&s->open, __ATOMIC_RELAXED),
		    sb_slot_requests(s), SB_LOAD(s->c.accepted),
		    SB_LOAD(s->c.bytes));
	}

	fprintf(f, "\nconnections: %" PRIu64 " open, %" PRIu64 " accepted\n",
	    t->open, t->c.accepted);
	fprintf(f, "requests: %" PRIu64, t->requests);
	for (k = 0; k < SB_NCLASS; k++)
		fprintf(f, "%s%s %" PRIu64, k ? ", " : " (", cls[k],
		    t->c.status[k]);
	fprintf(f, ")\nbytes sent: %" PRIu64 "\n", t->c.bytes);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
