/*
 * limit_ban.c - the ban table behind limit.h: bans in force and, after
 * they end, their history for the ladder (ban_time x ban_factor per ban
 * within ban_memory, capped), replacement when a bucket is full (an
 * admin's ban is never replaced), and porter -s ban / unban. The
 * evidence that starts a ban is the policy's (limit.c).
 */
#include <errno.h>
#include <string.h>

#include "limit_int.h"

/* ---- the ban table (caller holds no ban lock) ------------------------ */

static int
limit_ban_is(const struct limit_banent *b, const struct limit_ekey *ek)
{
	return (b->lb_flags & LF_KEYMASK) == ek->flags &&
	    b->lb_prefix == ek->prefix && b->lb_agent == ek->agent &&
	    memcmp(b->lb_addr, ek->addr, 16) == 0;
}

/* The ban bucket of ek, locked; unlock with limit_unlock(*lkp). */
static struct limit_banent *
limit_ban_bucket(struct limit *l, const struct limit_ekey *ek,
    struct limit_lock **lkp)
{
	struct limit_shm	*s = l->l_shm;
	uint32_t		 b;

	b = (uint32_t)(limit_ekey_hash(s, ek) % s->ls_nban_buckets);
	*lkp = &limit_ban_locks(s)[b % s->ls_nban_shards];
	limit_lock(*lkp, l->l_owner);
	return &limit_bans(s)[(size_t)b * LIMIT_WAYS];
}

uint64_t
limit_ban_until(struct limit *l, const struct limit_ekey *ek,
    const struct limit_now *n, uint32_t *count)
{
	struct limit_banent	*bk;
	struct limit_lock	*lk;
	uint64_t		 until = 0;
	int			 i;

	if (count != NULL)
		*count = 0;
	if (ATOMIC_LOAD(&l->l_shm->ls_ban_used) == 0)
		return 0;
	bk = limit_ban_bucket(l, ek, &lk);
	for (i = 0; i < LIMIT_WAYS; i++) {
		if (!limit_ban_is(&bk[i], ek))
			continue;
		if ((uint64_t)bk[i].lb_until * 1000 > n->ms)
			until = (uint64_t)bk[i].lb_until * 1000;
		if (count != NULL && n->s - bk[i].lb_start <
		    l->l_p->ban_memory)
			*count = bk[i].lb_count;
		break;
	}
	limit_unlock(lk);
	return until;
}

uint32_t
limit_ban_start(struct limit *l, const struct limit_ekey *ek, int shared,
    enum limit_cause cause, uint32_t seconds, const struct limit_now *n)
{
	const struct limit_params *p = l->l_p;
	struct limit_banent	*bk, *b = NULL, *victim = NULL;
	struct limit_lock	*lk;
	unsigned		 count = 1;
	uint32_t		 until;
	double			 len, cap;
	int			 i;

	bk = limit_ban_bucket(l, ek, &lk);
	for (i = 0; i < LIMIT_WAYS && b == NULL; i++)
		if (limit_ban_is(&bk[i], ek))
			b = &bk[i];
	if (b != NULL && b->lb_until > n->s && (b->lb_flags & LF_MANUAL) &&
	    cause != LIMIT_C_MANUAL) {
		/* evidence while an admin's ban runs (dry-run serves it):
		 * the admin's length stands */
		limit_unlock(lk);
		return 0;
	}
	if (b != NULL && n->s - b->lb_start < p->ban_memory)
		count = b->lb_count < 255 ? b->lb_count + 1u : 255;
	if (b == NULL) {
		/*
		 * Empty first, then the oldest history, then the active
		 * automatic ban that ends soonest. Manual bans stay.
		 */
		for (i = 0; i < LIMIT_WAYS; i++) {
			struct limit_banent *c = &bk[i];

			if (!(c->lb_flags & LF_USED)) {
				victim = c;
				break;
			}
			/* an admin's ban ends by time or by unban only */
			if ((c->lb_flags & LF_MANUAL) && c->lb_until > n->s)
				continue;
			if (victim == NULL ||
			    (c->lb_until <= n->s && (victim->lb_until > n->s ||
			    c->lb_start < victim->lb_start)) ||
			    (c->lb_until > n->s && victim->lb_until > n->s &&
			    c->lb_until < victim->lb_until))
				victim = c;
		}
		if (victim == NULL) {
			limit_unlock(lk);
			return 0;
		}
		if (!(victim->lb_flags & LF_USED))
			ATOMIC_ADD(&l->l_shm->ls_ban_used, 1);
		else if (victim->lb_until > n->s)
			ATOMIC_ADD(&l->l_shm->ls_bans_replaced, 1);
		b = victim;
		memset(b, 0, sizeof(*b));
		memcpy(b->lb_addr, ek->addr, 16);
		b->lb_agent = ek->agent;
		b->lb_prefix = ek->prefix;
	}
	if (seconds > 0)
		len = seconds;
	else {
		cap = shared ? p->ban_shared_max_time : p->ban_max_time;
		len = p->ban_time;
		for (i = 1; i < (int)count && len < cap; i++)
			len *= p->ban_factor;
		if (len > cap)
			len = cap;
	}
	/* the ban ends len seconds after now, on a whole second; a ban
	 * in force is never shortened by a new one */
	until = (uint32_t)((n->ms + 999) / 1000 + (uint64_t)len);
	if (b->lb_until > until && b->lb_until > n->s)
		until = b->lb_until;
	b->lb_flags = ek->flags | (cause == LIMIT_C_MANUAL ? LF_MANUAL : 0);
	b->lb_count = (uint8_t)count;
	b->lb_cause = (uint8_t)cause;
	b->lb_start = n->s;
	b->lb_until = until;
	limit_unlock(lk);
	ATOMIC_ADD(&l->l_shm->ls_bans[cause], 1);
	return (uint32_t)len;
}

