/*
 * climit_admin.c - the master's side of the client limits: it owns the
 * shared region (made through shm.c before the workers that use it are
 * forked, kept over reloads), repairs what a dead worker left (locks,
 * open-connection counts), answers the admin commands of porter -s and
 * keeps bans over a restart in state_file.
 *
 * The master attaches to the region like a worker, with its own pid as
 * lock owner, and only locks after it has reaped (proc.c reaps before
 * the exit callback that calls climit_master_reaped()).
 *
 * Admin output is tab-separated, one entry a line, so a person can read
 * it and cut(1) or awk can take it apart. Times are seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "porter.h"
#include "shm.h"
#include "climit.h"

#define CLIMIT_SHM_NAME		"client_limits"
#define CLIMIT_STATE_EVERY_MS	60000
/*
 * Lines in one answer, at most: ctl.c answers with one write, and 2000
 * lines of at most ~100 bytes fit a Unix socket's default send buffer.
 */
#define CLIMIT_LIST_MAX		2000
#define CLIMIT_LINE		256

static struct {
	void		*mem;
	size_t		 len;
	struct limit_geometry g;
	struct limit	 l;
	struct limit_params p;		/* a copy: keys, ban_memory */
	unsigned	 manual_max;	/* longest porter -s ban */
	char		*state_file;
	uint64_t	 state_at;	/* ev_clock_ms() of the last write */
	struct climit_banid *active;	/* bans in force at the last tick */
	size_t		 nactive;
} ca;

void *
climit_region(size_t *len)
{
	*len = ca.len;
	return ca.mem;
}

uint32_t
climit_ledger_size(void)
{
	return ca.g.lg_ledger_size;
}

/* A ban's key, to notice when it ends (the expiry log line). */
struct climit_banid {
	uint8_t		 addr[16];
	uint64_t	 agent;
	uint8_t		 family, prefix, aggregate;
};

static const char *const climit_causes[LIMIT_C_N] = {
	"probe", "ignored_429", "manual"
};

static void	 climit_key_text(const struct limit_row *, char *, size_t);

/* ---- the state file: bans over a restart ------------------------------- */

/*
 * "net/prefix<TAB>agent hex<TAB>until (wall clock, s)<TAB>cause\n" per
 * ban in force, written to a temporary file and renamed over the old.
 */
struct climit_out {
	FILE		*f;
	time_t		 wall;
	size_t		 n;
	size_t		 max;
	int		 agg_only;	/* for "client ADDR": this address */
	struct limit_cidr want;
};

static void
climit_net_text(const struct limit_cidr *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (inet_ntop(c->lc_family, c->lc_addr, addr, sizeof(addr)) == NULL)
		strcpy(addr, "?");
	snprintf(buf, len, "%s/%u", addr, c->lc_prefix);
}

static int
climit_state_row(const struct limit_row *r, void *arg)
{
	struct climit_out *o = arg;
	char net[64];

	climit_net_text(&r->net, net, sizeof(net));
	fprintf(o->f, "%s\t%016llx\t%lld\t%s\n", net,
	    (unsigned long long)r->agent, (long long)(o->wall + r->left),
	    climit_causes[r->cause]);
	o->n++;
	return 0;
}

static void
climit_state_write(void)
{
	struct climit_out o;
	char *tmp;
	size_t len;

	if (ca.mem == NULL || ca.state_file == NULL)
		return;
	len = strlen(ca.state_file) + 5;
	tmp = xmalloc(len);
	snprintf(tmp, len, "%s.tmp", ca.state_file);
	memset(&o, 0, sizeof(o));
	o.wall = time(NULL);
	if ((o.f = fopen(tmp, "we")) == NULL) {
		log_warn("client_limits: state file %s", tmp);
		free(tmp);
		return;
	}
	fputs("# porter bans: net\tagent\tuntil\tcause\n", o.f);
	limit_ban_walk(&ca.l, ev_clock_ms(), climit_state_row, &o);
	if (fflush(o.f) != 0 || fsync(fileno(o.f)) != 0) {
		log_warn("client_limits: state file %s", tmp);
		fclose(o.f);
		unlink(tmp);
	} else if (fclose(o.f) != 0 || rename(tmp, ca.state_file) == -1) {
		log_warn("client_limits: state file %s", ca.state_file);
		unlink(tmp);
	}
	free(tmp);
}

