/*
 * test_limit.c - client limits, the policy: GCRA and costs, shared
 * addresses and the allow list, the modes, and a classroom behind one
 * NAT address with a scraper next door. Keys are in test_limit_key.c,
 * bans in test_limit_ban.c, the tables and their repair after a dead
 * worker in test_limit_table.c. Time is injected: no test reads a
 * clock or sleeps.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "limit_fx.h"

/* ---- GCRA ----------------------------------------------------------- */

Test(gcra, exactly_burst_at_once)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 400, T0), 400);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.block, 1);
	cr_assert_eq(r.retry_after, 1);	/* 50 ms, rounded up */
}

Test(gcra, refills_at_rate)
{
	struct fx		 f;
	struct limit_key	 k;

	fx_default(&f);
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 401, T0), 400);
	/* one page every 50 ms at 20/s */
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 5, T0 + 49), 0);
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 5, T0 + 50), 1);
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 50, T0 + 1050), 20);
	/* idle long enough: the whole burst again, not more */
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 500, T0 + 60000), 400);
}

Test(gcra, retry_after_rounds_up_at_least_one)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	f.p.rate = 0.5;		/* one page per 2 s */
	f.p.burst = 1;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 1, T0), 1);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.retry_after, 2);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1, &r);
	cr_assert_eq(r.retry_after, 2);		/* 1.999 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.retry_after, 1);		/* exactly 1 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1001, &r);
	cr_assert_eq(r.retry_after, 1);		/* 0.999 s */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1999, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.retry_after, 1);		/* 1 ms still says 1 */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 2000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(gcra, refused_request_does_not_advance)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	uint64_t		 t;

	fx_default(&f);
	f.p.rate = 1;
	f.p.burst = 1;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 1, T0), 1);
	for (t = T0; t < T0 + 1000; t += 10) {
		limit_check(&f.l, &k, LIMIT_COST_PAGE, t, &r);
		cr_assert_eq(r.verdict, LIMIT_RATE);
		/* always the time left to T0 + 1000, never pushed out */
		cr_assert_eq(r.retry_after, 1);
	}
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.verdict, LIMIT_PASS);
}

Test(gcra, asset_and_page_costs)
{
	struct fx		 f;
	struct limit_key	 k, k2;

	fx_default(&f);
	f.p.burst = 10;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_ASSET, 50, T0), 40);
	k2 = fx_key(&f, "192.0.2.2", "curl");
	cr_assert_eq(fx_burst(&f, &k2, LIMIT_COST_PAGE, 1, T0), 1);
	cr_assert_eq(fx_burst(&f, &k2, LIMIT_COST_ASSET, 50, T0), 36);
	cr_assert_eq(fx_burst(&f, &k2, LIMIT_COST_PAGE, 1, T0), 0);
}

Test(gcra, asset_weight_is_a_parameter)
{
	struct fx		 f;
	struct limit_key	 k;

	fx_default(&f);
	f.p.burst = 10;
	f.p.asset_weight = 0.5;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_ASSET, 50, T0), 20);
}

Test(gcra, mime_types_that_are_assets)
{
	static const char *yes[] = { "text/css", "text/css; charset=utf-8",
	    "image/png", "image/svg+xml", "font/woff2", "video/mp4",
	    "application/javascript", "TEXT/JAVASCRIPT", "audio/ogg",
	    "application/font-woff", "application/wasm" };
	static const char *no[] = { "text/html", "text/html; charset=utf-8",
	    "text/plain", "application/json", "application/pdf",
	    "text/cssx", "application/javascriptx", "" };
	size_t	 i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		cr_assert(limit_mime_is_asset(yes[i], strlen(yes[i])), "%s",
		    yes[i]);
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		cr_assert(!limit_mime_is_asset(no[i], strlen(no[i])), "%s",
		    no[i]);
}

/* ---- shared, allow -------------------------------------------------- */

Test(shared, detected_from_distinct_agents)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	static const char	*ua[] = { "a", "b", "c", "d" };
	int			 i;

	fx_default(&f);
	fx_start(&f);
	for (i = 0; i < 4; i++) {
		k = fx_key(&f, "192.0.2.1", ua[i]);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + i * 100000ULL, &r);
		cr_assert_eq(r.shared, i == 3, "agent %d", i);
	}
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.shared_keys, 1);

	/* the same agent over and over is one agent */
	k = fx_key(&f, "192.0.2.2", "a");
	for (i = 0; i < 100; i++)
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.shared, 0);

	/* still counted in the next window, forgotten after two */
	k = fx_key(&f, "192.0.2.1", "a");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000 * 1000, &r);
	cr_assert_eq(r.shared, 1);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1800 * 1000, &r);
	cr_assert_eq(r.shared, 0);

	/* off: never shared by agents */
	fx_default(&f);
	f.p.auto_shared = 0;
	fx_start(&f);
	for (i = 0; i < 4; i++) {
		k = fx_key(&f, "192.0.2.1", ua[i]);
		limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
		cr_assert_eq(r.shared, 0);
	}
}

