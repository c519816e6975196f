/*
 * limit.h - per-client rate limits and temporary bans (issue 13): the
 * pure core. Keys, GCRA buckets, probe and ignored-429 evidence, the
 * ban ladder, fixed-size tables and their repair after a dead worker.
 * The policy is limit.c; keys are limit_key.c, the region and client
 * table limit_table.c, the ban table limit_ban.c; limit_int.h is what
 * those four share and is no caller's business.
 *
 * Stand-alone: needs only libc. Nothing here logs, allocates, reads a
 * clock or makes a syscall on the request path (sched_yield() only
 * under lock contention). The caller passes the time as CLOCK_MONOTONIC
 * milliseconds (ev_clock_ms()), which all processes share.
 *
 * Memory. All state lives in one region the caller provides and owns:
 * size it with limit_size(), format it once with limit_init() (the
 * master, in a MAP_SHARED mapping made before the first fork), then every
 * process that uses it calls limit_attach() on its own struct limit
 * (private memory: it holds the process's pid, used as lock owner, and
 * its parameters). Nothing in the region is a pointer, so it may be
 * mapped at different addresses. The region is never grown: a spray of
 * new addresses evicts counters, never bans, and never allocates.
 *
 * Locking. The client table is split into shards, each with a lock word
 * holding its owner's pid; the ban table likewise. A call takes at most
 * two client shard locks (in index order) and then at most one ban
 * shard lock; nothing takes a client lock while holding a ban lock, so
 * there is no deadlock. Critical sections make no syscalls.
 *
 * Worker death. A worker killed while holding a lock leaves its pid in
 * the lock word, and the open connections it counted stay counted. The
 * master must call limit_repair() with the dead pid and its slot right
 * after waitpid() reaped it and before it forks again (so no live
 * process can own that pid yet): the locks are released and the dead
 * worker's connection ledger is subtracted. Counters an interrupted
 * critical section was changing may be off by one request; nothing
 * becomes permanent. Until then a process that wants that lock spins
 * and yields; so the master reaps and repairs (a waitpid(WNOHANG) loop)
 * before it calls limit_ban(), limit_unban() or limit_info(), which
 * lock. limit_stats() never locks and limit_repair() never waits long.
 *
 * Policy in brief (limits-metrics.md part A has the reasons). Each
 * request must pass its fine key (address + User-Agent hash) and its
 * address-wide key (rate and burst x aggregate_factor). A shared
 * address (listed, or shared_agents distinct agents within one to two
 * 10-minute windows) gets x aggregate_factor once more on the
 * address-wide key only, so one agent next to a classroom stays held to
 * the fine limit, and its bans are capped by ban_shared_max_time. A
 * ban needs evidence: probe_points 400/403/404s on distinct non-asset
 * paths within probe_window (x aggregate_factor for the address-wide
 * key), or a run of refusals lasting ignore_seconds. A run goes on
 * while the client comes back sooner than its Retry-After said, even if
 * GCRA lets a share of those requests through (else a client sending
 * at five times the rate would never be banned); coming back no sooner
 * than told ends it. A fine key's ban blocks only that agent; only the
 * address-wide key's own evidence blocks the address.
 *
 * What the caller does per request (wiring comes later):
 *   accept:            limit_conn_open()    ban on the address, cap
 *   after file lookup: limit_check()        rate; cost known by now
 *   response status:   limit_finish()       probe evidence
 *   close:             limit_conn_close()
 * A result with block != 0 means: answer 429 with Retry-After:
 * retry_after (RFC 6585 section 4; RFC 9110 10.2.3), or close when the
 * policy says so. In dry-run mode block is always 0 and verdict says
 * what enforce would have done.
 */
#ifndef PORTER_LIMIT_H
#define PORTER_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

enum limit_mode {
	LIMIT_OFF = 0,		/* every call passes, nothing is touched */
	LIMIT_DRY_RUN,		/* decide and count, never block */
	LIMIT_ENFORCE,
};

enum limit_verdict {
	LIMIT_PASS = 0,		/* tracked and within limits */
	LIMIT_UNTRACKED,	/* passes: mode off, allow-listed, or no room */
	LIMIT_RATE,		/* over the rate: 429 */
	LIMIT_BANNED,		/* a ban is in force: 429 or close */
	LIMIT_CONNECTIONS,	/* over per_address_connections: 429 */
};

/* Indices of the counters in struct limit_stats. */
enum limit_reason { LIMIT_R_RATE, LIMIT_R_CONNECTIONS, LIMIT_R_BAN, LIMIT_R_N };
enum limit_cause { LIMIT_C_PROBE, LIMIT_C_IGNORED, LIMIT_C_MANUAL, LIMIT_C_N };
enum limit_cost { LIMIT_COST_PAGE, LIMIT_COST_ASSET };