/* At start: the bans still in force come back (as bans of the admin's). */
static void
climit_state_read(void)
{
	char line[CLIMIT_LINE], net[80], agent[32], cause[32];
	struct limit_cidr c;
	struct limit_key k;
	long long until;
	time_t wall = time(NULL);
	size_t n = 0;
	FILE *f;

	if ((f = fopen(ca.state_file, "re")) == NULL) {
		if (errno != ENOENT)
			log_warn("client_limits: state file %s",
			    ca.state_file);
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%79s %31s %lld %31s", net, agent, &until,
		    cause) != 4 || limit_cidr_parse(net, &c) == -1)
			continue;
		if (until <= (long long)wall ||
		    until - wall > LIMIT_BAN_CEILING)
			continue;
		memset(&k, 0, sizeof(k));
		k.lk_net = c;
		k.lk_host = c;
		k.lk_agent = strtoull(agent, NULL, 16);
		if (limit_ban(&ca.l, &k, (uint32_t)(until - wall),
		    ev_clock_ms()) == 0)
			n++;
	}
	fclose(f);
	if (n > 0)
		log_notice("client_limits: %zu bans restored from %s", n,
		    ca.state_file);
}

/* ---- the region --------------------------------------------------------- */

int
climit_master_conf(const struct conf *conf, char *note, size_t notelen,
    char *err, size_t errlen)
{
	const struct conf_limits *cl = conf->limits;
	struct limit_geometry g;
	uint8_t seed[16];
	int fresh = 0;

	if (note != NULL && notelen > 0)
		note[0] = '\0';
	if (cl == NULL || cl->p.mode == LIMIT_OFF) {
		/* The tables stay (a later reload may turn limits on). */
		return 0;
	}
	memset(&g, 0, sizeof(g));
	g.lg_table_size = cl->table_size;
	g.lg_ban_table_size = cl->ban_table_size;
	g.lg_slots = PROC_SLOTS;
	g.lg_ledger_size = (uint32_t)conf->max_connections + CLIMIT_POS_SPARE;
	if (ca.mem == NULL) {
		if ((ca.len = limit_size(&g)) == 0) {
			snprintf(err, errlen, "client_limits: bad table sizes");
			return -1;
		}
		if ((ca.mem = shm_get(CLIMIT_SHM_NAME, ca.len)) == NULL) {
			snprintf(err, errlen, "client_limits: shared memory "
			    "of %zu bytes: %s", ca.len, strerror(errno));
			ca.len = 0;
			return -1;
		}
		if (getrandom(seed, sizeof(seed), 0) != sizeof(seed)) {
			snprintf(err, errlen, "client_limits: getrandom: %s",
			    strerror(errno));
			return -1;
		}
		if (limit_init(ca.mem, ca.len, &g, seed, ev_clock_ms()) == -1) {
			snprintf(err, errlen, "client_limits: %s",
			    strerror(errno));
			return -1;
		}
		ca.g = g;
		fresh = 1;
	} else if (g.lg_table_size != ca.g.lg_table_size ||
	    g.lg_ban_table_size != ca.g.lg_ban_table_size ||
	    g.lg_ledger_size > ca.g.lg_ledger_size) {
		if (note != NULL)
			snprintf(note, notelen, " (client_limits table sizes "
			    "and max_connections for the connection count "
			    "take effect at restart)");
	}
	ca.p = cl->p;
	ca.manual_max = cl->manual_max_time;
	ca.p.allow = NULL;
	ca.p.nallow = 0;
	ca.p.shared = NULL;
	ca.p.nshared = 0;
	if (limit_attach(&ca.l, ca.mem, ca.len, &ca.p, getpid()) == -1) {
		snprintf(err, errlen, "client_limits: attach: %s",
		    strerror(errno));
		return -1;
	}
	free(ca.state_file);
	ca.state_file = cl->state_file != NULL ? xstrdup(cl->state_file) :
	    NULL;
	if (fresh && ca.state_file != NULL)
		climit_state_read();
	log_info("client_limits: mode %s, rate %g/s, burst %g, %u keys, "
	    "%u bans", conf_limits_mode_name(cl->p.mode), cl->p.rate,
	    cl->p.burst, ca.g.lg_table_size, ca.g.lg_ban_table_size);
	return 0;
}

