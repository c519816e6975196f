/*
 * scoreboard.h - what every worker is doing and what all of them have
 * done, in one shared region (shm.c) that the master and every worker
 * can read.
 *
 * Layout: a header with the "retired" totals, then one slot per worker
 * place of the master's worker table. Each slot and the header start on
 * their own cache line, so a worker writing its counters never bounces
 * another worker's line.
 *
 * Writers:
 *  - A worker writes only its own slot (sb_attach() names it): its pid,
 *    state, heartbeat, open-connection gauge and counters. One writer per
 *    slot, so an increment is a plain load and store (no lock prefix),
 *    done through __atomic relaxed accesses so no reader sees a torn
 *    value.
 *  - The master writes the retired totals, and clears a slot: when it
 *    has reaped a slot's worker, sb_fold() adds the slot's counters to
 *    the retired totals and zeroes them, under a sequence lock.
 *  - The master also keeps its own facts in the header (struct
 *    sb_master: start time, generation, config hash, reloads by result,
 *    worker exits by reason, draining), under the same lock, so a
 *    /metrics handler in a worker can show them (metrics.c).
 *
 * Readers (the master for `porter -s status` and systemd's STATUS line,
 * later a /metrics handler in any worker) call sb_totals(): total =
 * retired + the sum of every slot. Slot counters only grow while their
 * worker lives, and a fold moves a dead worker's counts in one step that
 * readers see whole (they retry when the sequence changed under them),
 * so no total ever goes backwards: not when a worker crashes, is killed
 * for hanging, recycles after max_requests, or a reload replaces it.
 * The open-connection gauge is not folded: a dead worker holds none.
 */
#ifndef SCOREBOARD_H
#define SCOREBOARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SB_LINE		64	/* cache line, bytes */
#define SB_NCLASS	5	/* status classes 1xx .. 5xx */
#define SB_NCODE	22	/* exact codes of sb_codes[], then "other" */
#define SB_NBUCKET	13	/* latency buckets: sb_bucket_ms[], then +Inf */

enum { SB_FREE, SB_STARTING, SB_READY, SB_DRAINING, SB_NSTATE };

/* Why a connection was closed right after accept, unserved. */
enum {
	SB_REJ_MAX_CONNECTIONS,		/* limits.max_connections reached */
	SB_REJ_CLIENT_LIMIT,		/* per-address connection cap */
	SB_REJ_BAN,			/* the address is banned */
	SB_REJ_PROXY,			/* PROXY header untrusted or bad */
	SB_NREJECT
};

/* Why the master reaped a worker (it counts them; see sb_master_exit()). */
enum {
	SB_EXIT_CRASH,			/* died unasked: signal, or exit */
	SB_EXIT_HANG,			/* killed: no heartbeat in worker_timeout */
	SB_EXIT_MAX_REQUESTS,		/* recycled itself after max_requests */
	SB_EXIT_DRAINED,		/* told to go: reload, stop, drain */
	SB_NEXIT
};

enum { SB_RELOAD_SUCCESS, SB_RELOAD_FAILURE, SB_NRELOAD };

/* Why a PROXY protocol header was refused (conn_proxy.c). */
enum {
	SB_PROXY_UNTRUSTED,		/* the peer is not in 'trusted' */
	SB_PROXY_INVALID,		/* malformed, or cut short by EOF */
	SB_PROXY_TIMEOUT,		/* not in within limits.proxy_timeout */
	SB_PROXY_TOO_LONG,		/* over the v1 or v2 cap */
	SB_NPROXY_ERR
};
/* PROXY headers taken, by [version - 1][command] (v2 LOCAL is [1][0]). */
#define SB_NPROXY_HDR	4

/*
 * The exact status codes counted one by one, in index order (the index
 * SB_NCODE - 1 counts every other code): a fixed, bounded label set for
 * porter_http_requests_total{code}.
 */
