/*
 * scoreboard.c - the layout of the shared scoreboard, its fold and its
 * readers (see scoreboard.h for who writes what).
 *
 * The sequence lock follows Boehm, "Can seqlocks get along with
 * programming language memory models?" (2012): the writer makes the
 * sequence odd, fences, writes, and publishes the even value with
 * release; a reader loads it with acquire, reads, fences with acquire
 * and loads it again. Every shared field is read and written through
 * __atomic builtins, so the compiler neither tears nor caches them.
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "scoreboard.h"
#include "shm.h"

#define SB_READ_TRIES	(1u << 20)
#define SB_READ_SPINS	64	/* tries before each one yields */

struct sb_slot	*sb_self;
const uint32_t	*sb_drain_flag;

_Static_assert(sizeof(struct sb_counters) == SB_NCOUNTERS * sizeof(uint64_t),
    "sb_counters: only uint64_t counters, all in v[]");

/* In sb_code_index()'s order. */
const int sb_codes[SB_NCODE - 1] = {
	200, 204, 206, 301, 302, 304, 400, 403, 404, 405, 408,
	412, 413, 414, 416, 429, 431, 500, 501, 503, 505
};

/* Prometheus's usual web latencies, with room for slow downloads. */
const uint64_t sb_bucket_ms[SB_NBUCKET - 1] = {
	1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000, 60000
};

static struct {
	struct scoreboard *board;
} sb;

int
sb_init(unsigned nslots)
{
	struct scoreboard *b;

	b = shm_get("scoreboard", sizeof(struct scoreboard) +
	    (size_t)nslots * sizeof(struct sb_slot));
	if (b == NULL)
		return -1;
	/* Made zero-filled; found again by a reload, with its totals. */
	b->retired.nslots = nslots;
	sb.board = b;
	sb_drain_flag = &b->retired.m.draining;
	return 0;
}

unsigned
sb_nslots(void)
{
	return sb.board != NULL ? sb.board->retired.nslots : 0;
}

const struct sb_slot *
sb_slot(unsigned i)
{
	return sb.board != NULL ? &sb.board->slot[i] : NULL;
}

void
sb_slot_claim(unsigned i)
{
	struct sb_slot *s = &sb.board->slot[i];

	__atomic_store_n(&s->pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->generation, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, SB_FREE, __ATOMIC_RELAXED);
	__atomic_store_n(&s->open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->idle, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->writing, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h2_open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h2_streams, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->heartbeat, 0, __ATOMIC_RELAXED);
}

/* to += from, field by field; from = 0 when clear. */
static void
sb_add_counters(struct sb_counters *to, struct sb_counters *from, int clear)
{
	int k;

	for (k = 0; k < SB_NCOUNTERS; k++) {
		SB_ADD(to->v[k], SB_LOAD(from->v[k]));
		if (clear)
			__atomic_store_n(&from->v[k], 0, __ATOMIC_RELAXED);
	}
}

/* The writer's half of the sequence lock (the master only). */
static uint32_t
sb_write_begin(void)
{
	struct sb_retired *r = &sb.board->retired;
	uint32_t seq = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
	/* Readers must see the odd sequence before any changed field. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	return seq;
}

static void
sb_write_end(uint32_t seq)
{
	__atomic_store_n(&sb.board->retired.seq, seq + 2, __ATOMIC_RELEASE);
}

#define SB_SET(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

void
sb_master_start(uint64_t now, uint32_t generation, uint64_t hash)
{
	struct sb_master *m = &sb.board->retired.m;
	uint32_t seq = sb_write_begin();

	SB_SET(m->start_time, now);
	SB_SET(m->reload_time, now);
	SB_SET(m->generation, generation);
	SB_SET(m->config_hash, hash);
	/* Loading the first file was a success too (Prometheus's choice). */
	SB_SET(m->reload_ok, 1);
	sb_write_end(seq);
}

void
sb_master_reload(int ok, uint64_t now, uint32_t generation, uint64_t hash)
{
	struct sb_master *m = &sb.board->retired.m;
	uint32_t seq = sb_write_begin();

	SB_ADD(m->reloads[ok ? SB_RELOAD_SUCCESS : SB_RELOAD_FAILURE], 1);
	SB_SET(m->reload_ok, ok ? 1 : 0);
	if (ok) {
		SB_SET(m->reload_time, now);
		SB_SET(m->generation, generation);
		SB_SET(m->config_hash, hash);
	}
	sb_write_end(seq);
}

void
sb_master_exit(int reason)
{
	uint32_t seq = sb_write_begin();

	SB_ADD(sb.board->retired.m.exits[reason], 1);
	sb_write_end(seq);
}