void
climit_master_reaped(pid_t pid, unsigned slot)
{
	size_t locks = 0, conns = 0;

	if (ca.mem == NULL)
		return;
	/*
	 * 1: a record's lock is held by another dead worker not reaped
	 * yet; proc.c reaps every exited child in one loop, so the next
	 * call (that worker's) releases it. Try once more without it.
	 */
	if (limit_repair(&ca.l, pid, slot, &locks, &conns) == 1)
		(void)limit_repair(&ca.l, 0, slot, NULL, &conns);
	if (locks > 0)
		log_warnx("client_limits: worker %d died holding %zu table "
		    "locks; released", (int)pid, locks);
	if (conns > 0)
		log_info("client_limits: worker %d left %zu counted "
		    "connections; uncounted", (int)pid, conns);
}

struct climit_ids {
	struct climit_banid *v;
	size_t		 n, cap;
};

static int
climit_id_row(const struct limit_row *r, void *arg)
{
	struct climit_ids *ids = arg;
	struct climit_banid *b;

	if (ids->n == ids->cap) {
		ids->cap = ids->cap ? ids->cap * 2 : 64;
		ids->v = xrealloc(ids->v, ids->cap * sizeof(*ids->v));
	}
	b = &ids->v[ids->n++];
	memset(b, 0, sizeof(*b));
	memcpy(b->addr, r->net.lc_addr, 16);
	b->agent = r->agent;
	b->family = r->net.lc_family;
	b->prefix = r->net.lc_prefix;
	b->aggregate = (uint8_t)r->aggregate;
	return 0;
}

static int
climit_id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct climit_banid));
}

/*
 * Once a second: the bans in force now, against those of the last
 * tick; one that is gone ended by time (unbans refresh the list at
 * once, so they are not counted here). log: say so.
 */
static void
climit_ban_expiry(int log)
{
	struct climit_ids ids = { NULL, 0, 0 };
	struct limit_row r;
	char key[96];
	size_t i;

	limit_ban_walk(&ca.l, ev_clock_ms(), climit_id_row, &ids);
	if (ids.n > 1)
		qsort(ids.v, ids.n, sizeof(*ids.v), climit_id_cmp);
	for (i = 0; log && i < ca.nactive; i++) {
		if (ids.n > 0 && bsearch(&ca.active[i], ids.v, ids.n,
		    sizeof(*ids.v), climit_id_cmp) != NULL)
			continue;
		memset(&r, 0, sizeof(r));
		memcpy(r.net.lc_addr, ca.active[i].addr, 16);
		r.net.lc_family = ca.active[i].family;
		r.net.lc_prefix = ca.active[i].prefix;
		r.agent = ca.active[i].agent;
		r.aggregate = ca.active[i].aggregate;
		climit_key_text(&r, key, sizeof(key));
		log_notice("unban: %s (expired)", key);
	}
	free(ca.active);
	ca.active = ids.v;
	ca.nactive = ids.n;
}

void
climit_master_tick(void)
{
	uint64_t now = ev_clock_ms();

	if (ca.mem == NULL)
		return;
	climit_ban_expiry(1);

	if (ca.mem == NULL || ca.state_file == NULL ||
	    now < ca.state_at + CLIMIT_STATE_EVERY_MS)
		return;
	ca.state_at = now;
	climit_state_write();
}

void
climit_master_stop(void)
{
	climit_state_write();
}

int
climit_stats(struct limit_stats *st)
{
	if (ca.mem == NULL)
		return -1;
	limit_stats(&ca.l, ev_clock_ms(), st);
	return 0;
}

