/*
 * test_limit_ban.c - client limits, the bans: the ladder and its cap,
 * the evidence that starts one (distinct probe paths, ignored 429s),
 * manual ban and unban, and a full ban table. Time is injected: no test
 * reads a clock or sleeps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "limit_fx.h"

/* ---- bans ----------------------------------------------------------- */

Test(bans, ladder_doubles_up_to_the_cap)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	static const uint32_t	 want[] = { 600, 1200, 2400, 4800, 9600,
	    14400, 14400 };
	uint64_t		 t = T0;
	size_t			 i;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "scanner");
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert_eq(fx_probe_until_ban(&f, &k, t), want[i], "ban %zu", i);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t + 1, &r);
		cr_assert_eq(r.verdict, LIMIT_BANNED);
		cr_assert_eq(r.retry_after, want[i]);
		/* the last second of it, then free */
		limit_check(&f.l, &k, LIMIT_COST_PAGE,
		    t + want[i] * 1000ULL - 1, &r);
		cr_assert_eq(r.verdict, LIMIT_BANNED);
		t += want[i] * 1000ULL + 1000;
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.verdict, LIMIT_PASS, "ban %zu expires", i);
	}
	/* a day without a ban: the ladder starts again */
	t += 86400ULL * 1000;
	cr_assert_eq(fx_probe_until_ban(&f, &k, t), 600);
}

Test(bans, shared_addresses_get_short_bans)
{
	struct fx		 f;
	struct limit_cidr	 sh;
	struct limit_key	 k;
	uint64_t		 t = T0;

	fx_default(&f);
	cr_assert_eq(limit_cidr_parse("192.0.2.0/24", &sh), 0);
	f.p.shared = &sh;
	f.p.nshared = 1;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "scanner");
	cr_assert_eq(fx_probe_until_ban(&f, &k, t), 600);
	t += 601 * 1000;
	cr_assert_eq(fx_probe_until_ban(&f, &k, t), 900);
	t += 901 * 1000;
	cr_assert_eq(fx_probe_until_ban(&f, &k, t), 900);
}

Test(bans, probes_count_only_distinct_paths)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	char			 path[32];
	int			 i;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "browser");
	/* a missing favicon asked for again and again never bans */
	for (i = 0; i < 1000; i++) {
		fx_request(&f, &k, LIMIT_COST_PAGE, "/favicon.ico", 404,
		    T0 + i * 100ULL, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* nor do four missing pages in turn */
	for (i = 0; i < 1000; i++) {
		snprintf(path, sizeof(path), "/old/%d.html", i % 4);
		fx_request(&f, &k, LIMIT_COST_PAGE, path, 404, T0 + i * 100ULL, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* missing assets, and 200s or 500s, earn nothing */
	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path), "/img/%d.png", i);
		fx_request(&f, &k, LIMIT_COST_ASSET, path, 404, T0 + 200000, &r);
		snprintf(path, sizeof(path), "/page/%d", i);
		fx_request(&f, &k, LIMIT_COST_PAGE, path, i % 2 ? 200 : 500,
		    T0 + 200000, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* 29 distinct, leaked away over the window, 29 more: no ban */
	k = fx_key(&f, "192.0.2.2", "scanner");
	for (i = 0; i < 29; i++) {
		snprintf(path, sizeof(path), "/a/%d", i);
		fx_request(&f, &k, LIMIT_COST_PAGE, path, 403, T0, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	for (i = 0; i < 29; i++) {
		snprintf(path, sizeof(path), "/b/%d", i);
		fx_request(&f, &k, LIMIT_COST_PAGE, path, 400, T0 + 300000, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	/* and the 30th within the window bans the agent, not the address */
	fx_request(&f, &k, LIMIT_COST_PAGE, "/c", 404, T0 + 300000, &r);
	cr_assert_eq(r.banned_now, 1);
	cr_assert_eq(r.ban_aggregate, 0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 300001, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	k = fx_key(&f, "192.0.2.2", "browser");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 300001, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(bans, probes_over_many_agents_ban_the_address)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	char			 path[32], ua[32];
	int			 i, agg = 0;

	fx_default(&f);
	fx_start(&f);
	/* 20 points per agent, never a fine ban; 120 for the address */
	for (i = 0; i < 200 && !agg; i++) {
		snprintf(ua, sizeof(ua), "rot/%d", i / 20);
		snprintf(path, sizeof(path), "/p/%d", i);
		k = fx_key(&f, "192.0.2.1", ua);
		fx_request(&f, &k, LIMIT_COST_PAGE, path, 404, T0, &r);
		if (r.banned_now) {
			cr_assert_eq(r.ban_aggregate, 1);
			agg = i + 1;
		}
	}
	cr_assert_eq(agg, 120);
	k = fx_key(&f, "192.0.2.1", "never seen");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0 + 1, 0, 0, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.block, 1);
}

Test(bans, ignoring_429_for_ignore_seconds)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t, first = 0;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "hammer");
	/* 100 requests a second: 20 of them pass, the rest are told to
	 * wait; the passing ones do not make it a new start */
	for (t = T0; t < T0 + 300000; t += 10) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		if (r.verdict == LIMIT_RATE && first == 0)
			first = t;
		if (r.banned_now)
			break;
	}
	cr_assert_eq(r.banned_now, 1);
	cr_assert_eq(r.cause, LIMIT_C_IGNORED);
	cr_assert_eq(r.ban_aggregate, 0);
	cr_assert_eq(r.ban_seconds, 600);
	cr_assert_geq(t - first, 120000);
	cr_assert_lt(t - first, 122000);
}

Test(bans, a_browser_that_waits_is_never_banned)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t = T0;
	int			 refused = 0;

	fx_default(&f);
	f.p.burst = 40;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "browser");
	/* bursts of 60 assets in 2 s, told to wait, waits, again: 30 min */
	while (t < T0 + 1800000) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.banned_now, 0);
		cr_assert_neq(r.verdict, LIMIT_BANNED);
		if (r.verdict == LIMIT_RATE) {
			refused++;
			t += r.retry_after * 1000ULL;
		} else
			t += 33;
	}
	cr_assert_gt(refused, 100);
}

