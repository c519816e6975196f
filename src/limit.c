/*
 * limit.c - per-client rate limits and temporary bans: the policy
 * behind limit.h. Parameters, request costs, GCRA on the fine and the
 * address-wide key, shared-address detection, the evidence that starts
 * a ban (probe points, runs of ignored 429s), the modes and the
 * rejection counters. Keys are limit_key.c's, the tables limit_table.c's
 * and limit_ban.c's (limit_int.h). See limit.h for the contract and
 * /work/shared/design/limits-metrics.md part A for the reasons.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "limit_int.h"

#define LIMIT_AGENT_WINDOW 600	/* seconds: agents are counted over 1-2 */

/* ---- parameters ------------------------------------------------------ */

void
limit_params_default(struct limit_params *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = LIMIT_OFF;
	p->ipv4_prefix = 32;
	p->ipv6_prefix = 64;
	p->split_by_agent = 1;
	p->rate = 20.0;
	p->burst = 400.0;
	p->asset_weight = 0.25;
	p->aggregate_factor = 4.0;
	p->auto_shared = 1;
	p->shared_agents = 4;
	p->probe_points = 30;
	p->probe_window = 300;
	p->ignore_seconds = 120;
	p->ban_time = 600;
	p->ban_factor = 2.0;
	p->ban_max_time = 14400;
	p->ban_shared_max_time = 900;
	p->ban_memory = 86400;
}

int
limit_params_prepare(struct limit_params *p, char *err, size_t errsz)
{
	const char	*bad = NULL;
	double		 f, T;
	unsigned	 pts;
	int		 lvl;

	if (p->mode != LIMIT_OFF && p->mode != LIMIT_DRY_RUN &&
	    p->mode != LIMIT_ENFORCE)
		bad = "mode";
	else if (p->ipv4_prefix < 8 || p->ipv4_prefix > 32)
		bad = "ipv4_prefix: 8..32";
	else if (p->ipv6_prefix < 32 || p->ipv6_prefix > 128)
		bad = "ipv6_prefix: 32..128";
	else if (!(p->rate >= 0.001 && p->rate <= 1e6))
		bad = "rate: 0.001..1000000";
	else if (!(p->burst >= 1.0 && p->burst <= 1e7))
		bad = "burst: 1..10000000";
	else if (!(p->asset_weight > 0.0 && p->asset_weight <= 1.0))
		bad = "asset_weight: above 0, at most 1";
	else if (!(p->aggregate_factor >= 1.0 && p->aggregate_factor <= 100.0))
		bad = "aggregate_factor: 1..100";
	else if (p->per_address_connections > 65535)
		bad = "per_address_connections: 0..65535";
	else if (p->shared_agents < 2 || p->shared_agents > 64)
		bad = "shared_agents: 2..64";
	else if (p->probe_points < 1 || p->probe_points > 100000)
		bad = "probe_points: 1..100000";
	else if (p->probe_window < 1 || p->probe_window > 86400)
		bad = "probe_window: 1..86400";
	else if (p->ignore_seconds < 1 || p->ignore_seconds > 86400)
		bad = "ignore_seconds: 1..86400";
	else if (p->ban_time < 60 || p->ban_time > 86400)
		bad = "ban.time: 60..86400";
	else if (!(p->ban_factor >= 1.0 && p->ban_factor <= 16.0))
		bad = "ban.factor: 1..16";
	else if (p->ban_max_time < p->ban_time || p->ban_max_time > 604800)
		bad = "ban.max_time: ban.time..604800";
	else if (p->ban_shared_max_time < 60 ||
	    p->ban_shared_max_time > p->ban_max_time)
		bad = "ban.shared_max_time: 60..ban.max_time";
	else if (p->ban_memory < 60 || p->ban_memory > 30 * 86400)
		bad = "ban.memory: 60..2592000";
	if (bad != NULL) {
		snprintf(err, errsz, "client_limits: %s", bad);
		return -1;
	}

	/*
	 * Integer microseconds from here on: level l has rate x f and
	 * burst x f; a page costs one emission interval, tau is burst of
	 * them. Rounding the interval down and tau to nearest keeps
	 * "exactly burst requests at once" exact.
	 */
	for (lvl = 0; lvl < 3; lvl++) {
		f = lvl == 0 ? 1.0 : lvl == 1 ? p->aggregate_factor :
		    p->aggregate_factor * p->aggregate_factor;
		T = 1e6 / (p->rate * f);
		p->lp_inc[lvl][LIMIT_COST_PAGE] = T < 1 ? 1 : (uint64_t)T;
		p->lp_inc[lvl][LIMIT_COST_ASSET] =
		    T * p->asset_weight < 1 ? 1 : (uint64_t)(T * p->asset_weight);
		p->lp_tau[lvl] = (uint64_t)(p->burst * f * T + 0.5);
	}
	for (lvl = 0; lvl < 2; lvl++) {
		pts = lvl == 0 ? p->probe_points :
		    (unsigned)(p->probe_points * p->aggregate_factor + 0.5);
		p->lp_pen_inc[lvl] = (uint64_t)p->probe_window * 1000000 / pts;
		p->lp_pen_tau[lvl] = p->lp_pen_inc[lvl] * pts;
	}
	return 0;
}

