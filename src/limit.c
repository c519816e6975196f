/*
 * limit.c - per-client rate limits and temporary bans: the pure core
 * behind limit.h (keys, GCRA, evidence, the ban ladder, the tables in a
 * caller's region, lock and ledger repair). See limit.h for the contract
 * and /work/shared/design/limits-metrics.md part A for the reasons.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limit.h"

#define LIMIT_MAGIC	0x316d696c72657470ULL	/* "ptrelim1" */
#define LIMIT_WAYS	8	/* entries per bucket: one 512 B stretch */
#define LIMIT_SHARDS	256	/* lock words per table, at most */
#define LIMIT_LINE	64
#define LIMIT_SPINS	64	/* CAS tries before sched_yield() */
#define LIMIT_REPAIR_TRIES 4096	/* a repair gives up on a busy lock after */
#define LIMIT_PATHS	4	/* recent probe paths remembered per key */
#define LIMIT_AGENT_WINDOW 600	/* seconds: agents are counted over 1-2 */

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

/* ---- SipHash-2-4 (Aumasson, Bernstein), for keyed bucket choice ------- */

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

static uint64_t
limit_siphash(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const uint8_t	*p = data;
	uint64_t	 v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t	 v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t	 v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t	 v3 = 0x7465646279746573ULL ^ k1;
	uint64_t	 m, b = (uint64_t)len << 56;
	size_t		 i, left = len & 7;

	for (; len >= 8; len -= 8, p += 8) {
		for (m = 0, i = 0; i < 8; i++)
			m |= (uint64_t)p[i] << (8 * i);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (i = 0; i < left; i++)
		b |= (uint64_t)p[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

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

/* ---- addresses and keys ---------------------------------------------- */

static void
limit_mask(uint8_t *addr, int bits, int prefix)
{
	int	 i;

	for (i = 0; i < bits / 8; i++) {
		if (prefix >= 8)
			prefix -= 8;
		else {
			addr[i] &= (uint8_t)(0xff00 >> prefix);
			prefix = 0;
		}
	}
}

int
limit_cidr_parse(const char *s, struct limit_cidr *out)
{
	char		 buf[64], *slash, *end;
	long		 len = -1;
	uint8_t		 a6[16];
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	if ((slash = strchr(buf, '/')) != NULL) {
		*slash++ = '\0';
		if (*slash < '0' || *slash > '9')
			return -1;
		errno = 0;
		len = strtol(slash, &end, 10);
		if (*end != '\0' || errno != 0)
			return -1;
	}
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->lc_addr) == 1) {
		if (len > 32)
			return -1;
		out->lc_family = AF_INET;
		out->lc_prefix = (uint8_t)(len < 0 ? 32 : len);
	} else if (inet_pton(AF_INET6, buf, a6) == 1) {
		if (len > 128)
			return -1;
		if (len < 0)
			len = 128;
		if (memcmp(a6, mapped, 12) == 0 && len >= 96) {
			memcpy(out->lc_addr, a6 + 12, 4);
			out->lc_family = AF_INET;
			out->lc_prefix = (uint8_t)(len - 96);
		} else {
			memcpy(out->lc_addr, a6, 16);
			out->lc_family = AF_INET6;
			out->lc_prefix = (uint8_t)len;
		}
	} else
		return -1;
	limit_mask(out->lc_addr, out->lc_family == AF_INET ? 32 : 128,
	    out->lc_prefix);
	return 0;
}

int
limit_cidr_match(const struct limit_cidr *net, const struct limit_cidr *a)
{
	uint8_t	 m[16];

	if (net->lc_family != a->lc_family)
		return 0;
	memcpy(m, a->lc_addr, 16);
	limit_mask(m, a->lc_family == AF_INET ? 32 : 128, net->lc_prefix);
	return memcmp(m, net->lc_addr, 16) == 0;
}

static int
limit_cidr_any(const struct limit_cidr *list, size_t n,
    const struct limit_cidr *a)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (limit_cidr_match(&list[i], a))
			return 1;
	return 0;
}

