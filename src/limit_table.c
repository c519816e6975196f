/*
 * limit_table.c - the shared region behind limit.h: its layout,
 * formatting and attaching; the client table (one 64-byte entry a key,
 * LIMIT_WAYS to a bucket, a lock word with its owner's pid a shard)
 * with its eviction that never drops a pinned entry; the connection
 * ledger; the repair after a dead worker; and the stats, read without
 * locks. What is stored is the policy's (limit.c); the bans have their
 * own table (limit_ban.c).
 */
#include <sys/types.h>

#include <errno.h>
#include <string.h>

#include "limit_int.h"

#define LIMIT_MAGIC	0x316d696c72657470ULL	/* "ptrelim1" */
#define LIMIT_SHARDS	256	/* lock words per table, at most */
#define LIMIT_REPAIR_TRIES 4096	/* a repair gives up on a busy lock after */

/* ---- the region ------------------------------------------------------ */

static size_t
limit_round(size_t n)
{
	return (n + LIMIT_LINE - 1) & ~(size_t)(LIMIT_LINE - 1);
}

static uint32_t
limit_nshards(uint32_t nbuckets)
{
	return nbuckets < LIMIT_SHARDS ? nbuckets : LIMIT_SHARDS;
}

/* Offsets of each part for g; returns the total, or 0 if g is bad. */
static size_t
limit_layout(const struct limit_geometry *g, struct limit_shm *s)
{
	size_t	 off;

	if (g->lg_table_size < 64 || g->lg_table_size > (1u << 24) ||
	    g->lg_table_size % LIMIT_WAYS != 0 ||
	    g->lg_ban_table_size < 64 || g->lg_ban_table_size > (1u << 20) ||
	    g->lg_ban_table_size % LIMIT_WAYS != 0 ||
	    g->lg_slots > 4096 || g->lg_ledger_size > (1u << 20))
		return 0;
	memset(s, 0, sizeof(*s));
	s->ls_geom = *g;
	s->ls_nbuckets = g->lg_table_size / LIMIT_WAYS;
	s->ls_nban_buckets = g->lg_ban_table_size / LIMIT_WAYS;
	s->ls_nshards = limit_nshards(s->ls_nbuckets);
	s->ls_nban_shards = limit_nshards(s->ls_nban_buckets);
	off = limit_round(sizeof(*s));
	s->ls_off_locks = off;
	off += (size_t)s->ls_nshards * sizeof(struct limit_lock);
	s->ls_off_ban_locks = off;
	off += (size_t)s->ls_nban_shards * sizeof(struct limit_lock);
	s->ls_off_entries = off;
	off += (size_t)g->lg_table_size * sizeof(struct limit_entry);
	s->ls_off_bans = off;
	off += limit_round((size_t)g->lg_ban_table_size *
	    sizeof(struct limit_banent));
	s->ls_off_ledger = off;
	off += limit_round((size_t)g->lg_slots * g->lg_ledger_size * 4);
	s->ls_size = off;
	return off;
}

size_t
limit_size(const struct limit_geometry *g)
{
	struct limit_shm	 s;

	return limit_layout(g, &s);
}

int
limit_init(void *mem, size_t len, const struct limit_geometry *g,
    const uint8_t seed[16], uint64_t now_ms)
{
	struct limit_shm	 s;
	size_t			 need = limit_layout(g, &s);

	if (need == 0 || mem == NULL || len < need ||
	    ((uintptr_t)mem & (LIMIT_LINE - 1)) != 0) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&s.ls_k0, seed, 8);
	memcpy(&s.ls_k1, seed + 8, 8);
	s.ls_epoch_ms = now_ms;
	s.ls_magic = LIMIT_MAGIC;
	memset(mem, 0, need);
	memcpy(mem, &s, sizeof(s));
	return 0;
}