extern const int sb_codes[SB_NCODE - 1];
/*
 * Upper bounds of the latency buckets, in ms, ascending (le, inclusive,
 * as Prometheus has it); the last bucket, SB_NBUCKET - 1, is +Inf.
 */
extern const uint64_t sb_bucket_ms[SB_NBUCKET - 1];

#define SB_NCOUNTERS	(SB_NCLASS + 2 + SB_NCODE + SB_NBUCKET + 1 + SB_NREJECT + \
	SB_NPROXY_HDR + SB_NPROXY_ERR + 2)

/*
 * Monotonic counters; the ones in a slot count one worker's life. All of
 * them are uint64_t, so the fold and the readers walk them as v[].
 */
struct sb_counters {
	union {
		struct {
			uint64_t status[SB_NCLASS]; /* [0] 1xx .. [4] 5xx */
			uint64_t bytes;	/* bytes sent, headers included */
			uint64_t accepted; /* connections accepted */
			uint64_t code[SB_NCODE]; /* by sb_code_index() */
			/* requests by latency bucket, not cumulative */
			uint64_t dur[SB_NBUCKET];
			uint64_t dur_ms; /* sum of the latencies, ms */
			uint64_t rejected[SB_NREJECT];
			uint64_t proxy_hdr[SB_NPROXY_HDR];
			uint64_t proxy_err[SB_NPROXY_ERR];
			uint64_t h2_requests; /* responses sent over HTTP/2 */
			uint64_t h2_conns; /* connections that spoke HTTP/2 */
		};
		uint64_t v[SB_NCOUNTERS];
	};
};

/*
 * What only the master knows, for any reader (a /metrics handler in a
 * worker): written by the master under the sequence lock, so a reader
 * sees one update whole. The counters only grow.
 */
struct sb_master {
	uint64_t	 exits[SB_NEXIT];	/* workers reaped, by reason */
	uint64_t	 reloads[SB_NRELOAD];	/* reloads ended, by result */
	uint64_t	 start_time;	/* master start, s since the epoch */
	uint64_t	 reload_time;	/* last good load (start or reload), s */
	uint64_t	 config_hash;	/* FNV-1a 64 of the file in use */
	uint32_t	 generation;	/* the one serving */
	uint32_t	 reload_ok;	/* 1: the last reload succeeded (or none) */
	uint32_t	 draining;	/* 1: porter -s drain, or stopping */
};

struct sb_slot {
	pid_t		 pid;		/* 0: no worker yet */
	uint32_t	 generation;
	uint32_t	 state;		/* SB_* as the worker sees itself */
	uint32_t	 open;		/* connections open now (gauge) */
	uint32_t	 h2_open;	/* of them HTTP/2 (gauge) */
	uint32_t	 h2_streams;	/* HTTP/2 streams open now (gauge) */
	uint64_t	 heartbeat;	/* ev_clock_ms() of the last loop turn */
	uint32_t	 idle;		/* of open: keep-alive, waiting (gauge) */
	uint32_t	 writing;	/* of open: waiting to send (gauge) */
	struct sb_counters c;
} __attribute__((aligned(SB_LINE)));

struct sb_retired {
	uint32_t	 seq;		/* odd while the master folds */
	uint32_t	 nslots;
	struct sb_counters c;		/* of every worker reaped so far */
	struct sb_master m;
} __attribute__((aligned(SB_LINE)));

struct scoreboard {
	struct sb_retired retired;
	struct sb_slot	 slot[];
};

/* A reader's consistent snapshot. */
struct sb_totals {
	struct sb_counters c;		/* retired + every slot */
	uint64_t	 requests;	/* sum of c.status[] */
	uint64_t	 open;		/* gauge: sum of the live slots */
	uint64_t	 idle;		/* of open: idle keep-alive (gauge) */
	uint64_t	 writing;	/* of open: waiting to send (gauge) */
	uint64_t	 h2_open;	/* gauge: HTTP/2 connections */
	uint64_t	 h2_streams;	/* gauge: HTTP/2 streams */
	uint32_t	 workers[SB_NSTATE]; /* gauge: slots by state */
	struct sb_master m;		/* the master's facts */
};