/* A network: address bytes (IPv4 in the first 4) and prefix length. */
struct limit_cidr {
	uint8_t		 lc_addr[16];	/* host bits are zero */
	uint8_t		 lc_family;	/* AF_INET or AF_INET6 */
	uint8_t		 lc_prefix;	/* 0..32 or 0..128 */
};

/*
 * A client as the tables see it: the address after IPv4-mapped
 * normalisation, masked to ipv4_prefix / ipv6_prefix, and an agent hash
 * (0 for the address-wide key or when split_by_agent is off).
 */
struct limit_key {
	struct limit_cidr lk_net;	/* masked address */
	struct limit_cidr lk_host;	/* full address, for allow / shared */
	uint64_t	 lk_agent;
	/* limit_key_hint(): the buckets, so a kept key hashes no more */
	uint32_t	 lk_fb, lk_ab;
	int		 lk_hinted;
};

/*
 * Policy. Fill with limit_params_default(), change what the config
 * says, then limit_params_prepare() validates and derives the integer
 * fields; the struct is the caller's, read-only afterwards, and may
 * differ between generations (a reload) over the same tables.
 */
struct limit_params {
	enum limit_mode	 mode;			/* LIMIT_OFF */
	int		 ipv4_prefix;		/* 8..32, default 32 */
	int		 ipv6_prefix;		/* 32..128, default 64 */
	int		 split_by_agent;	/* 1 */
	double		 rate;			/* page-equivalents/s, 20 */
	double		 burst;			/* page-equivalents, 400 */
	double		 asset_weight;		/* cost of an asset, 0.25 */
	double		 aggregate_factor;	/* address-wide x, 4 */
	unsigned	 per_address_connections; /* 0: no cap, else <= 65535 */
	const struct limit_cidr *allow;		/* never limited; caller's */
	size_t		 nallow;
	const struct limit_cidr *shared;	/* known NATs; caller's */
	size_t		 nshared;
	int		 auto_shared;		/* 1 */
	unsigned	 shared_agents;		/* distinct agents: shared, 4 */
	unsigned	 probe_points;		/* 30 */
	unsigned	 probe_window;		/* seconds, 300 */
	unsigned	 ignore_seconds;	/* 120 */
	unsigned	 ban_time;		/* seconds, 600 */
	double		 ban_factor;		/* 2 */
	unsigned	 ban_max_time;		/* seconds, 14400 */
	unsigned	 ban_shared_max_time;	/* seconds, 900 */
	unsigned	 ban_memory;		/* seconds, 86400 */

	/* derived by limit_params_prepare(), microseconds */
	uint64_t	 lp_inc[3][2];	/* [fine|agg|agg shared][page|asset] */
	uint64_t	 lp_tau[3];
	uint64_t	 lp_pen_inc[2];	/* [fine|agg] one probe point */
	uint64_t	 lp_pen_tau[2];
};

/* Table sizes, fixed for the life of the region. */
struct limit_geometry {
	uint32_t	 lg_table_size;		/* client entries: 64..2^24, x8 */
	uint32_t	 lg_ban_table_size;	/* bans: 64..2^20, x8 */
	uint32_t	 lg_slots;		/* worker slots with a ledger */
	uint32_t	 lg_ledger_size;	/* per slot: open connections */
};

struct limit_shm;

/* Per process, in private memory: see limit_attach(). */
struct limit {
	struct limit_shm *l_shm;
	const struct limit_params *l_p;
	uint32_t	 l_owner;	/* this process's pid, the lock word */
};

/* What a check decided; limit_finish() needs it back. */
struct limit_result {
	enum limit_verdict verdict;
	int		 block;		/* 1: refuse; always 0 unless enforce */
	uint32_t	 retry_after;	/* whole seconds, >= 1 unless PASS */
	int		 banned_now;	/* this call started a ban: log it */
	enum limit_cause cause;		/* of that ban */
	uint32_t	 ban_seconds;	/* its length */
	int		 ban_aggregate;	/* 1: the whole address, 0: fine key */
	int		 shared;	/* the address counts as shared */
	int		 untracked;	/* a key found no room (fail open) */
};

/* One key's state, for porter -s client and tests. */
struct limit_info {
	uint32_t	 bucket;	/* where the key hashes (seed-dependent) */
	int		 tracked;	/* has an entry; the rest is 0 if not */
	uint64_t	 debt_ms;	/* rate: GCRA time ahead of now */
	uint64_t	 penalty_ms;	/* probe bucket: time ahead of now */
	uint32_t	 conns;		/* open connections (address-wide key) */
	int		 shared;
	int		 banned_flag;	/* the entry is pinned by a ban */
	uint32_t	 run_s;		/* seconds into a run of refusals */
	uint32_t	 ban_left;	/* seconds; 0: no ban in force */
	uint32_t	 ban_count;	/* bans within ban_memory */
};

