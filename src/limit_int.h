/*
 * limit_int.h - what the files behind limit.h share, and nobody else
 * (but the unit tests): the layout of the shared region, the stored
 * key, the lock words with their owner pid, the time base, and the
 * functions each file lends the others. The callers use limit.h only.
 *
 *   limit_key.c    addresses, CIDR, keys and their keyed hashes
 *   limit_table.c  the region: layout, locks, the client table and its
 *                  eviction, the connection ledger, repair, stats
 *   limit_ban.c    the ban table: lookup, the ladder, ban and unban
 *   limit.c        the policy: parameters, costs, GCRA, shared
 *                  detection, evidence, modes, counters
 *
 * Locking rules (see limit.h): at most two client shard locks, taken in
 * index order, then at most one ban shard lock; never a client lock
 * while a ban lock is held. The comments below say which locks each
 * function takes or expects its caller to hold.
 */
#ifndef PORTER_LIMIT_INT_H
#define PORTER_LIMIT_INT_H

#include <sched.h>
#include <stdint.h>

#include "limit.h"

#define LIMIT_WAYS	8	/* entries per bucket: one 512 B stretch */
#define LIMIT_LINE	64
#define LIMIT_SPINS	64	/* CAS tries before sched_yield() */
#define LIMIT_PATHS	4	/* recent probe paths remembered per key */

/* le_flags / lb_flags */
#define LF_USED		0x01
#define LF_V6		0x02
#define LF_AGG		0x04	/* address-wide key */
#define LF_SHARED	0x08	/* aggregate: the address counts as shared */
#define LF_RUN		0x10	/* in a run of refusals */
#define LF_BANNED	0x20	/* pinned: a ban was started on this key */
#define LF_MANUAL	0x40	/* ban: porter -s ban */
#define LF_KEYMASK	(LF_USED | LF_V6 | LF_AGG)

/* One tracked key: one cache line. Times relative to the table epoch. */
struct limit_entry {
	uint8_t		 le_addr[16];
	uint64_t	 le_agent;	/* fine: agent hash; agg: agent bitmaps */
	uint64_t	 le_tat;	/* rate GCRA, microseconds */
	uint64_t	 le_pen;	/* probe GCRA, microseconds */
	uint32_t	 le_seen;	/* seconds */
	uint32_t	 le_run;	/* seconds: the run of refusals began */
	uint32_t	 le_wait;	/* 1/10 s: told to wait until then */
	uint16_t	 le_conns;
	uint8_t		 le_prefix;
	uint8_t		 le_flags;
	uint16_t	 le_paths[LIMIT_PATHS];	/* 0: empty */
};
_Static_assert(sizeof(struct limit_entry) == 64, "one cache line");

/* A ban, in force while now < lb_until, then history for the ladder. */
struct limit_banent {
	uint8_t		 lb_addr[16];
	uint64_t	 lb_agent;
	uint32_t	 lb_start;	/* seconds: the latest ban began */
	uint32_t	 lb_until;	/* seconds */
	uint8_t		 lb_prefix;
	uint8_t		 lb_flags;
	uint8_t		 lb_count;	/* bans within ban_memory */
	uint8_t		 lb_cause;
	uint32_t	 lb_pad;
};

/* A lock word alone on its cache line: owner pid, 0 when free. */
struct limit_lock {
	uint32_t	 lk_owner;
	uint8_t		 lk_pad[LIMIT_LINE - 4];
};

struct limit_shm {
	uint64_t	 ls_magic;
	uint64_t	 ls_size;
	struct limit_geometry ls_geom;
	uint32_t	 ls_nbuckets, ls_nban_buckets;
	uint32_t	 ls_nshards, ls_nban_shards;
	uint64_t	 ls_epoch_ms;
	uint64_t	 ls_k0, ls_k1;		/* SipHash key */
	uint64_t	 ls_off_locks, ls_off_ban_locks;
	uint64_t	 ls_off_entries, ls_off_bans, ls_off_ledger;
	/* counters, changed with atomic adds only */
	uint64_t	 ls_rejected[LIMIT_R_N][2];
	uint64_t	 ls_bans[LIMIT_C_N];
	uint64_t	 ls_evictions, ls_untracked, ls_bans_replaced;
	uint64_t	 ls_entries;
	uint64_t	 ls_ban_used;	/* ban entries ever filled: 0 skips lookups */
};

/* A key as stored: masked address, family and kind, agent. */
struct limit_ekey {
	uint8_t		 addr[16];
	uint64_t	 agent;
	uint8_t		 prefix;
	uint8_t		 flags;		/* LF_USED | LF_V6 | LF_AGG */
};

#define ATOMIC_ADD(p, n)	__atomic_fetch_add((p), (n), __ATOMIC_RELAXED)
#define ATOMIC_LOAD(p)		__atomic_load_n((p), __ATOMIC_RELAXED)

/* ---- the region's parts ---------------------------------------------- */

/*
 * Inline here, as are the locks and the time base below: every request
 * goes through them and each is a few instructions, as it was when they
 * were static in one file.
 */

#define LIMIT_AT(s, off, type)	((type *)(void *)((char *)(s) + (off)))

static inline struct limit_lock *
limit_locks(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_locks, struct limit_lock);
}

static inline struct limit_lock *
limit_ban_locks(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_ban_locks, struct limit_lock);
}

static inline struct limit_entry *
limit_entries(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_entries, struct limit_entry);
}

static inline struct limit_banent *
limit_bans(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_bans, struct limit_banent);
}

static inline uint32_t *
limit_ledger(struct limit_shm *s, uint32_t slot)
{
	return LIMIT_AT(s, s->ls_off_ledger, uint32_t) +
	    (size_t)slot * s->ls_geom.lg_ledger_size;
}