int
limit_key_from_sockaddr(const struct limit_params *p,
    const struct sockaddr *sa, socklen_t salen, uint64_t agent_hash,
    struct limit_key *out)
{
	const struct sockaddr_in	*s4 = (const void *)sa;
	const struct sockaddr_in6	*s6 = (const void *)sa;
	struct limit_cidr		*h = &out->lk_host;

	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET && salen >= sizeof(*s4)) {
		memcpy(h->lc_addr, &s4->sin_addr, 4);
		h->lc_family = AF_INET;
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(*s6)) {
		/* Mapped first: a /64 of ::ffff:a.b.c.d is all of IPv4. */
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			memcpy(h->lc_addr, s6->sin6_addr.s6_addr + 12, 4);
			h->lc_family = AF_INET;
		} else {
			memcpy(h->lc_addr, s6->sin6_addr.s6_addr, 16);
			h->lc_family = AF_INET6;
		}
	} else
		return -1;
	h->lc_prefix = h->lc_family == AF_INET ? 32 : 128;
	out->lk_net = *h;
	out->lk_net.lc_prefix = (uint8_t)(h->lc_family == AF_INET ?
	    p->ipv4_prefix : p->ipv6_prefix);
	limit_mask(out->lk_net.lc_addr, h->lc_family == AF_INET ? 32 : 128,
	    out->lk_net.lc_prefix);
	out->lk_agent = agent_hash;
	return 0;
}

uint64_t
limit_agent_hash(const struct limit *l, const char *ua, size_t len)
{
	/* Another key than the buckets' so the two hashes are unrelated. */
	return limit_siphash(l->l_shm->ls_k0 ^ 0x5541, l->l_shm->ls_k1,
	    ua != NULL ? ua : "", ua != NULL ? len : 0);
}

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

static void
limit_ekey(const struct limit_params *p, const struct limit_key *k,
    int agg, struct limit_ekey *ek)
{
	memset(ek, 0, sizeof(*ek));
	memcpy(ek->addr, k->lk_net.lc_addr, 16);
	ek->prefix = k->lk_net.lc_prefix;
	ek->flags = LF_USED | (k->lk_net.lc_family == AF_INET6 ? LF_V6 : 0) |
	    (agg ? LF_AGG : 0);
	ek->agent = agg || !p->split_by_agent ? 0 : k->lk_agent;
}

static uint64_t
limit_ekey_hash(const struct limit_shm *s, const struct limit_ekey *ek)
{
	uint8_t	 b[26];

	memcpy(b, ek->addr, 16);
	memcpy(b + 16, &ek->agent, 8);
	b[24] = ek->prefix;
	b[25] = ek->flags;
	return limit_siphash(s->ls_k0, s->ls_k1, b, sizeof(b));
}

/* ---- the region, locks ---------------------------------------------- */

#define LIMIT_AT(s, off, type)	((type *)(void *)((char *)(s) + (off)))

static struct limit_lock *
limit_locks(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_locks, struct limit_lock);
}

static struct limit_lock *
limit_ban_locks(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_ban_locks, struct limit_lock);
}

static struct limit_entry *
limit_entries(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_entries, struct limit_entry);
}

static struct limit_banent *
limit_bans(struct limit_shm *s)
{
	return LIMIT_AT(s, s->ls_off_bans, struct limit_banent);
}

static uint32_t *
limit_ledger(struct limit_shm *s, uint32_t slot)
{
	return LIMIT_AT(s, s->ls_off_ledger, uint32_t) +
	    (size_t)slot * s->ls_geom.lg_ledger_size;
}

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

static void
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
static int
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

static void
limit_lock(struct limit_lock *lk, uint32_t owner)
{
	(void)limit_lock_tries(lk, owner, 0);
}

static void
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

static void
limit_now(const struct limit_shm *s, uint64_t now_ms, struct limit_now *n)
{
	n->ms = now_ms > s->ls_epoch_ms ? now_ms - s->ls_epoch_ms : 0;
	n->us = n->ms * 1000;
	n->s = (uint32_t)(n->ms / 1000);
}