int
limit_attach(struct limit *l, void *mem, size_t len,
    const struct limit_params *p, pid_t self)
{
	struct limit_shm	*s = mem;

	if (mem == NULL || len < sizeof(*s) || s->ls_magic != LIMIT_MAGIC ||
	    s->ls_size > len || self <= 0) {
		errno = EINVAL;
		return -1;
	}
	l->l_shm = s;
	l->l_p = p;
	l->l_owner = (uint32_t)self;
	return 0;
}

/* ---- the client table (caller holds the shard lock) ------------------ */

uint32_t
limit_bucket(struct limit_shm *s, const struct limit_ekey *ek)
{
	return (uint32_t)(limit_ekey_hash(s, ek) % s->ls_nbuckets);
}

static int
limit_entry_is(const struct limit_entry *e, const struct limit_ekey *ek)
{
	return (e->le_flags & LF_KEYMASK) == ek->flags &&
	    e->le_prefix == ek->prefix &&
	    ((ek->flags & LF_AGG) || e->le_agent == ek->agent) &&
	    memcmp(e->le_addr, ek->addr, 16) == 0;
}

/* Is e held in place: open connections, or a ban still in force? */
static int
limit_pinned(struct limit *l, struct limit_entry *e,
    const struct limit_now *n)
{
	struct limit_ekey	 ek;

	if (e->le_conns > 0)
		return 1;
	if (!(e->le_flags & LF_BANNED))
		return 0;
	memset(&ek, 0, sizeof(ek));
	memcpy(ek.addr, e->le_addr, 16);
	ek.prefix = e->le_prefix;
	ek.flags = e->le_flags & LF_KEYMASK;
	ek.agent = (e->le_flags & LF_AGG) ? 0 : e->le_agent;
	if (limit_ban_until(l, &ek, n, NULL) != 0)
		return 1;
	e->le_flags &= (uint8_t)~LF_BANNED;	/* served its time */
	return 0;
}

struct limit_entry *
limit_find(struct limit *l, const struct limit_ekey *ek, uint32_t bucket,
    int create, const struct limit_entry *keep, const struct limit_now *n)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_entry	*bk = &limit_entries(s)[(size_t)bucket * LIMIT_WAYS];
	struct limit_entry	*e, *victim = NULL;
	uint64_t		 debt, vdebt = 0;
	int			 i;

	for (i = 0; i < LIMIT_WAYS; i++)
		if (limit_entry_is(&bk[i], ek))
			return &bk[i];
	if (!create)
		return NULL;
	for (i = 0; i < LIMIT_WAYS; i++) {
		e = &bk[i];
		if (!(e->le_flags & LF_USED)) {
			victim = e;
			break;
		}
		if (e == keep || limit_pinned(l, e, n))
			continue;
		debt = e->le_tat > n->us ? e->le_tat - n->us : 0;
		if (e->le_pen > n->us)
			debt += e->le_pen - n->us;
		if (victim == NULL || debt < vdebt ||
		    (debt == vdebt && e->le_seen < victim->le_seen)) {
			victim = e;
			vdebt = debt;
		}
	}
	if (victim == NULL) {
		ATOMIC_ADD(&s->ls_untracked, 1);
		return NULL;
	}
	if (victim->le_flags & LF_USED)
		ATOMIC_ADD(&s->ls_evictions, 1);
	else
		ATOMIC_ADD(&s->ls_entries, 1);
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->le_addr, ek->addr, 16);
	victim->le_prefix = ek->prefix;
	victim->le_flags = ek->flags;
	victim->le_agent = ek->agent;
	victim->le_seen = n->s;
	return victim;
}

void
limit_pair_lock(struct limit *l, const struct limit_key *k,
    struct limit_pair *pr)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_lock	*t;

	limit_ekey(l->l_p, k, 0, &pr->fine);
	limit_ekey(l->l_p, k, 1, &pr->agg);
	if (k->lk_hinted) {
		pr->fb = k->lk_fb;
		pr->ab = k->lk_ab;
	} else {
		pr->fb = limit_bucket(s, &pr->fine);
		pr->ab = limit_bucket(s, &pr->agg);
	}
	pr->lk[0] = limit_shard(s, pr->fb);
	pr->lk[1] = limit_shard(s, pr->ab);
	if (pr->lk[0] == pr->lk[1])
		pr->lk[1] = NULL;
	else if (pr->lk[0] > pr->lk[1]) {
		t = pr->lk[0];
		pr->lk[0] = pr->lk[1];
		pr->lk[1] = t;
	}
	limit_lock(pr->lk[0], l->l_owner);
	if (pr->lk[1] != NULL)
		limit_lock(pr->lk[1], l->l_owner);
}