void
climit_status(FILE *f)
{
	static const char *const reasons[LIMIT_R_N] = {
		"rate", "connections", "ban"
	};
	struct limit_stats st;
	int r;

	if (climit_stats(&st) == -1)
		return;
	fprintf(f, "client_limits_mode: %s\n", conf_limits_mode_name(
	    ca.p.mode));
	for (r = 0; r < LIMIT_R_N; r++)
		fprintf(f, "client_rejected_%s: %llu\n"
		    "client_rejected_%s_dry_run: %llu\n", reasons[r],
		    (unsigned long long)st.rejected[r][0], reasons[r],
		    (unsigned long long)st.rejected[r][1]);
	for (r = 0; r < LIMIT_C_N; r++)
		fprintf(f, "client_bans_%s: %llu\n", climit_causes[r],
		    (unsigned long long)st.bans[r]);
	fprintf(f, "client_bans_active: %llu\nclient_table_entries: %llu\n"
	    "client_table_capacity: %llu\nclient_evictions: %llu\n"
	    "client_untracked: %llu\n", (unsigned long long)st.bans_active,
	    (unsigned long long)st.entries, (unsigned long long)st.capacity,
	    (unsigned long long)st.evictions,
	    (unsigned long long)st.untracked);
}

/* ---- porter -s ... ------------------------------------------------------ */

static void
climit_key_text(const struct limit_row *r, char *buf, size_t len)
{
	char net[64];

	climit_net_text(&r->net, net, sizeof(net));
	if (r->aggregate || r->agent == 0)
		snprintf(buf, len, "%s", net);
	else
		snprintf(buf, len, "%s ua:%04x", net,
		    (unsigned)(r->agent & 0xffff));
}

static int
climit_ban_row(const struct limit_row *r, void *arg)
{
	struct climit_out *o = arg;
	char key[96];

	if (o->agg_only && (memcmp(r->net.lc_addr, o->want.lc_addr, 16) != 0 ||
	    r->net.lc_family != o->want.lc_family ||
	    r->net.lc_prefix != o->want.lc_prefix))
		return 0;
	if (o->n++ >= o->max)
		return 0;
	climit_key_text(r, key, sizeof(key));
	fprintf(o->f, "%s\t%s\t%s\t%lld\t%u\t%u\n", key,
	    r->cause == LIMIT_C_MANUAL ? "manual" : "auto",
	    climit_causes[r->cause], (long long)(o->wall - r->age), r->left,
	    r->count);
	return 0;
}

/* Rows of porter -s clients, the most indebted first. */
struct climit_rows {
	struct limit_row *v;
	size_t		 n, cap;
};

static int
climit_client_row(const struct limit_row *r, void *arg)
{
	struct climit_rows *rs = arg;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 256;
		rs->v = xrealloc(rs->v, rs->cap * sizeof(*rs->v));
	}
	rs->v[rs->n++] = *r;
	return 0;
}

static int
climit_by_debt(const void *a, const void *b)
{
	const struct limit_row *x = a, *y = b;

	if (x->debt_ms != y->debt_ms)
		return x->debt_ms < y->debt_ms ? 1 : -1;
	return x->conns < y->conns ? 1 : x->conns > y->conns ? -1 : 0;
}

static void
climit_client_line(FILE *f, const struct limit_row *r)
{
	char key[96];

	climit_key_text(r, key, sizeof(key));
	fprintf(f, "%s\t%s\t%s\t%llu\t%llu\t%u\t%u\t%s\n", key,
	    r->aggregate ? "address" : "agent", r->shared ? "shared" : "-",
	    (unsigned long long)r->debt_ms,
	    (unsigned long long)r->penalty_ms, r->conns, r->run_s,
	    r->banned ? "banned" : "-");
}

/*
 * ADDR or ADDR/LEN as the tables key it: the address masked to the
 * configured prefix. A shorter LEN than that cannot be a key: error.
 */