/* The lock word of a client table bucket. */
static inline struct limit_lock *
limit_shard(struct limit_shm *s, uint32_t bucket)
{
	return &limit_locks(s)[bucket % s->ls_nshards];
}

/* ---- locks ----------------------------------------------------------- */

static inline void
limit_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("pause");
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

/*
 * Take a lock word, trying at most tries times (0: until it is ours);
 * returns 1 when taken, 0 when given up. A dead owner's word stays set
 * until the master's limit_repair(); until then this spins and yields,
 * which is the price of having no syscall on the uncontended path.
 */
static inline int
limit_lock_tries(struct limit_lock *lk, uint32_t owner, unsigned tries)
{
	uint32_t	 want;
	unsigned	 spins = 0;

	for (;;) {
		want = 0;
		if (__atomic_compare_exchange_n(&lk->lk_owner, &want, owner,
		    0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return 1;
		if (tries != 0 && spins >= tries)
			return 0;
		if (++spins < LIMIT_SPINS)
			limit_cpu_relax();
		else
			sched_yield();
	}
}

static inline void
limit_lock(struct limit_lock *lk, uint32_t owner)
{
	(void)limit_lock_tries(lk, owner, 0);
}

static inline void
limit_unlock(struct limit_lock *lk)
{
	__atomic_store_n(&lk->lk_owner, 0, __ATOMIC_RELEASE);
}

/* ---- time ------------------------------------------------------------ */

struct limit_now {
	uint64_t	 ms;	/* since the epoch */
	uint64_t	 us;
	uint32_t	 s;	/* whole seconds, rounded down */
};

static inline void
limit_now(const struct limit_shm *s, uint64_t now_ms, struct limit_now *n)
{
	n->ms = now_ms > s->ls_epoch_ms ? now_ms - s->ls_epoch_ms : 0;
	n->us = n->ms * 1000;
	n->s = (uint32_t)(n->ms / 1000);
}

/* Whole seconds from now until t_ms, rounded up, at least 1. */
static inline uint32_t
limit_secs_until(uint64_t now_ms, uint64_t t_ms)
{
	uint64_t	 d = t_ms > now_ms ? t_ms - now_ms : 0;

	d = (d + 999) / 1000;
	return d < 1 ? 1 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* ---- limit_key.c ----------------------------------------------------- */

/* SipHash-2-4 of len bytes at data under the key (k0, k1). */
uint64_t limit_siphash(uint64_t k0, uint64_t k1, const void *data,
	    size_t len);
/* 1 if a lies inside one of the n networks of list, else 0. */
int	 limit_cidr_any(const struct limit_cidr *list, size_t n,
	    const struct limit_cidr *a);
/* k's fine key (agg 0) or address-wide key (agg 1) as stored, in *ek. */
void	 limit_ekey(const struct limit_params *, const struct limit_key *k,
	    int agg, struct limit_ekey *ek);
/* ek's keyed hash under the region's seed: picks its buckets. */
uint64_t limit_ekey_hash(const struct limit_shm *,
	    const struct limit_ekey *ek);

/* ---- limit_table.c --------------------------------------------------- */

/* The client table bucket of ek. */
uint32_t limit_bucket(struct limit_shm *, const struct limit_ekey *ek);
/*
 * ek's entry in bucket, or, if create, a new one in an empty way or in
 * place of the unpinned entry with the least debt (then the oldest),
 * never keep (the other key of the same request, which may share the
 * bucket and would otherwise be the freshest, least indebted victim).
 * NULL: not found, or every way is pinned (counted as untracked). The
 * caller holds bucket's shard lock; a candidate pinned by a ban may
 * take a ban lock for a moment.
 */
struct limit_entry *limit_find(struct limit *, const struct limit_ekey *ek,
	    uint32_t bucket, int create, const struct limit_entry *keep,
	    const struct limit_now *n);

/* Both keys' buckets locked in index order (one lock if they share). */
struct limit_pair {
	struct limit_ekey	 fine, agg;
	uint32_t		 fb, ab;
	struct limit_lock	*lk[2];
};

/* Fill *pr with k's two keys and their buckets, and lock both shards. */
void	 limit_pair_lock(struct limit *, const struct limit_key *k,
	    struct limit_pair *pr);
void	 limit_pair_unlock(struct limit_pair *pr);
/*
 * Undo one ledger record; the caller may hold no lock. tries as for
 * limit_lock_tries(). Returns 1 when undone, 0 when there was none, -1
 * when the lock stayed busy (the record is left for another try).
 */
int	 limit_ledger_drop(struct limit *, uint32_t slot, uint32_t pos,
	    unsigned tries);

/* ---- limit_ban.c (the caller holds no ban lock) ---------------------- */

/* End ek's bans in the ban table (whole: the address's, every agent). */
int	 limit_ban_lift(struct limit *, const struct limit_ekey *ek, int whole,
	    const struct limit_now *n);
/*
 * Milliseconds (since the epoch) until which ek is banned; 0: not.
 * count (may be NULL) gets ek's bans within ban_memory.
 */
uint64_t limit_ban_until(struct limit *, const struct limit_ekey *ek,
	    const struct limit_now *n, uint32_t *count);
/*
 * Start (or lengthen) a ban on ek: seconds > 0 is a manual ban of that
 * length, else the ladder: ban_time x factor^(n-1), n counting ek's
 * bans within ban_memory, capped by max_time (shared_max_time for a
 * shared address). Returns its length in seconds, or 0 if the bucket
 * holds only bans it may not replace.
 */
uint32_t limit_ban_start(struct limit *, const struct limit_ekey *ek,
	    int shared, enum limit_cause cause, uint32_t seconds,
	    const struct limit_now *n);

#endif
