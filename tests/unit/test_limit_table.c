/*
 * test_limit_table.c - client limits, the tables: eviction that never
 * drops a pinned entry, lock and ledger repair after a dead worker,
 * the region's geometry and the parameters' checks. Time is injected:
 * no test reads a clock or sleeps.
 *
 * limit_int.h is included so the repair tests can take a lock word the
 * way a worker does and die holding it.
 */
#include <sys/wait.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "limit_fx.h"
#include "limit_int.h"

/* ---- eviction ------------------------------------------------------- */

Test(evict, never_drops_connected_entries_fails_open)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, counted = 0, untracked = 0;
	static int		 pos[600];

	fx_open(&f, 64, 64, 1, 600);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 2;
	fx_start(&f);
	for (i = 0; i < 600; i++) {
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, NULL);
		pos[i] = limit_conn_open(&f.l, &k, T0, 0, (uint32_t)i, &r);
		counted += pos[i];
		untracked += r.untracked;
		cr_assert_eq(r.block, 0);	/* fail open, never refuse */
	}
	cr_assert_eq(counted, 64);
	cr_assert_eq(untracked, 600 - 64);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 0);
	cr_assert_eq(st.untracked, 600 - 64);
	cr_assert_eq(st.entries, 64);
	/* a spray of requests from new addresses changes nothing */
	for (i = 0; i < 2000; i++) {
		snprintf(a, sizeof(a), "10.2.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, "x");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
		cr_assert_eq(r.block, 0);
	}
	for (i = 0; i < 600; i++) {
		if (!pos[i])
			continue;
		snprintf(a, sizeof(a), "10.1.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, NULL);
		cr_assert(limit_info(&f.l, &k, 1, T0, &in));
		cr_assert_eq(in.conns, 1);
		/* the cap still holds: the count survived */
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 599, &r), 1);
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 598, &r), 0);
		cr_assert_eq(r.verdict, LIMIT_CONNECTIONS);
		cr_assert_eq(r.block, 1);
		cr_assert_eq(r.retry_after, 1);
		limit_conn_close(&f.l, 0, 599);
	}
	/* closed: evictable again, the spray now evicts */
	for (i = 0; i < 600; i++)
		if (pos[i])
			limit_conn_close(&f.l, 0, (uint32_t)i);
	for (i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.3.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, NULL);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_gt(st.evictions, 0);
	cr_assert_eq(st.entries, 64);
}