/* ---- costs ----------------------------------------------------------- */

int
limit_mime_is_asset(const char *type, size_t len)
{
	static const char *const assets[] = {
		"text/css", "text/javascript", "application/javascript",
		"application/x-javascript", "application/ecmascript",
		"application/wasm", "application/vnd.ms-fontobject",
		"application/font-", "application/x-font-",
		"image/", "font/", "audio/", "video/",
	};
	size_t	 i, n;

	while (len > 0 && (*type == ' ' || *type == '\t'))
		type++, len--;
	for (i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
		n = strlen(assets[i]);
		if (len < n || strncasecmp(type, assets[i], n) != 0)
			continue;
		/* a whole type must end there; a prefix ending in / or - not */
		if (assets[i][n - 1] == '/' || assets[i][n - 1] == '-' ||
		    len == n || type[n] == ';' || type[n] == ' ' ||
		    type[n] == '\t')
			return 1;
	}
	return 0;
}

/* ---- shared detection, verdicts -------------------------------------- */

/*
 * An address-wide entry is seen at n. Its agents are counted in two
 * 32-bit bitmaps, this window's (high half) and the last one's, so the
 * count covers one to two LIMIT_AGENT_WINDOWs with no timestamp of its
 * own: le_seen tells which window the bitmaps belong to. A bitmap is a
 * cheap distinct count, good up to a handful of agents.
 */
static void
limit_agents_seen(struct limit_entry *e, const struct limit_now *n)
{
	uint32_t	 was = e->le_seen / LIMIT_AGENT_WINDOW;
	uint32_t	 now = n->s / LIMIT_AGENT_WINDOW;

	if (now == was + 1)
		e->le_agent >>= 32;
	else if (now != was)
		e->le_agent = 0;
	e->le_seen = n->s;
}

static int
limit_allowed(const struct limit_params *p, const struct limit_key *k)
{
	return p->mode == LIMIT_OFF ||
	    limit_cidr_any(p->allow, p->nallow, &k->lk_host);
}

static void
limit_count_reject(struct limit *l, enum limit_reason r)
{
	ATOMIC_ADD(&l->l_shm->ls_rejected[r][l->l_p->mode == LIMIT_DRY_RUN],
	    1);
}

static void
limit_banned_now(struct limit_result *res, enum limit_cause cause,
    uint32_t len, int agg)
{
	res->banned_now = 1;
	res->cause = cause;
	res->ban_seconds = len;
	res->ban_aggregate = agg;
}

/* ---- per connection and per request ---------------------------------- */

