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
#include <string.h>
#include <unistd.h>

#include "porter.h"
#include "scoreboard.h"
#include "shm.h"

#define SB_READ_TRIES	(1u << 20)

struct sb_slot	*sb_self;

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
	__atomic_store_n(&s->heartbeat, 0, __ATOMIC_RELAXED);
}

/* to += from, field by field; from = 0 when clear. */
static void
sb_add_counters(struct sb_counters *to, struct sb_counters *from, int clear)
{
	int k;

	for (k = 0; k < SB_NCLASS; k++) {
		SB_ADD(to->status[k], SB_LOAD(from->status[k]));
		if (clear)
			__atomic_store_n(&from->status[k], 0, __ATOMIC_RELAXED);
	}
	SB_ADD(to->bytes, SB_LOAD(from->bytes));
	SB_ADD(to->accepted, SB_LOAD(from->accepted));
	if (clear) {
		__atomic_store_n(&from->bytes, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&from->accepted, 0, __ATOMIC_RELAXED);
	}
}

void
sb_fold(unsigned i)
{
	struct sb_retired *r = &sb.board->retired;
	struct sb_slot *s = &sb.board->slot[i];
	uint32_t seq = __atomic_load_n(&r->seq, __ATOMIC_RELAXED);

	__atomic_store_n(&r->seq, seq + 1, __ATOMIC_RELAXED);
	/* Readers must see the odd sequence before any moved count. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	sb_add_counters(&r->c, &s->c, 1);
	__atomic_store_n(&s->open, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->state, SB_FREE, __ATOMIC_RELAXED);
	__atomic_store_n(&r->seq, seq + 2, __ATOMIC_RELEASE);
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
	uint32_t s1, s2, tries, n, i;
	int k;

	memset(t, 0, sizeof(*t));
	if (b == NULL)
		return 0;
	n = b->retired.nslots;
	for (tries = 0; tries < SB_READ_TRIES; tries++) {
		s1 = __atomic_load_n(&b->retired.seq, __ATOMIC_ACQUIRE);
		if (s1 & 1)
			continue;
		memset(t, 0, sizeof(*t));
		sb_add_counters(&t->c, &b->retired.c, 0);
		for (i = 0; i < n; i++) {
			sb_add_counters(&t->c, &b->slot[i].c, 0);
			t->open += __atomic_load_n(&b->slot[i].open,
			    __ATOMIC_RELAXED);
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