Test(evict, never_drops_banned_entries)
{
	struct fx		 f;
	struct limit_key	 bad, k;
	struct limit_result	 r;
	struct limit_info	 in;
	char			 a[32];
	int			 i;

	fx_open(&f, 64, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	bad = fx_key(&f, "192.0.2.66", "scanner");
	fx_probe_until_ban(&f, &bad, T0);
	/* 100 s on: no debt left anywhere, so only the pin keeps it; it
	 * would otherwise be the first to go, as the oldest */
	for (i = 0; i < 5000; i++) {
		snprintf(a, sizeof(a), "10.4.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, "spray");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 100000, &r);
	}
	cr_assert(limit_info(&f.l, &bad, 0, T0 + 100000, &in));
	cr_assert_eq(in.banned_flag, 1);
	cr_assert_eq(in.ban_left, 500);
	limit_check(&f.l, &bad, LIMIT_COST_PAGE, T0 + 100000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	/* after the ban the entry is an ordinary one again */
	for (i = 0; i < 5000; i++) {
		snprintf(a, sizeof(a), "10.5.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, "spray");
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 700000, &r);
	}
	cr_assert(!limit_info(&f.l, &bad, 0, T0 + 700000, &in));
}

/* Addresses whose address-wide entry lands in bucket b while none of
 * their fine entries do. */
static int
same_bucket(struct fx *f, uint32_t b, struct limit_key *out, int n)
{
	struct limit_info	 in;
	struct limit_key	 k;
	char			 a[32];
	int			 i, got = 0;

	for (i = 0; i < 60000 && got < n; i++) {
		snprintf(a, sizeof(a), "10.%d.%d.%d", 6 + i / 62500,
		    i / 250 % 250, i % 250);
		k = fx_key(f, a, "ua");
		limit_info(&f->l, &k, 1, T0, &in);
		if (in.bucket != b)
			continue;
		limit_info(&f->l, &k, 0, T0, &in);
		if (in.bucket == b)
			continue;
		out[got++] = k;
	}
	return got;
}

Test(evict, picks_the_least_loaded_unpinned_entry)
{
	struct fx		 f;
	struct limit_key	 k[9];
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;
	int			 i;

	fx_open(&f, 64, 64, 1, 8);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 100;
	fx_start(&f);
	cr_assert_eq(same_bucket(&f, 3, k, 9), 9);
	/* eight fill bucket 3: #0 has a connection, #5 the least debt */
	for (i = 0; i < 8; i++)
		cr_assert_eq(fx_burst(&f, &k[i], LIMIT_COST_PAGE,
		    i == 5 ? 1 : i == 0 ? 1 : 10, T0), i == 5 || i == 0 ? 1 : 10);
	cr_assert_eq(limit_conn_open(&f.l, &k[0], T0, 0, 0, &r), 1);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 0);
	limit_check(&f.l, &k[8], LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.untracked, 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.evictions, 1);
	for (i = 0; i < 9; i++)
		cr_assert_eq(limit_info(&f.l, &k[i], 1, T0, &in), i != 5,
		    "entry %d", i);
	/* then the oldest among equals; #0 stays, it is connected */
	limit_conn_close(&f.l, 0, 0);
	cr_assert_eq(limit_conn_open(&f.l, &k[0], T0, 0, 0, &r), 1);
	for (i = 1; i < 9; i++)
		if (i != 5)
			limit_check(&f.l, &k[i], LIMIT_COST_PAGE, T0 + 999999, &r);
	limit_check(&f.l, &k[5], LIMIT_COST_PAGE, T0 + 1000000, &r);
	cr_assert_eq(limit_info(&f.l, &k[0], 1, T0 + 1000000, &in), 1);
	cr_assert_eq(limit_info(&f.l, &k[1], 1, T0 + 1000000, &in), 0);
}

Test(evict, a_request_never_evicts_its_own_other_key)
{
	struct fx		 f;
	struct limit_key	 fill[8], x;
	struct limit_info	 in;
	char			 a[32];
	uint32_t		 b = 0;
	int			 i;

	fx_open(&f, 64, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* an address whose two keys hash to the same bucket */
	for (i = 0; i < 10000; i++) {
		snprintf(a, sizeof(a), "10.7.%d.%d", i / 250, i % 250);
		x = fx_key(&f, a, "ua");
		limit_info(&f.l, &x, 1, T0, &in);
		b = in.bucket;
		limit_info(&f.l, &x, 0, T0, &in);
		if (in.bucket == b)
			break;
	}
	cr_assert_lt(i, 10000);
	/* that bucket full of entries in debt: the fresh fine entry is
	 * then the cheapest victim for the address-wide one */
	cr_assert_eq(same_bucket(&f, b, fill, 8), 8);
	for (i = 0; i < 8; i++)
		cr_assert_eq(fx_burst(&f, &fill[i], LIMIT_COST_PAGE, 10, T0), 10);
	cr_assert_eq(fx_burst(&f, &x, LIMIT_COST_PAGE, 1000, T0), 400);
	cr_assert(limit_info(&f.l, &x, 0, T0, &in));
	cr_assert_eq(in.debt_ms, 20000);
	cr_assert(limit_info(&f.l, &x, 1, T0, &in));
	cr_assert_eq(in.debt_ms, 5000);
}

/* ---- locks, ledger, dead workers -------------------------------------- */

/* A worker: attach as itself, count conns connections in slot, then take
 * lock word `shard` of the client table and die holding it. */
static pid_t
dying_worker(struct fx *f, const struct limit_key *k, int conns,
    uint32_t slot, uint32_t shard)
{
	struct limit_result	 r;
	struct limit		 me;
	pid_t			 pid;
	int			 i;

	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (limit_attach(&me, f->mem, f->len, &f->p, getpid()) != 0)
			_exit(1);
		for (i = 0; i < conns; i++)
			if (limit_conn_open(&me, k, T0, slot, (uint32_t)i, &r) != 1)
				_exit(2);
		limit_lock(&limit_locks(me.l_shm)[shard], me.l_owner);
		_exit(0);
	}
	return pid;
}

Test(repair, lock_and_connections_of_a_dead_worker)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_shm	*s;
	size_t			 conns = 99, locks = 99;
	uint32_t		 shard;
	pid_t			 pid;
	int			 st, i;

	fx_open(&f, 1024, 64, 4, 16);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 4;
	fx_start(&f);
	s = f.l.l_shm;
	k = fx_key(&f, "192.0.2.1", "pupil");
	/* the master's own worker (slot 0) holds one connection */
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 1);
	limit_info(&f.l, &k, 1, T0, &in);
	shard = in.bucket % s->ls_nshards;

	pid = dying_worker(&f, &k, 3, 2, shard);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d", st);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, (uint32_t)pid);

	/* another dead pid's repair touches neither lock nor ledger */
	cr_assert_eq(limit_repair(&f.l, pid + 100000, 3, &locks, &conns), 0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(conns, 0);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, (uint32_t)pid);

	cr_assert_eq(limit_repair(&f.l, pid, 2, &locks, &conns), 0);
	cr_assert_eq(locks, 1);
	cr_assert_eq(conns, 3);
	cr_assert_eq(limit_locks(s)[shard].lk_owner, 0);
	cr_assert(limit_info(&f.l, &k, 1, T0, &in));
	cr_assert_eq(in.conns, 1);	/* exactly the dead worker's went */
	/* the cap of 4 lets three more in, not a fourth */
	for (i = 1; i <= 3; i++)
		cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, (uint32_t)i, &r),
		    1);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 4, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_CONNECTIONS);
	for (i = 0; i <= 3; i++)
		limit_conn_close(&f.l, 0, (uint32_t)i);
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
	limit_conn_close(&f.l, 0, 0);	/* twice: no underflow */
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
}

