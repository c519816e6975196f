/*
 * climit.h - per-client limits wired into porter (issue 13): the
 * configuration block client_limits (conf_limits.c), the worker's hooks
 * (climit.c) and the master's side: the shared tables, repair after a
 * dead worker, the admin commands and the state file (climit_admin.c).
 * The engine is limit.h; this is what the rest of porter calls.
 *
 * Cost: with mode "off" (the default, or no client_limits block) no
 * region is made and every hook returns after one test of a static
 * pointer; nothing is added to a request.
 */
#ifndef PORTER_CLIMIT_H
#define PORTER_CLIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <libconfig.h>

#include "limit.h"

struct conf;
struct conf_ctx;
struct ev_loop;
struct conn;
struct request;
struct resp;

/* client_limits { ... }, parsed; conf->limits, NULL when absent. */
struct conf_limits {
	struct limit_params p;		/* mode, rates, ban ladder */
	struct limit_cidr *allow;	/* p.allow points here */
	struct limit_cidr *shared;	/* p.shared */
	uint32_t	 table_size;	/* client entries, 1024..2^24, x8 */
	uint32_t	 ban_table_size; /* 64..2^20, x8 */
	int		 action_close;	/* ban.action = "close" */
	unsigned	 manual_max_time; /* seconds, longest porter -s ban */
	char		*contact;	/* shown on 429 pages; NULL: none */
	char		*state_file;	/* bans kept over a restart; NULL */
};

/* ---- conf_limits.c ------------------------------------------------------ */

/* Parse the group g into conf->limits; -1 with ctx->err "file:line: ...". */
int	 conf_limits(struct conf_ctx *ctx, const config_setting_t *g,
	    struct conf *conf);
void	 conf_limits_free(struct conf_limits *cl);
/* "off", "dry-run", "enforce". */
const char *conf_limits_mode_name(enum limit_mode m);

/* ---- climit.c: the worker ------------------------------------------------ */

/*
 * After fork, before serving: attach the region the master made (if
 * conf's mode is not off) as this worker, scoreboard slot slot, with
 * connection positions 0..max_connections+CLIMIT_POS_SPARE-1.
 */
#define CLIMIT_POS_SPARE	64	/* accepted before an idle one is closed */
void	 climit_worker_init(const struct conf *conf, unsigned slot,
	    struct ev_loop *loop);

/* c->lim_state, copied into struct request's lim_state by the protocol */
#define CLIMIT_S_COUNTED	0x01	/* in the ledger at c->lim_pos */
#define CLIMIT_S_REFUSE		0x02	/* over the cap: 429 and close */
#define CLIMIT_S_EXEMPT		0x04	/* a trusted balancer's own: never limited */
/*
 * A new connection c (c->peer set): counts it against the address's
 * open-connection cap and looks for an address-wide ban. Returns 0 to
 * go on (c->lim_state may say to answer 429 to its first request), -1
 * when c must be closed at once (banned, ban.action = "close"; or
 * refused and its protocol, "echo", cannot say 429).
 */
int	 climit_conn_open(struct conn *c);
void	 climit_conn_close(struct conn *c);
/*
 * The per-request hook, protocol-neutral: q is the request (q->peer is
 * the client's address: the PROXY header's when one was read), r the
 * response http_handle() built for it. Checks the rate with the cost the
 * response shows (304s and paths of an asset type cost asset_weight,
 * the rest a page) and records 400/403/404 probe evidence. Returns 1
 * and fills *a when the client must get 429 Too Many Requests (RFC 6585
 * 4) instead, with Retry-After: a->retry_after (RFC 9110 10.2.3);
 * http_handle() renders it (http_limit_respond()). 0 otherwise, and
 * always in dry-run, which only counts and logs.
 */
struct climit_answer {
	int		 block;
	int		 banned;	/* a ban, not the rate */
	int		 close;		/* end the connection after it */
	uint32_t	 retry_after;	/* whole seconds, >= 1 */
	const char	*contact;	/* NULL: none */
};
int	 climit_request(const struct request *q, const struct resp *r,
	    struct climit_answer *a);
/*
 * /metrics: the client-limit families (climit_metrics_render()) after
 * the len bytes already in buf (size bytes), when limits are on in this
 * worker; returns the new length, or -1 with errno ENOBUFS.
 */
ssize_t	 climit_metrics_append(char *buf, size_t size, size_t len);
/* Once a second from the worker's tick: the per-minute summaries. */
void	 climit_tick(uint64_t now_ms);

/* ---- climit_admin.c: the master ----------------------------------------- */

/*
 * Before forking the workers of a generation with conf: make the region
 * (first time the mode is not off; its size is fixed from then on) and
 * attach the master to it with conf's parameters. 0, or -1 with err
 * filled. A changed table size is kept for the next restart and said in
 * *note (may be NULL).
 */
int	 climit_master_conf(const struct conf *conf, char *note,
	    size_t notelen, char *err, size_t errlen);
/* The region (NULL when none was made) and its ledger's size per slot. */
void	*climit_region(size_t *len);
uint32_t climit_ledger_size(void);
/* A worker pid that ran in slot was reaped: release its locks and counts. */
void	 climit_master_reaped(pid_t pid, unsigned slot);
/* The master's tick (1 s): state file every minute. */
void	 climit_master_tick(void);
/* Graceful stop: write the state file. */
void	 climit_master_stop(void);
/*
 * A control command that is not the master's own ("bans", "clients",
 * "client", "ban", "unban", "limits-reset"): the answer, "ok\n" and
 * tab-separated lines or "error MESSAGE\n", malloc'd; NULL if line is
 * no such command.
 */
char	*climit_ctl(const char *line);
/* The counters, for metrics and status; 0, or -1 when no region. */
int	 climit_stats(struct limit_stats *st);
/*
 * porter -s status lines (none when no region was made):
 * client_rejected_REASON[_dry_run], client_bans_CAUSE, client_bans_active,
 * client_table_entries, client_table_capacity, client_evictions,
 * client_untracked.
 */
void	 climit_status(FILE *f);

/* ---- climit_metrics.c --------------------------------------------------- */

/*
 * st as Prometheus text 0.0.4 into buf (size bytes, the caller's):
 * porter_client_rejected_total{reason,mode}, porter_client_bans_total
 * {cause}, porter_client_bans_active, porter_client_table_entries
 * {table}, porter_client_table_capacity{table},
 * porter_client_table_evictions_total, porter_client_untracked_total,
 * porter_client_bans_replaced_total, porter_client_shared_keys. Returns
 * the length, or -1 with errno ENOBUFS (CLIMIT_METRICS_SIZE is enough).
 */
#define CLIMIT_METRICS_SIZE	4096
ssize_t	 climit_metrics_render(char *buf, size_t size,
	    const struct limit_stats *st);

#endif