void
limit_key_hint(struct limit *l, struct limit_key *k)
{
	struct limit_ekey	 ek;

	limit_ekey(l->l_p, k, 0, &ek);
	k->lk_fb = limit_bucket(l->l_shm, &ek);
	limit_ekey(l->l_p, k, 1, &ek);
	k->lk_ab = limit_bucket(l->l_shm, &ek);
	k->lk_hinted = 1;
}

void
limit_pair_unlock(struct limit_pair *pr)
{
	if (pr->lk[1] != NULL)
		limit_unlock(pr->lk[1]);
	limit_unlock(pr->lk[0]);
}

/* ---- the connection ledger, repair after a dead worker --------------- */

int
limit_ledger_drop(struct limit *l, uint32_t slot, uint32_t pos,
    unsigned tries)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	uint32_t		*led, idx;

	if (slot >= s->ls_geom.lg_slots || pos >= s->ls_geom.lg_ledger_size)
		return 0;
	led = &limit_ledger(s, slot)[pos];
	if ((idx = *led) == 0 || idx > s->ls_geom.lg_table_size)
		return 0;
	idx--;
	lk = limit_shard(s, idx / LIMIT_WAYS);
	if (!limit_lock_tries(lk, l->l_owner, tries))
		return -1;
	e = &limit_entries(s)[idx];
	if (e->le_conns > 0)
		e->le_conns--;
	*led = 0;
	limit_unlock(lk);
	return 1;
}

int
limit_repair(struct limit *l, pid_t pid, uint32_t slot, size_t *locks,
    size_t *conns)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_lock	*lks[2] = { limit_locks(s), limit_ban_locks(s) };
	uint32_t		 nlk[2] = { s->ls_nshards, s->ls_nban_shards };
	uint32_t		 i, j, want;
	size_t			 released = 0, dropped = 0;
	int			 left = 0, r;

	for (j = 0; j < 2 && pid > 0; j++)
		for (i = 0; i < nlk[j]; i++) {
			want = (uint32_t)pid;
			/* only the dead pid's word: a live owner keeps it */
			if (__atomic_compare_exchange_n(&lks[j][i].lk_owner,
			    &want, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
				released++;
		}
	/*
	 * Bounded: another worker may have died holding a lock too and
	 * not be reaped yet; the master must not wait for it here.
	 */
	if (slot < s->ls_geom.lg_slots)
		for (i = 0; i < s->ls_geom.lg_ledger_size; i++) {
			r = limit_ledger_drop(l, slot, i, LIMIT_REPAIR_TRIES);
			if (r < 0)
				left = 1;
			else
				dropped += (size_t)r;
		}
	if (locks != NULL)
		*locks = released;
	if (conns != NULL)
		*conns = dropped;
	return left;
}

/* ---- stats ----------------------------------------------------------- */

void
limit_stats(struct limit *l, uint64_t now_ms, struct limit_stats *st)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_now	 n;
	struct limit_entry	*e;
	struct limit_banent	*bk;
	uint32_t		 b;
	int			 r;

	memset(st, 0, sizeof(*st));
	limit_now(s, now_ms, &n);
	for (r = 0; r < LIMIT_R_N; r++) {
		st->rejected[r][0] = ATOMIC_LOAD(&s->ls_rejected[r][0]);
		st->rejected[r][1] = ATOMIC_LOAD(&s->ls_rejected[r][1]);
	}
	for (r = 0; r < LIMIT_C_N; r++)
		st->bans[r] = ATOMIC_LOAD(&s->ls_bans[r]);
	st->evictions = ATOMIC_LOAD(&s->ls_evictions);
	st->untracked = ATOMIC_LOAD(&s->ls_untracked);
	st->bans_replaced = ATOMIC_LOAD(&s->ls_bans_replaced);
	st->entries = ATOMIC_LOAD(&s->ls_entries);
	st->capacity = s->ls_geom.lg_table_size;
	st->ban_capacity = s->ls_geom.lg_ban_table_size;
	/*
	 * The gauges are read without locks, one aligned field at a time:
	 * a gauge may be a moment off, but the master's tick can never
	 * wait on a lock a dead worker still holds before it was reaped.
	 */
	bk = limit_bans(s);
	for (b = 0; b < s->ls_geom.lg_ban_table_size; b++)
		if ((ATOMIC_LOAD(&bk[b].lb_flags) & LF_USED) &&
		    ATOMIC_LOAD(&bk[b].lb_until) > n.s)
			st->bans_active++;
	e = limit_entries(s);
	for (b = 0; b < s->ls_geom.lg_table_size; b++)
		if ((ATOMIC_LOAD(&e[b].le_flags) & (LF_USED | LF_AGG |
		    LF_SHARED)) == (LF_USED | LF_AGG | LF_SHARED))
			st->shared_keys++;
}