/*
 * Two workers die; the one reaped first counted a connection in a shard
 * whose lock the other, not yet reaped, still holds. The first repair
 * must come back (not spin for good) and finish once the second is done.
 */
Test(repair, two_dead_workers_one_holding_the_others_shard)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_info	 in;
	struct limit_shm	*s;
	size_t			 conns, locks;
	uint32_t		 shard;
	pid_t			 a, b;
	int			 st;

	fx_open(&f, 1024, 64, 4, 16);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	f.p.per_address_connections = 10;
	fx_start(&f);
	s = f.l.l_shm;
	k = fx_key(&f, "192.0.2.1", "pupil");
	limit_info(&f.l, &k, 1, T0, &in);
	shard = in.bucket % s->ls_nshards;
	a = dying_worker(&f, &k, 2, 1, (shard + 1) % s->ls_nshards);
	cr_assert_eq(waitpid(a, &st, 0), a);
	b = dying_worker(&f, &k, 0, 2, shard);
	cr_assert_eq(waitpid(b, &st, 0), b);

	cr_assert_eq(limit_repair(&f.l, a, 1, &locks, &conns), 1);
	cr_assert_eq(locks, 1);
	cr_assert_eq(conns, 0);
	cr_assert_eq(limit_repair(&f.l, b, 2, &locks, &conns), 0);
	cr_assert_eq(locks, 1);
	cr_assert_eq(limit_repair(&f.l, 0, 1, &locks, &conns), 0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(conns, 2);
	limit_info(&f.l, &k, 1, T0, &in);
	cr_assert_eq(in.conns, 0);
}

Test(repair, a_live_owner_keeps_its_lock)
{
	struct fx		 f;
	struct limit		 me;
	struct limit_shm	*s;
	size_t			 locks;
	int			 go[2], ready[2], st;
	char			 c = 0;
	pid_t			 pid;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	fx_start(&f);
	s = f.l.l_shm;
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* only the parent's end: its death ends our read */
		close(go[1]);
		close(ready[0]);
		if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
			_exit(1);
		limit_lock(&limit_locks(me.l_shm)[7], me.l_owner);
		limit_lock(&limit_ban_locks(me.l_shm)[2], me.l_owner);
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(2);
		limit_unlock(&limit_ban_locks(me.l_shm)[2]);
		limit_unlock(&limit_locks(me.l_shm)[7]);
		_exit(0);
	}
	close(go[0]);
	close(ready[1]);
	cr_assert_eq(read(ready[0], &c, 1), 1);
	/* the master repairs after some other worker's death */
	cr_assert_eq(limit_repair(&f.l, pid + 1, UINT32_MAX, &locks, NULL),
	    0);
	cr_assert_eq(locks, 0);
	cr_assert_eq(limit_locks(s)[7].lk_owner, (uint32_t)pid);
	cr_assert_eq(limit_ban_locks(s)[2].lk_owner, (uint32_t)pid);
	cr_assert_eq(write(go[1], &c, 1), 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(limit_locks(s)[7].lk_owner, 0);
	cr_assert_eq(limit_ban_locks(s)[2].lk_owner, 0);
}

