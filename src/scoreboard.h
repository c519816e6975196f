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

enum { SB_FREE, SB_STARTING, SB_READY, SB_DRAINING };

/* Monotonic counters; the ones in a slot count one worker's life. */
struct sb_counters {
	uint64_t	 status[SB_NCLASS];	/* responses: [0] 1xx .. [4] 5xx */
	uint64_t	 bytes;		/* bytes sent, headers included */
	uint64_t	 accepted;	/* connections accepted */
};

struct sb_slot {
	pid_t		 pid;		/* 0: no worker yet */
	uint32_t	 generation;
	uint32_t	 state;		/* SB_* as the worker sees itself */
	uint32_t	 open;		/* connections open now (gauge) */
	uint64_t	 heartbeat;	/* ev_clock_ms() of the last loop turn */
	struct sb_counters c;
} __attribute__((aligned(SB_LINE)));

struct sb_retired {
	uint32_t	 seq;		/* odd while the master folds */
	uint32_t	 nslots;
	struct sb_counters c;		/* of every worker reaped so far */
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

/* ---- any process -------------------------------------------------------- */

/*
 * retired + every slot, consistent: a fold is seen entirely or not at
 * all. Retries while a fold is under way (a few stores long); 0, or -1
 * with errno EAGAIN if the sequence stayed odd for about a million tries
 * (a master killed in the middle of a fold).
 */
int	 sb_read_totals(struct sb_totals *t);
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
	SB_ADD(sb_self->c.bytes, bytes);
}

#endif /* SCOREBOARD_H */