Test(bans, manual_ban_and_unban)
{
	struct fx		 f;
	struct limit_key	 k, k2, other, addr;
	struct limit_result	 r;
	struct limit_info	 in;
	struct limit_stats	 st;

	fx_default(&f);
	fx_start(&f);
	addr = fx_key(&f, "192.0.2.1", NULL);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(limit_ban(&f.l, &addr, 5, T0), 0);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 0);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.retry_after, 5);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 4999, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 5000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);

	cr_assert_eq(limit_ban(&f.l, &addr, 3600, T0 + 6000), 0);
	limit_info(&f.l, &addr, 1, T0 + 6000, &in);
	cr_assert_eq(in.ban_left, 3600);
	cr_assert_eq(in.ban_count, 2);
	limit_stats(&f.l, T0 + 6000, &st);
	cr_assert_eq(st.bans_active, 1);
	cr_assert_eq(st.bans[LIMIT_C_MANUAL], 2);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 7000), 1);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 7000), 0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 7000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
	limit_stats(&f.l, T0 + 7000, &st);
	cr_assert_eq(st.bans_active, 0);
	/* unbanning the address lifts its agents' bans too, each counted */
	fx_probe_until_ban(&f, &k, T0 + 8000);
	k2 = fx_key(&f, "192.0.2.1", "wget");
	fx_probe_until_ban(&f, &k2, T0 + 8000);
	other = fx_key(&f, "192.0.2.2", "wget");
	fx_probe_until_ban(&f, &other, T0 + 8000);
	cr_assert_eq(limit_unban(&f.l, &addr, T0 + 9000), 2);
	limit_check(&f.l, &k2, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
	limit_check(&f.l, &other, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(limit_unban(&f.l, &other, T0 + 9000), 1);
	limit_check(&f.l, &other, LIMIT_COST_PAGE, T0 + 9000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);

	cr_assert_eq(limit_ban(&f.l, &addr, 0, T0), -1);
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(limit_ban(&f.l, &addr, LIMIT_BAN_CEILING + 1, T0), -1);
	cr_assert_eq(limit_ban(&f.l, &addr, LIMIT_BAN_CEILING, T0), 0);
}

Test(bans, full_ban_table_keeps_manual_bans)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, fails = 0;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* 64 manual bans may not all fit 8 buckets of 8; count the fits */
	for (i = 0; i < 200; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i / 250, i % 250);
		k = fx_key(&f, a, NULL);
		if (limit_ban(&f.l, &k, 86400, T0) != 0) {
			cr_assert_eq(errno, ENOSPC);
			fails++;
		}
	}
	cr_assert_eq(fails, 200 - 64);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans_active, 64);
	/* automatic bans cannot push out manual ones: no ban then */
	k = fx_key(&f, "192.0.2.1", "scanner");
	for (i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "/probe/%d", i);
		fx_request(&f, &k, LIMIT_COST_PAGE, a, 404, T0, &r);
		cr_assert_eq(r.banned_now, 0);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans_active, 64);
	cr_assert_eq(st.bans_replaced, 0);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 0);
}