int
limit_conn_open(struct limit *l, const struct limit_key *k,
    uint64_t now_ms, uint32_t slot, uint32_t pos, struct limit_result *res)
{
	const struct limit_params *p = l->l_p;
	struct limit_shm	*s = l->l_shm;
	struct limit_ekey	 agg;
	struct limit_now	 n;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	uint64_t		 until;
	uint32_t		 b;
	int			 counted = 0;

	memset(res, 0, sizeof(*res));
	if (limit_allowed(p, k)) {
		res->verdict = LIMIT_UNTRACKED;
		return 0;
	}
	limit_now(s, now_ms, &n);
	limit_ekey(p, k, 1, &agg);
	if ((until = limit_ban_until(l, &agg, &n, NULL)) != 0) {
		res->verdict = LIMIT_BANNED;
		res->retry_after = limit_secs_until(n.ms, until);
		limit_count_reject(l, LIMIT_R_BAN);
		if (p->mode == LIMIT_ENFORCE)
			goto done;
	}
	if (p->per_address_connections == 0 || slot >= s->ls_geom.lg_slots ||
	    pos >= s->ls_geom.lg_ledger_size)
		goto done;
	b = limit_bucket(s, &agg);
	lk = limit_shard(s, b);
	limit_lock(lk, l->l_owner);
	if ((e = limit_find(l, &agg, b, 1, NULL, &n)) == NULL) {
		res->untracked = 1;
		if (res->verdict == LIMIT_PASS)
			res->verdict = LIMIT_UNTRACKED;
		goto unlock;
	}
	limit_agents_seen(e, &n);
	if (e->le_conns >= p->per_address_connections) {
		if (res->verdict == LIMIT_PASS) {
			res->verdict = LIMIT_CONNECTIONS;
			res->retry_after = 1;
		}
		limit_count_reject(l, LIMIT_R_CONNECTIONS);
		if (p->mode == LIMIT_ENFORCE)
			goto unlock;
	}
	/*
	 * Ledger before count: a worker dying between the two leaves a
	 * count one low (lenient), never one that stays high for good.
	 */
	limit_ledger(s, slot)[pos] = (uint32_t)(e - limit_entries(s)) + 1;
	if (e->le_conns < UINT16_MAX)
		e->le_conns++;
	counted = 1;
unlock:
	limit_unlock(lk);
done:
	res->block = p->mode == LIMIT_ENFORCE &&
	    res->verdict != LIMIT_PASS && res->verdict != LIMIT_UNTRACKED;
	return counted;
}

void
limit_conn_close(struct limit *l, uint32_t slot, uint32_t pos)
{
	(void)limit_ledger_drop(l, slot, pos, 0);
}

/*
 * e refused a request and told it to wait ra seconds. A run of refusals
 * goes on while the client comes back before the wait it was told, so
 * a client sending faster than the rate stays in its run even though
 * GCRA lets a share of its requests through; one that waits as told
 * starts afresh. Returns 1 when the run reached ignore_seconds.
 */
static int
limit_run_refused(const struct limit_params *p, struct limit_entry *e,
    uint32_t ra, const struct limit_now *n)
{
	/* run start rounded up, so a ban needs the full ignore_seconds */
	if (!(e->le_flags & LF_RUN) || n->ms >= (uint64_t)e->le_wait * 100) {
		e->le_flags |= LF_RUN;
		e->le_run = (uint32_t)((n->ms + 999) / 1000);
	}
	/* rounded down: coming back up to 0.1 s early still counts as
	 * having waited, which errs on the side of no ban */
	e->le_wait = (uint32_t)((n->ms + (uint64_t)ra * 1000) / 100);
	if (n->s >= e->le_run && n->s - e->le_run >= p->ignore_seconds) {
		e->le_flags &= (uint8_t)~LF_RUN;
		return 1;
	}
	return 0;
}

static void
limit_run_passed(struct limit_entry *e, const struct limit_now *n)
{
	if ((e->le_flags & LF_RUN) && n->ms >= (uint64_t)e->le_wait * 100)
		e->le_flags &= (uint8_t)~LF_RUN;
}

/* Debt after taking inc at now, and the wait beyond tau (0: fits). */
static uint64_t
limit_gcra(uint64_t tat, uint64_t inc, uint64_t tau, uint64_t now_us,
    uint64_t *wait_us)
{
	uint64_t	 t = (tat > now_us ? tat : now_us) + inc;

	*wait_us = t - now_us > tau ? t - now_us - tau : 0;
	return t;
}

void
limit_check(struct limit *l, const struct limit_key *k,
    enum limit_cost cost, uint64_t now_ms, struct limit_result *res)
{
	const struct limit_params *p = l->l_p;
	struct limit_shm	*s = l->l_shm;
	struct limit_pair	 pr;
	struct limit_now	 n;
	struct limit_entry	*fe, *ae;
	uint64_t		 fu, au, ftat = 0, atat = 0, fw = 0, aw = 0;
	uint32_t		 len;
	int			 shared, alvl, bits;

