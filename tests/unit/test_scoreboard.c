/*
 * test_scoreboard.c - shared regions by name and size (shm.c), and the
 * scoreboard's retired totals (scoreboard.c): a fold keeps the totals a
 * reader sees, clears the slot, and a reader in another process never
 * sees a total go backwards while folds run.
 *
 * Criterion runs each test in its own process, so each starts with no
 * region made yet, as a fresh master does.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sched.h>

#include "porter.h"
#include "shm.h"
#include "scoreboard.h"

/* ---- shm.c ---------------------------------------------------------------- */

Test(shm, same_name_and_size_is_the_same_region)
{
	char *a, *b;

	a = shm_get("zone", 1000);
	cr_assert_not_null(a);
	memset(a, 0x5a, 1000);
	/* A reload asks again: same region, contents kept. */
	b = shm_get("zone", 1000);
	cr_assert_eq(a, b);
	cr_assert_eq(b[999], 0x5a);
	cr_assert_eq(shm_size("zone"), 1000);
}

Test(shm, other_size_is_an_error_and_changes_nothing)
{
	char *a = shm_get("zone", 4096);

	cr_assert_not_null(a);
	a[0] = 7;
	errno = 0;
	cr_assert_null(shm_get("zone", 8192));
	cr_assert_eq(errno, EEXIST);
	cr_assert_eq(shm_get("zone", 4096), a);
	cr_assert_eq(a[0], 7);
	cr_assert_eq(shm_size("zone"), 4096);
}

Test(shm, names_are_separate_and_zero_filled)
{
	char *a = shm_get("one", 64), *b = shm_get("two", 64);
	int i;

	cr_assert(a != NULL && b != NULL && a != b);
	for (i = 0; i < 64; i++)
		cr_assert_eq(b[i], 0);
	cr_assert_eq(shm_size("three"), 0);
}