/* Whole seconds from now until t_ms, rounded up, at least 1. */
static uint32_t
limit_secs_until(uint64_t now_ms, uint64_t t_ms)
{
	uint64_t	 d = t_ms > now_ms ? t_ms - now_ms : 0;

	d = (d + 999) / 1000;
	return d < 1 ? 1 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

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

/* Milliseconds (since the epoch) until which ek is banned; 0: not. */
static uint64_t
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

/*
 * Start (or lengthen) a ban on ek: seconds > 0 is a manual ban of that
 * length, else the ladder: ban_time x factor^(n-1), n counting ek's
 * bans within ban_memory, capped by max_time (shared_max_time for a
 * shared address). Returns its length in seconds, or 0 if the bucket
 * holds only bans it may not replace.
 */
static uint32_t
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

/* ---- the client table (caller holds the shard lock) ------------------- */

static uint32_t
limit_bucket(struct limit_shm *s, const struct limit_ekey *ek)
{
	return (uint32_t)(limit_ekey_hash(s, ek) % s->ls_nbuckets);
}

static struct limit_lock *
limit_shard(struct limit_shm *s, uint32_t bucket)
{
	return &limit_locks(s)[bucket % s->ls_nshards];
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

/*
 * ek's entry in bucket, or, if create, a new one in an empty way or in
 * place of the unpinned entry with the least debt (then the oldest),
 * never keep (the other key of the same request, which may share the
 * bucket and would otherwise be the freshest, least indebted victim).
 * NULL: not found, or every way is pinned (counted as untracked).
 */
static struct limit_entry *
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

/* Both keys' buckets locked in index order (one lock if they share). */
struct limit_pair {
	struct limit_ekey	 fine, agg;
	uint32_t		 fb, ab;
	struct limit_lock	*lk[2];
};

static void
limit_pair_lock(struct limit *l, const struct limit_key *k,
    struct limit_pair *pr)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_lock	*t;

	limit_ekey(l->l_p, k, 0, &pr->fine);
	limit_ekey(l->l_p, k, 1, &pr->agg);
	pr->fb = limit_bucket(s, &pr->fine);
	pr->ab = limit_bucket(s, &pr->agg);
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

static void
limit_pair_unlock(struct limit_pair *pr)
{
	if (pr->lk[1] != NULL)
		limit_unlock(pr->lk[1]);
	limit_unlock(pr->lk[0]);
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

/* ---- per connection and per request ----------------------------------- */

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

/*
 * Undo one ledger record; the caller may hold no lock. tries as for
 * limit_lock_tries(). Returns 1 when undone, 0 when there was none, -1
 * when the lock stayed busy (the record is left for another try).
 */
static int
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

/* ---- admin and master -------------------------------------------------- */

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

int
limit_unban(struct limit *l, const struct limit_key *k, uint64_t now_ms)
{
	struct limit_shm	*s = l->l_shm;
	struct limit_ekey	 ek;
	struct limit_now	 n;
	struct limit_entry	*e;
	struct limit_banent	*bk;
	struct limit_lock	*lk;
	uint32_t		 b, first, last;
	int			 i, lifted = 0, whole = k->lk_agent == 0;

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

	/*
	 * One key's bans sit in one bucket; an address's fine keys are
	 * anywhere, so unbanning an address walks the whole ban table
	 * (the master's job, not a request's).
	 */
	if (whole) {
		first = 0;
		last = s->ls_nban_buckets;
	} else {
		first = (uint32_t)(limit_ekey_hash(s, &ek) % s->ls_nban_buckets);
		last = first + 1;
	}
	for (b = first; b < last; b++) {
		lk = &limit_ban_locks(s)[b % s->ls_nban_shards];
		limit_lock(lk, l->l_owner);
		bk = &limit_bans(s)[(size_t)b * LIMIT_WAYS];
		for (i = 0; i < LIMIT_WAYS; i++) {
			if (bk[i].lb_until <= n.s || !(whole ?
			    (bk[i].lb_flags & LF_V6) == (ek.flags & LF_V6) &&
			    bk[i].lb_prefix == ek.prefix &&
			    memcmp(bk[i].lb_addr, ek.addr, 16) == 0 :
			    limit_ban_is(&bk[i], &ek)))
				continue;
			bk[i].lb_until = n.s;
			lifted++;
		}
		limit_unlock(lk);
	}
	return lifted;
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