	memset(res, 0, sizeof(*res));
	if (limit_allowed(p, k)) {
		res->verdict = LIMIT_UNTRACKED;
		return;
	}
	limit_now(s, now_ms, &n);
	shared = limit_cidr_any(p->shared, p->nshared, &k->lk_host);
	limit_pair_lock(l, k, &pr);
	fe = limit_find(l, &pr.fine, pr.fb, 1, NULL, &n);
	ae = limit_find(l, &pr.agg, pr.ab, 1, fe, &n);
	res->untracked = fe == NULL || ae == NULL;
	if (ae != NULL) {
		limit_agents_seen(ae, &n);
		ae->le_agent |= 1ULL << (32 + (k->lk_agent >> 59));
		bits = __builtin_popcountll((ae->le_agent >> 32) |
		    (ae->le_agent & 0xffffffffU));
		if (p->auto_shared && bits >= (int)p->shared_agents)
			shared = 1;
		ae->le_flags = (uint8_t)((ae->le_flags & ~LF_SHARED) |
		    (shared ? LF_SHARED : 0));
	}
	if (fe != NULL)
		fe->le_seen = n.s;
	res->shared = shared;

	/* Bans first: a banned key's requests change no bucket. */
	fu = limit_ban_until(l, &pr.fine, &n, NULL);
	au = limit_ban_until(l, &pr.agg, &n, NULL);
	if (fu != 0 || au != 0) {
		res->verdict = LIMIT_BANNED;
		res->retry_after = limit_secs_until(n.ms, fu > au ? fu : au);
		limit_count_reject(l, LIMIT_R_BAN);
		goto unlock;
	}

	alvl = shared ? 2 : 1;
	if (fe != NULL)
		ftat = limit_gcra(fe->le_tat, p->lp_inc[0][cost], p->lp_tau[0],
		    n.us, &fw);
	if (ae != NULL)
		atat = limit_gcra(ae->le_tat, p->lp_inc[alvl][cost],
		    p->lp_tau[alvl], n.us, &aw);
	if (fw == 0 && aw == 0) {
		if (fe != NULL) {
			fe->le_tat = ftat;
			limit_run_passed(fe, &n);
		}
		if (ae != NULL) {
			ae->le_tat = atat;
			limit_run_passed(ae, &n);
		}
		res->verdict = res->untracked ? LIMIT_UNTRACKED : LIMIT_PASS;
		goto unlock;
	}

	/* Refused: neither bucket moves; the one(s) over start a run. */
	res->verdict = LIMIT_RATE;
	res->retry_after = limit_secs_until(0, ((fw > aw ? fw : aw) + 999) /
	    1000);
	limit_count_reject(l, LIMIT_R_RATE);
	if (fw != 0 && limit_run_refused(p, fe, res->retry_after, &n) &&
	    (len = limit_ban_start(l, &pr.fine, shared, LIMIT_C_IGNORED, 0,
	    &n)) != 0) {
		fe->le_flags |= LF_BANNED;
		limit_banned_now(res, LIMIT_C_IGNORED, len, 0);
	}
	if (aw != 0 && limit_run_refused(p, ae, res->retry_after, &n) &&
	    (len = limit_ban_start(l, &pr.agg, shared, LIMIT_C_IGNORED, 0,
	    &n)) != 0) {
		ae->le_flags |= LF_BANNED;
		limit_banned_now(res, LIMIT_C_IGNORED, len, 1);
	}
unlock:
	limit_pair_unlock(&pr);
	res->block = p->mode == LIMIT_ENFORCE &&
	    (res->verdict == LIMIT_RATE || res->verdict == LIMIT_BANNED);
}

/* One probe point on e unless ph is among its recent paths; 1: ban. */
static int
limit_probe(const struct limit_params *p, struct limit_entry *e,
    uint16_t ph, int lvl, const struct limit_now *n)
{
	uint64_t	 wait;
	int		 i;

	for (i = 0; i < LIMIT_PATHS; i++)
		if (e->le_paths[i] == ph)
			return 0;
	memmove(e->le_paths + 1, e->le_paths,
	    (LIMIT_PATHS - 1) * sizeof(e->le_paths[0]));
	e->le_paths[0] = ph;
	e->le_pen = limit_gcra(e->le_pen, p->lp_pen_inc[lvl], p->lp_pen_tau[lvl],
	    n->us, &wait);
	/* the bucket is full at exactly probe_points points */
	if (e->le_pen - n->us >= p->lp_pen_tau[lvl]) {
		e->le_pen = 0;
		return 1;
	}
	return 0;
}