/* ---- the master ---------------------------------------------------------- */

/*
 * Make (or, on a later call with the same nslots, find again) the
 * scoreboard in the shared region "scoreboard", before the first fork.
 * 0, or -1 with errno (shm_get()'s). Every later call in the process
 * uses it, in the master and in the workers it forks.
 */
int	 sb_init(unsigned nslots);
unsigned sb_nslots(void);
/* Slot i (< sb_nslots()), for reading; NULL before sb_init(). */
const struct sb_slot *sb_slot(unsigned i);
/*
 * Slot i gets a new worker (before fork): its identity and gauge are
 * cleared. Its counters are already zero: sb_fold() left them so.
 */
void	 sb_slot_claim(unsigned i);
/*
 * Slot i's worker has been reaped (it no longer writes): add its counters
 * to the retired totals and zero them, as one step for readers (seqlock).
 * Only the master calls this, so writers never race each other.
 */
void	 sb_fold(unsigned i);
/*
 * The master's facts (struct sb_master), each one update seen whole by
 * readers. sb_master_start(): at start, wall-clock seconds now, the
 * first generation and its config hash (metrics_hash_file()); also the
 * last good load. sb_master_reload(): a reload ended (ok 1 or 0) at
 * wall-clock now; a good one also sets generation and hash.
 * sb_master_exit(): a worker was reaped, reason SB_EXIT_*.
 * sb_master_draining(): 0 or 1.
 */
void	 sb_master_start(uint64_t now, uint32_t generation, uint64_t hash);
void	 sb_master_reload(int ok, uint64_t now, uint32_t generation,
	    uint64_t hash);
void	 sb_master_exit(int reason);
void	 sb_master_draining(int on);

/* ---- any process -------------------------------------------------------- */

/*
 * retired + every slot, consistent: a fold is seen entirely or not at
 * all. Retries while a fold is under way (a few stores long), yielding
 * the CPU after a few spins in case the master was preempted mid-fold;
 * 0, or -1 with errno EAGAIN if the sequence stayed odd for about a
 * million tries, each a sched_yield() (about a second: a master killed
 * in the middle of a fold).
 */
int	 sb_read_totals(struct sb_totals *t);
/*
 * The master's drain flag (sb_master_draining(): `porter -s drain`, a
 * stop): 1 or 0. One relaxed load of a word the master seldom writes,
 * so a worker may look at it for every response. 0 before sb_init().
 */
extern const uint32_t *sb_drain_flag;
static inline int
sb_draining(void)
{
	return sb_drain_flag != NULL &&
	    __atomic_load_n(sb_drain_flag, __ATOMIC_RELAXED) != 0;
}

/* Index in sb_counters.code[] of a status code: SB_NCODE - 1 if not listed. */
static inline unsigned
sb_code_index(int status)
{
	switch (status) {
	case 200: return 0;
	case 204: return 1;
	case 206: return 2;
	case 301: return 3;
	case 302: return 4;
	case 304: return 5;
	case 400: return 6;
	case 403: return 7;
	case 404: return 8;
	case 405: return 9;
	case 408: return 10;
	case 412: return 11;
	case 413: return 12;
	case 414: return 13;
	case 416: return 14;
	case 429: return 15;
	case 431: return 16;
	case 500: return 17;
	case 501: return 18;
	case 503: return 19;
	case 505: return 20;
	}
	return SB_NCODE - 1;
}

/* Index in sb_counters.dur[] of a latency in ms (bounds are inclusive). */
static inline unsigned
sb_bucket_index(uint64_t ms)
{
	unsigned i;

	for (i = 0; i < SB_NBUCKET - 1; i++)
		if (ms <= sb_bucket_ms[i])
			break;
	return i;
}