/* Counters for metrics; cumulative since limit_init() unless noted. */
struct limit_stats {
	uint64_t	 rejected[LIMIT_R_N][2];	/* [reason][enforce|dry] */
	uint64_t	 bans[LIMIT_C_N];		/* bans started, by cause */
	uint64_t	 evictions;
	uint64_t	 untracked;		/* fail-open events */
	uint64_t	 bans_replaced;		/* ban table full */
	uint64_t	 entries;		/* gauge: client entries used */
	uint64_t	 capacity;
	uint64_t	 bans_active;		/* gauge, by scan */
	uint64_t	 ban_capacity;
	uint64_t	 shared_keys;		/* gauge, by scan */
};

/* ---- parameters, keys ---------------------------------------------- */

void	 limit_params_default(struct limit_params *);
/*
 * Check ranges and derive lp_*. Returns 0, or -1 with a message in err
 * (errsz bytes, NUL-terminated) naming the bad field.
 */
int	 limit_params_prepare(struct limit_params *, char *err, size_t errsz);

/*
 * Parse "192.0.2.0/24", "2001:db8::/48" or a bare address (full
 * prefix) into *out, host bits cleared. An IPv4-mapped IPv6 network
 * (::ffff:a.b.c.d/n, n >= 96) becomes IPv4. Returns 0 or -1.
 */
int	 limit_cidr_parse(const char *s, struct limit_cidr *out);
/* 1 if the full address a lies inside net, else 0. */
int	 limit_cidr_match(const struct limit_cidr *net,
	    const struct limit_cidr *a);

/*
 * The key for a peer: sa is an AF_INET or AF_INET6 sockaddr; an
 * IPv4-mapped IPv6 address becomes IPv4 BEFORE the prefix is applied
 * (else a /64 would lump every IPv4 client together). agent_hash comes
 * from limit_agent_hash(), or 0. Returns 0, or -1 for another family.
 */
int	 limit_key_from_sockaddr(const struct limit_params *,
	    const struct sockaddr *sa, socklen_t salen, uint64_t agent_hash,
	    struct limit_key *out);
/*
 * Work out k's two table buckets once, into k: a caller that keeps k
 * for a client's later requests (the worker's key cache) spares two
 * keyed hashes per request. Only for this region and these parameters;
 * changing k afterwards needs a new hint.
 */
void	 limit_key_hint(struct limit *, struct limit_key *k);
/* Keyed 64-bit hash (SipHash-2-4, the table's secret seed) of a
 * User-Agent value; ua may be NULL (absent) and hashes like "". */
uint64_t limit_agent_hash(const struct limit *, const char *ua, size_t len);
/*
 * Is a response of this media type (value of Content-Type, maybe with
 * parameters) an asset, costing asset_weight: CSS, JavaScript, images,
 * fonts, audio, video? Every 304 is an asset too (the caller's part).
 */
int	 limit_mime_is_asset(const char *type, size_t len);

/* ---- the region ------------------------------------------------------ */

/* Bytes the region needs for g, or 0 if g is out of range. */
size_t	 limit_size(const struct limit_geometry *g);
/*
 * Format mem (len >= limit_size(g), 64-byte aligned, zero or not) as
 * empty tables. seed: 16 random bytes for the keyed hashes, so nobody
 * can aim collisions at one bucket. now_ms becomes the table's epoch.
 * Returns 0, or -1 with errno EINVAL.
 */
int	 limit_init(void *mem, size_t len, const struct limit_geometry *g,
	    const uint8_t seed[16], uint64_t now_ms);
/*
 * Use a formatted region with parameters p (kept by pointer: the caller
 * keeps p alive and unchanged while attached). self is this process's
 * pid (getpid(), once per process: after a fork, attach again). Returns
 * 0, or -1 with errno EINVAL if mem is not a region of len bytes.
 */
int	 limit_attach(struct limit *, void *mem, size_t len,
	    const struct limit_params *p, pid_t self);

/* ---- per connection and per request ---------------------------------- */

/*
 * A new connection from key k (agent ignored): an address-wide ban
 * (LIMIT_BANNED, retry_after the remaining seconds), then the
 * open-connection cap (LIMIT_CONNECTIONS, retry_after 1). When the cap
 * is on and the connection is not refused, it is counted and recorded
 * in slot's ledger at pos (0 <= pos < lg_ledger_size, unique among the
 * slot's open connections: the caller's connection index); the caller
 * must then call limit_conn_close() with the same slot and pos before
 * it uses pos again. A slot or pos out of range is not counted.
 * Returns 1 if counted, 0 if not (nothing to close).
 */