/* ---- porter -s ban, porter -s unban ---------------------------------- */

int
limit_ban(struct limit *l, const struct limit_key *k, uint32_t seconds,
    uint64_t now_ms)
{
	struct limit_ekey	 ek;
	struct limit_now	 n;

	if (seconds == 0 || seconds > LIMIT_BAN_CEILING) {
		errno = EINVAL;
		return -1;
	}
	limit_now(l->l_shm, now_ms, &n);
	limit_ekey(l->l_p, k, k->lk_agent == 0, &ek);
	if (limit_ban_start(l, &ek, 0, LIMIT_C_MANUAL, seconds, &n) == 0) {
		errno = ENOSPC;
		return -1;
	}
	return 0;
}

/*
 * End ek's ban (whole: every ban of its address, fine keys included) in
 * the ban table; returns how many were in force. The client entry is
 * limit_unban()'s (limit.c), so this file needs nothing of the table's.
 */
int
limit_ban_lift(struct limit *l, const struct limit_ekey *ek, int whole,
    const struct limit_now *n)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_banent	*bk;
	struct limit_lock	*lk;
	uint32_t		 b, first, last;
	int			 i, lifted = 0;

	/*
	 * One key's bans sit in one bucket; an address's fine keys are
	 * anywhere, so unbanning an address walks the whole ban table
	 * (the master's job, not a request's).
	 */
	if (whole) {
		first = 0;
		last = s->ls_nban_buckets;
	} else {
		first = (uint32_t)(limit_ekey_hash(s, ek) % s->ls_nban_buckets);
		last = first + 1;
	}
	for (b = first; b < last; b++) {
		lk = &limit_ban_locks(s)[b % s->ls_nban_shards];
		limit_lock(lk, l->l_owner);
		bk = &limit_bans(s)[(size_t)b * LIMIT_WAYS];
		for (i = 0; i < LIMIT_WAYS; i++) {
			if (bk[i].lb_until <= n->s || !(whole ?
			    (bk[i].lb_flags & LF_V6) == (ek->flags & LF_V6) &&
			    bk[i].lb_prefix == ek->prefix &&
			    memcmp(bk[i].lb_addr, ek->addr, 16) == 0 :
			    limit_ban_is(&bk[i], ek)))
				continue;
			bk[i].lb_until = n->s;
			lifted++;
		}
		limit_unlock(lk);
	}
	return lifted;
}

/* ---- porter -s bans ---------------------------------------------------- */

void
limit_ban_walk(struct limit *l, uint64_t now_ms, limit_row_fn *fn, void *arg)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_banent	*bk;
	struct limit_lock	*lk;
	struct limit_now	 n;
	struct limit_row	 r;
	uint32_t		 b;
	int			 i, stop = 0;

	limit_now(s, now_ms, &n);
	if (ATOMIC_LOAD(&s->ls_ban_used) == 0)
		return;
	for (b = 0; b < s->ls_nban_buckets && !stop; b++) {
		lk = &limit_ban_locks(s)[b % s->ls_nban_shards];
		limit_lock(lk, l->l_owner);
		bk = &limit_bans(s)[(size_t)b * LIMIT_WAYS];
		for (i = 0; i < LIMIT_WAYS && !stop; i++) {
			if (!(bk[i].lb_flags & LF_USED) ||
			    bk[i].lb_until <= n.s)
				continue;
			memset(&r, 0, sizeof(r));
			memcpy(r.net.lc_addr, bk[i].lb_addr, 16);
			r.net.lc_family = (bk[i].lb_flags & LF_V6) ? AF_INET6 :
			    AF_INET;
			r.net.lc_prefix = bk[i].lb_prefix;
			r.agent = bk[i].lb_agent;
			r.aggregate = (bk[i].lb_flags & LF_AGG) != 0;
			r.age = n.s - bk[i].lb_start;
			r.left = limit_secs_until(n.ms,
			    (uint64_t)bk[i].lb_until * 1000);
			r.count = bk[i].lb_count;
			r.cause = (enum limit_cause)bk[i].lb_cause;
			stop = fn(&r, arg);
		}
		limit_unlock(lk);
	}
}