Test(bans, full_ban_table_replaces_the_soonest_to_end)
{
	struct fx		 f;
	struct limit_key	 k[100];
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 a[32];
	int			 i, active = 0;

	fx_open(&f, 1024, 64, 1, 1);
	limit_params_default(&f.p);
	f.p.mode = LIMIT_ENFORCE;
	fx_start(&f);
	/* 100 scanners, one a second: later bans end later */
	for (i = 0; i < 100; i++) {
		snprintf(a, sizeof(a), "10.9.0.%d", i);
		k[i] = fx_key(&f, a, "scanner");
		cr_assert_eq(fx_probe_until_ban(&f, &k[i], T0 + i * 1000ULL), 600);
	}
	/* buckets fill unevenly: each replacement ended one ban */
	limit_stats(&f.l, T0 + 100000, &st);
	cr_assert_leq(st.bans_active, 64);
	cr_assert_geq(st.bans_replaced, 36);
	cr_assert_eq(st.bans_active + st.bans_replaced, 100);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 100);
	for (i = 0; i < 100; i++) {
		limit_check(&f.l, &k[i], LIMIT_COST_PAGE, T0 + 100000, &r);
		active += r.verdict == LIMIT_BANNED;
		/* the newest ban of each bucket is never the one replaced */
		if (i >= 92)
			cr_assert_eq(r.verdict, LIMIT_BANNED, "scanner %d", i);
	}
	cr_assert_eq(active, (int)st.bans_active);
}

/* ---- the admin's views: porter -s bans, clients, limits-reset -------- */

struct rows {
	struct limit_row	 r[16];
	int			 n;
};

static int
collect(const struct limit_row *r, void *arg)
{
	struct rows *rs = arg;

	if (rs->n < 16)
		rs->r[rs->n++] = *r;
	return 0;
}

Test(admin, ban_walk_lists_bans_in_force_only)
{
	struct fx		 f;
	struct limit_key	 a, b;
	struct rows		 rs;
	uint64_t		 t = T0;

	fx_default(&f);
	fx_start(&f);
	a = fx_key(&f, "192.0.2.1", NULL);
	a.lk_agent = 0;
	b = fx_key(&f, "2001:db8::1", "scanner");
	cr_assert_eq(limit_ban(&f.l, &a, 60, t), 0);
	cr_assert_eq(fx_probe_until_ban(&f, &b, t), 600);
	memset(&rs, 0, sizeof(rs));
	limit_ban_walk(&f.l, t + 1000, collect, &rs);
	cr_assert_eq(rs.n, 2);
	for (int i = 0; i < rs.n; i++) {
		if (rs.r[i].net.lc_family == AF_INET) {
			cr_assert(rs.r[i].aggregate);
			cr_assert_eq(rs.r[i].cause, LIMIT_C_MANUAL);
			cr_assert(rs.r[i].left >= 59 && rs.r[i].left <= 61);
		} else {
			cr_assert_not(rs.r[i].aggregate);
			cr_assert_eq(rs.r[i].agent, b.lk_agent);
			cr_assert_eq(rs.r[i].cause, LIMIT_C_PROBE);
			cr_assert_eq(rs.r[i].net.lc_prefix, 64);
		}
	}
	/* the manual ban is over a minute later: only the probe ban stays */
	memset(&rs, 0, sizeof(rs));
	limit_ban_walk(&f.l, t + 62000, collect, &rs);
	cr_assert_eq(rs.n, 1);
	cr_assert_eq(rs.r[0].net.lc_family, AF_INET6);
}

Test(admin, reset_forgets_debt_keeps_bans)
{
	struct fx		 f;
	struct limit_key	 k, a;
	struct limit_result	 r;
	struct rows		 rs;
	uint64_t		 t = T0;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.7", "ua");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 500, t), 400);
	a = fx_key(&f, "192.0.2.8", NULL);
	a.lk_agent = 0;
	cr_assert_eq(limit_ban(&f.l, &a, 600, t), 0);
	memset(&rs, 0, sizeof(rs));
	limit_client_walk(&f.l, t, collect, &rs);
	cr_assert_geq(rs.n, 2);		/* the fine and the address-wide key */
	cr_assert_gt(rs.r[0].debt_ms + rs.r[1].debt_ms, 0);
	cr_assert_geq(limit_reset(&f.l), 2);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
	limit_check(&f.l, &a, LIMIT_COST_PAGE, t, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
}

Test(admin, hinted_key_finds_the_same_entries)
{
	struct fx		 f;
	struct limit_key	 k, h;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "198.51.100.3", "browser");
	h = k;
	limit_key_hint(&f.l, &h);
	cr_assert(h.lk_hinted);
	/* half the burst through each: one bucket, so the second half ends it */
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 200, T0), 200);
	cr_assert_eq(fx_burst(&f, &h, LIMIT_COST_PAGE, 201, T0), 200);
}