void
limit_finish(struct limit *l, const struct limit_key *k, int status,
    enum limit_cost cost, const char *path, size_t pathlen,
    uint64_t now_ms, struct limit_result *res)
{
	const struct limit_params *p = l->l_p;
	struct limit_shm	*s = l->l_shm;
	struct limit_pair	 pr;
	struct limit_now	 n;
	struct limit_entry	*fe, *ae;
	uint32_t		 len;
	uint16_t		 ph;
	int			 shared;

	/* a banned request earns nothing: in dry-run it is served, and
	 * enforce would never have seen its status */
	if (limit_allowed(p, k) || cost == LIMIT_COST_ASSET ||
	    res->verdict == LIMIT_BANNED ||
	    (status != 400 && status != 403 && status != 404))
		return;
	limit_now(s, now_ms, &n);
	ph = (uint16_t)limit_siphash(s->ls_k0, s->ls_k1 ^ 0x50, path, pathlen);
	if (ph == 0)
		ph = 1;
	limit_pair_lock(l, k, &pr);
	fe = limit_find(l, &pr.fine, pr.fb, 0, NULL, &n);
	ae = limit_find(l, &pr.agg, pr.ab, 0, NULL, &n);
	shared = (ae != NULL && (ae->le_flags & LF_SHARED)) ||
	    limit_cidr_any(p->shared, p->nshared, &k->lk_host);
	if (fe != NULL && limit_probe(p, fe, ph, 0, &n) &&
	    (len = limit_ban_start(l, &pr.fine, shared, LIMIT_C_PROBE, 0,
	    &n)) != 0) {
		fe->le_flags |= LF_BANNED;
		limit_banned_now(res, LIMIT_C_PROBE, len, 0);
	}
	if (ae != NULL && limit_probe(p, ae, ph, 1, &n) &&
	    (len = limit_ban_start(l, &pr.agg, shared, LIMIT_C_PROBE, 0,
	    &n)) != 0) {
		ae->le_flags |= LF_BANNED;
		limit_banned_now(res, LIMIT_C_PROBE, len, 1);
	}
	limit_pair_unlock(&pr);
}

/* ---- admin ----------------------------------------------------------- */

int
limit_info(struct limit *l, const struct limit_key *k, int aggregate,
    uint64_t now_ms, struct limit_info *out)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_ekey	 ek;
	struct limit_now	 n;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	uint64_t		 until;

	memset(out, 0, sizeof(*out));
	limit_now(s, now_ms, &n);
	limit_ekey(l->l_p, k, aggregate, &ek);
	out->bucket = limit_bucket(s, &ek);
	lk = limit_shard(s, out->bucket);
	limit_lock(lk, l->l_owner);
	if ((e = limit_find(l, &ek, out->bucket, 0, NULL, &n)) != NULL) {
		out->tracked = 1;
		out->debt_ms = e->le_tat > n.us ? (e->le_tat - n.us) / 1000 : 0;
		out->penalty_ms = e->le_pen > n.us ?
		    (e->le_pen - n.us) / 1000 : 0;
		out->conns = e->le_conns;
		out->shared = (e->le_flags & LF_SHARED) != 0;
		out->banned_flag = (e->le_flags & LF_BANNED) != 0;
		out->run_s = (e->le_flags & LF_RUN) && n.s > e->le_run ?
		    n.s - e->le_run : 0;
	}
	until = limit_ban_until(l, &ek, &n, &out->ban_count);
	out->ban_left = until != 0 ? limit_secs_until(n.ms, until) : 0;
	limit_unlock(lk);
	return out->tracked;
}

int
limit_unban(struct limit *l, const struct limit_key *k, uint64_t now_ms)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_ekey	 ek;
	struct limit_now	 n;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	uint32_t		 b;
	int			 whole = k->lk_agent == 0;

	limit_now(s, now_ms, &n);
	limit_ekey(l->l_p, k, whole, &ek);
	b = limit_bucket(s, &ek);
	lk = limit_shard(s, b);
	limit_lock(lk, l->l_owner);
	/* a fresh start: no probe points, no run of refusals */
	if ((e = limit_find(l, &ek, b, 0, NULL, &n)) != NULL) {
		e->le_pen = 0;
		e->le_flags &= (uint8_t)~(LF_RUN | LF_BANNED);
		memset(e->le_paths, 0, sizeof(e->le_paths));
	}
	limit_unlock(lk);
	return limit_ban_lift(l, &ek, whole, &n);
}