/* A slot's own responses (sum of its status classes). */
uint64_t sb_slot_requests(const struct sb_slot *s);
/* Relaxed read of one 64-bit field written by another process. */
#define SB_LOAD(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)

/* ---- a worker (its own slot only) ---------------------------------------- */

extern struct sb_slot *sb_self;

/* From now on this process writes slot i: pid, generation, SB_STARTING. */
void	 sb_attach(unsigned i, uint32_t generation);
void	 sb_set_state(int state);
/* Once per loop turn: alive at now (ms), open connections. */
void	 sb_heartbeat(uint64_t now, size_t open);
/*
 * Once per loop turn too: of the open connections, how many sit idle
 * between keep-alive requests and how many wait for the socket to take
 * a response (the rest are reading: a head, a body, a handshake).
 */
void	 sb_conn_states(size_t idle, size_t writing);

/* Single writer: a plain add, kept atomic for readers elsewhere. */
#define SB_ADD(x, v)	__atomic_store_n(&(x), \
	__atomic_load_n(&(x), __ATOMIC_RELAXED) + (v), __ATOMIC_RELAXED)

/* A connection was accepted (any protocol). */
static inline void
sb_conn_opened(void)
{
	SB_ADD(sb_self->c.accepted, 1);
}

/*
 * A response went out: status (100..599; others count as 5xx) and the
 * bytes written for it, headers included.
 */
static inline void
sb_request_done(int status, uint64_t bytes)
{
	unsigned k = status >= 100 && status < 600 ? (unsigned)status / 100 - 1 :
	    SB_NCLASS - 1;

	SB_ADD(sb_self->c.status[k], 1);
	SB_ADD(sb_self->c.code[sb_code_index(status)], 1);
	SB_ADD(sb_self->c.bytes, bytes);
}

/*
 * A response took ms milliseconds, from its request head complete to its
 * last byte handed to the kernel, on the loop clock (ev_now(): no extra
 * syscall). Large files include the client's download time.
 */
static inline void
sb_request_time(uint64_t ms)
{
	SB_ADD(sb_self->c.dur[sb_bucket_index(ms)], 1);
	SB_ADD(sb_self->c.dur_ms, ms);
}

/*
 * HTTP/2 (h2.c): a response went out over it (beside sb_request_done());
 * a connection began or ended speaking it (+1/-1); streams opened or
 * closed (+n/-n). The gauges are the worker's own slot's.
 */
static inline void
sb_h2_request(void)
{
	SB_ADD(sb_self->c.h2_requests, 1);
}

static inline void
sb_h2_conn(int d)
{
	if (d > 0)
		SB_ADD(sb_self->c.h2_conns, 1);
	__atomic_store_n(&sb_self->h2_open, (uint32_t)((int32_t)
	    __atomic_load_n(&sb_self->h2_open, __ATOMIC_RELAXED) + d),
	    __ATOMIC_RELAXED);
}

static inline void
sb_h2_streams(int d)
{
	__atomic_store_n(&sb_self->h2_streams, (uint32_t)((int32_t)
	    __atomic_load_n(&sb_self->h2_streams, __ATOMIC_RELAXED) + d),
	    __ATOMIC_RELAXED);
}

/* A connection was closed unserved right after accept (SB_REJ_*). */
static inline void
sb_conn_rejected(int reason)
{
	SB_ADD(sb_self->c.rejected[reason], 1);
}

/* A PROXY header was taken: version 1 or 2, command 0 (LOCAL) or 1. */
static inline void
sb_proxy_header(int version, int command)
{
	SB_ADD(sb_self->c.proxy_hdr[((version - 1) & 1) * 2 + (command & 1)], 1);
}

/* A PROXY header was refused and the connection closed (SB_PROXY_*). */
static inline void
sb_proxy_error(int reason)
{
	SB_ADD(sb_self->c.proxy_err[reason], 1);
}

#endif /* SCOREBOARD_H */