Test(shared, listed_and_allowed)
{
	struct fx		 f;
	struct limit_cidr	 sh[1], al[2];
	struct limit_key	 k;
	struct limit_result	 r;

	fx_default(&f);
	cr_assert_eq(limit_cidr_parse("198.51.100.0/24", &sh[0]), 0);
	cr_assert_eq(limit_cidr_parse("203.0.113.5", &al[0]), 0);
	cr_assert_eq(limit_cidr_parse("2001:db8::/32", &al[1]), 0);
	f.p.shared = sh;
	f.p.nshared = 1;
	f.p.allow = al;
	f.p.nallow = 2;
	fx_start(&f);

	k = fx_key(&f, "198.51.100.20", "one agent");
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.shared, 1);

	k = fx_key(&f, "203.0.113.5", "monitor");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 10000);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_UNTRACKED);
	k = fx_key(&f, "::ffff:203.0.113.5", "monitor");	/* mapped form too */
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_UNTRACKED);
	k = fx_key(&f, "2001:db8:9::1", "monitor");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 10000);
	/* the neighbour is limited */
	k = fx_key(&f, "203.0.113.6", "monitor");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 10000, T0), 400);
}

/* ---- modes ---------------------------------------------------------- */

/* n distinct 404s on pages at t, whatever comes of them */
static void
probes(struct fx *f, const struct limit_key *k, int n, uint64_t t)
{
	struct limit_result	 r;
	char			 path[64];
	static int		 serial;
	int			 i;

	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "/cgi-bin/%d", serial++);
		fx_request(f, k, LIMIT_COST_PAGE, path, 404, t, &r);
	}
}

Test(modes, dry_run_decides_counts_never_blocks)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	struct limit_info	 in;

	fx_default(&f);
	f.p.mode = LIMIT_DRY_RUN;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 450, T0), 450);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0, &r);
	cr_assert_eq(r.verdict, LIMIT_RATE);
	cr_assert_eq(r.block, 0);
	cr_assert_geq(r.retry_after, 1);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][1], 51);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0], 0);

	/* a dry-run ban is recorded and reported, and still blocks nothing */
	k = fx_key(&f, "192.0.2.2", "scanner");
	fx_probe_until_ban(&f, &k, T0);
	limit_check(&f.l, &k, LIMIT_COST_PAGE, T0 + 1000, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	cr_assert_eq(r.block, 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.rejected[LIMIT_R_BAN][1], 1);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);

	/* served while "banned", it earns no second ban: enforce would
	 * never have seen those statuses */
	probes(&f, &k, 100, T0 + 2000);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);
	limit_info(&f.l, &k, 0, T0 + 2000, &in);
	cr_assert_eq(in.ban_left, 598);

	/* nor does evidence shorten or take over an admin's ban */
	k = fx_key(&f, "192.0.2.3", "scanner");
	cr_assert_eq(limit_ban(&f.l, &k, 7200, T0), 0);
	probes(&f, &k, 100, T0);
	limit_info(&f.l, &k, 0, T0, &in);
	cr_assert_eq(in.ban_left, 7200);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.bans[LIMIT_C_PROBE], 1);
}

Test(modes, off_touches_nothing)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;

	fx_default(&f);
	f.p.mode = LIMIT_OFF;
	fx_start(&f);
	k = fx_key(&f, "192.0.2.1", "curl");
	cr_assert_eq(fx_burst(&f, &k, LIMIT_COST_PAGE, 1000, T0), 1000);
	limit_finish(&f.l, &k, 404, LIMIT_COST_PAGE, "/x", 2, T0, &r);
	cr_assert_eq(limit_conn_open(&f.l, &k, T0, 0, 0, &r), 0);
	limit_stats(&f.l, T0, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0] + st.rejected[LIMIT_R_RATE][1],
	    0);
}

/* ---- a classroom behind one address ------------------------------------- */

#define PUPILS	30
#define NAT	"203.0.113.7"

/* Most pupils run the school's browser; a few brought their own. */
static const char *
pupil_agent(int i)
{
	return i < 26 ? "Mozilla/5.0 (Windows NT 10.0) Chrome/120" :
	    i < 28 ? "Mozilla/5.0 (X11; Linux) Firefox/121" :
	    "Mozilla/5.0 (Macintosh) Safari/17";
}