Test(repair, dead_worker_holding_a_ban_lock)
{
	struct fx		 f;
	struct limit_shm	*s;
	struct limit		 me;
	struct limit_key	 k;
	struct limit_result	 r;
	size_t			 locks;
	uint32_t		 i;
	pid_t			 pid;
	int			 st;

	fx_open(&f, 1024, 512, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	s = f.l.l_shm;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
			_exit(1);
		for (i = 0; i < s->ls_nban_shards; i++)
			limit_lock(&limit_ban_locks(s)[i], me.l_owner);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(limit_repair(&f.l, pid, UINT32_MAX, &locks, NULL), 0);
	cr_assert_eq(locks, s->ls_nban_shards);
	/* bans work again: a probe storm still bans */
	k = fx_key(&f, "192.0.2.1", "scanner");
	fx_probe_until_ban(&f, &k, T0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
}

Test(repair, workers_share_one_table)
{
	struct fx		 f;
	struct limit		 me;
	struct limit_key	 k;
	pid_t			 pid[4];
	int			 i, j, st, ok;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	/* four processes, 200 pages each at the same instant: 400 in all */
	for (i = 0; i < 4; i++) {
		pid[i] = fork();
		cr_assert_geq(pid[i], 0);
		if (pid[i] == 0) {
			if (limit_attach(&me, f.mem, f.len, &f.p, getpid()) != 0)
				_exit(255);
			f.l = me;
			ok = fx_burst(&f, &k, LIMIT_COST_PAGE, 200, T0);
			_exit(ok);
		}
	}
	for (i = 0, ok = 0; i < 4; i++) {
		cr_assert_eq(waitpid(pid[i], &st, 0), pid[i]);
		cr_assert(WIFEXITED(st));
		j = WEXITSTATUS(st);
		cr_assert_neq(j, 255);
		ok += j;
	}
	cr_assert_eq(ok, 400);
}

/* ---- region and parameters ---------------------------------------------- */

Test(region, geometry_and_attach)
{
	struct limit_geometry	 g = { 1024, 256, 4, 64 };
	struct limit_params	 p;
	struct limit		 l;
	char			 err[128];
	void			*mem;
	size_t			 len;

	len = limit_size(&g);
	cr_assert_geq(len, 1024 * 64 + 256 * 40 + 4 * 64 * 4);
	cr_assert_eq(posix_memalign(&mem, 64, len), 0);
	memset(mem, 0xa5, len);		/* init needs no zeroed memory */
	limit_params_default(&p);
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), 0);
	cr_assert_eq(limit_attach(&l, mem, len, &p, getpid()), -1);
	cr_assert_eq(limit_init(mem, len - 1, &g, SEED, T0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(limit_init((char *)mem + 8, len - 8, &g, SEED, T0), -1);
	cr_assert_eq(limit_init(mem, len, &g, SEED, T0), 0);
	cr_assert_eq(limit_attach(&l, mem, len - 1, &p, getpid()), -1);
	cr_assert_eq(limit_attach(&l, mem, len, &p, getpid()), 0);
	free(mem);

	g.lg_table_size = 1004;		/* not a multiple of 8 */
	cr_assert_eq(limit_size(&g), 0);
	g.lg_table_size = 32;
	cr_assert_eq(limit_size(&g), 0);
	g.lg_table_size = 1 << 24;
	g.lg_ban_table_size = 1 << 21;
	cr_assert_eq(limit_size(&g), 0);
}

Test(region, seed_moves_buckets)
{
	struct fx		 f1, f2;
	struct limit_key	 k;
	struct limit_info	 a, b;
	static const uint8_t	 other[16] = "fedcba9876543210";
	char			 s[32];
	int			 i, differ = 0;

	fx_default(&f1);
	fx_start(&f1);
	fx_default(&f2);
	cr_assert_eq(limit_init(f2.mem, f2.len, &f2.g, other, T0), 0);
	fx_start(&f2);
	for (i = 0; i < 32; i++) {
		snprintf(s, sizeof(s), "192.0.2.%d", i);
		k = fx_key(&f1, s, NULL);
		limit_info(&f1.l, &k, 1, T0, &a);
		limit_info(&f2.l, &k, 1, T0, &b);
		differ += a.bucket != b.bucket;
	}
	cr_assert_gt(differ, 16);
}

Test(region, params_are_checked)
{
	struct limit_params	 p;
	char			 err[128];

	limit_params_default(&p);
	p.ipv6_prefix = 16;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	cr_assert(strstr(err, "ipv6_prefix") != NULL, "%s", err);
	limit_params_default(&p);
	p.rate = 0;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	p.asset_weight = 0;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	p.ban_shared_max_time = p.ban_max_time + 1;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	cr_assert(strstr(err, "shared_max_time") != NULL, "%s", err);
	limit_params_default(&p);
	p.per_address_connections = 70000;
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), -1);
	limit_params_default(&p);
	cr_assert_eq(limit_params_prepare(&p, err, sizeof(err)), 0);
	cr_assert_eq(p.lp_inc[0][LIMIT_COST_PAGE], 50000);
	cr_assert_eq(p.lp_inc[0][LIMIT_COST_ASSET], 12500);
	cr_assert_eq(p.lp_tau[0], 20000000);
}