Test(shm, bad_arguments)
{
	errno = 0;
	cr_assert_null(shm_get("", 10));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(shm_get("x", 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(shm_get(NULL, 10));
}

Test(shm, shared_with_children)
{
	volatile uint64_t *v = shm_get("counter", sizeof(*v));
	int status;
	pid_t pid;

	cr_assert_not_null(v);
	if ((pid = fork()) == 0) {
		*v = 42;
		_exit(0);
	}
	cr_assert_neq(pid, -1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert_eq(*v, 42);
}

/* ---- scoreboard.c --------------------------------------------------------- */

Test(scoreboard, layout_is_cache_line_aligned)
{
	cr_assert_eq(sizeof(struct sb_slot) % SB_LINE, 0);
	cr_assert_eq(sizeof(struct sb_retired) % SB_LINE, 0);
	cr_assert_eq(sb_init(4), 0);
	cr_assert_eq((uintptr_t)sb_slot(0) % SB_LINE, 0);
	cr_assert_eq((uintptr_t)sb_slot(1) % SB_LINE, 0);
	cr_assert_eq(sb_nslots(), 4);
}

Test(scoreboard, kept_across_reloads)
{
	struct sb_totals t;

	cr_assert_eq(sb_init(4), 0);
	sb_slot_claim(2);
	sb_attach(2, 1);
	sb_request_done(200, 10);
	sb_fold(2);
	/* A reload's sb_init(): the same board, the retired totals kept. */
	cr_assert_eq(sb_init(4), 0);
	cr_assert_eq(sb_read_totals(&t), 0);
	cr_assert_eq(t.requests, 1);
	cr_assert_eq(t.c.bytes, 10);
	/* Another size cannot replace it under the workers still using it. */
	cr_assert_eq(sb_init(8), -1);
	cr_assert_eq(errno, EEXIST);
}

Test(scoreboard, counts_by_status_class)
{
	struct sb_totals t;

	cr_assert_eq(sb_init(2), 0);
	sb_slot_claim(0);
	sb_attach(0, 3);
	cr_assert_eq(sb_slot(0)->pid, getpid());
	cr_assert_eq(sb_slot(0)->generation, 3);
	cr_assert_eq(sb_slot(0)->state, SB_STARTING);
	sb_conn_opened();
	sb_request_done(100, 1);
	sb_request_done(204, 2);
	sb_request_done(304, 3);
	sb_request_done(416, 4);
	sb_request_done(503, 5);
	sb_request_done(0, 6);		/* out of range: a server error */
	sb_heartbeat(1234, 7);
	cr_assert_eq(sb_read_totals(&t), 0);
	cr_assert_eq(t.c.status[0], 1);
	cr_assert_eq(t.c.status[1], 1);
	cr_assert_eq(t.c.status[2], 1);
	cr_assert_eq(t.c.status[3], 1);
	cr_assert_eq(t.c.status[4], 2);
	cr_assert_eq(t.requests, 6);
	cr_assert_eq(t.c.bytes, 21);
	cr_assert_eq(t.c.accepted, 1);
	cr_assert_eq(t.open, 7);
	cr_assert_eq(sb_slot(0)->heartbeat, 1234);
	cr_assert_eq(sb_slot_requests(sb_slot(0)), 6);
}

Test(scoreboard, fold_keeps_totals_and_clears_the_slot)
{
	struct sb_totals before, after;
	const struct sb_slot *s;
	int k;

	cr_assert_eq(sb_init(3), 0);
	/* Two workers; the one in slot 1 dies. */
	sb_slot_claim(0);
	sb_attach(0, 1);
	sb_request_done(200, 100);
	sb_slot_claim(1);
	sb_attach(1, 1);
	for (k = 0; k < 5; k++)
		sb_request_done(200, 10);
	sb_request_done(404, 1);
	sb_conn_opened();
	sb_heartbeat(99, 3);
	cr_assert_eq(sb_read_totals(&before), 0);
	cr_assert_eq(before.requests, 7);
	cr_assert_eq(before.open, 3);

	sb_fold(1);
	cr_assert_eq(sb_read_totals(&after), 0);
	cr_assert_eq(after.requests, before.requests);
	cr_assert_eq(memcmp(&after.c, &before.c, sizeof(after.c)), 0);
	/* The gauge is not folded: a dead worker holds no connection. */
	cr_assert_eq(after.open, 0);
	s = sb_slot(1);
	cr_assert_eq(sb_slot_requests(s), 0);
	cr_assert_eq(s->c.bytes, 0);
	cr_assert_eq(s->c.accepted, 0);
	cr_assert_eq(s->state, SB_FREE);
	/* The slot's next worker starts from zero; the totals go on. */
	sb_slot_claim(1);
	cr_assert_eq(sb_slot(1)->pid, 0);
	sb_attach(1, 2);
	sb_request_done(301, 5);
	cr_assert_eq(sb_read_totals(&after), 0);
	cr_assert_eq(after.requests, 8);
	cr_assert_eq(after.c.status[2], 1);
	cr_assert_eq(after.c.bytes, before.c.bytes + 5);
	/* Folding an empty slot changes nothing. */
	sb_fold(2);
	cr_assert_eq(sb_read_totals(&before), 0);
	cr_assert_eq(before.requests, 8);
}

/*
 * Every counter of struct sb_counters is folded (the status codes, the
 * latency histogram and the rejections too), and the per-request helpers
 * count where they say.
 */
Test(scoreboard, fold_moves_every_counter)
{
	struct sb_totals before, after;
	int k;

	cr_assert_eq(sb_init(2), 0);
	sb_slot_claim(0);
	sb_attach(0, 1);
	sb_request_done(404, 7);
	sb_request_time(3);
	sb_conn_rejected(SB_REJ_PROXY);
	cr_assert_eq(sb_read_totals(&before), 0);
	cr_assert_eq(before.c.code[sb_code_index(404)], 1);
	cr_assert_eq(before.c.dur[1], 1);	/* 3 ms: le 0.005 */
	cr_assert_eq(before.c.dur_ms, 3);
	cr_assert_eq(before.c.rejected[SB_REJ_PROXY], 1);
	for (k = 0; k < SB_NCOUNTERS; k++)
		SB_ADD(sb_self->c.v[k], (uint64_t)k + 1);
	cr_assert_eq(sb_read_totals(&before), 0);
	sb_fold(0);
	cr_assert_eq(sb_read_totals(&after), 0);
	for (k = 0; k < SB_NCOUNTERS; k++) {
		cr_assert_eq(after.c.v[k], before.c.v[k], "counter %d", k);
		cr_assert_eq(sb_slot(0)->c.v[k], 0, "counter %d not cleared", k);
	}
}

/* The master's facts: kept across a reload's sb_init(), counts only grow. */
Test(scoreboard, master_facts)
{
	struct sb_totals t;

	cr_assert_eq(sb_init(1), 0);
	sb_master_start(1000, 1, 0xabc);
	sb_master_exit(SB_EXIT_HANG);
	sb_master_reload(0, 1100, 9, 0xdef);
	cr_assert_eq(sb_init(1), 0);
	cr_assert_eq(sb_read_totals(&t), 0);
	cr_assert_eq(t.m.start_time, 1000);
	cr_assert_eq(t.m.exits[SB_EXIT_HANG], 1);
	cr_assert_eq(t.m.reloads[SB_RELOAD_FAILURE], 1);
	cr_assert_eq(t.m.reload_ok, 0);
	/* A failed reload leaves the serving generation's facts. */
	cr_assert_eq(t.m.generation, 1);
	cr_assert_eq(t.m.config_hash, 0xabc);
	cr_assert_eq(t.m.reload_time, 1000);
	sb_master_reload(1, 1200, 2, 0xdef);
	sb_master_draining(1);
	cr_assert_eq(sb_read_totals(&t), 0);
	cr_assert_eq(t.m.reloads[SB_RELOAD_SUCCESS], 1);
	cr_assert_eq(t.m.reload_ok, 1);
	cr_assert_eq(t.m.generation, 2);
	cr_assert_eq(t.m.config_hash, 0xdef);
	cr_assert_eq(t.m.reload_time, 1200);
	cr_assert_eq(t.m.draining, 1);
}

/*
 * A child plays workers that serve and die, and the master that folds
 * them, over and over, and publishes after each response how many it
 * has made; the parent reads the totals all the while and checks each
 * read against that count taken before and after it. A read that
 * straddles a fold without the sequence lock misses the folded worker's
 * PER_ROUND responses (or counts them twice), far more than the child
 * can make during one read. No timing: the child keeps going until it
 * has done ROUNDS folds and the parent MIN_OVERLAPS reads during which
 * the child made progress (so reader and writer really overlapped, even
 * on a busy machine), the parent reads until the child has exited, and
 * the last read must see everything.
 */
#define ROUNDS		1000
#define PER_ROUND	1000
#define MIN_OVERLAPS	2000
#define NSLOTS		64

struct progress {
	uint64_t	 made;		/* responses the child has made */
	uint64_t	 overlaps;	/* reads during which made grew */
	uint64_t	 reads;		/* reads the parent has finished */
};

Test(scoreboard, readers_see_whole_folds_and_never_go_back)
{
	struct progress *pg;
	struct sb_totals t;
	uint64_t d1, d2, prev = 0, reads = 0, overlaps = 0, r, seen;
	int status, k, exited = 0;
	pid_t pid, parent = getpid();

	cr_assert_eq(sb_init(NSLOTS), 0);
	cr_assert_not_null(pg = shm_get("progress", sizeof(*pg)));
	if ((pid = fork()) == 0) {
		for (r = 0; r < ROUNDS || __atomic_load_n(&pg->overlaps,
		    __ATOMIC_RELAXED) < MIN_OVERLAPS; r++) {
			unsigned slot = (unsigned)(r % NSLOTS);

			/* A failed assertion ends the parent: stop too. */
			if (getppid() != parent)
				_exit(1);

			sb_slot_claim(slot);
			sb_attach(slot, 1);
			for (k = 0; k < PER_ROUND; k++) {
				sb_request_done(200 + (k % 4) * 100, 3);
				__atomic_store_n(&pg->made, r * PER_ROUND +
				    (uint64_t)k + 1, __ATOMIC_RELEASE);
			}
			sb_fold(slot);
			/*
			 * A seqlock promises readers nothing against a writer
			 * that never stops (the master folds once per dead
			 * worker): let one read finish before the next fold.
			 */
			for (seen = __atomic_load_n(&pg->reads,
			    __ATOMIC_ACQUIRE); __atomic_load_n(&pg->reads,
			    __ATOMIC_ACQUIRE) == seen;)
				if (getppid() != parent)
					_exit(1);
				else
					sched_yield();
		}
		_exit(0);
	}
	cr_assert_neq(pid, -1);
	while (!exited) {
		/* A system call now and then, not between every two reads. */
		if (reads % 256 == 0 && waitpid(pid, &status, WNOHANG) == pid)
			exited = 1;
		d1 = __atomic_load_n(&pg->made, __ATOMIC_ACQUIRE);
		cr_assert_eq(sb_read_totals(&t), 0);
		d2 = __atomic_load_n(&pg->made, __ATOMIC_ACQUIRE);
		reads++;
		__atomic_store_n(&pg->reads, reads, __ATOMIC_RELEASE);
		if (d2 > d1)
			__atomic_store_n(&pg->overlaps, ++overlaps,
			    __ATOMIC_RELAXED);
		/* One response may be counted before its publication. */
		cr_assert(t.requests >= d1 && t.requests <= d2 + 1,
		    "read %llu: %llu requests, but %llu..%llu were made",
		    (unsigned long long)reads, (unsigned long long)t.requests,
		    (unsigned long long)d1, (unsigned long long)d2);
		cr_assert_geq(t.requests, prev, "requests went back from %llu "
		    "to %llu", (unsigned long long)prev,
		    (unsigned long long)t.requests);
		prev = t.requests;
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Everything was folded: the retired totals hold it all. */
	cr_assert_eq(t.requests, pg->made);
	cr_assert_eq(t.requests % PER_ROUND, 0);
	cr_assert_geq(t.requests, (uint64_t)ROUNDS * PER_ROUND);
	cr_assert_eq(t.c.bytes, t.requests * 3);
	cr_assert_eq(t.c.status[1] + t.c.status[2] + t.c.status[3] +
	    t.c.status[4], t.requests);
	cr_assert_eq(t.c.status[0], 0);
	cr_log_info("%llu reads, %llu while the child made progress",
	    (unsigned long long)reads, (unsigned long long)overlaps);
}