Test(classroom, thirty_pupils_load_a_page_at_once)
{
	struct fx		 f;
	struct limit_key	 k;
	struct limit_result	 r;
	struct limit_stats	 st;
	char			 path[64];
	int			 i, j, refused = 0;
	uint64_t		 t;

	fx_default(&f);
	fx_start(&f);
	/* every pupil: the page, then 30 assets, all within 2 s; rounds
	 * interleave the pupils the way the network would */
	for (j = 0; j <= 30; j++)
		for (i = 0; i < PUPILS; i++) {
			k = fx_key(&f, NAT, pupil_agent(i));
			t = T0 + (uint64_t)(i * 37 % 500) + (uint64_t)j * 45;
			snprintf(path, sizeof(path), j == 0 ? "/lesson.html" :
			    "/static/%d.png", j);
			fx_request(&f, &k, j == 0 ? LIMIT_COST_PAGE :
			    LIMIT_COST_ASSET, path, 200, t, &r);
			cr_assert_lt(t, T0 + 2000);
			refused += r.block;
		}
	cr_assert_eq(refused, 0);
	limit_stats(&f.l, T0 + 2000, &st);
	cr_assert_eq(st.rejected[LIMIT_R_RATE][0], 0);
	cr_assert_eq(st.bans_active, 0);
}

Test(classroom, a_scraper_next_door)
{
	struct fx		 f;
	struct limit_key	 pupil[PUPILS], bot;
	struct limit_result	 r;
	struct limit_info	 in;
	char			 path[64];
	int			 i, page = 0, limited_at = -1, banned_at = -1;
	long			 pupil_reqs = 0, pupil_refused = 0, tick;
	uint64_t		 t;

	fx_default(&f);
	fx_start(&f);
	for (i = 0; i < PUPILS; i++)
		pupil[i] = fx_key(&f, NAT, pupil_agent(i));
	bot = fx_key(&f, NAT, "Mozilla/5.0 (compatible; HungryBot/2.1)");
	/*
	 * 10 ms ticks for 200 s. The bot asks for pages 0..499 and again,
	 * 100 a second, and never waits. Each pupil opens a page and its
	 * 30 assets every 20 s, staggered, the assets 40 ms apart.
	 */
	for (tick = 0; tick < 20000; tick++) {
		t = T0 + (uint64_t)tick * 10;
		snprintf(path, sizeof(path), "/archive/%d.html", page % 500);
		fx_request(&f, &bot, LIMIT_COST_PAGE, path, 200, t, &r);
		if (r.verdict == LIMIT_RATE && limited_at < 0)
			limited_at = (int)tick;
		if (r.banned_now) {
			cr_assert_eq(r.ban_aggregate, 0);
			cr_assert_eq(r.cause, LIMIT_C_IGNORED);
			banned_at = (int)tick;
		}
		if (!r.block)
			page++;
		for (i = 0; i < PUPILS; i++) {
			long phase = (tick - i * 61) % 2000;

			if (tick < i * 61 || phase % 4 != 0 || phase / 4 > 30)
				continue;
			snprintf(path, sizeof(path), phase == 0 ?
			    "/lesson/%ld.html" : "/static/%ld.css", phase);
			fx_request(&f, &pupil[i], phase == 0 ? LIMIT_COST_PAGE :
			    LIMIT_COST_ASSET, path, 200, t, &r);
			pupil_reqs++;
			pupil_refused += r.block;
			cr_assert_eq(r.banned_now, 0);
		}
	}
	cr_assert_geq(limited_at, 0);
	cr_assert_gt(banned_at, limited_at);
	cr_assert_geq(page, 500);	/* it did get its 500 pages first */
	limit_check(&f.l, &bot, LIMIT_COST_PAGE, t, &r);
	cr_assert_eq(r.verdict, LIMIT_BANNED);
	/* the pupils: no ban on them or the address, under 1% refused */
	cr_assert_gt(pupil_reqs, 30L * 31 * 9);
	cr_assert_lt(pupil_refused * 100, pupil_reqs, "%ld of %ld",
	    pupil_refused, pupil_reqs);
	for (i = 0; i < PUPILS; i++) {
		limit_info(&f.l, &pupil[i], 0, t, &in);
		cr_assert_eq(in.ban_left, 0);
	}
	limit_info(&f.l, &pupil[0], 1, t, &in);
	cr_assert_eq(in.ban_left, 0);
	cr_assert_eq(in.shared, 1);
}