/* ---- porter -s clients, limits-reset ------------------------------------ */

void
limit_client_walk(struct limit *l, uint64_t now_ms, limit_row_fn *fn,
    void *arg)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	struct limit_now	 n;
	struct limit_row	 r;
	uint32_t		 b;
	int			 i, stop = 0;

	limit_now(s, now_ms, &n);
	for (b = 0; b < s->ls_nbuckets && !stop; b++) {
		lk = limit_shard(s, b);
		limit_lock(lk, l->l_owner);
		e = &limit_entries(s)[(size_t)b * LIMIT_WAYS];
		for (i = 0; i < LIMIT_WAYS && !stop; i++) {
			if (!(e[i].le_flags & LF_USED))
				continue;
			memset(&r, 0, sizeof(r));
			memcpy(r.net.lc_addr, e[i].le_addr, 16);
			r.net.lc_family = (e[i].le_flags & LF_V6) ? AF_INET6 :
			    AF_INET;
			r.net.lc_prefix = e[i].le_prefix;
			r.aggregate = (e[i].le_flags & LF_AGG) != 0;
			r.agent = r.aggregate ? 0 : e[i].le_agent;
			r.debt_ms = e[i].le_tat > n.us ?
			    (e[i].le_tat - n.us) / 1000 : 0;
			r.penalty_ms = e[i].le_pen > n.us ?
			    (e[i].le_pen - n.us) / 1000 : 0;
			r.conns = e[i].le_conns;
			r.run_s = (e[i].le_flags & LF_RUN) &&
			    n.s > e[i].le_run ? n.s - e[i].le_run : 0;
			r.shared = (e[i].le_flags & LF_SHARED) != 0;
			r.banned = (e[i].le_flags & LF_BANNED) != 0;
			stop = fn(&r, arg);
		}
		limit_unlock(lk);
	}
}

size_t
limit_reset(struct limit *l)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_entry	*e;
	struct limit_lock	*lk;
	uint32_t		 b;
	size_t			 n = 0;
	int			 i;

	for (b = 0; b < s->ls_nbuckets; b++) {
		lk = limit_shard(s, b);
		limit_lock(lk, l->l_owner);
		e = &limit_entries(s)[(size_t)b * LIMIT_WAYS];
		for (i = 0; i < LIMIT_WAYS; i++) {
			if (!(e[i].le_flags & LF_USED))
				continue;
			e[i].le_tat = 0;
			e[i].le_pen = 0;
			e[i].le_flags &= (uint8_t)~LF_RUN;
			memset(e[i].le_paths, 0, sizeof(e[i].le_paths));
			n++;
		}
		limit_unlock(lk);
	}
	return n;
}