int	 limit_conn_open(struct limit *, const struct limit_key *k,
	    uint64_t now_ms, uint32_t slot, uint32_t pos,
	    struct limit_result *res);
void	 limit_conn_close(struct limit *, uint32_t slot, uint32_t pos);

/*
 * A request from k costing cost: bans on the fine key and on the
 * address, then both GCRA buckets. A request must pass both; a refused
 * one advances neither. res->retry_after is the GCRA wait rounded up to
 * whole seconds, at least 1. Keep res for limit_finish().
 */
void	 limit_check(struct limit *, const struct limit_key *k,
	    enum limit_cost cost, uint64_t now_ms, struct limit_result *res);
/*
 * After the response status is known: a 400, 403 or 404 on a non-asset
 * path whose hash is not among the key's last four earns a probe point
 * on the fine and the address-wide key; too many points in probe_window
 * start a ban (res->banned_now and the ban fields are set; verdict and
 * block are left alone: this response is already decided). path is the
 * request target's path (bytes, not NUL-terminated). res must be what
 * limit_check() filled for this request: a request it found banned
 * (served in dry-run) earns no points.
 */
void	 limit_finish(struct limit *, const struct limit_key *k,
	    int status, enum limit_cost cost, const char *path, size_t pathlen,
	    uint64_t now_ms, struct limit_result *res);

/* ---- admin and master ------------------------------------------------ */

/*
 * Ban k (agent 0: the whole address) for seconds, as porter -s ban
 * does; it counts in the ladder and only time or limit_unban() ends
 * it. Returns 0, or -1 with errno EINVAL (seconds not in
 * 1..LIMIT_BAN_CEILING) or ENOSPC (the ban's bucket holds only manual
 * bans).
 */
#define LIMIT_BAN_CEILING	604800	/* 7 days: nothing is permanent */
int	 limit_ban(struct limit *, const struct limit_key *k,
	    uint32_t seconds, uint64_t now_ms);
/*
 * Lift k's ban; with agent 0, the address's and every one of its fine
 * keys' (a walk over the ban table). Resets k's probe points and run of
 * refusals. Returns how many bans in force were lifted. Their history
 * still counts in the ladder.
 */
int	 limit_unban(struct limit *, const struct limit_key *k,
	    uint64_t now_ms);
/*
 * After waitpid() reaped pid, which ran in slot (UINT32_MAX: none), and
 * before the next fork: release every lock word pid holds and subtract
 * the open connections in slot's ledger. *locks and *conns (either may
 * be NULL) get how many of each. A lock held by a live process is never
 * touched. Returns 0 when done, or 1 when a ledger record's lock stayed
 * busy (another dead worker, not reaped yet, may hold it): reap, repair
 * that one, then call again with pid 0 and the same slot; the slot
 * must not get a new worker before a call returns 0.
 */
int	 limit_repair(struct limit *, pid_t pid, uint32_t slot,
	    size_t *locks, size_t *conns);
/*
 * State of k's fine key (aggregate 0) or address-wide key (1) into
 * *out; creates nothing. Returns out->tracked.
 */
int	 limit_info(struct limit *, const struct limit_key *k, int aggregate,
	    uint64_t now_ms, struct limit_info *out);
/*
 * One entry as the admin lists show it (porter -s bans, clients): the
 * key, then the ban fields (limit_ban_walk()) or the client fields
 * (limit_client_walk()).
 */
struct limit_row {
	struct limit_cidr net;		/* the masked address */
	uint64_t	 agent;		/* agent hash; 0: address-wide key */
	int		 aggregate;	/* the address-wide key */
	/* bans */
	uint32_t	 age;		/* seconds since the ban began */
	uint32_t	 left;		/* seconds still to run */
	unsigned	 count;		/* bans within ban_memory */
	enum limit_cause cause;
	/* clients */
	uint64_t	 debt_ms, penalty_ms;
	uint32_t	 conns, run_s;
	int		 shared, banned;
};
/* fn returns 0 to go on, 1 to stop. */
typedef int	 limit_row_fn(const struct limit_row *, void *arg);
/* Every ban in force, each bucket under its lock; fn must not lock. */
void	 limit_ban_walk(struct limit *, uint64_t now_ms, limit_row_fn *fn,
	    void *arg);
/* Every tracked client key, each bucket under its lock. */
void	 limit_client_walk(struct limit *, uint64_t now_ms, limit_row_fn *fn,
	    void *arg);
/*
 * porter -s limits-reset: forget every key's rate, probe points and
 * run of refusals; open-connection counts and bans stay. Returns how
 * many entries were reset.
 */
size_t	 limit_reset(struct limit *);
/* Fill *st. Scans the ban table and the client table for the gauges,
 * without locks (never waits): for the master's tick, not per request. */
void	 limit_stats(struct limit *, uint64_t now_ms, struct limit_stats *st);

#endif