static int
climit_parse_key(const char *s, struct limit_key *k, char *err, size_t len)
{
	struct limit_cidr c;
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	int pfx;

	if (limit_cidr_parse(s, &c) == -1) {
		snprintf(err, len, "error '%s' is not an address or network\n",
		    s);
		return -1;
	}
	pfx = c.lc_family == AF_INET ? ca.p.ipv4_prefix : ca.p.ipv6_prefix;
	if (c.lc_prefix < pfx) {
		snprintf(err, len, "error /%u is wider than the %s prefix "
		    "clients are keyed by (/%d)\n", c.lc_prefix,
		    c.lc_family == AF_INET ? "ipv4" : "ipv6", pfx);
		return -1;
	}
	if (c.lc_family == AF_INET) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		memcpy(&s4.sin_addr, c.lc_addr, 4);
		return limit_key_from_sockaddr(&ca.p, (struct sockaddr *)&s4,
		    sizeof(s4), 0, k);
	}
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	memcpy(&s6.sin6_addr, c.lc_addr, 16);
	return limit_key_from_sockaddr(&ca.p, (struct sockaddr *)&s6,
	    sizeof(s6), 0, k);
}

static void
climit_ctl_client(FILE *f, const char *arg)
{
	struct climit_out o;
	struct limit_info in;
	struct limit_row r;
	struct limit_key k;
	char err[160];
	uint64_t now = ev_clock_ms();

	if (climit_parse_key(arg, &k, err, sizeof(err)) == -1) {
		fputs(err, f);
		return;
	}
	fputs("ok\n", f);
	(void)limit_info(&ca.l, &k, 1, now, &in);
	memset(&r, 0, sizeof(r));
	r.net = k.lk_net;
	r.aggregate = 1;
	r.debt_ms = in.debt_ms;
	r.penalty_ms = in.penalty_ms;
	r.conns = in.conns;
	r.run_s = in.run_s;
	r.shared = in.shared;
	r.banned = in.ban_left > 0;
	climit_client_line(f, &r);
	fprintf(f, "bucket\t%u\ntracked\t%s\n", in.bucket,
	    in.tracked ? "yes" : "no");
	memset(&o, 0, sizeof(o));
	o.f = f;
	o.wall = time(NULL);
	o.max = CLIMIT_LIST_MAX;
	o.agg_only = 1;
	o.want = k.lk_net;
	limit_ban_walk(&ca.l, now, climit_ban_row, &o);
	if (o.n == 0)
		fputs("bans\tnone\n", f);
}

static void
climit_ctl_ban(FILE *f, char *args)
{
	struct limit_key k;
	char err[160], *addr, *secs, *reason, *end;
	unsigned long s;

	addr = strtok_r(args, " \t", &end);
	secs = strtok_r(NULL, " \t", &end);
	reason = end != NULL ? end + strspn(end, " \t") : NULL;
	if (addr == NULL || secs == NULL) {
		fputs("error usage: ban ADDR[/LEN] SECONDS [REASON]\n", f);
		return;
	}
	if (climit_parse_key(addr, &k, err, sizeof(err)) == -1) {
		fputs(err, f);
		return;
	}
	errno = 0;
	s = strtoul(secs, &end, 10);
	if (errno != 0 || *end != '\0' || s < 1 || s > ca.manual_max) {
		fprintf(f, "error SECONDS must be 1..%u\n", ca.manual_max);
		return;
	}
	if (limit_ban(&ca.l, &k, (uint32_t)s, ev_clock_ms()) == -1) {
		fprintf(f, "error %s\n", errno == ENOSPC ? "the ban table's "
		    "bucket for this address holds only manual bans" :
		    strerror(errno));
		return;
	}
	climit_net_text(&k.lk_net, err, sizeof(err));
	log_warnx("ban: %s for %lu s: porter -s ban%s%s", err, s,
	    reason != NULL && *reason ? ": " : "", reason ? reason : "");
	fprintf(f, "ok banned %s for %lu s\n", err, s);
	climit_ban_expiry(1);
	climit_state_write();
}