void
sb_master_draining(int on)
{
	uint32_t seq = sb_write_begin();

	SB_SET(sb.board->retired.m.draining, on ? 1 : 0);
	sb_write_end(seq);
}

/* A copy of the master's facts, field by field (readers run under seq). */
static void
sb_copy_master(struct sb_master *to, struct sb_master *from)
{
	int k;

	for (k = 0; k < SB_NEXIT; k++)
		to->exits[k] = SB_LOAD(from->exits[k]);
	for (k = 0; k < SB_NRELOAD; k++)
		to->reloads[k] = SB_LOAD(from->reloads[k]);
	to->start_time = SB_LOAD(from->start_time);
	to->reload_time = SB_LOAD(from->reload_time);
	to->config_hash = SB_LOAD(from->config_hash);
	to->generation = SB_LOAD(from->generation);
	to->reload_ok = SB_LOAD(from->reload_ok);
	to->draining = SB_LOAD(from->draining);
}

void
sb_fold(unsigned i)
{
	struct sb_retired *r = &sb.board->retired;
	struct sb_slot *s = &sb.board->slot[i];
	uint32_t seq = sb_write_begin();

	sb_add_counters(&r->c, &s->c, 1);
	__atomic_store_n(&s->open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->idle, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->writing, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h2_open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->h2_streams, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, SB_FREE, __ATOMIC_RELAXED);
	sb_write_end(seq);
}

uint64_t
sb_slot_requests(const struct sb_slot *s)
{
	uint64_t n = 0;
	int k;

	for (k = 0; k < SB_NCLASS; k++)
		n += SB_LOAD(s->c.status[k]);
	return n;
}

int
sb_read_totals(struct sb_totals *t)
{
	struct scoreboard *b = sb.board;
	uint32_t s1, s2, tries, n, i, st;
	int k;

	memset(t, 0, sizeof(*t));
	if (b == NULL)
		return 0;
	n = b->retired.nslots;
	for (tries = 0; tries < SB_READ_TRIES; tries++) {
		/*
		 * The writer may be preempted mid-fold: after a few spins,
		 * give it the CPU instead of burning the tries in a blink.
		 */
		if (tries >= SB_READ_SPINS)
			sched_yield();
		s1 = __atomic_load_n(&b->retired.seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memset(t, 0, sizeof(*t));
		sb_add_counters(&t->c, &b->retired.c, 0);
		sb_copy_master(&t->m, &b->retired.m);
		for (i = 0; i < n; i++) {
			sb_add_counters(&t->c, &b->slot[i].c, 0);
			t->open += __atomic_load_n(&b->slot[i].open,
			    __ATOMIC_RELAXED);
			t->idle += __atomic_load_n(&b->slot[i].idle,
			    __ATOMIC_RELAXED);
			t->writing += __atomic_load_n(&b->slot[i].writing,
			    __ATOMIC_RELAXED);
			t->h2_open += __atomic_load_n(&b->slot[i].h2_open,
			    __ATOMIC_RELAXED);
			t->h2_streams += __atomic_load_n(
			    &b->slot[i].h2_streams, __ATOMIC_RELAXED);
			st = __atomic_load_n(&b->slot[i].state,
			    __ATOMIC_RELAXED);
			if (st > SB_FREE && st < SB_NSTATE)
				t->workers[st]++;
		}
		/* The loads above happen before the second look at seq. */
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&b->retired.seq, __ATOMIC_RELAXED);
		if (s1 != s2)
			continue;
		for (k = 0; k < SB_NCLASS; k++)
			t->requests += t->c.status[k];
		return 0;
	}
	errno = EAGAIN;
	return -1;
}

void
sb_attach(unsigned i, uint32_t generation)
{
	struct sb_slot *slot = &sb.board->slot[i];

	sb_self = slot;
	__atomic_store_n(&slot->pid, getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&slot->generation, generation, __ATOMIC_RELAXED);
	__atomic_store_n(&slot->state, SB_STARTING, __ATOMIC_RELAXED);
}

void
sb_set_state(int state)
{
	__atomic_store_n(&sb_self->state, (uint32_t)state, __ATOMIC_RELAXED);
}

void
sb_heartbeat(uint64_t now, size_t open)
{
	__atomic_store_n(&sb_self->heartbeat, now, __ATOMIC_RELAXED);
	__atomic_store_n(&sb_self->open, (uint32_t)open, __ATOMIC_RELAXED);
}

void
sb_conn_states(size_t idle, size_t writing)
{
	__atomic_store_n(&sb_self->idle, (uint32_t)idle, __ATOMIC_RELAXED);
	__atomic_store_n(&sb_self->writing, (uint32_t)writing,
	    __ATOMIC_RELAXED);
}