/* unban ADDR[/LEN] | all: each ban lifted is printed first. */
static void
climit_ctl_unban(FILE *f, const char *arg)
{
	struct climit_out o;
	struct climit_rows rs;
	struct limit_key k;
	char err[160];
	uint64_t now = ev_clock_ms();
	size_t i;
	int n = 0;

	memset(&o, 0, sizeof(o));
	o.wall = time(NULL);
	o.max = CLIMIT_LIST_MAX;
	memset(&rs, 0, sizeof(rs));
	memset(&k, 0, sizeof(k));
	if (strcmp(arg, "all") != 0) {
		if (climit_parse_key(arg, &k, err, sizeof(err)) == -1) {
			fputs(err, f);
			return;
		}
		o.agg_only = 1;
		o.want = k.lk_net;
	}
	fputs("ok\n", f);
	o.f = f;
	/* Listed, then lifted: the walk holds locks unban takes. */
	limit_ban_walk(&ca.l, now, climit_ban_row, &o);
	if (!o.agg_only) {
		limit_ban_walk(&ca.l, now, climit_client_row, &rs);
		for (i = 0; i < rs.n; i++) {
			memset(&k, 0, sizeof(k));
			k.lk_net = rs.v[i].net;
			k.lk_host = rs.v[i].net;
			n += limit_unban(&ca.l, &k, now);
		}
		free(rs.v);
	} else
		n = limit_unban(&ca.l, &k, now);
	climit_net_text(&k.lk_net, err, sizeof(err));
	log_notice("unban: %s: %d bans lifted (porter -s unban)",
	    o.agg_only ? err : "all", n);
	climit_ban_expiry(0);
	climit_state_write();
}

char *
climit_ctl(const char *line)
{
	struct climit_rows rs;
	struct climit_out o;
	char *buf = NULL, *args = NULL, cmd[32];
	const char *sp;
	size_t len = 0, i, max;
	FILE *f;

	sp = strchr(line, ' ');
	len = sp != NULL ? (size_t)(sp - line) : strlen(line);
	if (len >= sizeof(cmd))
		return NULL;
	memcpy(cmd, line, len);
	cmd[len] = '\0';
	if (strcmp(cmd, "bans") != 0 && strcmp(cmd, "clients") != 0 &&
	    strcmp(cmd, "client") != 0 && strcmp(cmd, "ban") != 0 &&
	    strcmp(cmd, "unban") != 0 && strcmp(cmd, "limits-reset") != 0)
		return NULL;
	if (ca.mem == NULL)
		return xstrdup("error client_limits is off\n");
	args = xstrdup(sp != NULL ? sp + 1 + strspn(sp + 1, " ") : "");
	len = 0;
	if ((f = open_memstream(&buf, &len)) == NULL) {
		free(args);
		return NULL;
	}
	memset(&o, 0, sizeof(o));
	o.f = f;
	o.wall = time(NULL);
	o.max = CLIMIT_LIST_MAX;
	if (strcmp(cmd, "bans") == 0) {
		fputs("ok\n", f);
		limit_ban_walk(&ca.l, ev_clock_ms(), climit_ban_row, &o);
		if (o.n > o.max)
			fprintf(f, "... %zu more\n", o.n - o.max);
	} else if (strcmp(cmd, "clients") == 0) {
		max = args[0] ? strtoul(args, NULL, 10) : 20;
		if (max < 1 || max > CLIMIT_LIST_MAX)
			max = CLIMIT_LIST_MAX;
		memset(&rs, 0, sizeof(rs));
		limit_client_walk(&ca.l, ev_clock_ms(), climit_client_row, &rs);
		qsort(rs.v, rs.n, sizeof(*rs.v), climit_by_debt);
		fputs("ok\n", f);
		for (i = 0; i < rs.n && i < max; i++)
			climit_client_line(f, &rs.v[i]);
		if (rs.n > max && max == CLIMIT_LIST_MAX)
			fprintf(f, "... %zu more\n", rs.n - max);
		free(rs.v);
	} else if (strcmp(cmd, "client") == 0)
		climit_ctl_client(f, args);
	else if (strcmp(cmd, "ban") == 0)
		climit_ctl_ban(f, args);
	else if (strcmp(cmd, "unban") == 0)
		climit_ctl_unban(f, args);
	else {
		i = limit_reset(&ca.l);
		log_notice("client_limits: counters of %zu keys reset "
		    "(porter -s limits-reset)", i);
		fprintf(f, "ok %zu keys reset\n", i);
	}
	free(args);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
